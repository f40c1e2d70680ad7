//! The path routes and rules match: one canonical form for the many ways
//! of writing a path that some server reads as the same.
//!
//! A policy that blocks `/admin/*` must also block `/admin;x/y`,
//! `/x/..;/admin/y`, `//admin/y`, `/%61dmin/y` and `/admin%2fy`, because
//! the server behind the proxy may read each of them as `/admin/y`. The
//! upstream still receives the path as the client sent it; only matching
//! uses this form, so it errs towards matching more. Envoy's
//! `normalize_path` does part of this, but a policy must not depend on how
//! the proxy is configured, and nginx's `auth_request` check sees the raw
//! request URI.
//!
//! The canonical form of a path:
//! 1. refuses characters that no valid request path holds, raw: controls,
//!    space, `"`, `#`, `<`, `>`, `` ` ``, `{`, `}`, `\` and every byte
//!    past ASCII (RFC 3986 has them percent-encoded; browsers do so, and
//!    nginx would pass raw ones that Envoy refuses) ([`BadPath`]);
//! 2. is percent-decoded, repeatedly (double encoding: `%252f` is `/` to a
//!    server that decodes twice), at most [`MAX_DECODES`] times; what is
//!    still encoded after that, or is not UTF-8 once decoded (overlong
//!    encodings like `%c0%af`), or decodes to a control character, is
//!    refused. A decoded `\` becomes `/` (Windows servers read it so);
//! 3. drops `;parameters` from every segment (Java servlet containers
//!    strip them: `/admin;jsessionid=x/y` is `/admin/y` there);
//! 4. drops trailing dots and spaces from each segment (Windows and IIS
//!    do: `/admin./` is `/admin/`);
//! 5. resolves `.` and `..` segments and merges repeated slashes.
//!
//! Case folding (`paths.case_insensitive`) is a separate step, for
//! case-insensitive servers (IIS, most Windows stacks).

use std::borrow::Cow;
use std::fmt;

/// How many rounds of percent-decoding a path may need.
pub const MAX_DECODES: usize = 3;

/// Why a path is refused (answered 400 by every host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// A raw character that no valid request path holds.
    Character(u8),
    /// Still percent-encoded after [`MAX_DECODES`] rounds.
    TooEncoded,
    /// Not UTF-8 once decoded (overlong or truncated sequences).
    NotUtf8,
    /// Decodes to a control character.
    Control(u8),
}

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadPath::Character(b) => write!(f, "the path holds the raw byte 0x{b:02x}"),
            BadPath::TooEncoded => write!(
                f,
                "the path is percent-encoded more than {MAX_DECODES} times"
            ),
            BadPath::NotUtf8 => write!(f, "the path is not UTF-8 once percent-decoded"),
            BadPath::Control(b) => {
                write!(f, "the path decodes to the control character 0x{b:02x}")
            }
        }
    }
}

impl BadPath {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            BadPath::Character(_) => "bad_character",
            BadPath::TooEncoded => "too_encoded",
            BadPath::NotUtf8 => "not_utf8",
            BadPath::Control(_) => "control_character",
        }
    }
}

/// The canonical form of `path` (without its query), borrowed when the
/// path is already canonical, as nearly every path is.
pub fn canonical(path: &str) -> Result<Cow<'_, str>, BadPath> {
    if let Some(&b) = path.as_bytes().iter().find(|&&b| refused_raw(b)) {
        return Err(BadPath::Character(b));
    }
    if !path.starts_with('/') || is_canonical(path) {
        // `*` (OPTIONS) and the like are matched as they are.
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path)?;
    Ok(Cow::Owned(resolve(&decoded)))
}

/// `canonical(path)` folded to lower case, for case-insensitive matching.
/// ASCII, plus the three characters whose Unicode case mapping lands on an
/// ASCII letter (dotless `ı` and long `ſ` upper-case to `I` and `S`, the
/// Kelvin sign lower-cases to `k`), so that `/admın` is `/admin` here as it
/// is to a server comparing `toUpperCase()` forms (Java, .NET). Other
/// letters stay: Unicode's case tables would add kilobytes to the filter,
/// and no other folding reaches an ASCII path.
pub fn folded(path: &str) -> Cow<'_, str> {
    if !path.bytes().any(|b| b.is_ascii_uppercase())
        && !path.contains(['\u{131}', '\u{17f}', '\u{212a}'])
    {
        return Cow::Borrowed(path);
    }
    Cow::Owned(
        path.chars()
            .map(|c| match c {
                '\u{131}' => 'i',
                '\u{17f}' => 's',
                '\u{212a}' => 'k',
                c => c.to_ascii_lowercase(),
            })
            .collect(),
    )
}

fn refused_raw(b: u8) -> bool {
    !b.is_ascii()
        || b < 0x20
        || matches!(
            b,
            0x7f | b' ' | b'"' | b'#' | b'<' | b'>' | b'`' | b'{' | b'}' | b'\\'
        )
}

