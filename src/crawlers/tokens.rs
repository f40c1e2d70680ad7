//! The `unexpected-product-token` rule: a desktop browser user agent with
//! another program's product token in it.
//!
//! Bots often send a real desktop browser's user agent with their own name
//! added ("... Chrome/49.0 Safari/537.36 Google Favicon"). No pattern can
//! list every such name, but the other direction is short: desktop browsers
//! put only browser product tokens after their platform comment. The list
//! is `datasets/crawlers/browser_tokens.txt` (plus a policy's
//! `crawlers.browser_tokens`); see that file for what is checked and why
//! mobile user agents are not.

use super::DatasetError;
use std::cmp::Ordering;

/// The rule as `classify` and `explain` report it.
pub const RULE_NAME: &str = "unexpected-product-token";
pub const RULE_DESCRIPTION: &str =
    "(a desktop browser user agent with a product token no browser sends)";

/// The browser product tokens, lower-cased and sorted for binary search.
#[derive(Debug, Clone, Default)]
pub struct BrowserTokens {
    tokens: Vec<String>,
}

/// Why a browser token is not acceptable, for config errors.
pub fn token_error(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("empty token")
    } else if token.starts_with(|c: char| c.is_ascii_digit()) {
        Some("a token that starts with a digit is never checked")
    } else if token
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '(' | ')' | '[' | ']'))
    {
        Some("a token is one name, without spaces, `/` or brackets")
    } else {
        None
    }
}

impl BrowserTokens {
    /// Parses the file format (one token per line, `#` comments).
    pub fn parse(file: &str, text: &str) -> Result<BrowserTokens, DatasetError> {
        let mut tokens = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let token = raw.split('#').next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            if let Some(reason) = token_error(token) {
                return Err(DatasetError {
                    file: file.to_string(),
                    line: index + 1,
                    reason: format!("`{token}`: {reason}"),
                });
            }
            tokens.push(token.to_string());
        }
        let mut set = BrowserTokens::default();
        set.extend(tokens.iter().map(String::as_str));
        Ok(set)
    }

    /// Adds tokens (already validated with [`token_error`]).
    pub fn extend<'t>(&mut self, tokens: impl IntoIterator<Item = &'t str>) {
        self.tokens
            .extend(tokens.into_iter().map(str::to_ascii_lowercase));
        self.tokens.sort();
        self.tokens.dedup();
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn contains(&self, name: &str) -> bool {
        self.tokens
            .binary_search_by(|t| cmp_ignore_ascii_case(t, name))
            .is_ok()
    }

    /// The first product token in a desktop browser user agent that is not
    /// a browser's, if any. `None` for user agents that are not desktop
    /// browsers'.
    pub fn unexpected<'u>(&self, user_agent: &'u str) -> Option<&'u str> {
        let tail = desktop_tail(user_agent)?;
        let mut depth = 0usize;
        let mut start = None;
        for (i, c) in tail.char_indices().chain([(tail.len(), ' ')]) {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                c if depth == 0 && !c.is_whitespace() => {
                    start.get_or_insert(i);
                    continue;
                }
                _ => {}
            }
            if let Some(s) = start.take() {
                let name = tail[s..i].split('/').next().unwrap_or("");
                let name = name.trim_matches(|c| matches!(c, ';' | ',' | '"'));
                let checked = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
                if checked && !self.contains(name) {
                    return Some(name);
                }
            }
        }
        None
    }
}

/// What follows the platform comment of a desktop browser user agent.
fn desktop_tail(user_agent: &str) -> Option<&str> {
    let comment = ["Mozilla/5.0 (", "Mozilla/4.0 ("]
        .iter()
        .find_map(|p| user_agent.strip_prefix(p))?;
    let desktop = ["Windows", "Macintosh", "X11", "compatible; MSIE"]
        .iter()
        .any(|p| comment.starts_with(p));
    if !desktop {
        return None;
    }
    let mut depth = 1usize;
    for (i, c) in comment.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return comment.get(i + 1..);
                }
            }
            _ => {}
        }
    }
    None
}

fn cmp_ignore_ascii_case(lower: &str, other: &str) -> Ordering {
    lower
        .bytes()
        .cmp(other.bytes().map(|b| b.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> BrowserTokens {
        BrowserTokens::parse(
            "t.txt",
            "# c\nAppleWebKit\nGecko\nlike\nChrome\nSafari\nFirefox\nEdg  # Edge\nMobile\n",
        )
        .unwrap()
    }

    #[test]
    fn finds_the_first_foreign_token() {
        let t = tokens();
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(t.unexpected(chrome), None);
        assert_eq!(t.unexpected(&format!("{chrome} Edg/131.0")), None);
        assert_eq!(
            t.unexpected(&format!("{chrome} Google Favicon")),
            Some("Google")
        );
        assert_eq!(t.unexpected(&format!("{chrome} ForusP")), Some("ForusP"));
        assert_eq!(t.unexpected(&format!("{chrome} SLACK/4.1")), Some("SLACK"));
        // Comments, versions and case do not count.
        assert_eq!(t.unexpected(&format!("{chrome} (x; y) 2.0 CHROME/1")), None);
        let ie = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT) NewsNow/1.0";
        assert_eq!(t.unexpected(ie), Some("NewsNow"));
        let firefox =
            "Mozilla/5.0 (X11; U; Linux i686 (x86_64); en-US; rv:1.9) Gecko/2009 Firefox/3.5";
        assert_eq!(t.unexpected(firefox), None);
    }

    #[test]
    fn mobile_and_other_user_agents_are_not_checked() {
        let t = tokens();
        for ua in [
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36 Instagram 339.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Line/14.4.0",
            "curl/8.5.0",
            "Mozilla/5.0 (Windows NT 10.0",
        ] {
            assert_eq!(t.unexpected(ua), None, "{ua}");
        }
    }

    #[test]
    fn bad_tokens_name_their_line() {
        let e = BrowserTokens::parse("t.txt", "ok\n\nChrome/1\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(token_error("2345Explorer").is_some());
        assert!(token_error("Two words").is_some());
        assert!(token_error("K-Meleon").is_none());
    }
}
