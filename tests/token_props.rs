//! Property tests for sealed values and pass tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use palisade::token::{
    decode, issue, open, seal, verify, Binding, Key, Keyring, Purpose, TokenError, CLOCK_SKEW_S,
    PASS_TOKEN_BYTES, PASS_TOKEN_LEN,
};
use proptest::prelude::*;

fn ring(id: u8, secret: Vec<u8>) -> Keyring {
    Keyring::new(vec![Key { id, secret }]).unwrap()
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 16..64)
}

/// Prefix bytes in the `Cidr::to_bytes` layout: family tag, 16 address bytes, length.
fn prefix_bytes() -> impl Strategy<Value = [u8; 18]> {
    (
        prop_oneof![Just(4u8), Just(6u8)],
        any::<[u8; 16]>(),
        0u8..=128,
    )
        .prop_map(|(family, addr, len)| {
            let mut out = [0u8; 18];
            out[0] = family;
            out[1..17].copy_from_slice(&addr);
            out[17] = len;
            out
        })
}

fn binding() -> impl Strategy<Value = Binding> {
    (
        proptest::option::of(prefix_bytes()),
        proptest::option::of(".{0,40}"),
    )
        .prop_map(|(ip, ua)| Binding {
            ip_hash: ip.map(|b| Binding::ip_hash_of_bytes(&b)),
            ua_hash: ua.map(|u| Binding::ua_hash_of(&u)),
        })
}

