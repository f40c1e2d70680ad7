//! Access-log lines, for `classify --log` and `score --log`: Envoy's
//! default format and the combined format (nginx, Apache).
//!
//! - Envoy: `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"`.
//!   The client is the first `X-Forwarded-For` address; there is no referrer.
//! - Combined: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.

use clap::ValueEnum;
use palisade::scoring::clock;
use palisade::scoring::replay::{LogLine, Resolution};
use std::net::IpAddr;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Envoy's default access-log format.
    Envoy,
    /// Apache/nginx combined log format.
    Combined,
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Envoy => "envoy",
            LogFormat::Combined => "combined",
        }
    }

    pub fn resolution(self) -> Resolution {
        match self {
            LogFormat::Envoy => Resolution::Milliseconds,
            LogFormat::Combined => Resolution::Seconds,
        }
    }
}

/// One token of a log line.
#[derive(Debug, PartialEq)]
enum Token {
    /// `[...]`
    Bracketed(String),
    /// `"..."`, with `\"` and `\\` unescaped.
    Quoted(String),
    Bare(String),
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Bracketed(s) | Token::Quoted(s) | Token::Bare(s) => s,
        }
    }
}

fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(Token::Quoted(s));
            }
            '[' => {
                chars.next();
                out.push(Token::Bracketed(
                    chars.by_ref().take_while(|c| *c != ']').collect(),
                ));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Bare(s));
            }
        }
    }
    out
}

fn dash_empty(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_string()
    }
}

fn first_forwarded(xff: &str) -> Option<IpAddr> {
    xff.split(',').next().and_then(|s| s.trim().parse().ok())
}

/// The positions of the fields each format needs, in its tokens.
struct Layout {
    time: usize,
    request: usize,
    status: usize,
    /// `None`: the format does not log it.
    referrer: Option<usize>,
    user_agent: usize,
}

fn layout(format: LogFormat) -> Layout {
    match format {
        // ip ident user [time] "request" status bytes "referer" "user agent"
        LogFormat::Combined => Layout {
            time: 3,
            request: 4,
            status: 5,
            referrer: Some(7),
            user_agent: 8,
        },
        // [time] "request" status flags rx tx duration upstream "xff" "user agent" …
        LogFormat::Envoy => Layout {
            time: 0,
            request: 1,
            status: 2,
            referrer: None,
            user_agent: 9,
        },
    }
}

fn client_of(tokens: &[Token], format: LogFormat) -> Option<(String, Option<IpAddr>)> {
    match format {
        LogFormat::Combined => {
            let Token::Bare(ip) = tokens.first()? else {
                return None;
            };
            Some((ip.clone(), ip.parse().ok()))
        }
        LogFormat::Envoy => {
            let xff = tokens.get(8)?.text();
            let ip = first_forwarded(xff);
            Some((ip.map_or_else(|| "-".to_string(), |ip| ip.to_string()), ip))
        }
    }
}

/// The user agent and client address of a line, for `classify`: only
/// these two fields need to be where the format puts them.
pub fn user_agent_and_ip(line: &str, format: LogFormat) -> Option<(String, Option<IpAddr>)> {
    let tokens = tokens(line);
    let mut quoted = tokens.iter().filter(|t| matches!(t, Token::Quoted(_)));
    // Both formats: the user agent is the third quoted field; Envoy's
    // second is X-Forwarded-For.
    let (forwarded, ua) = (quoted.nth(1)?.text(), quoted.next()?.text());
    let ip = match format {
        LogFormat::Combined => match tokens.first()? {
            Token::Bare(ip) => ip.parse().ok(),
            _ => return None,
        },
        LogFormat::Envoy => first_forwarded(forwarded),
    };
    Some((dash_empty(ua), ip))
}

