//! Header consistency: does a client claiming to be a browser send the
//! headers that browser sends?
//!
//! A user agent is one header anyone can copy. Browsers send others with
//! it that scripts rarely reproduce, or reproduce wrongly: `Accept` and
//! `Accept-Language` always; the `Sec-Fetch-*` metadata headers and (in
//! Chromium) the `Sec-CH-UA` client hints to potentially trustworthy
//! origins. Each [`HeaderAnomaly`] is one such disagreement. They are facts
//! for rules to weigh, not verdicts: a proxy in between can strip headers.
//!
//! "Secure" is the host's judgement of whether the browser saw a
//! potentially trustworthy origin (https, or a loopback host); browsers
//! send `Sec-Fetch-*` and client hints only there. The policy decides it
//! from `:scheme`, `X-Forwarded-Proto` within the trusted hops, and the
//! host (see `Policy::is_secure`).
//!
//! Only [`ClientClass::Browser`] clients are checked; the version gates
//! follow the releases that shipped each header, so older browsers are
//! not held to headers they never sent.

use super::ClientClass;

/// One way a browser's headers disagree with its user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderAnomaly {
    /// A browser user agent without an `Accept` header.
    NoAccept,
    /// A browser user agent without an `Accept-Language` header.
    NoAcceptLanguage,
    /// Chromium 89 or later (not an Android WebView) on a secure request
    /// without `Sec-CH-UA`.
    NoClientHints,
    /// A Chromium user agent whose `Sec-CH-UA` names no brand at the user
    /// agent's major version, names Edge or Opera when the user agent does
    /// not (or the other way round), or names `HeadlessChrome`.
    ClientHintsMismatch,
    /// Chrome 76+, Firefox 90+ or Safari 16.4+ on a secure request without
    /// `Sec-Fetch-Site` or `Sec-Fetch-Mode`.
    NoFetchMetadata,
    /// A Firefox or Safari (or any iOS) user agent that sends Chromium's
    /// `Sec-CH-UA*` client hints.
    UnexpectedClientHints,
}

impl HeaderAnomaly {
    pub const ALL: [HeaderAnomaly; 6] = [
        HeaderAnomaly::NoAccept,
        HeaderAnomaly::NoAcceptLanguage,
        HeaderAnomaly::NoClientHints,
        HeaderAnomaly::ClientHintsMismatch,
        HeaderAnomaly::NoFetchMetadata,
        HeaderAnomaly::UnexpectedClientHints,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            HeaderAnomaly::NoAccept => "no_accept",
            HeaderAnomaly::NoAcceptLanguage => "no_accept_language",
            HeaderAnomaly::NoClientHints => "no_client_hints",
            HeaderAnomaly::ClientHintsMismatch => "client_hints_mismatch",
            HeaderAnomaly::NoFetchMetadata => "no_fetch_metadata",
            HeaderAnomaly::UnexpectedClientHints => "unexpected_client_hints",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`HeaderAnomaly`] values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anomalies(u8);

impl Anomalies {
    pub fn of(anomalies: &[HeaderAnomaly]) -> Anomalies {
        Anomalies(anomalies.iter().fold(0, |bits, a| bits | a.bit()))
    }

    pub fn contains(&self, anomaly: HeaderAnomaly) -> bool {
        self.0 & anomaly.bit() != 0
    }

    /// Whether the two sets share an anomaly.
    pub fn intersects(&self, other: Anomalies) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> u8 {
        self.0.count_ones() as u8
    }

    pub fn iter(&self) -> impl Iterator<Item = HeaderAnomaly> + '_ {
        HeaderAnomaly::ALL.into_iter().filter(|a| self.contains(*a))
    }

    fn insert(&mut self, anomaly: HeaderAnomaly) {
        self.0 |= anomaly.bit();
    }
}

/// The browser family a user agent claims, with the versions the checks
/// need (`None` when the token is missing or unreadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Chromium {
        major: Option<u32>,
        webview: bool,
        edge: bool,
        opera: bool,
    },
    Firefox {
        major: Option<u32>,
    },
    /// Safari and every other WebKit browser (all iOS browsers are WebKit).
    Safari {
        version: Option<(u32, u32)>,
    },
    Other,
}

fn family(user_agent: &str) -> Family {
    let ios = ["iPhone", "iPad", "iPod"]
        .iter()
        .any(|d| user_agent.contains(d));
    if let Some(major) = product_version(user_agent, "Chrome/").filter(|_| !ios) {
        return Family::Chromium {
            major: major.first(),
            webview: user_agent.contains("; wv)"),
            edge: ["Edg/", "EdgA/"].iter().any(|t| user_agent.contains(t)),
            opera: ["OPR/", "OPX/"].iter().any(|t| user_agent.contains(t)),
        };
    }
    if let Some(v) = product_version(user_agent, "Firefox/") {
        if !ios {
            return Family::Firefox { major: v.first() };
        }
    }
    if user_agent.contains("AppleWebKit/") {
        // iOS: the OS version is the WebKit version ("CPU iPhone OS 16_4 like").
        let version = if ios {
            os_version(user_agent)
        } else {
            product_version(user_agent, "Version/").and_then(|v| v.first_two())
        };
        return Family::Safari { version };
    }
    Family::Other
}

