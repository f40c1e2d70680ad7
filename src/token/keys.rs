//! HMAC keys and the rotation keyring.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The shortest secret a [`Keyring`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

const LENIENT_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT_PADDING);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT_PADDING);

const SPEC_FORM: &str = "expected ID:SECRET where ID is 0-255 and SECRET is raw text or base64:...";

/// One HMAC key. `id` is carried in every sealed value so verification
/// picks the right key during rotation.
#[derive(Clone)]
pub struct Key {
    pub id: u8,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .finish()
    }
}

impl Key {
    /// Parses the config/environment form `ID:SECRET`.
    ///
    /// `ID` is a decimal number 0-255. `SECRET` is everything after the first
    /// `:`: either `base64:` followed by standard or url-safe base64 (padding
    /// optional), or raw text used as bytes. Surrounding whitespace of the
    /// whole spec is ignored. The secret must be at least [`MIN_SECRET_LEN`]
    /// bytes after decoding. Error messages never contain the secret.
    pub fn parse(spec: &str) -> Result<Key, KeyringError> {
        let spec = spec.trim();
        let (id_text, secret_text) = spec
            .split_once(':')
            .ok_or_else(|| KeyringError(format!("key spec has no ':' ({SPEC_FORM})")))?;
        let id_text = id_text.trim();
        if id_text.is_empty() || id_text.len() > 3 || !id_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KeyringError(format!(
                "key id {id_text:?} is not a number 0-255 ({SPEC_FORM})"
            )));
        }
        let id: u8 = id_text.parse().map_err(|_| {
            KeyringError(format!("key id {id_text} is out of range: ids are 0-255"))
        })?;
        let secret = match secret_text.strip_prefix("base64:") {
            Some(b64) => {
                let b64 = b64.trim();
                STANDARD_LENIENT
                    .decode(b64)
                    .or_else(|_| URL_SAFE_LENIENT.decode(b64))
                    .map_err(|_| {
                        KeyringError(format!(
                            "key {id}: the secret after 'base64:' is not valid standard or \
                             url-safe base64"
                        ))
                    })?
            }
            None => secret_text.as_bytes().to_vec(),
        };
        check_secret_len(id, &secret)?;
        Ok(Key { id, secret })
    }
}

fn check_secret_len(id: u8, secret: &[u8]) -> Result<(), KeyringError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(KeyringError(format!(
            "key {id}: the secret is {} bytes; at least {MIN_SECRET_LEN} bytes are required",
            secret.len()
        )));
    }
    Ok(())
}

/// A key prepared for HMAC: the keyed state is computed once and cloned per use.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) id: u8,
    pub(crate) mac: HmacSha256,
}

