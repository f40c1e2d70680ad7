//! Forgery: valid pass tokens and proof-of-work tickets tampered with in
//! over a million random ways (bit flips, truncation, extension,
//! re-encoding, swapped fields, another key's id, another purpose,
//! re-signing with a wrong key, text edits). None may be accepted. Also the
//! clock-skew edges in both directions and a stateless ticket's replay
//! window (docs/configuration.md, "Pass tokens" and "Tickets").

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use palisade::challenge::{self, ChallengeError};
use palisade::token::{
    issue, open, seal, verify, Binding, Key, Keyring, Purpose, TokenError, CLOCK_SKEW_S,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const NOW: u64 = 1_800_000_000;
const TTL: u64 = 3600;
const MAX_AGE: u64 = 12 * 3600;
/// Tampered values tried per kind of sealed value (pass token, ticket).
const ATTEMPTS: usize = 500_000;

fn ring() -> Keyring {
    Keyring::new(vec![
        Key {
            id: 1,
            secret: b"forgery-test-old-key-0123456789".to_vec(),
        },
        Key {
            id: 2,
            secret: b"forgery-test-new-key-0123456789".to_vec(),
        },
    ])
    .unwrap()
}

/// Keys an attacker might hold: the right ids with the wrong secrets.
fn wrong_ring(id: u8) -> Keyring {
    Keyring::new(vec![Key {
        id,
        secret: b"attacker-key-not-the-real-one!!".to_vec(),
    }])
    .unwrap()
}

fn binding() -> Binding {
    Binding {
        ip_hash: Some([7; 8]),
        ua_hash: Some(Binding::ua_hash_of("Mozilla/5.0")),
    }
}

/// One tampered copy of `sealed` (base64url text of the envelope), never
/// equal to it.
fn tamper(rng: &mut SmallRng, sealed: &str, purpose: Purpose) -> String {
    let raw = URL_SAFE_NO_PAD.decode(sealed).unwrap();
    let (header, rest) = raw.split_at(3);
    let (payload, _tag) = rest.split_at(rest.len() - 32);
    let text = loop {
        let candidate = match rng.random_range(0..10) {
            // A flipped bit anywhere.
            0 => {
                let mut r = raw.clone();
                let i = rng.random_range(0..r.len());
                r[i] ^= 1 << rng.random_range(0..8);
                URL_SAFE_NO_PAD.encode(r)
            }
            // Truncated.
            1 => URL_SAFE_NO_PAD.encode(&raw[..rng.random_range(0..raw.len())]),
            // Extended.
            2 => {
                let mut r = raw.clone();
                for _ in 0..rng.random_range(1..40) {
                    r.push(rng.random());
                }
                URL_SAFE_NO_PAD.encode(r)
            }
            // Re-encoded: padded, or the standard alphabet.
            3 => {
                if rng.random_bool(0.5) {
                    URL_SAFE.encode(&raw)
                } else {
                    STANDARD.encode(&raw)
                }
            }
            // Two fields swapped (byte ranges of the payload exchanged).
            4 => {
                let mut r = raw.clone();
                let n = payload.len();
                let len = rng.random_range(1..=n / 2);
                let a = rng.random_range(0..=n - 2 * len);
                let b = rng.random_range(a + len..=n - len);
                for k in 0..len {
                    r.swap(3 + a + k, 3 + b + k);
                }
                URL_SAFE_NO_PAD.encode(r)
            }
            // The other key's id, or one no key has.
            5 => {
                let mut r = raw.clone();
                r[2] = if rng.random_bool(0.5) {
                    3 - r[2]
                } else {
                    rng.random()
                };
                URL_SAFE_NO_PAD.encode(r)
            }
            // Another purpose (a ticket as a token, and so on).
            6 => {
                let mut r = raw.clone();
                r[1] = rng.random_range(0..6);
                URL_SAFE_NO_PAD.encode(r)
            }
            // The payload, changed or not, re-signed with a wrong key of
            // the same id.
            7 => {
                let mut p = payload.to_vec();
                if !p.is_empty() && rng.random_bool(0.5) {
                    let i = rng.random_range(0..p.len());
                    p[i] = rng.random();
                }
                seal(&wrong_ring(header[2]), purpose, &p)
            }
            // A character of the text replaced, inserted or removed.
            8 => {
                let mut t: Vec<u8> = sealed.as_bytes().to_vec();
                let i = rng.random_range(0..t.len());
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.";
                let c = ALPHABET[rng.random_range(0..ALPHABET.len())];
                match rng.random_range(0..3) {
                    0 => t[i] = c,
                    1 => t.insert(i, c),
                    _ => {
                        t.remove(i);
                    }
                }
                String::from_utf8(t).unwrap()
            }
            // A tag of random bytes.
            _ => {
                let mut r = raw[..raw.len() - 32].to_vec();
                for _ in 0..32 {
                    r.push(rng.random());
                }
                URL_SAFE_NO_PAD.encode(r)
            }
        };
        if candidate != sealed {
            break candidate;
        }
    };
    text
}

#[test]
fn a_million_tampered_tokens_and_tickets_are_all_refused() {
    let keys = ring();
    let mut rng = SmallRng::seed_from_u64(0x7a3e_11f0);
    let token = issue(&keys, NOW, TTL, 3, binding());
    assert!(verify(&keys, &token, NOW, MAX_AGE, &binding()).is_ok());
    let ticket = challenge::issue_ticket(&keys, NOW, 300, 2, binding(), "/login");
    assert!(open(&keys, Purpose::PowTicket, &ticket).is_ok());

    let mut tried = 0;
    for _ in 0..ATTEMPTS {
        let forged = tamper(&mut rng, &token, Purpose::PassToken);
        let result = verify(&keys, &forged, NOW, MAX_AGE, &binding());
        assert!(result.is_err(), "accepted a forged token: {forged}");
        tried += 1;

        let forged = tamper(&mut rng, &ticket, Purpose::PowTicket);
        assert!(
            open(&keys, Purpose::PowTicket, &forged).is_err(),
            "accepted a forged ticket: {forged}"
        );
        // Through the verify path too, whatever the nonce.
        let verdict = challenge::verify_solution(&keys, &forged, "1", NOW, &binding());
        assert!(
            matches!(verdict, Err(ChallengeError::Ticket(_))),
            "{verdict:?}"
        );
        tried += 1;
    }
    assert!(tried >= 1_000_000);
    println!("tampered values tried, none accepted: {tried}");
}

#[test]
fn clock_skew_is_allowed_up_to_its_bound_in_both_directions() {
    let keys = ring();
    let token = issue(&keys, NOW, TTL, 3, binding());
    // A verifier whose clock is behind the issuer's: up to the allowed skew.
    let behind = |s: u64| verify(&keys, &token, NOW - s, MAX_AGE, &binding());
    assert!(behind(CLOCK_SKEW_S).is_ok());
    assert_eq!(
        behind(CLOCK_SKEW_S + 1).unwrap_err(),
        TokenError::NotYetValid
    );
    // Ahead: the token expires at issue + ttl, no grace.
    let ahead = |s: u64| verify(&keys, &token, NOW + s, MAX_AGE, &binding());
    assert!(ahead(TTL - 1).is_ok());
    assert_eq!(ahead(TTL).unwrap_err(), TokenError::Expired);
}

#[test]
fn a_ticket_replays_within_its_window_for_its_own_client_only() {
    // Tickets are stateless: a solved one verifies again until it expires
    // (the work was done; the pass token it earns is the same client's),
    // never for another client, never after its ttl.
    let keys = ring();
    let ticket = challenge::issue_ticket(&keys, NOW, 300, 1, binding(), "/login");
    let nonce = challenge::solve(&ticket, challenge::difficulty_bits(1));
    for at in [NOW, NOW + 1, NOW + 299] {
        assert!(challenge::verify_solution(&keys, &ticket, &nonce, at, &binding()).is_ok());
    }
    assert!(challenge::verify_solution(&keys, &ticket, &nonce, NOW + 300, &binding()).is_err());
    let other = Binding {
        ip_hash: Some([8; 8]),
        ..binding()
    };
    assert!(challenge::verify_solution(&keys, &ticket, &nonce, NOW, &other).is_err());
}
