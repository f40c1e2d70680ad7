//! ALTCHA's challenge format, issued and verified by the companion (the
//! widget is vendored in `datasets/altcha/`, built by
//! `scripts/vendor-altcha.sh`).
//!
//! A challenge is `{algorithm: "SHA-256", challenge, maxnumber, salt,
//! signature}` with `challenge = hex(SHA-256(salt || decimal(number)))` for
//! a secret `number` in `0..=maxnumber`, and a salt of 12 random bytes in
//! hex followed by `?expires=UNIX_SECONDS`, as ALTCHA writes it. The widget
//! finds the number and posts `base64(JSON {algorithm, challenge, number,
//! salt, signature, ...})` in the `altcha` field.
//!
//! **What is signed.** ALTCHA's reference signs `hex(HMAC(key,
//! challenge))`; its 2025 advisory showed that a signed string built by
//! concatenating the salt and number lets a client move digits between
//! them (and so change `expires`). Here the signature is
//! `hex(HMAC-SHA256(key, "palisade-altcha-v1" || field(algorithm) ||
//! field(salt) || field(challenge) || u64be(maxnumber)))`, where
//! `field(x)` is `x`'s length as a big-endian `u16` then its bytes: no two
//! different sets of fields sign the same bytes. On top of that the
//! companion keeps the salt and the number in the challenge's sealed
//! context and requires both to match exactly, and the challenge id is
//! claimed once in the store, so a payload is good for one pass.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The form field the widget posts its payload in.
pub const FIELD: &str = "altcha";

/// The only algorithm issued.
pub const ALGORITHM: &str = "SHA-256";

/// Domain separation for the signed bytes.
const SIGNED_PREFIX: &[u8] = b"palisade-altcha-v1";

/// The longest payload looked at (base64 text).
const MAX_PAYLOAD: usize = 2048;

/// ALTCHA's key and work size.
#[derive(Clone)]
pub struct Altcha {
    key: Vec<u8>,
    pub max_number: u64,
}

/// A new challenge: what the page embeds, and what the context keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The widget's `challengejson`.
    pub json: String,
    pub salt: String,
    pub number: u64,
}

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AltchaError {
    #[error("the payload is not base64 JSON with ALTCHA's fields")]
    Malformed,
    #[error("the payload is for another challenge")]
    OtherChallenge,
    #[error("the challenge has expired")]
    Expired,
    #[error("the number does not solve the challenge")]
    Unsolved,
    #[error("the signature is not ours")]
    BadSignature,
}

#[derive(Deserialize)]
struct Payload {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

impl Altcha {
    pub fn new(key: &[u8], max_number: u64) -> Altcha {
        Altcha {
            key: key.to_vec(),
            max_number,
        }
    }

    fn mac(&self, salt: &str, challenge: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(SIGNED_PREFIX);
        for field in [ALGORITHM, salt, challenge] {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            mac.update(&len.to_be_bytes());
            mac.update(&field.as_bytes()[..usize::from(len)]);
        }
        mac.update(&self.max_number.to_be_bytes());
        mac
    }

    /// A challenge that expires at `expires_at`, from 12 + 8 random bytes.
    pub fn issue(&self, expires_at: u64, random: [u8; 20]) -> Issue {
        let (salt_bytes, number_bytes) = random.split_at(12);
        let salt = format!("{}?expires={expires_at}", hex(salt_bytes));
        let mut n = [0u8; 8];
        n.copy_from_slice(number_bytes);
        let number = u64::from_be_bytes(n) % (self.max_number + 1);
        let challenge = hash(&salt, number);
        let signature = hex(&self.mac(&salt, &challenge).finalize().into_bytes());
        let json = serde_json::json!({
            "algorithm": ALGORITHM,
            "challenge": challenge,
            "maxnumber": self.max_number,
            "salt": salt,
            "signature": signature,
        })
        .to_string();
        Issue { json, salt, number }
    }

