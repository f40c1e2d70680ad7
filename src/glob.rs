//! Globs for paths and hosts.
//!
//! A glob is literal text in which `*` stands for any run of characters,
//! `/` included (`/api/*`, `*/dev/*`, `/login*`). Nothing else is special:
//! `?`, `[` and `.` match themselves, so a path glob never surprises with
//! shell or regex meaning. Globs are translated to anchored regexes once, at
//! configuration time, and matched as part of a `RegexSet`.

/// The anchored regex source for `glob`.
pub fn to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    out.push_str("^(?s:");
    for (i, literal) in glob.split('*').enumerate() {
        if i > 0 {
            out.push_str(".*");
        }
        out.push_str(&regex::escape(literal));
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::to_regex;
    use regex::Regex;

    fn matches(glob: &str, text: &str) -> bool {
        Regex::new(&to_regex(glob)).unwrap().is_match(text)
    }

    #[test]
    fn star_matches_any_run_including_slashes() {
        assert!(matches("/api/*", "/api/"));
        assert!(matches("/api/*", "/api/v1/users"));
        assert!(!matches("/api/*", "/api"));
        assert!(matches("*/dev/*", "/x/y/dev/z"));
        assert!(matches("/login*", "/login"));
        assert!(matches("/login*", "/login.php"));
        assert!(!matches("/login*", "/x/login"));
    }

    #[test]
    fn other_characters_are_literal() {
        assert!(matches("/a.b", "/a.b"));
        assert!(!matches("/a.b", "/axb"));
        assert!(matches("/q?x=[1]", "/q?x=[1]"));
        assert!(!matches("/q?x", "/qx"));
        assert!(matches("/a\nb*", "/a\nbc"));
    }

    #[test]
    fn whole_text_must_match() {
        assert!(!matches("/a", "/ab"));
        assert!(!matches("/a", "x/a"));
        assert!(matches("", ""));
        assert!(matches("*", ""));
    }
}