/// True when none of the steps would change `path`: no escape, no
/// parameter, no empty or dot segment, no segment ending in a dot.
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    !bytes.iter().any(|&b| b == b'%' || b == b';')
        && !bytes
            .windows(2)
            .any(|w| w == b"//" || w == b"/." || w == b"./")
        && !path.ends_with('.')
}

/// Percent-decodes until nothing changes, at most [`MAX_DECODES`] rounds.
fn decode(path: &str) -> Result<String, BadPath> {
    let mut bytes = path.as_bytes().to_vec();
    let mut rounds = 0;
    while let Some(next) = decode_once(&bytes) {
        rounds += 1;
        if rounds > MAX_DECODES {
            return Err(BadPath::TooEncoded);
        }
        bytes = next;
    }
    if let Some(&b) = bytes.iter().find(|&&b| b < 0x20 || b == 0x7f) {
        return Err(BadPath::Control(b));
    }
    let text = String::from_utf8(bytes).map_err(|_| BadPath::NotUtf8)?;
    Ok(text.replace('\\', "/"))
}

/// One round of `%XX` decoding; `None` when there was nothing to decode.
fn decode_once(bytes: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                changed = true;
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// Steps 3-5 on a decoded path that starts with `/`.
fn resolve(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for raw in path.split('/').skip(1) {
        let segment = raw.split(';').next().unwrap_or("");
        trailing_slash = true;
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => {
                let trimmed = segment.trim_end_matches(['.', ' ']);
                if !trimmed.is_empty() {
                    segments.push(trimmed);
                    trailing_slash = false;
                }
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(path: &str) -> String {
        canonical(path).unwrap().into_owned()
    }

    #[test]
    fn ordinary_paths_are_borrowed_unchanged() {
        for path in [
            "/",
            "/a/b",
            "/a/b/",
            "/index.html",
            "/v1.2/x",
            "/a-b_c~d",
            "*",
        ] {
            assert!(
                matches!(canonical(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
    }

    #[test]
    fn every_spelling_of_admin_y_is_admin_y() {
        for path in [
            "/admin/y",
            "//admin/y",
            "/admin//y",
            "/./admin/y",
            "/x/../admin/y",
            "/admin;x/y",
            "/admin;jsessionid=1/y",
            "/x/..;/admin/y",
            "/admin/;/y",
            "/admin./y",
            "/admin%20/y",
            "/%61dmin/y",
            "/admin%2fy",
            "/admin%2Fy",
            "/admin%252fy",
            "/admin%25252fy",
            "/admin%5cy",
            "/%2e/admin/y",
            "/x/%2e%2e/admin/y",
            "/x/%252e%252e/admin/y",
            "/admin/y;",
            "/admin/./y",
            "/admin/z/../y",
        ] {
            assert_eq!(canon(path), "/admin/y", "{path}");
        }
    }

    #[test]
    fn trailing_slashes_and_dot_segments_at_the_end() {
        assert_eq!(canon("/admin/"), "/admin/");
        assert_eq!(canon("/admin/."), "/admin/");
        assert_eq!(canon("/admin/x/.."), "/admin/");
        assert_eq!(canon("/.."), "/");
        assert_eq!(canon("/../../a"), "/a");
        assert_eq!(canon("/a."), "/a");
    }

    #[test]
    fn refused_paths_say_why() {
        assert_eq!(canonical("/a#b"), Err(BadPath::Character(b'#')));
        assert_eq!(canonical("/a\\b"), Err(BadPath::Character(b'\\')));
        assert_eq!(canonical("/a b"), Err(BadPath::Character(b' ')));
        assert_eq!(canonical("/a\0"), Err(BadPath::Character(0)));
        assert_eq!(canonical("/caf\u{e9}"), Err(BadPath::Character(0xc3)));
        assert_eq!(canonical("/a\u{fffd}"), Err(BadPath::Character(0xef)));
        assert_eq!(canonical("/a%00b"), Err(BadPath::Control(0)));
        assert_eq!(canonical("/a%0d%0ab"), Err(BadPath::Control(b'\r')));
        assert_eq!(canonical("/%c0%afadmin"), Err(BadPath::NotUtf8));
        assert_eq!(canonical("/%ff"), Err(BadPath::NotUtf8));
        assert_eq!(canonical("/a%2525252fb"), Err(BadPath::TooEncoded));
        assert_eq!(
            BadPath::Character(b'#').to_string(),
            "the path holds the raw byte 0x23"
        );
    }

    #[test]
    fn what_is_not_an_escape_stays() {
        assert_eq!(canon("/100%"), "/100%");
        assert_eq!(canon("/a%zz"), "/a%zz");
        assert_eq!(canon("/caf%c3%a9"), "/café");
    }

    #[test]
    fn folding_lowers_only_when_needed() {
        assert!(matches!(folded("/admin"), Cow::Borrowed(_)));
        assert_eq!(folded("/Admin/X"), "/admin/x");
        assert_eq!(folded("/ÄDMIN"), "/Ädmin");
        assert_eq!(
            folded("/adm\u{131}n/\u{17f}ecret/\u{212a}ey"),
            "/admin/secret/key"
        );
    }
}