/// The numbers after a product token such as `Chrome/`, which must start
/// the user agent or follow a non-alphanumeric byte (`HeadlessChrome/` is
/// not `Chrome/`).
fn product_version<'a>(user_agent: &'a str, token: &str) -> Option<Version<'a>> {
    let mut from = 0;
    while let Some(at) = user_agent.get(from..)?.find(token) {
        let start = from + at;
        let boundary = user_agent.as_bytes()[..start]
            .last()
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        if boundary {
            return Some(Version(&user_agent[start + token.len()..]));
        }
        from = start + token.len();
    }
    None
}

/// `OS 16_4` in an iOS platform comment.
fn os_version(user_agent: &str) -> Option<(u32, u32)> {
    let at = user_agent.find(" OS ")?;
    let rest = &user_agent[at + 4..];
    let mut parts = rest.split(['_', '.', ' ', ';', ')']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// Text following a product token: `131.0.6778.85 Safari/537.36`.
#[derive(Debug, Clone, Copy)]
struct Version<'a>(&'a str);

impl Version<'_> {
    fn numbers(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        let end = self
            .0
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(self.0.len());
        self.0[..end].split('.').map(|n| n.parse().ok())
    }

    fn first(&self) -> Option<u32> {
        self.numbers().next().flatten()
    }

    fn first_two(&self) -> Option<(u32, u32)> {
        let mut n = self.numbers();
        let major = n.next().flatten()?;
        Some((major, n.next().flatten().unwrap_or(0)))
    }
}

/// The brands of a `Sec-CH-UA` value: `"Chromium";v="131", "Not_A Brand";v="24"`.
fn brands(value: &str) -> impl Iterator<Item = (&str, Option<u32>)> {
    value.split(',').filter_map(|item| {
        let item = item.trim();
        let rest = item.strip_prefix('"')?;
        let (brand, params) = rest.split_once('"')?;
        let version = params
            .split(';')
            .find_map(|p| p.trim().strip_prefix("v="))
            .map(|v| v.trim_matches('"'))
            .and_then(|v| Version(v).first());
        Some((brand, version))
    })
}

fn hints_disagree(hints: &str, major: Option<u32>, edge: bool, opera: bool) -> bool {
    let mut any = false;
    let mut at_major = false;
    let (mut says_edge, mut says_opera) = (false, false);
    for (brand, version) in brands(hints) {
        any = true;
        if brand == "HeadlessChrome" {
            return true;
        }
        at_major |= major.is_some() && version == major;
        says_edge |= brand == "Microsoft Edge";
        says_opera |= brand.starts_with("Opera");
    }
    !any || (major.is_some() && !at_major) || says_edge != edge || says_opera != opera
}

