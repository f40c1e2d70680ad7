//! The request as the engine sees it: borrowed host data, nothing parsed yet.

use std::net::IpAddr;

/// One HTTP request. Hosts fill it from their own types without copying
/// bodies; header names may be in any case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
    /// The query string without `?` (empty when none).
    pub query: &'a str,
    /// The `Host` / `:authority` value (a port is ignored when matching).
    pub host: &'a str,
    pub headers: Headers<'a>,
    /// The address of the peer that connected to the proxy.
    pub connection_ip: Option<IpAddr>,
}

/// The request's headers as the host holds them: owned strings (the
/// companion, the CLI, tests) or text borrowed from one buffer (the
/// filter reads Envoy's serialised header map in place, since copying
/// each name and value would cost two allocations per header on every
/// request).
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    Owned(&'a [(String, String)]),
    Borrowed(&'a [(&'a str, &'a str)]),
}

impl<'a> Headers<'a> {
    /// Every (name, value), in order.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let (owned, borrowed) = match self {
            Headers::Owned(h) => (h, &[][..]),
            Headers::Borrowed(h) => (&[][..], h),
        };
        owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(borrowed.iter().copied())
    }
}

impl<'a> From<&'a [(String, String)]> for Headers<'a> {
    fn from(headers: &'a [(String, String)]) -> Self {
        Headers::Owned(headers)
    }
}

impl<'a> From<&'a Vec<(String, String)>> for Headers<'a> {
    fn from(headers: &'a Vec<(String, String)>) -> Self {
        Headers::Owned(headers)
    }
}

impl<'a> From<&'a [(&'a str, &'a str)]> for Headers<'a> {
    fn from(headers: &'a [(&'a str, &'a str)]) -> Self {
        Headers::Borrowed(headers)
    }
}

impl<'a> From<&'a Vec<(&'a str, &'a str)>> for Headers<'a> {
    fn from(headers: &'a Vec<(&'a str, &'a str)>) -> Self {
        Headers::Borrowed(headers)
    }
}

impl<'a> Request<'a> {
    /// Builds a request from a path that may carry a query (`/a?b=c`).
    pub fn new(
        method: &'a str,
        path_and_query: &'a str,
        host: &'a str,
        headers: impl Into<Headers<'a>>,
        connection_ip: Option<IpAddr>,
    ) -> Request<'a> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method,
            path,
            query,
            host,
            headers: headers.into(),
            connection_ip,
        }
    }

    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The `:scheme` pseudo-header (Envoy sends it; other hosts add it),
    /// or `""`.
    pub fn scheme(&self) -> &'a str {
        self.header(":scheme").unwrap_or("")
    }

    pub fn user_agent(&self) -> &'a str {
        self.header("user-agent").unwrap_or("")
    }

    /// The host without a port, for matching.
    pub fn host_name(&self) -> &'a str {
        let host = self.host;
        if host.starts_with('[') {
            // [v6]:port; an unclosed `[` (a client's choice) stays as it is.
            return host.find(']').map_or(host, |end| &host[..=end]);
        }
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    }

    /// Whether the client asked for JSON rather than a page.
    pub fn wants_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|accept| accept.contains("application/json"))
    }

    /// The value of the cookie `name`, if sent.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// The first query parameter named `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_pairs(self.query).collect()
    }
}

/// The `k=v&k2=v2` pairs of a query or form body, percent-decoded (invalid
/// UTF-8 replaced); a pair without `=` has an empty value.
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` and `+` (form encoding); invalid escapes stay as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                // Two hex digits exactly (`from_str_radix` alone takes `+1`).
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes `text` for a query value: every byte but ASCII letters,
/// digits, `-._~` and `/` becomes `%XX`, so [`percent_decode`] gives `text`
/// back exactly (`+` and `%` included).
pub fn percent_encode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The most of a path a log line carries: enough to tell requests apart,
/// and no request makes a log line of tens of kilobytes.
pub const LOGGED_PATH_BYTES: usize = 256;

/// `path` as a log line carries it: every byte outside printable ASCII
/// percent-encoded (control characters, which Envoy and nginx refuse in a
/// request line, but a log must not rely on that), and cut after
/// [`LOGGED_PATH_BYTES`] with `...` marking the cut.
pub fn logged_path(path: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(path.len().min(LOGGED_PATH_BYTES) + 3);
    for b in path.bytes() {
        if out.len() >= LOGGED_PATH_BYTES {
            out.push_str("...");
            break;
        }
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_hold_no_control_bytes_and_are_bounded() {
        assert_eq!(logged_path("/a/b?c=d"), "/a/b?c=d");
        assert_eq!(logged_path("/a\r\nforged: 1"), "/a%0D%0Aforged:%201");
        assert_eq!(logged_path("/caf\u{e9}\u{1b}[31m"), "/caf%C3%A9%1B[31m");
        let long = logged_path(&format!("/{}", "x".repeat(100_000)));
        assert_eq!(long.len(), LOGGED_PATH_BYTES + 3);
        assert!(long.ends_with("xx..."));
        let exact = "/".repeat(LOGGED_PATH_BYTES);
        assert_eq!(logged_path(&exact), exact);
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splits_path_and_query() {
        let h = headers(&[]);
        let r = Request::new("GET", "/a/b?x=1&y=%2F+z", "example.com:8080", &h, None);
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query, "x=1&y=%2F+z");
        assert_eq!(r.query_param("y").as_deref(), Some("/ z"));
        assert_eq!(r.query_param("q"), None);
        assert_eq!(r.host_name(), "example.com");
        let r = Request::new("GET", "/", "[::1]:80", &h, None);
        assert_eq!(r.host_name(), "[::1]");
    }

    #[test]
    fn headers_and_cookies() {
        let h = headers(&[
            ("User-Agent", "curl/8"),
            ("cookie", "a=1; palisade=\"tok\""),
            ("Accept", "application/json"),
        ]);
        let r = Request::new("GET", "/", "h", &h, None);
        assert_eq!(r.user_agent(), "curl/8");
        assert_eq!(r.cookie("palisade"), Some("tok"));
        assert_eq!(r.cookie("b"), None);
        assert!(r.wants_json());
    }

    #[test]
    fn percent_encoding_round_trips() {
        let odd = "/caf\u{e9} a+b?q=%41&r=#x/~._-";
        let encoded = percent_encode(odd);
        assert_eq!(encoded, "/caf%C3%A9%20a%2Bb%3Fq%3D%2541%26r%3D%23x/~._-");
        assert_eq!(percent_decode(&encoded), odd);
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
        assert_eq!(percent_decode("%"), "%");
    }
}