    /// Checks the widget's `payload` against the challenge issued with
    /// `salt` and `number`, at `now`.
    pub fn verify(
        &self,
        payload: &str,
        salt: &str,
        number: u64,
        now: u64,
    ) -> Result<(), AltchaError> {
        use base64::Engine as _;
        if payload.len() > MAX_PAYLOAD {
            return Err(AltchaError::Malformed);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| AltchaError::Malformed)?;
        let p: Payload = serde_json::from_slice(&raw).map_err(|_| AltchaError::Malformed)?;
        if p.algorithm != ALGORITHM || p.salt != salt {
            return Err(AltchaError::OtherChallenge);
        }
        let expires = salt
            .split_once("?expires=")
            .and_then(|(_, e)| e.parse::<u64>().ok())
            .ok_or(AltchaError::Malformed)?;
        if now >= expires {
            return Err(AltchaError::Expired);
        }
        if p.number > self.max_number || p.number != number || hash(salt, p.number) != p.challenge {
            return Err(AltchaError::Unsolved);
        }
        let signature = unhex(&p.signature).ok_or(AltchaError::BadSignature)?;
        // Constant time.
        self.mac(salt, &p.challenge)
            .verify_slice(&signature)
            .map_err(|_| AltchaError::BadSignature)
    }
}

/// The salt of an issued challenge's JSON (what the context keeps).
pub fn salt_of(challenge_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(challenge_json).ok()?;
    value.get("salt")?.as_str().map(str::to_string)
}

fn hash(salt: &str, number: u64) -> String {
    hex(&Sha256::new()
        .chain_update(salt)
        .chain_update(number.to_string())
        .finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn payload(json: &serde_json::Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    /// Solves like the widget: tries every number.
    fn solve(issue: &Issue) -> serde_json::Value {
        let c: serde_json::Value = serde_json::from_str(&issue.json).unwrap();
        let target = c["challenge"].as_str().unwrap();
        let salt = c["salt"].as_str().unwrap();
        let max = c["maxnumber"].as_u64().unwrap();
        let number = (0..=max).find(|&n| hash(salt, n) == target).unwrap();
        serde_json::json!({
            "algorithm": c["algorithm"], "challenge": target, "number": number,
            "salt": salt, "signature": c["signature"], "took": 12,
        })
    }

    #[test]
    fn a_solved_challenge_verifies_and_nothing_else_does() {
        let a = Altcha::new(b"key", 1000);
        let issue = a.issue(100, [7; 20]);
        assert!(issue.salt.ends_with("?expires=100"));
        let good = solve(&issue);
        assert_eq!(good["number"].as_u64(), Some(issue.number));
        let ok = payload(&good);
        assert_eq!(a.verify(&ok, &issue.salt, issue.number, 99), Ok(()));
        assert_eq!(
            a.verify(&ok, &issue.salt, issue.number, 100),
            Err(AltchaError::Expired)
        );
        assert_eq!(
            a.verify("%%", &issue.salt, issue.number, 1),
            Err(AltchaError::Malformed)
        );

        let mut wrong = good.clone();
        wrong["number"] = (issue.number + 1).into();
        assert_eq!(
            a.verify(&payload(&wrong), &issue.salt, issue.number, 1),
            Err(AltchaError::Unsolved)
        );

        let other = Altcha::new(b"other key", 1000);
        assert_eq!(
            other.verify(&ok, &issue.salt, issue.number, 1),
            Err(AltchaError::BadSignature)
        );

        // Moving the number's digits into the salt (the 2025 splice) makes
        // another challenge, which the context does not know.
        let mut spliced = good.clone();
        let n = issue.number.to_string();
        let (head, tail) = n.split_at(1);
        spliced["salt"] = format!("{}{head}", issue.salt).into();
        spliced["number"] = tail.parse::<u64>().unwrap_or(0).into();
        assert_eq!(
            a.verify(&payload(&spliced), &issue.salt, issue.number, 1),
            Err(AltchaError::OtherChallenge)
        );
    }

    #[test]
    fn the_signature_covers_length_prefixed_fields() {
        let a = Altcha::new(b"key", 1000);
        let one = a.mac("ab", "c").finalize().into_bytes();
        let two = a.mac("a", "bc").finalize().into_bytes();
        assert_ne!(one, two);
        assert_eq!(unhex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0g"), None);
    }
}
