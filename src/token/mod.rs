//! HMAC-SHA256 sealed values: pass tokens, and (in the filter) challenge tickets.
//!
//! # Sealed values
//!
//! [`seal`] turns a payload into opaque base64url text (URL-safe alphabet,
//! no padding) of these bytes:
//!
//! ```text
//! [version = 1][purpose][key id][payload ...][HMAC-SHA256 tag, 32 bytes]
//!      u8         u8       u8     n bytes      over every byte before it
//! ```
//!
//! [`open`] checks, in order: the text is canonical base64url no longer than
//! [`MAX_SEALED_LEN`] characters and decodes to at least
//! [`SEALED_OVERHEAD`] bytes, the version, the purpose byte, that the key id
//! is in the ring ([`TokenError::UnknownKey`]), and finally the full 32-byte
//! tag in constant time ([`TokenError::BadSignature`]). Structural failures
//! are [`TokenError::Malformed`]. A value sealed for one [`Purpose`] fails as
//! `Malformed` when opened for another; the purpose byte is also covered by
//! the MAC, so it cannot be rewritten. Opening never panics: its input is a
//! cookie or header from the internet.
//!
//! # Pass tokens
//!
//! A pass token ([`issue`], [`decode`], [`verify`]) is a sealed
//! [`Purpose::PassToken`] value whose payload is 34 bytes of binary claims:
//!
//! ```text
//! issued_at u64 BE | expires_at u64 BE | level u8 | flags u8 | ip_hash [8] | ua_hash [8]
//! flags: bit 0 = bound to a client IP prefix, bit 1 = bound to a user agent
//! ```
//!
//! An unbound hash is all zeros. The whole token is [`PASS_TOKEN_BYTES`]
//! bytes, [`PASS_TOKEN_LEN`] characters. The claims codec
//! ([`encode_claims`], [`decode_claims`], [`check_claims`]) is public so
//! other sealed values, such as challenge tickets, can embed the same claims
//! under their own [`Purpose`].
//!
//! # Why HMAC and truncated hashes
//!
//! The token is minted and checked by the same deployment, so a symmetric
//! MAC is enough: no public-key signatures, no per-token server state. The
//! bindings are 8-byte truncated SHA-256 hashes (with domain separation
//! `palisade ip\0` / `palisade ua\0`) of the client's network prefix and
//! user agent, so the cookie stays small (about 90 characters) and opaque:
//! it carries no readable address or user agent, and a fixed-size field
//! keeps the format simple. Eight bytes is plenty for a binding check: the
//! MAC already prevents forging, the hash only has to tell one client from
//! another. The tag itself is the full 32 bytes.
//!
//! # Key rotation
//!
//! A [`Keyring`] holds keys in rotation order: the last key signs, every key
//! verifies, and each sealed value names its key by a one-byte id. To
//! rotate, append a new key (tokens from the old key still verify), and once
//! the longest token lifetime has passed, drop the old key. Keys come from
//! configuration or the environment as `ID:SECRET` specs
//! ([`Key::parse`], [`Keyring::parse_list`]). Secrets are never printed:
//! `Debug` for [`Key`] and [`Keyring`] shows only ids, and no error message
//! contains secret material.

mod keys;
mod pass;
mod seal;

pub use keys::{Key, Keyring, KeyringError, MIN_SECRET_LEN};
pub use pass::{
    check_claims, decode, decode_claims, encode_claims, issue, verify, Binding, Claims, CLAIMS_LEN,
    CLOCK_SKEW_S, PASS_TOKEN_BYTES, PASS_TOKEN_LEN,
};
pub use seal::{open, seal, FORMAT_VERSION, MAX_SEALED_LEN, SEALED_OVERHEAD, TAG_LEN};

/// What a sealed value is for; a value sealed for one purpose never opens for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PassToken = 1,
    PowTicket = 2,
    /// A companion challenge's server-side context (`challenge::context`).
    ChallengeContext = 3,
}

/// Why a sealed value or pass token was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed")]
    Malformed,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("issued too long ago")]
    TooOld,
    #[error("issued in the future")]
    NotYetValid,
    #[error("bound to another client address")]
    WrongClientIp,
    #[error("bound to another user agent")]
    WrongUserAgent,
}

impl TokenError {
    /// Every variant, e.g. to pre-register metric labels.
    pub const ALL: [TokenError; 8] = [
        TokenError::Malformed,
        TokenError::UnknownKey,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::TooOld,
        TokenError::NotYetValid,
        TokenError::WrongClientIp,
        TokenError::WrongUserAgent,
    ];

    /// Short snake_case label for metrics and JSON (`bad_signature`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::TooOld => "too_old",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongClientIp => "wrong_client_ip",
            TokenError::WrongUserAgent => "wrong_user_agent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_snake_case() {
        let labels: Vec<&str> = TokenError::ALL.iter().map(|e| e.label()).collect();
        for l in &labels {
            assert!(!l.is_empty());
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
        }
        let mut dedup = labels.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), labels.len());
        assert_eq!(TokenError::BadSignature.label(), "bad_signature");
        assert_eq!(TokenError::WrongUserAgent.label(), "wrong_user_agent");
    }
}
