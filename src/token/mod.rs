//! HMAC-SHA256 sealed values: pass tokens, and (in the filter) challenge tickets.
//!
//! STUB: interface only; being implemented.

use crate::net::Cidr;

/// One HMAC key. `id` is carried in every sealed value so verification
/// picks the right key during rotation.
#[derive(Clone)]
pub struct Key {
    pub id: u8,
    pub secret: Vec<u8>,
}

/// Keys in rotation order: the last one signs, any one verifies.
#[derive(Clone)]
pub struct Keyring {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyringError(pub String);

impl Keyring {
    /// Fails on no keys, duplicate ids, or a secret shorter than 16 bytes.
    pub fn new(_keys: Vec<Key>) -> Result<Keyring, KeyringError> {
        todo!()
    }
}

/// What a sealed value is for; a value sealed for one purpose never opens for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PassToken = 1,
    PowTicket = 2,
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
    /// Short snake_case label for metrics and JSON (`bad_signature`, ...).
    pub fn label(&self) -> &'static str {
        todo!()
    }
}

/// Seals `payload` for `purpose` with the newest key: base64url text.
pub fn seal(_keys: &Keyring, _purpose: Purpose, _payload: &[u8]) -> String {
    todo!()
}

/// Checks the MAC (constant time) and returns the payload.
pub fn open(_keys: &Keyring, _purpose: Purpose, _sealed: &str) -> Result<Vec<u8>, TokenError> {
    todo!()
}

/// What a pass token is bound to. `None` fields are not bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Binding {
    pub ip_hash: Option<[u8; 8]>,
    pub ua_hash: Option<[u8; 8]>,
}

impl Binding {
    /// Hashes the client's prefix and user agent (pass `None` to not bind one).
    pub fn new(_ip_prefix: Option<&Cidr>, _user_agent: Option<&str>) -> Binding {
        todo!()
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

/// Issues a pass token for a client that passed a challenge at `level`.
pub fn issue(_keys: &Keyring, _now_s: u64, _ttl_s: u64, _level: u8, _binding: Binding) -> String {
    todo!()
}

/// Decodes a token without checking time or binding (MAC is checked).
pub fn decode(_keys: &Keyring, _token: &str) -> Result<Claims, TokenError> {
    todo!()
}

/// Verifies MAC, expiry, age (`max_age_s` since issue), and that every
/// binding `expected` asks for matches the token.
pub fn verify(
    _keys: &Keyring,
    _token: &str,
    _now_s: u64,
    _max_age_s: u64,
    _expected: &Binding,
) -> Result<Claims, TokenError> {
    todo!()
}
