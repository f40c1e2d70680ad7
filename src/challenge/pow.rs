//! Proof of work: challenges that need no server state.
//!
//! A challenge is a *ticket*: sealed claims (issued, expiry, level, client
//! binding) plus the required number of leading zero bits and the path to
//! return to, MAC'd with the token keys ([`Purpose::PowTicket`]). Any worker
//! or replica holding the keys can check a solution; nothing is stored, and
//! no cookie is set until the work is done, so parallel challenged requests
//! (subresources) cannot clobber each other's state.
//!
//! The work: find a decimal `nonce` such that SHA-256(`data` ‖ `nonce`) has
//! at least `bits` leading zero bits, where `data` is the ticket text. The
//! MAC inside `data` makes it unpredictable, so work cannot be precomputed.

use crate::token::{self, Binding, Keyring, Purpose, TokenError};
use sha2::{Digest, Sha256};

/// Leading zero bits required for difficulty `level` (1–5):
/// 12, 14, 16, 18, 20 — about 4 thousand to 1 million hashes on average.
pub fn difficulty_bits(level: u8) -> u8 {
    10 + 2 * level.clamp(1, 5)
}

/// The longest return path a ticket carries; longer paths return to `/`.
const MAX_RETURN_PATH: usize = 2048;

/// Where to send the client after it passes: the original path and query,
/// if it is a plain same-origin relative path. Anything that could leave the
/// site (`//host`, `/\host`, a scheme, control characters) gives `None`.
pub fn safe_return_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= MAX_RETURN_PATH
        && !path.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(path)
}

/// A decoded, authenticated ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub level: u8,
    pub bits: u8,
    pub expires_at: u64,
    pub return_path: String,
}

/// Why a solution was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the ticket is not valid: {0}")]
    Ticket(TokenError),
    #[error("the nonce is not a decimal number of 1 to 20 digits")]
    BadNonce,
    #[error("the nonce does not solve the challenge")]
    WrongSolution,
}

impl ChallengeError {
    /// Short snake_case label for metrics and JSON.
    pub fn label(&self) -> &'static str {
        match self {
            ChallengeError::Ticket(TokenError::Expired | TokenError::TooOld) => "ticket_expired",
            ChallengeError::Ticket(TokenError::WrongClientIp | TokenError::WrongUserAgent) => {
                "ticket_other_client"
            }
            ChallengeError::Ticket(_) => "ticket_invalid",
            ChallengeError::BadNonce => "bad_nonce",
            ChallengeError::WrongSolution => "wrong_solution",
        }
    }
}

/// Issues a ticket for a client at `level`, valid for `ttl_s` seconds.
pub fn issue_ticket(
    keys: &Keyring,
    now_s: u64,
    ttl_s: u64,
    level: u8,
    binding: Binding,
    return_path: &str,
) -> String {
    let return_path = safe_return_path(return_path).unwrap_or("/");
    let mut payload =
        token::encode_claims(now_s, now_s.saturating_add(ttl_s), level, &binding).to_vec();
    payload.push(difficulty_bits(level));
    payload.extend_from_slice(return_path.as_bytes());
    token::seal(keys, Purpose::PowTicket, &payload)
}

/// Checks a solution: the ticket's MAC, expiry and binding, then the work.
pub fn verify_solution(
    keys: &Keyring,
    data: &str,
    nonce: &str,
    now_s: u64,
    expected: &Binding,
) -> Result<Ticket, ChallengeError> {
    let payload = token::open(keys, Purpose::PowTicket, data).map_err(ChallengeError::Ticket)?;
    let claims_len = token::CLAIMS_LEN;
    let (claims, rest) = payload
        .split_at_checked(claims_len)
        .ok_or(ChallengeError::Ticket(TokenError::Malformed))?;
    let claims = token::decode_claims(0, claims).map_err(ChallengeError::Ticket)?;
    // A ticket lives no longer than it was issued for; max age = its lifetime.
    let lifetime = claims.expires_at.saturating_sub(claims.issued_at);
    token::check_claims(&claims, now_s, lifetime, expected).map_err(ChallengeError::Ticket)?;
    let (&bits, path) = rest
        .split_first()
        .ok_or(ChallengeError::Ticket(TokenError::Malformed))?;
    let return_path = std::str::from_utf8(path)
        .ok()
        .and_then(safe_return_path)
        .ok_or(ChallengeError::Ticket(TokenError::Malformed))?;
    if nonce.is_empty() || nonce.len() > 20 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChallengeError::BadNonce);
    }
    if leading_zero_bits(
        &Sha256::new()
            .chain_update(data)
            .chain_update(nonce)
            .finalize(),
    ) < u32::from(bits)
    {
        return Err(ChallengeError::WrongSolution);
    }
    Ok(Ticket {
        level: claims.level,
        bits,
        expires_at: claims.expires_at,
        return_path: return_path.to_string(),
    })
}

