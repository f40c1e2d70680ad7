//! The siteverify contracts, as each provider documents them: the request
//! the companion sends and how it reads the answer.
//!
//! - Turnstile, hCaptcha, reCAPTCHA v2 and v3: `POST` a form with `secret`,
//!   `response` and `remoteip` (hCaptcha also `sitekey`); the answer is JSON
//!   `{"success", "error-codes", "hostname", "challenge_ts", ...}`, and
//!   reCAPTCHA v3 adds `score` and `action`.
//! - Friendly Captcha v2: `POST` JSON `{"response", "sitekey"}` with the API
//!   key in `X-API-Key`; the answer is `{"success", "data": {"challenge":
//!   {"timestamp", "origin"}}, "error": {"error_code", "detail"}}`.
//!
//! The answer is judged without the network, so every case is tested here
//! and against the contract server (`tests/e2e/test_providers.py`).

use super::Siteverify;
use crate::config::ChallengeKind;
use serde_json::Value;

/// The provider's own endpoint.
pub fn default_url(kind: ChallengeKind) -> &'static str {
    match kind {
        ChallengeKind::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        ChallengeKind::Hcaptcha => "https://api.hcaptcha.com/siteverify",
        ChallengeKind::FriendlyCaptcha => "https://global.frcapi.com/api/v2/captcha/siteverify",
        // reCAPTCHA v2 and v3 share one.
        _ => "https://www.google.com/recaptcha/api/siteverify",
    }
}

/// A siteverify call, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub url: String,
    pub content_type: &'static str,
    /// Extra headers (Friendly Captcha's API key).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The call that checks `response` (the widget's token) from `remote_ip`.
pub fn call(provider: &Siteverify, response: &str, remote_ip: Option<&str>) -> Call {
    let url = provider.verify_url().to_string();
    if provider.kind == ChallengeKind::FriendlyCaptcha {
        let body = serde_json::json!({
            "response": response,
            "sitekey": provider.config.site_key,
        });
        return Call {
            url,
            content_type: "application/json",
            headers: vec![("x-api-key", provider.secret.clone())],
            body: body.to_string().into_bytes(),
        };
    }
    let mut fields = vec![("secret", provider.secret.as_str()), ("response", response)];
    if let Some(ip) = remote_ip {
        fields.push(("remoteip", ip));
    }
    if provider.kind == ChallengeKind::Hcaptcha {
        fields.push(("sitekey", provider.config.site_key.as_str()));
    }
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    Call {
        url,
        content_type: "application/x-www-form-urlencoded",
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What siteverify said about a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A person passed, on this host.
    Passed,
    /// Not a pass: the provider's error codes, or ours (`hostname-mismatch`,
    /// `score-too-low`, `action-mismatch`).
    Refused(Vec<String>),
    /// No usable answer: the provider is down or slow (a 5xx, an unreadable
    /// body, an internal error, or the caller's timeout), or refuses our
    /// own credentials (a bad secret or site key, which no visitor can
    /// fix). The fallback kind is served instead.
    Unusable(String),
}

/// Error codes that are not the visitor's doing: our credentials are
/// wrong, or (Turnstile's `internal-error`) the provider failed.
const NOT_THE_VISITOR: [&str; 7] = [
    "missing-input-secret",
    "invalid-input-secret",
    "sitekey-secret-mismatch",
    "auth_required",
    "auth_invalid",
    "sitekey_invalid",
    "internal-error",
];

/// Judges siteverify's answer (`status`, `body`) for a page served on `host`.
pub fn judge(provider: &Siteverify, status: u16, body: &[u8], host: &str) -> Verdict {
    if status >= 500 {
        return Verdict::Unusable(format!("siteverify answered {status}"));
    }
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return Verdict::Unusable(format!("siteverify answered {status} without JSON"));
    };
    let Some(success) = answer.get("success").and_then(Value::as_bool) else {
        return Verdict::Unusable(format!("siteverify answered {status} without `success`"));
    };
    let friendly = provider.kind == ChallengeKind::FriendlyCaptcha;
    if !success {
        let codes = if friendly {
            answer
                .pointer("/error/error_code")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_string()])
                .unwrap_or_default()
        } else {
            answer
                .get("error-codes")
                .and_then(Value::as_array)
                .map(|codes| {
                    codes
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(code) = codes.iter().find(|c| NOT_THE_VISITOR.contains(&c.as_str())) {
            return Verdict::Unusable(format!("siteverify could not judge: {code}"));
        }
        return Verdict::Refused(codes);
    }
    let hostname = if friendly {
        answer
            .pointer("/data/challenge/origin")
            .and_then(Value::as_str)
            .map(origin_host)
    } else {
        answer.get("hostname").and_then(Value::as_str)
    };
    if let Some(hostname) = hostname.filter(|h| !h.is_empty()) {
        if !hostname.eq_ignore_ascii_case(host_only(host)) {
            return refused("hostname-mismatch");
        }
    }
    if provider.kind == ChallengeKind::RecaptchaV3 {
        let min = provider.config.min_score.unwrap_or(0.5);
        match answer.get("score").and_then(Value::as_f64) {
            Some(score) if score >= min => {}
            _ => return refused("score-too-low"),
        }
        if let Some(want) = &provider.config.action {
            if answer.get("action").and_then(Value::as_str) != Some(want.as_str()) {
                return refused("action-mismatch");
            }
        }
    }
    Verdict::Passed
}

fn refused(code: &str) -> Verdict {
    Verdict::Refused(vec![code.to_string()])
}

/// `example.com` of `https://example.com:8443`.
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    host_only(rest.split('/').next().unwrap_or(rest))
}