/// A time far enough from both ends of u64 that arithmetic in tests never saturates.
fn time() -> impl Strategy<Value = u64> {
    1_000_000u64..4_000_000_000u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn issued_tokens_verify(
        secret in secret(), id in any::<u8>(), now in time(), ttl in 1u64..1_000_000,
        level in any::<u8>(), b in binding(), elapsed in 0u64..1_000_000,
    ) {
        let keys = ring(id, secret);
        let t = issue(&keys, now, ttl, level, b);
        prop_assert_eq!(t.len(), PASS_TOKEN_LEN);
        let at = now + elapsed % ttl;
        let c = verify(&keys, &t, at, ttl, &b).unwrap();
        prop_assert_eq!((c.issued_at, c.expires_at, c.level, c.binding, c.key_id),
                        (now, now + ttl, level, b, id));
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        secret in secret(), id in any::<u8>(), now in time(), ttl in 1u64..1_000_000,
        level in any::<u8>(), b in binding(), bit in 0..PASS_TOKEN_BYTES * 8,
    ) {
        let keys = ring(id, secret);
        let t = issue(&keys, now, ttl, level, b);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        prop_assert_eq!(raw.len(), PASS_TOKEN_BYTES);
        raw[bit / 8] ^= 1 << (bit % 8);
        let flipped = URL_SAFE_NO_PAD.encode(&raw);
        prop_assert!(decode(&keys, &flipped).is_err());
        prop_assert!(verify(&keys, &flipped, now, ttl, &b).is_err());
        prop_assert!(verify(&keys, &flipped, now, ttl, &Binding::default()).is_err());
        prop_assert!(open(&keys, Purpose::PassToken, &flipped).is_err());
    }

    #[test]
    fn any_single_bit_flip_in_a_sealed_value_is_rejected(
        secret in secret(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        bit_seed in any::<usize>(),
    ) {
        let keys = ring(1, secret);
        let s = seal(&keys, Purpose::PowTicket, &payload);
        let mut raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
        let bit = bit_seed % (raw.len() * 8);
        raw[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(open(&keys, Purpose::PowTicket, &URL_SAFE_NO_PAD.encode(&raw)).is_err());
    }

    #[test]
    fn a_wrong_key_rejects(
        secret_a in secret(), secret_b in secret(), id_a in any::<u8>(), id_b in any::<u8>(),
        now in time(), b in binding(),
    ) {
        prop_assume!(secret_a != secret_b);
        let a = ring(id_a, secret_a);
        let other = ring(id_b, secret_b);
        let t = issue(&a, now, 3600, 1, b);
        let want = if id_a == id_b { TokenError::BadSignature } else { TokenError::UnknownKey };
        prop_assert_eq!(verify(&other, &t, now, 3600, &b), Err(want));
        prop_assert_eq!(open(&other, Purpose::PassToken, &t), Err(want));
    }

    #[test]
    fn an_expired_token_rejects(
        secret in secret(), now in time(), ttl in 0u64..1_000_000, late in 0u64..1_000_000,
        max_age in any::<u64>(), b in binding(),
    ) {
        let keys = ring(3, secret);
        let t = issue(&keys, now, ttl, 1, b);
        prop_assert_eq!(verify(&keys, &t, now + ttl + late, max_age, &b), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_from_the_future_rejects(
        secret in secret(), now in time(), early in (CLOCK_SKEW_S + 1)..1_000_000,
        b in binding(),
    ) {
        let keys = ring(3, secret);
        let t = issue(&keys, now, 3600, 1, b);
        prop_assert_eq!(verify(&keys, &t, now - early, u64::MAX, &b), Err(TokenError::NotYetValid));
    }

    #[test]
    fn another_clients_prefix_rejects(
        secret in secret(), now in time(), ip in prefix_bytes(), other_ip in prefix_bytes(),
        ua in proptest::option::of(".{0,40}"),
    ) {
        prop_assume!(ip != other_ip);
        let keys = ring(9, secret);
        let ua_hash = ua.as_deref().map(Binding::ua_hash_of);
        let mine = Binding { ip_hash: Some(Binding::ip_hash_of_bytes(&ip)), ua_hash };
        let theirs = Binding { ip_hash: Some(Binding::ip_hash_of_bytes(&other_ip)), ua_hash };
        let t = issue(&keys, now, 3600, 1, mine);
        prop_assert_eq!(verify(&keys, &t, now, 3600, &theirs), Err(TokenError::WrongClientIp));
    }

    #[test]
    fn another_clients_user_agent_rejects(
        secret in secret(), now in time(), ip in proptest::option::of(prefix_bytes()),
        ua in ".{0,60}", other_ua in ".{0,60}",
    ) {
        prop_assume!(ua != other_ua);
        let keys = ring(9, secret);
        let ip_hash = ip.map(|b| Binding::ip_hash_of_bytes(&b));
        let mine = Binding { ip_hash, ua_hash: Some(Binding::ua_hash_of(&ua)) };
        let theirs = Binding { ip_hash, ua_hash: Some(Binding::ua_hash_of(&other_ua)) };
        let t = issue(&keys, now, 3600, 1, mine);
        prop_assert_eq!(verify(&keys, &t, now, 3600, &theirs), Err(TokenError::WrongUserAgent));
    }

    #[test]
    fn random_strings_never_panic_or_verify(s in ".{0,300}", now in any::<u64>()) {
        let keys = ring(1, b"property test secret".to_vec());
        prop_assert!(verify(&keys, &s, now, u64::MAX, &Binding::default()).is_err());
        prop_assert!(decode(&keys, &s).is_err());
        prop_assert!(open(&keys, Purpose::PowTicket, &s).is_err());
    }

    #[test]
    fn random_base64url_never_panics_or_verifies(
        s in "[A-Za-z0-9_-]{0,200}", len92 in "[A-Za-z0-9_-]{92}", now in any::<u64>(),
    ) {
        let keys = ring(1, b"property test secret".to_vec());
        for text in [&s, &len92] {
            prop_assert!(verify(&keys, text, now, u64::MAX, &Binding::default()).is_err());
            prop_assert!(open(&keys, Purpose::PassToken, text).is_err());
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_verify(
        key_id in prop_oneof![Just(0u8), Just(1u8)],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        // Passes the version/purpose/key checks, so the MAC is what rejects.
        let keys = Keyring::new(vec![
            Key { id: 0, secret: b"property test secret 0".to_vec() },
            Key { id: 1, secret: b"property test secret 1".to_vec() },
        ]).unwrap();
        let mut raw = vec![1u8, Purpose::PassToken as u8, key_id];
        raw.extend_from_slice(&body);
        let text = URL_SAFE_NO_PAD.encode(&raw);
        prop_assert!(verify(&keys, &text, 0, u64::MAX, &Binding::default()).is_err());
    }
}