/// Counts leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for &byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// Finds a nonce for `data` (used by tests and the CLI; browsers run the
/// page's script).
pub fn solve(data: &str, bits: u8) -> String {
    let mut n: u64 = 0;
    loop {
        let nonce = n.to_string();
        if leading_zero_bits(
            &Sha256::new()
                .chain_update(data)
                .chain_update(&nonce)
                .finalize(),
        ) >= u32::from(bits)
        {
            return nonce;
        }
        n += 1;
    }
}

/// The challenge page for browsers: self-contained, solves in a Web Worker.
pub fn page(data: &str, bits: u8, verify_path: &str) -> String {
    let head = format!("<meta name=\"robots\" content=\"noindex\">\n<title>{POW_TITLE}</title>");
    page_with_head(data, bits, verify_path, &head)
}

/// The proof-of-work page's title.
pub const POW_TITLE: &str = "Checking your browser";

/// [`page`] with `head` (markup whose every value is escaped: the
/// companion's crawler hints) in place of its title and `noindex`.
pub fn page_with_head(data: &str, bits: u8, verify_path: &str, head: &str) -> String {
    // `data` is base64url and `verify_path` is checked at configuration
    // time, so neither can break out of the attribute they land in.
    // The head last: hints are the upstream's text, and must not be taken
    // for the template's own placeholders.
    include_str!("pages/pow.html")
        .replace("{{DATA}}", data)
        .replace("{{BITS}}", &bits.to_string())
        .replace("{{VERIFY}}", verify_path)
        .replace("{{HEAD}}", head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Key;

    fn keys() -> Keyring {
        Keyring::new(vec![Key {
            id: 1,
            secret: b"challenge test secret 0123456789".to_vec(),
        }])
        .unwrap()
    }

    fn binding(ua: &str) -> Binding {
        Binding::new(None, Some(ua))
    }

    #[test]
    fn a_head_is_taken_as_it_is_not_as_placeholders() {
        let page = page_with_head("abc", 1, "/v", "<title>{{DATA}}</title>");
        assert!(page.contains("<title>{{DATA}}</title>"));
        assert!(page.contains("value=\"abc\"") && !page.contains("{{HEAD}}"));
        assert!(!page.contains("noindex"));
        let plain = super::page("abc", 1, "/v");
        assert!(plain.contains("<meta name=\"robots\" content=\"noindex\">"));
        assert!(plain.contains("<title>Checking your browser</title>"));
    }

    #[test]
    fn a_solved_ticket_verifies() {
        let data = issue_ticket(&keys(), 1000, 300, 1, binding("ua"), "/login?next=/x");
        let nonce = solve(&data, difficulty_bits(1));
        let t = verify_solution(&keys(), &data, &nonce, 1010, &binding("ua")).unwrap();
        assert_eq!(t.return_path, "/login?next=/x");
        assert_eq!(t.level, 1);
        assert_eq!(t.bits, 12);
    }

    #[test]
    fn wrong_nonce_expiry_and_other_clients_are_rejected() {
        let k = keys();
        let data = issue_ticket(&k, 1000, 300, 1, binding("ua"), "/");
        let nonce = solve(&data, 12);
        let wrong = (0..).map(|n: u64| n.to_string()).find(|n| {
            leading_zero_bits(&Sha256::new().chain_update(&data).chain_update(n).finalize()) < 12
        });
        let wrong = wrong.unwrap();
        assert_eq!(
            verify_solution(&k, &data, &wrong, 1010, &binding("ua")),
            Err(ChallengeError::WrongSolution)
        );
        assert_eq!(
            verify_solution(&k, &data, "12a", 1010, &binding("ua")),
            Err(ChallengeError::BadNonce)
        );
        assert_eq!(
            verify_solution(&k, &data, &nonce, 1300, &binding("ua"))
                .unwrap_err()
                .label(),
            "ticket_expired"
        );
        assert_eq!(
            verify_solution(&k, &data, &nonce, 1010, &binding("other"))
                .unwrap_err()
                .label(),
            "ticket_other_client"
        );
        let mut tampered = data.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            verify_solution(&k, &tampered, &nonce, 1010, &binding("ua"))
                .unwrap_err()
                .label(),
            "ticket_invalid"
        );
    }

    #[test]
    fn a_pass_token_is_not_a_ticket() {
        let k = keys();
        let tok = token::issue(&k, 1000, 300, 5, binding("ua"));
        assert!(verify_solution(&k, &tok, "1", 1010, &binding("ua")).is_err());
    }

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_return_path("/a?b=c"), Some("/a?b=c"));
        for bad in [
            "//evil.example/",
            "/\\evil",
            "https://evil",
            "evil",
            "/a\r\nb",
            "",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad:?}");
        }
        let data = issue_ticket(&keys(), 1000, 300, 1, binding("ua"), "//evil.example/");
        let nonce = solve(&data, 12);
        let t = verify_solution(&keys(), &data, &nonce, 1001, &binding("ua")).unwrap();
        assert_eq!(t.return_path, "/");
    }

    #[test]
    fn zero_bits_counted() {
        assert_eq!(leading_zero_bits(&[0, 0x0f, 0xff]), 12);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