/// Every field `score --log` needs from a line, or what is wrong with it.
pub fn parse(line: &str, format: LogFormat) -> Result<LogLine, String> {
    let tokens = tokens(line);
    let l = layout(format);
    let field = |i: usize, what: &str| {
        tokens
            .get(i)
            .map(Token::text)
            .ok_or_else(|| format!("no {what}"))
    };
    let time = match tokens.get(l.time) {
        Some(Token::Bracketed(t)) => t,
        _ => return Err("no [time]".into()),
    };
    let time_ns = match format {
        LogFormat::Envoy => clock::parse_rfc3339(time),
        LogFormat::Combined => clock::parse_clf(time),
    }
    .ok_or_else(|| format!("unreadable time {time:?}"))?;
    let request = field(l.request, "request")?;
    let mut parts = request.split_whitespace();
    let (method, path) = match (parts.next(), parts.next()) {
        (Some(m), Some(p)) => (m.to_string(), p.to_string()),
        _ => return Err(format!("unreadable request {request:?}")),
    };
    let status_text = field(l.status, "status")?;
    let status = status_text
        .parse::<u16>()
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("unreadable status {status_text:?}"))?;
    let has_referrer = match l.referrer {
        Some(i) => !dash_empty(field(i, "referrer")?).is_empty(),
        None => false,
    };
    let user_agent = dash_empty(field(l.user_agent, "user agent")?);
    let (client, ip) = client_of(&tokens, format).ok_or("no client address")?;
    Ok(LogLine {
        client,
        ip,
        time_ns,
        method,
        path,
        status,
        has_referrer,
        user_agent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"66.249.66.1 - - [21/Nov/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "https://www.example.com/" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)""#;
    const ENVOY: &str = r#"[2026-11-21T10:00:00.250Z] "POST /login HTTP/1.1" 401 - 0 5 1 1 "203.0.113.9, 10.0.0.1" "curl/8.5.0" "id" "example.com" "127.0.0.1:8080""#;

    #[test]
    fn classify_reads_user_agent_and_address() {
        let (ua, ip) = user_agent_and_ip(COMBINED, LogFormat::Combined).unwrap();
        assert!(ua.contains("Googlebot"));
        assert_eq!(ip, Some("66.249.66.1".parse().unwrap()));
        assert!(user_agent_and_ip("garbage", LogFormat::Combined).is_none());
        let (ua, ip) = user_agent_and_ip(ENVOY, LogFormat::Envoy).unwrap();
        assert_eq!(ua, "curl/8.5.0");
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn score_reads_every_field() {
        let l = parse(COMBINED, LogFormat::Combined).unwrap();
        assert_eq!(
            (l.method.as_str(), l.path.as_str(), l.status, l.has_referrer),
            ("GET", "/a?b=1", 200, true)
        );
        assert_eq!(l.client, "66.249.66.1");
        assert_eq!(clock::format_clf(l.time_ns), "21/Nov/2026:10:00:00 +0000");
        let l = parse(ENVOY, LogFormat::Envoy).unwrap();
        assert_eq!(
            (l.method.as_str(), l.status, l.has_referrer),
            ("POST", 401, false)
        );
        assert_eq!(
            (l.client.as_str(), l.user_agent.as_str()),
            ("203.0.113.9", "curl/8.5.0")
        );
        assert_eq!(l.time_ns % 1_000_000_000, 250_000_000);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(
            parse("nonsense", LogFormat::Envoy).unwrap_err(),
            "no [time]"
        );
        let bad_status = COMBINED.replace(" 200 ", " OK ");
        assert!(parse(&bad_status, LogFormat::Combined)
            .unwrap_err()
            .contains("status \"OK\""));
        let bad_time = ENVOY.replace("2026-11-21T", "yesterday ");
        assert!(parse(&bad_time, LogFormat::Envoy)
            .unwrap_err()
            .contains("unreadable time"));
        let no_xff = ENVOY.replace("203.0.113.9, 10.0.0.1", "-");
        assert_eq!(parse(&no_xff, LogFormat::Envoy).unwrap().client, "-");
    }

    #[test]
    fn quotes_are_unescaped() {
        assert_eq!(
            tokens(r#"a "b\"c" [d e]"#),
            [
                Token::Bare("a".into()),
                Token::Quoted("b\"c".into()),
                Token::Bracketed("d e".into())
            ]
        );
    }
}
