//! The sealed-value envelope: `[version][purpose][key id][payload][tag]`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;

use super::{Keyring, Purpose, TokenError};

/// The envelope format version written by [`seal`] and required by [`open`].
pub const FORMAT_VERSION: u8 = 1;

/// Length of the HMAC-SHA256 tag, in bytes (never truncated).
pub const TAG_LEN: usize = 32;

/// Bytes a sealed value adds around its payload: version, purpose, key id, tag.
pub const SEALED_OVERHEAD: usize = 3 + TAG_LEN;

/// The longest text [`open`] will look at, in characters (about 3 KiB of
/// payload). Longer input is rejected as malformed before decoding, so a
/// huge cookie costs nothing. [`seal`] does not enforce it: keep payloads small.
pub const MAX_SEALED_LEN: usize = 4096;

/// Computes the tag over `header || payload` with the given keyed state.
fn mac_for(
    keys_mac: &super::keys::HmacSha256,
    header: &[u8],
    payload: &[u8],
) -> super::keys::HmacSha256 {
    let mut mac = keys_mac.clone();
    mac.update(header);
    mac.update(payload);
    mac
}

/// Seals `payload` for `purpose` with the newest key: base64url text.
pub fn seal(keys: &Keyring, purpose: Purpose, payload: &[u8]) -> String {
    let signer = keys.signer();
    let header = [FORMAT_VERSION, purpose as u8, signer.id];
    let tag = mac_for(&signer.mac, &header, payload)
        .finalize()
        .into_bytes();
    let mut raw = Vec::with_capacity(SEALED_OVERHEAD + payload.len());
    raw.extend_from_slice(&header);
    raw.extend_from_slice(payload);
    raw.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Checks the MAC (constant time) and returns the payload.
pub fn open(keys: &Keyring, purpose: Purpose, sealed: &str) -> Result<Vec<u8>, TokenError> {
    open_with_key_id(keys, purpose, sealed).map(|(_, payload)| payload)
}

/// Like [`open`], also returning the id of the key that sealed the value.
pub(crate) fn open_with_key_id(
    keys: &Keyring,
    purpose: Purpose,
    sealed: &str,
) -> Result<(u8, Vec<u8>), TokenError> {
    if sealed.len() > MAX_SEALED_LEN {
        return Err(TokenError::Malformed);
    }
    // Strict decoding: url-safe alphabet, no padding, canonical trailing bits.
    let mut raw = URL_SAFE_NO_PAD
        .decode(sealed.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if raw.len() < SEALED_OVERHEAD {
        return Err(TokenError::Malformed);
    }
    let (version, purpose_byte, key_id) = (raw[0], raw[1], raw[2]);
    if version != FORMAT_VERSION || purpose_byte != purpose as u8 {
        return Err(TokenError::Malformed);
    }
    let entry = keys.find(key_id).ok_or(TokenError::UnknownKey)?;
    let body_len = raw.len() - TAG_LEN;
    let (body, tag) = raw.split_at(body_len);
    let (header, payload) = body.split_at(3);
    mac_for(&entry.mac, header, payload)
        .verify_slice(tag)
        .map_err(|_| TokenError::BadSignature)?;
    raw.truncate(body_len);
    raw.drain(..3);
    Ok((key_id, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Key;

    fn ring(ids: &[u8]) -> Keyring {
        Keyring::new(
            ids.iter()
                .map(|&id| Key {
                    id,
                    secret: format!("secret number {id:03} for tests").into_bytes(),
                })
                .collect(),
        )
        .unwrap()
    }

    fn raw(sealed: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(sealed).unwrap()
    }

    #[test]
    fn round_trip() {
        let keys = ring(&[1]);
        for payload in [&b""[..], b"x", b"hello world", &[0u8; 300][..]] {
            for purpose in [Purpose::PassToken, Purpose::PowTicket] {
                let s = seal(&keys, purpose, payload);
                assert!(s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                assert_eq!(open(&keys, purpose, &s).unwrap(), payload);
            }
        }
    }

    #[test]
    fn wire_layout() {
        let keys = ring(&[4, 42]);
        let s = seal(&keys, Purpose::PowTicket, b"abc");
        let r = raw(&s);
        assert_eq!(r.len(), SEALED_OVERHEAD + 3);
        assert_eq!(
            &r[..6],
            &[
                FORMAT_VERSION,
                Purpose::PowTicket as u8,
                42,
                b'a',
                b'b',
                b'c'
            ]
        );
        // The tag is HMAC-SHA256 over everything before it.
        let mut mac =
            <super::super::keys::HmacSha256 as Mac>::new_from_slice(b"secret number 042 for tests")
                .unwrap();
        mac.update(&r[..6]);
        assert_eq!(&r[6..], &mac.finalize().into_bytes()[..]);
        assert_eq!(s.len(), (r.len() * 4).div_ceil(3));
    }

    #[test]
    fn sealing_is_deterministic() {
        let keys = ring(&[1]);
        assert_eq!(
            seal(&keys, Purpose::PassToken, b"p"),
            seal(&keys, Purpose::PassToken, b"p")
        );
    }

    #[test]
    fn purpose_separation() {
        let keys = ring(&[1]);
        let pass = seal(&keys, Purpose::PassToken, b"payload");
        let pow = seal(&keys, Purpose::PowTicket, b"payload");
        assert_ne!(pass, pow);
        assert_eq!(
            open(&keys, Purpose::PowTicket, &pass),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            open(&keys, Purpose::PassToken, &pow),
            Err(TokenError::Malformed)
        );

        // Rewriting the purpose byte does not help: the purpose is MACed.
        let mut r = raw(&pass);
        r[1] = Purpose::PowTicket as u8;
        let forged = URL_SAFE_NO_PAD.encode(&r);
        assert_eq!(
            open(&keys, Purpose::PowTicket, &forged),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn unknown_key() {
        let old = ring(&[1]);
        let other = ring(&[2]);
        let s = seal(&old, Purpose::PassToken, b"x");
        assert_eq!(
            open(&other, Purpose::PassToken, &s),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn same_id_different_secret_is_bad_signature() {
        let a = ring(&[1]);
        let b = Keyring::new(vec![Key {
            id: 1,
            secret: b"a completely different secret".to_vec(),
        }])
        .unwrap();
        let s = seal(&a, Purpose::PassToken, b"x");
        assert_eq!(
            open(&b, Purpose::PassToken, &s),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rotation() {
        let old = ring(&[1]);
        let rotated = ring(&[1, 2]);
        assert_eq!(rotated.signing_key_id(), 2);
        let from_old = seal(&old, Purpose::PassToken, b"old");
        assert_eq!(
            open(&rotated, Purpose::PassToken, &from_old).unwrap(),
            b"old"
        );
        let from_new = seal(&rotated, Purpose::PassToken, b"new");
        assert_eq!(raw(&from_new)[2], 2);
        assert_eq!(
            open(&rotated, Purpose::PassToken, &from_new).unwrap(),
            b"new"
        );
        // The old-only ring does not know the new key.
        assert_eq!(
            open(&old, Purpose::PassToken, &from_new),
            Err(TokenError::UnknownKey)
        );
        // After retiring the old key, its tokens stop verifying.
        let retired = ring(&[2]);
        assert_eq!(
            open(&retired, Purpose::PassToken, &from_old),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn structural_errors_are_malformed() {
        let keys = ring(&[1]);
        let good = seal(&keys, Purpose::PassToken, b"payload");
        let mut bad_version = raw(&good);
        bad_version[0] = 2;
        let short = &raw(&good)[..SEALED_OVERHEAD - 1];
        let cases = [
            String::new(),
            "!!!!".to_string(),
            format!("{good}="),
            format!("{good}=="),
            good.replace('-', "+").replace('_', "/") + "+",
            format!(" {good}"),
            format!("{good}A"),
            URL_SAFE_NO_PAD.encode(short),
            URL_SAFE_NO_PAD.encode(&bad_version),
            "A".repeat(MAX_SEALED_LEN + 4),
        ];
        for c in &cases {
            assert_eq!(
                open(&keys, Purpose::PassToken, c),
                Err(TokenError::Malformed),
                "{c:?}"
            );
        }
    }

    #[test]
    fn truncated_or_extended_tag_is_rejected() {
        let keys = ring(&[1]);
        let good = seal(&keys, Purpose::PassToken, b"payload");
        let r = raw(&good);
        let cut = URL_SAFE_NO_PAD.encode(&r[..r.len() - 1]);
        assert_eq!(
            open(&keys, Purpose::PassToken, &cut),
            Err(TokenError::BadSignature)
        );
        let mut longer = r.clone();
        longer.push(0);
        let longer = URL_SAFE_NO_PAD.encode(&longer);
        assert_eq!(
            open(&keys, Purpose::PassToken, &longer),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let keys = ring(&[0, 1, 255]);
        // Deterministic pseudo-random garbage: raw strings and valid base64url.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\0\xff";
        for i in 0..5000 {
            let len = (next() % 200) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            for purpose in [Purpose::PassToken, Purpose::PowTicket] {
                assert!(open(&keys, purpose, &text).is_err());
            }
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && bytes.len() >= 3 {
                // Get past the header checks to reach the MAC.
                bytes[0] = FORMAT_VERSION;
                bytes[1] = Purpose::PassToken as u8;
                bytes[2] = [0, 1, 255][i % 3];
            }
            let enc = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(open(&keys, Purpose::PassToken, &enc).is_err());
        }
        // Multi-byte UTF-8 must not trip any byte slicing.
        for s in [
            "é",
            "日本語トークン",
            "\u{1F600}\u{1F600}\u{1F600}",
            "AAA\u{0301}",
        ] {
            assert_eq!(
                open(&keys, Purpose::PassToken, s),
                Err(TokenError::Malformed)
            );
        }
    }
}
