//! Pass tokens: sealed claims that a client passed a challenge.

use sha2::{Digest, Sha256};

use super::seal::{open_with_key_id, seal, FORMAT_VERSION, SEALED_OVERHEAD};
use super::{Keyring, Purpose, TokenError};
use crate::net::Cidr;

/// How far in the future `issued_at` may be (seconds) before a token is
/// rejected as [`TokenError::NotYetValid`]: tolerates clock skew between
/// the instances that issue and verify.
pub const CLOCK_SKEW_S: u64 = 60;

/// Size of the binary claims ([`encode_claims`]), in bytes.
pub const CLAIMS_LEN: usize = 8 + 8 + 1 + 1 + 8 + 8;

/// Size of a pass token before base64url encoding, in bytes.
pub const PASS_TOKEN_BYTES: usize = SEALED_OVERHEAD + CLAIMS_LEN;

/// Length of a pass token, in characters (base64url without padding).
pub const PASS_TOKEN_LEN: usize = (PASS_TOKEN_BYTES * 4).div_ceil(3);

const FLAG_IP: u8 = 1 << 0;
const FLAG_UA: u8 = 1 << 1;
const KNOWN_FLAGS: u8 = FLAG_IP | FLAG_UA;

const IP_DOMAIN: &[u8] = b"palisade ip\0";
const UA_DOMAIN: &[u8] = b"palisade ua\0";

fn hash8(domain: &[u8], data: &[u8]) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(domain)
        .chain_update(data)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// What a pass token is bound to. `None` fields are not bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Binding {
    pub ip_hash: Option<[u8; 8]>,
    pub ua_hash: Option<[u8; 8]>,
}

impl Binding {
    /// Hashes the client's prefix and user agent (pass `None` to not bind one).
    pub fn new(ip_prefix: Option<&Cidr>, user_agent: Option<&str>) -> Binding {
        Binding {
            ip_hash: ip_prefix.map(Binding::ip_hash_of),
            ua_hash: user_agent.map(Binding::ua_hash_of),
        }
    }

    /// The binding hash of a client prefix: the first 8 bytes of
    /// `SHA-256("palisade ip\0" || cidr.to_bytes())`.
    pub fn ip_hash_of(prefix: &Cidr) -> [u8; 8] {
        Binding::ip_hash_of_bytes(&prefix.to_bytes())
    }

    /// The binding hash of prefix bytes in the [`Cidr::to_bytes`] layout.
    pub fn ip_hash_of_bytes(prefix_bytes: &[u8]) -> [u8; 8] {
        hash8(IP_DOMAIN, prefix_bytes)
    }

    /// The binding hash of a user agent: the first 8 bytes of
    /// `SHA-256("palisade ua\0" || user_agent)`.
    pub fn ua_hash_of(user_agent: &str) -> [u8; 8] {
        hash8(UA_DOMAIN, user_agent.as_bytes())
    }
}

/// The claims of a pass token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub version: u8,
    pub key_id: u8,
    pub issued_at: u64,
    pub expires_at: u64,
    pub level: u8,
    pub binding: Binding,
}

/// Encodes claims in the pass-token payload layout (see the module docs).
///
/// Public so other sealed values (challenge tickets) can embed the same
/// claims; seal the result with [`super::seal`] under their own purpose.
pub fn encode_claims(
    issued_at: u64,
    expires_at: u64,
    level: u8,
    binding: &Binding,
) -> [u8; CLAIMS_LEN] {
    let mut out = [0u8; CLAIMS_LEN];
    out[0..8].copy_from_slice(&issued_at.to_be_bytes());
    out[8..16].copy_from_slice(&expires_at.to_be_bytes());
    out[16] = level;
    let mut flags = 0;
    if let Some(h) = binding.ip_hash {
        flags |= FLAG_IP;
        out[18..26].copy_from_slice(&h);
    }
    if let Some(h) = binding.ua_hash {
        flags |= FLAG_UA;
        out[26..34].copy_from_slice(&h);
    }
    out[17] = flags;
    out
}