/// A Host header without its port (`[::1]:80` → `[::1]`).
fn host_only(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SiteverifyConfig;

    fn provider(kind: ChallengeKind, extra: &str) -> Siteverify {
        let config: SiteverifyConfig =
            serde_norway::from_str(&format!("{{site_key: site-key, secret_env: S{extra}}}"))
                .unwrap();
        Siteverify {
            kind,
            config,
            secret: "the secret&=".to_string(),
        }
    }

    #[test]
    fn form_providers_post_secret_response_and_remoteip() {
        let c = call(
            &provider(ChallengeKind::Hcaptcha, ""),
            "tok en",
            Some("192.0.2.1"),
        );
        assert_eq!(c.url, "https://api.hcaptcha.com/siteverify");
        assert_eq!(c.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(c.body).unwrap(),
            "secret=the+secret%26%3D&response=tok+en&remoteip=192.0.2.1&sitekey=site-key"
        );
        let c = call(&provider(ChallengeKind::Turnstile, ""), "t", None);
        assert_eq!(
            String::from_utf8(c.body).unwrap(),
            "secret=the+secret%26%3D&response=t"
        );
    }

    #[test]
    fn friendly_captcha_posts_json_with_the_api_key() {
        let c = call(
            &provider(ChallengeKind::FriendlyCaptcha, ""),
            "t",
            Some("192.0.2.1"),
        );
        assert_eq!(c.url, "https://global.frcapi.com/api/v2/captcha/siteverify");
        assert_eq!(c.headers, vec![("x-api-key", "the secret&=".to_string())]);
        let body: Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"response": "t", "sitekey": "site-key"})
        );
    }

    #[test]
    fn answers_are_judged_by_success_hostname_and_score() {
        let ts = provider(ChallengeKind::Turnstile, "");
        let ok = br#"{"success":true,"challenge_ts":"2022-02-28T15:14:30.096Z","hostname":"example.com","error-codes":[],"action":"login","cdata":"sessionid-123456789"}"#;
        assert_eq!(judge(&ts, 200, ok, "example.com:8080"), Verdict::Passed);
        assert_eq!(
            judge(&ts, 200, ok, "other.example"),
            refused("hostname-mismatch")
        );
        let bad = br#"{"success":false,"error-codes":["invalid-input-response"]}"#;
        assert_eq!(
            judge(&ts, 200, bad, "example.com"),
            refused("invalid-input-response")
        );
        let secret = br#"{"success":false,"error-codes":["invalid-input-secret"]}"#;
        assert!(matches!(judge(&ts, 200, secret, "h"), Verdict::Unusable(_)));
        assert!(matches!(judge(&ts, 503, ok, "h"), Verdict::Unusable(_)));
        assert!(matches!(
            judge(&ts, 200, b"<html>", "h"),
            Verdict::Unusable(_)
        ));

        let v3 = provider(
            ChallengeKind::RecaptchaV3,
            ", min_score: 0.7, action: palisade",
        );
        let answer = |score: f64, action: &str| {
            format!(
                r#"{{"success":true,"score":{score},"action":"{action}","hostname":"example.com"}}"#
            )
        };
        assert_eq!(
            judge(&v3, 200, answer(0.9, "palisade").as_bytes(), "example.com"),
            Verdict::Passed
        );
        assert_eq!(
            judge(&v3, 200, answer(0.3, "palisade").as_bytes(), "example.com"),
            refused("score-too-low")
        );
        assert_eq!(
            judge(&v3, 200, answer(0.9, "login").as_bytes(), "example.com"),
            refused("action-mismatch")
        );

        let frc = provider(ChallengeKind::FriendlyCaptcha, "");
        let ok = br#"{"success":true,"data":{"event_id":"ev_1","challenge":{"timestamp":"2023-08-04T13:01:25Z","origin":"https://example.com"}}}"#;
        assert_eq!(judge(&frc, 200, ok, "example.com"), Verdict::Passed);
        assert_eq!(
            judge(&frc, 200, ok, "evil.example"),
            refused("hostname-mismatch")
        );
        let dup =
            br#"{"success":false,"error":{"error_code":"response_duplicate","detail":"..."}}"#;
        assert_eq!(
            judge(&frc, 200, dup, "example.com"),
            refused("response_duplicate")
        );
        let auth = br#"{"success":false,"error":{"error_code":"auth_invalid","detail":"..."}}"#;
        assert!(matches!(
            judge(&frc, 401, auth, "example.com"),
            Verdict::Unusable(_)
        ));
    }

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(host_only("example.com:443"), "example.com");
        assert_eq!(host_only("[::1]:80"), "[::1]");
        assert_eq!(origin_host("https://example.com:8443/x"), "example.com");
    }
}
