//! A fast path for the user agents most traffic carries: the canonical,
//! reduced user agents of current Chrome, Edge, Firefox and Safari.
//!
//! Since user-agent reduction, these are a handful of fixed strings with
//! only version numbers changing. A user agent that is exactly one of them
//! contains no token any other pattern looks for (no product name but the
//! browser's, no URL, no device name), so it is that browser whatever the
//! pattern sets would say; checking the shape is several times cheaper
//! than searching the sets. Anything else, including these user agents
//! with one more token, takes the full path. `tests/crawlers.rs` checks
//! that both paths agree on every shape.
//!
//! Only used with the built-in datasets and no `crawlers.extra` entries
//! (an operator's own pattern could claim one of these strings).

/// The platform comments. `#` stands for a version (`[0-9.]+`), `~` for
/// an iOS version (`[0-9_]+`).
const PLATFORMS: [&str; 12] = [
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "X11; Linux x86_64",
    "X11; CrOS x86_64 #",
    "Linux; Android #; K",
    "iPhone; CPU iPhone OS ~ like Mac OS X",
    "iPad; CPU OS ~ like Mac OS X",
    "Windows NT 10.0; Win64; x64; rv:#",
    "Macintosh; Intel Mac OS X 10.15; rv:#",
    "X11; Linux x86_64; rv:#",
    "X11; Ubuntu; Linux x86_64; rv:#",
    "Android #; Mobile; rv:#",
];

/// What follows the platform comment, and the browser spec (in
/// `datasets/crawlers/browser.txt`) the full path would name.
const ENGINES: [(&str, &str); 9] = [
    (
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/# Safari/537.36",
        "chrome",
    ),
    (
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/# Mobile Safari/537.36",
        "chrome",
    ),
    (
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/# Safari/537.36 Edg/#",
        "edge",
    ),
    (
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/# Mobile Safari/537.36 EdgA/#",
        "edge",
    ),
    ("Gecko/20100101 Firefox/#", "firefox"),
    ("Gecko/# Firefox/#", "firefox"),
    (
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/# Safari/605.1.15",
        "safari",
    ),
    (
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/# Mobile/15E148 Safari/604.1",
        "safari",
    ),
    (
        "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/# Mobile/15E148 Safari/604.1",
        "chrome",
    ),
];

/// Every canonical shape: `Mozilla/5.0 (PLATFORM) ENGINE`, with the name
/// of the browser spec it belongs to. Used by the tests to compare paths.
pub fn shapes() -> impl Iterator<Item = (String, &'static str)> {
    PLATFORMS.iter().flat_map(|p| {
        ENGINES
            .iter()
            .map(move |(e, name)| (format!("Mozilla/5.0 ({p}) {e}"), *name))
    })
}

/// The browser spec name for a canonical user agent, if it is one.
pub fn browser(user_agent: &str) -> Option<&'static str> {
    let rest = user_agent.strip_prefix("Mozilla/5.0 (")?;
    let after_platform = PLATFORMS.iter().find_map(|p| {
        let after = matches_prefix(p, rest)?;
        after.strip_prefix(") ")
    })?;
    ENGINES
        .iter()
        .find(|(engine, _)| matches_prefix(engine, after_platform) == Some(""))
        .map(|(_, name)| *name)
}

/// Matches `template` against the start of `text`; returns the rest. `#`
/// takes one or more of `[0-9.]`, `~` of `[0-9_]` (greedily: no template
/// has one of those right after a placeholder).
fn matches_prefix<'t>(template: &str, text: &'t str) -> Option<&'t str> {
    let mut text = text.as_bytes();
    let mut at = 0;
    for &t in template.as_bytes() {
        if let Some(separator) = placeholder(t) {
            let n = text[at..]
                .iter()
                .take_while(|&&b| b.is_ascii_digit() || b == separator)
                .count();
            if n == 0 {
                return None;
            }
            at += n;
        } else if text.get(at) == Some(&t) {
            at += 1;
        } else {
            return None;
        }
    }
    text = &text[at..];
    // `at` only ever advanced over ASCII bytes, so this is a char boundary.
    std::str::from_utf8(text).ok()
}

/// The separator a placeholder's version uses.
fn placeholder(template_byte: u8) -> Option<u8> {
    match template_byte {
        b'#' => Some(b'.'),
        b'~' => Some(b'_'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_shapes_and_nothing_around_them() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser(chrome), Some("chrome"));
        assert_eq!(
            browser(&format!("{chrome} Edg/131.0.2903.86")),
            Some("edge")
        );
        assert_eq!(browser(&format!("{chrome} FooBot/1.0")), None);
        assert_eq!(browser(&chrome.replace("131.0.0.0", "")), None);
        assert_eq!(browser(&chrome.replace("x64", "x64; Datanyze")), None);
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(browser(iphone), Some("safari"));
        let firefox =
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(browser(firefox), Some("firefox"));
        assert_eq!(browser("Mozilla/5.0 (X11; Linux x86_64)"), None);
        assert_eq!(browser("curl/8.5.0"), None);
    }

    #[test]
    fn no_version_placeholder_is_followed_by_a_version_character() {
        for t in PLATFORMS.iter().chain(ENGINES.iter().map(|(e, _)| e)) {
            for (i, _) in t.match_indices(['#', '~']) {
                let next = t.as_bytes().get(i + 1);
                assert!(
                    !next.is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'_')),
                    "{t}"
                );
            }
        }
    }
}