fn u64_at(bytes: &[u8; CLAIMS_LEN], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

fn hash_at(bytes: &[u8; CLAIMS_LEN], at: usize) -> [u8; 8] {
    let mut h = [0u8; 8];
    h.copy_from_slice(&bytes[at..at + 8]);
    h
}

/// Parses claims bytes from [`encode_claims`]; `key_id` is recorded in the
/// result. Only call this on bytes that came out of [`super::open`]: it does
/// not authenticate anything. Strict: a length other than [`CLAIMS_LEN`],
/// unknown flags, a non-zero hash for an unbound field, or
/// `expires_at < issued_at` are `Malformed` (none of them is ever issued).
pub fn decode_claims(key_id: u8, payload: &[u8]) -> Result<Claims, TokenError> {
    let bytes: &[u8; CLAIMS_LEN] = payload.try_into().map_err(|_| TokenError::Malformed)?;
    let issued_at = u64_at(bytes, 0);
    let expires_at = u64_at(bytes, 8);
    let level = bytes[16];
    let flags = bytes[17];
    if flags & !KNOWN_FLAGS != 0 || expires_at < issued_at {
        return Err(TokenError::Malformed);
    }
    let field = |flag: u8, at: usize| -> Result<Option<[u8; 8]>, TokenError> {
        let h = hash_at(bytes, at);
        match (flags & flag != 0, h == [0u8; 8]) {
            (true, _) => Ok(Some(h)),
            (false, true) => Ok(None),
            (false, false) => Err(TokenError::Malformed),
        }
    };
    Ok(Claims {
        version: FORMAT_VERSION,
        key_id,
        issued_at,
        expires_at,
        level,
        binding: Binding {
            ip_hash: field(FLAG_IP, 18)?,
            ua_hash: field(FLAG_UA, 26)?,
        },
    })
}

/// Issues a pass token for a client that passed a challenge at `level`.
///
/// The token expires at `now_s + ttl_s` (saturating) and is exactly
/// [`PASS_TOKEN_LEN`] characters long.
pub fn issue(keys: &Keyring, now_s: u64, ttl_s: u64, level: u8, binding: Binding) -> String {
    let claims = encode_claims(now_s, now_s.saturating_add(ttl_s), level, &binding);
    seal(keys, Purpose::PassToken, &claims)
}

/// Decodes a token without checking time or binding (MAC is checked).
pub fn decode(keys: &Keyring, token: &str) -> Result<Claims, TokenError> {
    let (key_id, payload) = open_with_key_id(keys, Purpose::PassToken, token)?;
    decode_claims(key_id, &payload)
}

/// Verifies MAC, expiry, age (`max_age_s` since issue), and that every
/// binding `expected` asks for matches the token.
///
/// Checks in order: MAC and format ([`decode`]); `NotYetValid` if issued
/// more than [`CLOCK_SKEW_S`] in the future; `Expired` if
/// `now_s >= expires_at`; `TooOld` if `now_s - issued_at > max_age_s`;
/// then `WrongClientIp` / `WrongUserAgent` for each binding `expected` has
/// (a token without that binding is rejected too). Bindings the verifier
/// does not ask for are ignored.
pub fn verify(
    keys: &Keyring,
    token: &str,
    now_s: u64,
    max_age_s: u64,
    expected: &Binding,
) -> Result<Claims, TokenError> {
    let claims = decode(keys, token)?;
    check_claims(&claims, now_s, max_age_s, expected)?;
    Ok(claims)
}

/// The time and binding checks of [`verify`] on already-authenticated
/// claims, in the same order: `NotYetValid`, `Expired`, `TooOld`,
/// `WrongClientIp`, `WrongUserAgent`.
pub fn check_claims(
    claims: &Claims,
    now_s: u64,
    max_age_s: u64,
    expected: &Binding,
) -> Result<(), TokenError> {
    if claims.issued_at > now_s.saturating_add(CLOCK_SKEW_S) {
        return Err(TokenError::NotYetValid);
    }
    if now_s >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    if now_s.saturating_sub(claims.issued_at) > max_age_s {
        return Err(TokenError::TooOld);
    }
    if let Some(want) = expected.ip_hash {
        if claims.binding.ip_hash != Some(want) {
            return Err(TokenError::WrongClientIp);
        }
    }
    if let Some(want) = expected.ua_hash {
        if claims.binding.ua_hash != Some(want) {
            return Err(TokenError::WrongUserAgent);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{open, Key};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    const NOW: u64 = 1_700_000_000;
    const TTL: u64 = 3600;
    const MAX_AGE: u64 = 7200;

    fn ring(ids: &[u8]) -> Keyring {
        Keyring::new(
            ids.iter()
                .map(|&id| Key {
                    id,
                    secret: format!("pass token test secret {id}").into_bytes(),
                })
                .collect(),
        )
        .unwrap()
    }

    /// Binding from known prefix bytes (independent of `Cidr`).
    fn binding(ip: Option<&[u8]>, ua: Option<&str>) -> Binding {
        Binding {
            ip_hash: ip.map(Binding::ip_hash_of_bytes),
            ua_hash: ua.map(Binding::ua_hash_of),
        }
    }

    fn v4_bytes(a: u8, b: u8, c: u8, d: u8, len: u8) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[0] = 4;
        out[1..5].copy_from_slice(&[a, b, c, d]);
        out[17] = len;
        out
    }

    #[test]
    fn token_length_is_fixed() {
        assert_eq!(PASS_TOKEN_BYTES, 69);
        assert_eq!(PASS_TOKEN_LEN, 92);
        let keys = ring(&[1]);
        let b = binding(Some(&v4_bytes(192, 0, 2, 7, 32)), Some("curl/8"));
        for binding in [Binding::default(), b] {
            let t = issue(&keys, NOW, TTL, 3, binding);
            assert_eq!(t.len(), PASS_TOKEN_LEN);
        }
    }

    #[test]
    fn issue_decode_round_trip() {
        let keys = ring(&[7, 8]);
        let b = binding(Some(&v4_bytes(192, 0, 2, 7, 32)), Some("Mozilla/5.0"));
        let t = issue(&keys, NOW, TTL, 5, b);
        let c = decode(&keys, &t).unwrap();
        assert_eq!(
            c,
            Claims {
                version: 1,
                key_id: 8,
                issued_at: NOW,
                expires_at: NOW + TTL,
                level: 5,
                binding: b,
            }
        );
        assert_eq!(verify(&keys, &t, NOW, MAX_AGE, &b), Ok(c));
    }

    #[test]
    fn payload_layout() {
        let keys = ring(&[1]);
        let ip = Binding::ip_hash_of_bytes(&v4_bytes(10, 0, 0, 0, 8));
        let b = Binding {
            ip_hash: Some(ip),
            ua_hash: None,
        };
        let t = issue(&keys, 0x0102_0304_0506_0708, 16, 9, b);
        let p = open(&keys, Purpose::PassToken, &t).unwrap();
        assert_eq!(p.len(), 34);
        assert_eq!(&p[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&p[8..16], &[1, 2, 3, 4, 5, 6, 7, 0x18]);
        assert_eq!(p[16], 9);
        assert_eq!(p[17], 0b01);
        assert_eq!(&p[18..26], &ip);
        assert_eq!(&p[26..34], &[0u8; 8]);
    }

    #[test]
    fn binding_hashes_use_domain_separation() {
        let bytes = v4_bytes(198, 51, 100, 0, 24);
        let mut h = Sha256::new();
        h.update(b"palisade ip\0");
        h.update(bytes);
        assert_eq!(Binding::ip_hash_of_bytes(&bytes), h.finalize()[..8]);
        let mut h = Sha256::new();
        h.update(b"palisade ua\0");
        h.update(b"curl/8.0");
        assert_eq!(Binding::ua_hash_of("curl/8.0"), h.finalize()[..8]);
        // Same input, different domain, different hash.
        assert_ne!(Binding::ip_hash_of_bytes(b"x"), Binding::ua_hash_of("x"));
        assert_eq!(Binding::new(None, None), Binding::default());
        assert_eq!(
            Binding::new(None, Some("ua")).ua_hash,
            Some(Binding::ua_hash_of("ua"))
        );
    }

    #[test]
    fn binding_new_hashes_cidr_bytes() {
        let v4: Cidr = "203.0.113.0/24".parse().unwrap();
        let b = Binding::new(Some(&v4), Some("ua"));
        assert_eq!(b.ip_hash, Some(Binding::ip_hash_of_bytes(&v4.to_bytes())));
        assert_eq!(b.ip_hash, Some(Binding::ip_hash_of(&v4)));
        assert_eq!(b.ua_hash, Some(Binding::ua_hash_of("ua")));
        // Known bytes: tag 4, address in bytes 1..5, prefix length last.
        assert_eq!(
            Binding::ip_hash_of(&v4),
            Binding::ip_hash_of_bytes(&v4_bytes(203, 0, 113, 0, 24))
        );
        // Different prefixes (or the same address with another length) differ.
        let other: Cidr = "203.0.114.0/24".parse().unwrap();
        let wider: Cidr = "203.0.0.0/16".parse().unwrap();
        let v6: Cidr = "2001:db8:1:2::/64".parse().unwrap();
        let hashes = [v4, other, wider, v6].map(|c| Binding::ip_hash_of(&c));
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                assert_ne!(hashes[i], hashes[j]);
            }
        }
        // End to end: a token bound to one /24 is rejected from another.
        let keys = ring(&[1]);
        let t = issue(&keys, NOW, TTL, 1, Binding::new(Some(&v4), None));
        assert!(verify(&keys, &t, NOW, MAX_AGE, &Binding::new(Some(&v4), None)).is_ok());
        assert_eq!(
            verify(&keys, &t, NOW, MAX_AGE, &Binding::new(Some(&other), None)),
            Err(TokenError::WrongClientIp)
        );
    }

    #[test]
    fn errors_from_the_envelope() {
        let keys = ring(&[1]);
        let t = issue(&keys, NOW, TTL, 1, Binding::default());
        let any = Binding::default();
        assert_eq!(
            verify(&keys, "garbage!", NOW, MAX_AGE, &any),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&ring(&[2]), &t, NOW, MAX_AGE, &any),
            Err(TokenError::UnknownKey)
        );
        let mut r = URL_SAFE_NO_PAD.decode(&t).unwrap();
        r[10] ^= 0x40;
        let tampered = URL_SAFE_NO_PAD.encode(&r);
        assert_eq!(
            verify(&keys, &tampered, NOW, MAX_AGE, &any),
            Err(TokenError::BadSignature)
        );
        // A PoW ticket is not a pass token.
        let ticket = crate::token::seal(&keys, Purpose::PowTicket, &[0u8; 34]);
        assert_eq!(
            verify(&keys, &ticket, NOW, MAX_AGE, &any),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn claims_codec_round_trip() {
        let b = binding(Some(&v4_bytes(10, 1, 2, 0, 24)), None);
        let bytes = encode_claims(NOW, NOW + TTL, 4, &b);
        assert_eq!(bytes.len(), CLAIMS_LEN);
        let c = decode_claims(77, &bytes).unwrap();
        assert_eq!((c.version, c.key_id, c.level, c.binding), (1, 77, 4, b));
        assert_eq!(check_claims(&c, NOW, MAX_AGE, &b), Ok(()));
        assert_eq!(
            check_claims(&c, NOW + TTL, MAX_AGE, &b),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn malformed_claims() {
        let keys = ring(&[1]);
        let seal_claims = |p: &[u8]| crate::token::seal(&keys, Purpose::PassToken, p);
        let good = encode_claims(NOW, NOW + TTL, 1, &Binding::default());
        assert!(decode(&keys, &seal_claims(&good)).is_ok());
        // Wrong length.
        assert_eq!(
            decode(&keys, &seal_claims(&good[..33])),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            decode(&keys, &seal_claims(&[good.as_slice(), &[0]].concat())),
            Err(TokenError::Malformed)
        );
        assert_eq!(decode(&keys, &seal_claims(b"")), Err(TokenError::Malformed));
        // Unknown flag bit.
        let mut p = good;
        p[17] = 0b100;
        assert_eq!(decode(&keys, &seal_claims(&p)), Err(TokenError::Malformed));
        // Hash present without its flag.
        let mut p = good;
        p[20] = 1;
        assert_eq!(decode(&keys, &seal_claims(&p)), Err(TokenError::Malformed));
        let mut p = good;
        p[33] = 1;
        assert_eq!(decode(&keys, &seal_claims(&p)), Err(TokenError::Malformed));
        // Expires before issued.
        let p = encode_claims(NOW, NOW - 1, 1, &Binding::default());
        assert_eq!(decode(&keys, &seal_claims(&p)), Err(TokenError::Malformed));
        // A flagged all-zero hash is a (strange but valid) binding.
        let mut p = good;
        p[17] = FLAG_IP;
        let c = decode(&keys, &seal_claims(&p)).unwrap();
        assert_eq!(c.binding.ip_hash, Some([0u8; 8]));
    }

    #[test]
    fn time_checks() {
        let keys = ring(&[1]);
        let any = Binding::default();
        let t = issue(&keys, NOW, TTL, 1, any);
        // Valid from issue up to one second before expiry.
        assert!(verify(&keys, &t, NOW, MAX_AGE, &any).is_ok());
        assert!(verify(&keys, &t, NOW + TTL - 1, MAX_AGE, &any).is_ok());
        assert_eq!(
            verify(&keys, &t, NOW + TTL, MAX_AGE, &any),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&keys, &t, u64::MAX, MAX_AGE, &any),
            Err(TokenError::Expired)
        );
        // Issued in the future: tolerated within the skew allowance.
        assert!(verify(&keys, &t, NOW - CLOCK_SKEW_S, MAX_AGE, &any).is_ok());
        assert_eq!(
            verify(&keys, &t, NOW - CLOCK_SKEW_S - 1, MAX_AGE, &any),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            verify(&keys, &t, 0, MAX_AGE, &any),
            Err(TokenError::NotYetValid)
        );
        // Too old: the verifier's max age is shorter than the token's TTL.
        assert!(verify(&keys, &t, NOW + 600, 600, &any).is_ok());
        assert_eq!(
            verify(&keys, &t, NOW + 601, 600, &any),
            Err(TokenError::TooOld)
        );
        assert!(verify(&keys, &t, NOW, 0, &any).is_ok());
        // Zero TTL: expired immediately.
        let z = issue(&keys, NOW, 0, 1, any);
        assert_eq!(
            verify(&keys, &z, NOW, MAX_AGE, &any),
            Err(TokenError::Expired)
        );
        // Huge TTL saturates instead of wrapping.
        let h = issue(&keys, NOW, u64::MAX, 1, any);
        assert_eq!(decode(&keys, &h).unwrap().expires_at, u64::MAX);
        assert!(verify(&keys, &h, NOW, MAX_AGE, &any).is_ok());
        // now near u64::MAX must not overflow the skew check.
        let late = issue(&keys, u64::MAX - 5, 1, 1, any);
        assert!(verify(&keys, &late, u64::MAX - 5, MAX_AGE, &any).is_ok());
    }

    #[test]
    fn time_checks_come_before_bindings() {
        let keys = ring(&[1]);
        let bound = binding(Some(&v4_bytes(1, 2, 3, 0, 24)), Some("a"));
        let other = binding(Some(&v4_bytes(9, 9, 9, 0, 24)), Some("b"));
        let t = issue(&keys, NOW, TTL, 1, bound);
        assert_eq!(
            verify(&keys, &t, NOW + TTL, MAX_AGE, &other),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&keys, &t, NOW, MAX_AGE, &other),
            Err(TokenError::WrongClientIp)
        );
    }

    #[test]
    fn binding_checks() {
        let keys = ring(&[1]);
        let ip_a = v4_bytes(192, 0, 2, 0, 24);
        let ip_b = v4_bytes(198, 51, 100, 0, 24);
        let both = binding(Some(&ip_a), Some("Mozilla/5.0"));
        let t = issue(&keys, NOW, TTL, 1, both);

        assert!(verify(&keys, &t, NOW, MAX_AGE, &both).is_ok());
        // Verifier asks for less than the token carries: ignored.
        assert!(verify(&keys, &t, NOW, MAX_AGE, &Binding::default()).is_ok());
        assert!(verify(&keys, &t, NOW, MAX_AGE, &binding(Some(&ip_a), None)).is_ok());
        assert!(verify(&keys, &t, NOW, MAX_AGE, &binding(None, Some("Mozilla/5.0"))).is_ok());
        // Mismatches.
        assert_eq!(
            verify(
                &keys,
                &t,
                NOW,
                MAX_AGE,
                &binding(Some(&ip_b), Some("Mozilla/5.0"))
            ),
            Err(TokenError::WrongClientIp)
        );
        assert_eq!(
            verify(
                &keys,
                &t,
                NOW,
                MAX_AGE,
                &binding(Some(&ip_a), Some("curl/8"))
            ),
            Err(TokenError::WrongUserAgent)
        );
        assert_eq!(
            verify(&keys, &t, NOW, MAX_AGE, &binding(None, Some("curl/8"))),
            Err(TokenError::WrongUserAgent)
        );
        // Token lacks a binding the verifier requires.
        let unbound = issue(&keys, NOW, TTL, 1, Binding::default());
        assert_eq!(
            verify(&keys, &unbound, NOW, MAX_AGE, &binding(Some(&ip_a), None)),
            Err(TokenError::WrongClientIp)
        );
        assert_eq!(
            verify(
                &keys,
                &unbound,
                NOW,
                MAX_AGE,
                &binding(None, Some("Mozilla/5.0"))
            ),
            Err(TokenError::WrongUserAgent)
        );
        let ip_only = issue(&keys, NOW, TTL, 1, binding(Some(&ip_a), None));
        assert_eq!(
            verify(&keys, &ip_only, NOW, MAX_AGE, &both),
            Err(TokenError::WrongUserAgent)
        );
    }

    #[test]
    fn rotation_for_pass_tokens() {
        let old = ring(&[1]);
        let rotated = ring(&[1, 2]);
        let any = Binding::default();
        let t_old = issue(&old, NOW, TTL, 2, any);
        let c = verify(&rotated, &t_old, NOW, MAX_AGE, &any).unwrap();
        assert_eq!(c.key_id, 1);
        let t_new = issue(&rotated, NOW, TTL, 2, any);
        assert_eq!(
            verify(&rotated, &t_new, NOW, MAX_AGE, &any).unwrap().key_id,
            2
        );
    }

    #[test]
    fn garbage_never_panics_or_verifies() {
        let keys = ring(&[0, 1]);
        let any = Binding::default();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..3000 {
            let len = if i % 3 == 0 {
                PASS_TOKEN_BYTES
            } else {
                (next() % 120) as usize
            };
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if bytes.len() >= 3 && i % 2 == 0 {
                bytes[0] = FORMAT_VERSION;
                bytes[1] = Purpose::PassToken as u8;
                bytes[2] = ((i / 2) % 2) as u8;
            }
            let enc = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(decode(&keys, &enc).is_err());
            assert!(verify(&keys, &enc, NOW, MAX_AGE, &any).is_err());
            let text: String = (0..(next() % 150))
                .map(|_| char::from(next() as u8))
                .collect();
            assert!(verify(&keys, &text, NOW, MAX_AGE, &any).is_err());
        }
    }
}
