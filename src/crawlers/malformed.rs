//! User agents no browser sends: the checks made before any pattern.
//!
//! They come first for two reasons. A user agent that is empty, huge, full
//! of control characters or without a single letter says what it is
//! whatever it contains. And the pattern set scans the whole user agent, so
//! bounding its length first bounds the work a client can ask for (Envoy
//! accepts header values up to its 60 KiB default header limit).

/// The longest user agent the patterns examine, in bytes. Real browsers
/// send well under 512 bytes (the longest in-app browser user agents in
/// `tests/data/` are under 700); anything longer is classified `bot`
/// (`oversized`) without looking inside.
pub const MAX_USER_AGENT_BYTES: usize = 1024;

/// One of the checks: its name (what `classify` and `explain` report) and
/// what it looks for (reported in place of a pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedRule {
    pub name: &'static str,
    pub description: &'static str,
}

pub const EMPTY: MalformedRule = MalformedRule {
    name: "empty",
    description: "(empty or only whitespace)",
};
pub const OVERSIZED: MalformedRule = MalformedRule {
    name: "oversized",
    description: "(longer than 1024 bytes)",
};
pub const CONTROL_OR_INVALID: MalformedRule = MalformedRule {
    name: "malformed",
    description: "(control characters, or bytes that are not UTF-8)",
};
pub const NO_LETTERS: MalformedRule = MalformedRule {
    name: "no-letters",
    description: "(no letters at all)",
};

/// The first check `user_agent` fails, if any.
///
/// Hosts hand the engine text: bytes that are not UTF-8 arrive as U+FFFD
/// (the Envoy filter and the CLI decode lossily), so U+FFFD counts as an
/// invalid byte. Control characters are C0 (including tab) and DEL.
pub fn check(user_agent: &str) -> Option<&'static MalformedRule> {
    if user_agent.len() > MAX_USER_AGENT_BYTES {
        return Some(&OVERSIZED);
    }
    if user_agent.trim().is_empty() {
        return Some(&EMPTY);
    }
    // One pass over the bytes (this runs on every request): control bytes,
    // ASCII letters, and the first byte of any non-ASCII character.
    let mut letters = false;
    let mut non_ascii = false;
    for &b in user_agent.as_bytes() {
        if b < 0x20 || b == 0x7f {
            return Some(&CONTROL_OR_INVALID);
        }
        letters |= b.is_ascii_alphabetic();
        non_ascii |= b >= 0x80;
    }
    if non_ascii && user_agent.contains('\u{fffd}') {
        return Some(&CONTROL_OR_INVALID);
    }
    if !letters && !user_agent.chars().any(char::is_alphabetic) {
        return Some(&NO_LETTERS);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_and_its_near_misses() {
        assert_eq!(check(""), Some(&EMPTY));
        assert_eq!(check(" \t "), Some(&EMPTY));
        assert_eq!(
            check(&"x".repeat(MAX_USER_AGENT_BYTES + 1)),
            Some(&OVERSIZED)
        );
        assert_eq!(check(&"x".repeat(MAX_USER_AGENT_BYTES)), None);
        assert_eq!(check("Mozilla/5.0\t(X11)"), Some(&CONTROL_OR_INVALID));
        assert_eq!(check("Mozilla/5.0\u{7f}"), Some(&CONTROL_OR_INVALID));
        assert_eq!(
            check("Mozilla/5.0 \u{fffd}\u{fffd}bot"),
            Some(&CONTROL_OR_INVALID)
        );
        assert_eq!(check("1204"), Some(&NO_LETTERS));
        assert_eq!(check("-- / 1.0 ()"), Some(&NO_LETTERS));
        // Letters outside ASCII are letters; other non-ASCII text is fine.
        assert_eq!(check("Навигатор/1.0"), None);
        assert_eq!(check("curl/8.5.0"), None);
        assert_eq!(check("Mozilla/5.0 (Linux; Android 14; ÉCHO 2)"), None);
    }

    #[test]
    fn the_description_states_the_bound() {
        assert!(OVERSIZED
            .description
            .contains(&MAX_USER_AGENT_BYTES.to_string()));
    }
}