/// Keys in rotation order: the last one signs, any one verifies.
#[derive(Clone)]
pub struct Keyring {
    /// Never empty; ids are unique; the last entry signs.
    entries: Vec<Entry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u8> = self.key_ids().collect();
        f.debug_struct("Keyring")
            .field("key_ids", &ids)
            .field("signing_key_id", &self.signing_key_id())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyringError(pub String);

impl Keyring {
    /// Fails on no keys, duplicate ids, or a secret shorter than 16 bytes.
    pub fn new(keys: Vec<Key>) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError(
                "the keyring has no keys: at least one signing key is required".to_string(),
            ));
        }
        let mut seen = [false; 256];
        let mut entries = Vec::with_capacity(keys.len());
        for key in &keys {
            if seen[key.id as usize] {
                return Err(KeyringError(format!(
                    "key id {} appears more than once; each key needs a distinct id",
                    key.id
                )));
            }
            seen[key.id as usize] = true;
            check_secret_len(key.id, &key.secret)?;
            let mac = <HmacSha256 as Mac>::new_from_slice(&key.secret).map_err(|_| {
                KeyringError(format!(
                    "key {}: the secret is not a usable HMAC key",
                    key.id
                ))
            })?;
            entries.push(Entry { id: key.id, mac });
        }
        Ok(Keyring { entries })
    }

    /// Parses comma-separated `ID:SECRET` specs (the environment variable
    /// form), oldest first: the last key signs. Blank items are skipped.
    /// Raw-text secrets in this form cannot contain `,`; use `base64:`.
    pub fn parse_list(s: &str) -> Result<Keyring, KeyringError> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        let total = items.len();
        let keys = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Key::parse(item).map_err(|e| {
                    if total > 1 {
                        KeyringError(format!("key spec {} of {total}: {e}", i + 1))
                    } else {
                        e
                    }
                })
            })
            .collect::<Result<Vec<Key>, KeyringError>>()?;
        Keyring::new(keys)
    }

    /// The id of the key that signs new values (the last key).
    pub fn signing_key_id(&self) -> u8 {
        self.signer().id
    }

    /// All key ids, oldest first.
    pub fn key_ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.entries.iter().map(|e| e.id)
    }

    /// Number of keys in the ring (at least one).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: a keyring holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn signer(&self) -> &Entry {
        // `new` guarantees at least one entry.
        &self.entries[self.entries.len() - 1]
    }

    pub(crate) fn find(&self, id: u8) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, secret: &str) -> Key {
        Key {
            id,
            secret: secret.as_bytes().to_vec(),
        }
    }

    #[test]
    fn no_keys_is_an_error() {
        let err = Keyring::new(vec![]).unwrap_err();
        assert!(err.0.contains("no keys"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_an_error() {
        let err = Keyring::new(vec![
            key(3, "0123456789abcdef"),
            key(4, "0123456789abcdeg"),
            key(3, "fedcba9876543210"),
        ])
        .unwrap_err();
        assert!(err.0.contains("key id 3"), "{err}");
        assert!(err.0.contains("more than once"), "{err}");
    }

    #[test]
    fn short_secret_is_an_error() {
        let err = Keyring::new(vec![key(7, "short")]).unwrap_err();
        assert!(err.0.contains("key 7"), "{err}");
        assert!(err.0.contains("5 bytes"), "{err}");
        assert!(err.0.contains("16"), "{err}");
        assert!(!err.0.contains("short"), "secret leaked: {err}");
        // Exactly 16 bytes is enough.
        assert!(Keyring::new(vec![key(7, "0123456789abcdef")]).is_ok());
        assert!(Keyring::new(vec![key(7, "0123456789abcde")]).is_err());
    }

    #[test]
    fn last_key_signs() {
        let ring = Keyring::new(vec![
            key(1, "0123456789abcdef"),
            key(9, "fedcba9876543210"),
            key(2, "aaaaaaaaaaaaaaaa"),
        ])
        .unwrap();
        assert_eq!(ring.signing_key_id(), 2);
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![1, 9, 2]);
        assert_eq!(ring.len(), 3);
        assert!(!ring.is_empty());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let k = key(5, "super-secret-value-xyz");
        let ring = Keyring::new(vec![k.clone()]).unwrap();
        let kd = format!("{k:?}");
        let rd = format!("{ring:?}");
        assert!(!kd.contains("super-secret"), "{kd}");
        assert!(!rd.contains("super-secret"), "{rd}");
        assert!(kd.contains('5'), "{kd}");
        assert!(rd.contains("key_ids: [5]"), "{rd}");
        let pretty = format!("{ring:#?}");
        assert!(!pretty.contains("super-secret"));
    }

    #[test]
    fn parse_raw_secret() {
        let k = Key::parse("12:this is a raw secret").unwrap();
        assert_eq!(k.id, 12);
        assert_eq!(k.secret, b"this is a raw secret");
        // Only the first ':' separates.
        let k = Key::parse("0:a:b:c:d:e:f:g:h:i:j").unwrap();
        assert_eq!(k.id, 0);
        assert_eq!(k.secret, b"a:b:c:d:e:f:g:h:i:j");
        let k = Key::parse("  255:0123456789abcdef\n").unwrap();
        assert_eq!(k.id, 255);
        assert_eq!(k.secret, b"0123456789abcdef");
    }

    #[test]
    fn parse_base64_secret() {
        let bytes: Vec<u8> = (0u8..32)
            .map(|b| b.wrapping_mul(37).wrapping_add(250))
            .collect();
        let std_pad = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let std_nopad = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let url_pad = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
        let url_nopad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert!(std_nopad.contains('+') || std_nopad.contains('/'));
        for enc in [std_pad, std_nopad, url_pad, url_nopad] {
            let k = Key::parse(&format!("3:base64:{enc}")).unwrap();
            assert_eq!(k.id, 3);
            assert_eq!(k.secret, bytes, "{enc}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("no-colon-here-at-all", "no ':'"),
            (":0123456789abcdef", "not a number"),
            ("x:0123456789abcdef", "not a number"),
            ("-1:0123456789abcdef", "not a number"),
            ("+1:0123456789abcdef", "not a number"),
            ("256:0123456789abcdef", "out of range"),
            ("1000:0123456789abcdef", "not a number"),
            ("1:", "0 bytes"),
            ("1:tooshort", "8 bytes"),
            ("1:base64:!!!not base64!!!", "not valid"),
            ("1:base64:AAAA", "3 bytes"),
        ];
        for (spec, want) in cases {
            let err = Key::parse(spec).unwrap_err();
            assert!(err.0.contains(want), "{spec}: {err}");
            assert!(!err.0.contains("tooshort"), "secret leaked: {err}");
            assert!(!err.0.contains("not base64"), "secret leaked: {err}");
        }
        // The no-colon message must not echo the (possibly secret) spec.
        let err = Key::parse("my-secret-without-id").unwrap_err();
        assert!(!err.0.contains("my-secret"), "{err}");
    }

    #[test]
    fn parse_list_forms() {
        let ring =
            Keyring::parse_list("1:0123456789abcdef, 2:base64:AAAAAAAAAAAAAAAAAAAAAA==,").unwrap();
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(ring.signing_key_id(), 2);

        let err = Keyring::parse_list("").unwrap_err();
        assert!(err.0.contains("no keys"), "{err}");
        let err = Keyring::parse_list(" , ,").unwrap_err();
        assert!(err.0.contains("no keys"), "{err}");

        let err = Keyring::parse_list("1:0123456789abcdef,2:short").unwrap_err();
        assert!(err.0.starts_with("key spec 2 of 2: "), "{err}");
        assert!(err.0.contains("5 bytes"), "{err}");

        let err = Keyring::parse_list("1:0123456789abcdef,1:fedcba9876543210").unwrap_err();
        assert!(err.0.contains("more than once"), "{err}");
    }
}
