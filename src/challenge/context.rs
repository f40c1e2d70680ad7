//! A companion challenge's server-side context: what was asked, the answer,
//! whom it was issued to and where to send them, kept in the [`store`]
//! under an unguessable id.
//!
//! The context is encoded canonically, fixed fields first and every
//! variable field prefixed with its length, then sealed with the token
//! keys ([`Purpose::ChallengeContext`]). A row copied to another id, or
//! written into a shared Redis by someone without the keys, does not open.
//!
//! Layout of the sealed payload (all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 34 | claims, as in pass tokens: issued, expires, the kind and difficulty ([`Passed::level_byte`]), client binding |
//! | 1 | language ([`Lang`] code index: en 0, de 1, fr 2, es 3) |
//! | 8 | render seed |
//! | 2 + n | id |
//! | 2 + n | layout: what is shown (text: the characters; grid and one_click: the tiles as `category.picture,...`; audio: the digits) |
//! | 2 + n | answer (text and audio: the characters; grid and one_click: sorted tile indexes `0,4,7`) |
//! | 2 + n | return path |
//!
//! [`store`]: super::store

use super::{Lang, Passed};
use crate::token::{self, Binding, Keyring, Purpose, TokenError, CLAIMS_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Random bytes in an id: 128 bits, so ids cannot be guessed or enumerated.
pub const ID_BYTES: usize = 16;

/// A new random id: 22 base64url characters.
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `text` has the shape of an id (checked before any store lookup,
/// so garbage never reaches SQL or Redis).
pub fn is_id(text: &str) -> bool {
    text.len() == (ID_BYTES * 4).div_ceil(3)
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A challenge as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub id: String,
    pub passed: Passed,
    pub lang: Lang,
    pub seed: u64,
    pub issued_at: u64,
    pub expires_at: u64,
    pub binding: Binding,
    pub layout: String,
    pub answer: String,
    pub return_path: String,
}

/// Why a stored context was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the stored context is not sealed with our keys: {0}")]
    Seal(TokenError),
    #[error("the stored context is malformed")]
    Malformed,
    #[error("the stored context belongs to another id")]
    OtherId,
}

impl Context {
    /// The sealed, canonical encoding the store keeps.
    pub fn seal(&self, keys: &Keyring) -> String {
        let claims = token::encode_claims(
            self.issued_at,
            self.expires_at,
            self.passed.level_byte(),
            &self.binding,
        );
        let mut out = Vec::with_capacity(128 + self.layout.len() + self.return_path.len());
        out.extend_from_slice(&claims);
        out.push(lang_index(self.lang));
        out.extend_from_slice(&self.seed.to_be_bytes());
        for field in [&self.id, &self.layout, &self.answer, &self.return_path] {
            // Every field is bounded far below 64 KiB where it is made
            // (ids, layouts, answers) or checked (`safe_return_path`).
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
        }
        token::seal(keys, Purpose::ChallengeContext, &out)
    }

    /// Opens what the store returned for `id`.
    pub fn open(keys: &Keyring, id: &str, sealed: &[u8]) -> Result<Context, ContextError> {
        let text = std::str::from_utf8(sealed).map_err(|_| ContextError::Malformed)?;
        let payload =
            token::open(keys, Purpose::ChallengeContext, text).map_err(ContextError::Seal)?;
        let (claims, rest) = payload
            .split_at_checked(CLAIMS_LEN)
            .ok_or(ContextError::Malformed)?;
        let claims = token::decode_claims(0, claims).map_err(|_| ContextError::Malformed)?;
        let passed = Passed::from_level_byte(claims.level).ok_or(ContextError::Malformed)?;
        let mut reader = Reader(rest);
        let lang = *Lang::ALL
            .get(usize::from(reader.byte()?))
            .ok_or(ContextError::Malformed)?;
        let seed = u64::from_be_bytes(
            reader
                .take(8)?
                .try_into()
                .map_err(|_| ContextError::Malformed)?,
        );
        let stored_id = reader.field()?;
        let layout = reader.field()?;
        let answer = reader.field()?;
        let return_path = reader.field()?;
        if !reader.0.is_empty() {
            return Err(ContextError::Malformed);
        }
        if stored_id != id {
            return Err(ContextError::OtherId);
        }
        Ok(Context {
            id: stored_id,
            passed,
            lang,
            seed,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
            binding: claims.binding,
            layout,
            answer,
            return_path,
        })
    }
}

fn lang_index(lang: Lang) -> u8 {
    Lang::ALL
        .iter()
        .position(|&l| l == lang)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

/// Reads the canonical encoding front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ContextError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(ContextError::Malformed)?;
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, ContextError> {
        Ok(self.take(1)?[0])
    }

    fn field(&mut self) -> Result<String, ContextError> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| ContextError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChallengeKind;
    use crate::token::Key;

    fn keys(secret: &[u8]) -> Keyring {
        Keyring::new(vec![Key {
            id: 1,
            secret: secret.to_vec(),
        }])
        .unwrap()
    }

    fn context() -> Context {
        Context {
            id: new_id().unwrap(),
            passed: Passed::new(ChallengeKind::Grid, 4),
            lang: Lang::Fr,
            seed: 0x0123_4567_89ab_cdef,
            issued_at: 1000,
            expires_at: 1180,
            binding: Binding::new(None, Some("ua")),
            layout: "3.1,7.0,2.2".into(),
            answer: "0,2".into(),
            return_path: "/a?b=c".into(),
        }
    }

    #[test]
    fn a_context_round_trips_under_its_own_id_only() {
        let k = keys(b"context test secret 0123456789ab");
        let c = context();
        let sealed = c.seal(&k);
        assert_eq!(Context::open(&k, &c.id, sealed.as_bytes()), Ok(c.clone()));
        let other = new_id().unwrap();
        assert_eq!(
            Context::open(&k, &other, sealed.as_bytes()),
            Err(ContextError::OtherId)
        );
        let stranger = keys(b"another secret 0123456789abcdefg");
        assert!(matches!(
            Context::open(&stranger, &c.id, sealed.as_bytes()),
            Err(ContextError::Seal(_))
        ));
        assert_eq!(
            Context::open(&k, &c.id, b"\xff\xfe"),
            Err(ContextError::Malformed)
        );
    }

    #[test]
    fn fields_cannot_be_spliced() {
        // Moving a byte between the layout and the answer changes the
        // length prefixes, so the same concatenation never opens as a
        // different split.
        let k = keys(b"context test secret 0123456789ab");
        let mut a = context();
        a.layout = "ab".into();
        a.answer = "c".into();
        let mut b = a.clone();
        b.layout = "a".into();
        b.answer = "bc".into();
        assert_ne!(a.seal(&k), b.seal(&k));
    }

    #[test]
    fn ids_are_random_and_recognised() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert!(is_id(&a) && a.len() == 22);
        for bad in [
            "",
            "short",
            "../../etc/passwd/aaaaaa",
            &"a".repeat(23),
            "aaaaaaaaaaaaaaaaaaaaa=",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }
}