/// The anomalies of one request. `header` looks a header up by its
/// lower-case name.
pub fn check<'h>(
    class: ClientClass,
    user_agent: &str,
    secure: bool,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Anomalies {
    let mut found = Anomalies::default();
    if class != ClientClass::Browser {
        return found;
    }
    if header("accept").is_none() {
        found.insert(HeaderAnomaly::NoAccept);
    }
    if header("accept-language").is_none() {
        found.insert(HeaderAnomaly::NoAcceptLanguage);
    }
    let hints = header("sec-ch-ua");
    let family = family(user_agent);
    let sends_fetch_metadata = match family {
        Family::Chromium { major, .. } => major.is_some_and(|m| m >= 76),
        Family::Firefox { major } => major.is_some_and(|m| m >= 90),
        Family::Safari { version } => version.is_some_and(|v| v >= (16, 4)),
        Family::Other => false,
    };
    let fetch_metadata = header("sec-fetch-site").is_some() && header("sec-fetch-mode").is_some();
    if secure && sends_fetch_metadata && !fetch_metadata {
        found.insert(HeaderAnomaly::NoFetchMetadata);
    }
    match family {
        Family::Chromium {
            major,
            webview,
            edge,
            opera,
        } => match hints {
            None if secure && !webview && major.is_some_and(|m| m >= 89) => {
                found.insert(HeaderAnomaly::NoClientHints)
            }
            Some(hints) if hints_disagree(hints, major, edge, opera) => {
                found.insert(HeaderAnomaly::ClientHintsMismatch)
            }
            _ => {}
        },
        Family::Firefox { .. } | Family::Safari { .. } => {
            let any_hint = ["sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform"]
                .iter()
                .any(|h| header(h).is_some());
            if any_hint {
                found.insert(HeaderAnomaly::UnexpectedClientHints);
            }
        }
        Family::Other => {}
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
    const WEBVIEW: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36";
    const OLD_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.150 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15";
    const OLD_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6 Safari/605.1.15";
    const CHROME_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
    const CHROME_HINTS: &str =
        r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#;

    fn run(ua: &str, secure: bool, headers: &[(&str, &str)]) -> Vec<&'static str> {
        check(ClientClass::Browser, ua, secure, |name| {
            headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        })
        .iter()
        .map(|a| a.as_str())
        .collect()
    }

    const BASE: [(&str, &str); 2] = [("accept", "text/html"), ("accept-language", "en")];
    const FETCH: [(&str, &str); 2] = [("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        BASE.iter()
            .chain(FETCH.iter())
            .chain(extra)
            .copied()
            .collect()
    }

    #[test]
    fn a_complete_chrome_request_is_consistent() {
        assert!(run(CHROME, true, &with(&[("sec-ch-ua", CHROME_HINTS)])).is_empty());
        let edge = r#""Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24""#;
        assert!(run(EDGE, true, &with(&[("sec-ch-ua", edge)])).is_empty());
    }

    #[test]
    fn accept_headers_are_always_expected() {
        assert_eq!(
            run(FIREFOX, false, &[]),
            ["no_accept", "no_accept_language"]
        );
        assert_eq!(
            run(FIREFOX, false, &[("accept", "*/*")]),
            ["no_accept_language"]
        );
        // Not a browser: nothing is expected of it.
        assert!(check(ClientClass::Tool, "curl/8.5.0", true, |_| None).is_empty());
    }

    #[test]
    fn client_hints_only_on_secure_requests_from_recent_chromium() {
        assert_eq!(run(CHROME, true, &with(&[])), ["no_client_hints"]);
        assert!(run(CHROME, false, &with(&[])).is_empty());
        assert!(run(OLD_CHROME, true, &with(&[])).is_empty());
        assert!(run(WEBVIEW, true, &with(&[])).is_empty());
        // Chrome on iOS is WebKit and sends no hints.
        assert!(run(CHROME_IOS, true, &with(&[])).is_empty());
    }

    #[test]
    fn hints_that_contradict_the_user_agent() {
        let wrong_version = r#""Google Chrome";v="120", "Chromium";v="120", "Not_A Brand";v="8""#;
        assert_eq!(
            run(CHROME, true, &with(&[("sec-ch-ua", wrong_version)])),
            ["client_hints_mismatch"]
        );
        let headless = r#""HeadlessChrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#;
        assert_eq!(
            run(CHROME, true, &with(&[("sec-ch-ua", headless)])),
            ["client_hints_mismatch"]
        );
        // Chrome's hints on an Edge user agent, Edge's on a Chrome one.
        assert_eq!(
            run(EDGE, true, &with(&[("sec-ch-ua", CHROME_HINTS)])),
            ["client_hints_mismatch"]
        );
        let edge = r#""Microsoft Edge";v="131", "Chromium";v="131""#;
        assert_eq!(
            run(CHROME, false, &with(&[("sec-ch-ua", edge)])),
            ["client_hints_mismatch"]
        );
        assert_eq!(
            run(CHROME, true, &with(&[("sec-ch-ua", "garbage")])),
            ["client_hints_mismatch"]
        );
    }

    #[test]
    fn fetch_metadata_follows_each_browsers_release() {
        let base: Vec<_> = BASE.to_vec();
        assert_eq!(run(FIREFOX, true, &base), ["no_fetch_metadata"]);
        assert_eq!(run(SAFARI, true, &base), ["no_fetch_metadata"]);
        assert!(run(OLD_SAFARI, true, &base).is_empty());
        assert!(run(FIREFOX, false, &base).is_empty());
        let ios_16_4 = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.4 Mobile/15E148 Safari/604.1";
        let ios_16_3 = ios_16_4.replace("16_4", "16_3");
        assert_eq!(run(ios_16_4, true, &base), ["no_fetch_metadata"]);
        assert!(run(&ios_16_3, true, &base).is_empty());
        // One of the two is not enough.
        let half = [BASE[0], BASE[1], FETCH[0]];
        assert_eq!(run(FIREFOX, true, &half), ["no_fetch_metadata"]);
    }

    #[test]
    fn firefox_and_safari_never_send_client_hints() {
        for ua in [FIREFOX, SAFARI, CHROME_IOS] {
            assert_eq!(
                run(ua, false, &with(&[("sec-ch-ua-mobile", "?0")])),
                ["unexpected_client_hints"],
                "{ua}"
            );
        }
    }

    #[test]
    fn product_tokens_need_a_boundary() {
        assert!(product_version("HeadlessChrome/131", "Chrome/").is_none());
        let v = product_version("x HeadlessChrome/1 Chrome/131.0.1 y", "Chrome/").unwrap();
        assert_eq!(v.first(), Some(131));
        assert_eq!(
            os_version("(iPhone; CPU iPhone OS 17_5_1 like"),
            Some((17, 5))
        );
        assert_eq!(os_version("(iPad; CPU OS 18 like"), Some((18, 0)));
    }
}
