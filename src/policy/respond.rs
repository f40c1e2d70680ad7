//! The HTTP side of a decision: the responses Palisade answers with itself
//! (block, rate limited, the proof-of-work challenge, the verify endpoint)
//! and the headers it adds upstream. Hosts only copy these onto the wire.
//! Challenges of the companion's kinds are handed off in [`super::handoff`].

use super::{Action, CompanionHealth, Decision, Policy, Request};
use crate::challenge::{self, ChallengeError, Passed};
use crate::config::{ChallengeKind, FailureMode, SameSite};
use serde_json::json;
use std::net::IpAddr;

/// A response for the host to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub(super) fn new(status: u16, content_type: &str, body: String) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body,
        }
    }

    pub(super) fn json(status: u16, value: serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub(super) fn html(status: u16, title: &str, message: &str) -> Response {
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
             <body><h1>{t}</h1><p>{m}</p></body></html>\n",
            t = escape_html(title),
            m = escape_html(message)
        );
        Response::new(status, "text/html; charset=utf-8", body)
    }

    pub(super) fn with_header(mut self, name: &str, value: String) -> Response {
        self.headers.push((name.to_string(), value));
        self
    }
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the engine answers a request with, for the host to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response to send; `None`: the request goes on upstream.
    pub response: Option<Response>,
    /// How the companion figured in the reply, for the host's metrics.
    pub companion: CompanionUse,
}

impl Reply {
    pub(super) fn upstream() -> Reply {
        Reply {
            response: None,
            companion: CompanionUse::NotInvolved,
        }
    }

    pub(super) fn send(response: Response) -> Reply {
        Reply {
            response: Some(response),
            companion: CompanionUse::NotInvolved,
        }
    }
}

/// How the companion figured in a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanionUse {
    /// Not at all: no challenge, or one the filter serves itself (`pow`).
    NotInvolved,
    /// The challenge was handed to the companion (a redirect to its page,
    /// its URL in JSON, or an interstitial linking to it).
    HandedOff,
    /// The companion was down and `companion.failure_mode` made the reply.
    /// `FailOpen` without a response means a challenged request goes
    /// upstream unchallenged: the host must count it.
    Fallback(FailureMode),
}

/// What happened at the verify endpoint (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    Passed,
    Failed(ChallengeError),
    /// Not a well-formed submission (method, content type, size, fields).
    BadRequest,
}

/// Names of the headers only Palisade sets: the upstream annotations, and
/// the client address it tells the companion ([`CLIENT_IP_HEADER`]).
/// Client-sent copies are always removed.
pub const ANNOTATION_HEADERS: [&str; 4] = [
    "x-palisade-action",
    "x-palisade-score",
    "x-palisade-client",
    CLIENT_IP_HEADER,
];

/// The client address the proxy decided on (per `client`), sent with
/// requests it passes to the companion, which sits behind the proxy and
/// would otherwise see the proxy as its client.
pub const CLIENT_IP_HEADER: &str = "x-palisade-client-ip";

/// The largest verify body accepted.
pub const MAX_VERIFY_BODY: usize = 8 * 1024;

impl Policy {
    /// The verify endpoint's path (`/.palisade/verify`).
    pub fn verify_path(&self) -> &str {
        &self.verify_path
    }

    /// Whether `path` is one of Palisade's own endpoints.
    pub fn is_own_path(&self, path: &str) -> bool {
        path.starts_with(&self.challenge.path_prefix)
    }

    /// What Palisade answers `decision` with; a reply without a response
    /// sends the request upstream. `now_ns` is nanoseconds since the Unix
    /// epoch.
    ///
    /// `health` is called only for a challenge whose kind needs the
    /// companion, so hosts read the companion's health only then (see
    /// [`Policy::challenge_reply`] for what each health gives).
    pub fn respond(
        &self,
        decision: &Decision,
        request: &Request,
        health: impl FnOnce() -> CompanionHealth,
        now_ns: u64,
    ) -> Reply {
        let json = request.wants_json();
        match decision.action {
            Action::Allow | Action::Monitor => Reply::upstream(),
            Action::Block => {
                let (status, body) = decision.block.unwrap_or((403, "Access denied."));
                Reply::send(if json {
                    Response::json(status, json!({"action": "block", "message": body}))
                } else {
                    Response::html(status, "Access denied", body)
                })
            }
            Action::RateLimited => {
                let Some(r) = decision.rate_limit.as_ref() else {
                    return Reply::upstream();
                };
                let retry_s = r.retry_after_s();
                let window_s = r.limit.rate.period_ns.div_ceil(1_000_000_000).max(1);
                let reset_s = r.outcome.reset_ns.div_ceil(1_000_000_000);
                let response = if json {
                    Response::json(
                        429,
                        json!({"action": "rate_limited", "retry_after": retry_s}),
                    )
                } else {
                    Response::html(
                        429,
                        "Too many requests",
                        &format!("Please slow down and try again in {retry_s} seconds."),
                    )
                };
                Reply::send(
                    response
                        .with_header("retry-after", retry_s.to_string())
                        .with_header(
                            "ratelimit-policy",
                            format!(
                                "\"palisade\";q={};w={}",
                                u64::from(r.limit.rate.count) + u64::from(r.limit.burst),
                                window_s
                            ),
                        )
                        .with_header(
                            "ratelimit",
                            format!("\"palisade\";r={};t={}", r.outcome.remaining, reset_s),
                        ),
                )
            }
            Action::Challenge => match decision.challenge {
                Some(spec) => {
                    self.challenge_reply(spec, decision.client.ip, request, health, now_ns)
                }
                None => Reply::upstream(),
            },
        }
    }

    /// The filter's own proof-of-work challenge at `difficulty` for the
    /// client at `ip`, returning to `return_path` once solved: the page, or
    /// JSON for programs. The same scheme as the companion's, so a client
    /// cannot tell which side served it.
    pub(super) fn pow_challenge(
        &self,
        difficulty: u8,
        ip: Option<IpAddr>,
        request: &Request,
        return_path: &str,
        status: u16,
        now_ns: u64,
    ) -> Response {
        let data = challenge::issue_ticket(
            &self.tokens.keyring,
            now_ns / 1_000_000_000,
            self.challenge.ticket_ttl.0,
            difficulty,
            self.binding(ip, request.user_agent()),
            return_path,
        );
        let bits = challenge::difficulty_bits(difficulty);
        if request.wants_json() {
            Response::json(
                status,
                json!({
                    "action": "challenge",
                    "challenge": {
                        "kind": ChallengeKind::Pow,
                        "algorithm": "sha256",
                        "data": data,
                        "difficulty": bits,
                    },
                    "verify": self.verify_path(),
                }),
            )
        } else {
            Response::new(
                status,
                "text/html; charset=utf-8",
                challenge::page(&data, bits, self.verify_path()),
            )
        }
    }

    /// The in-filter proof-of-work verify endpoint (`<prefix>verify`):
    /// checks a submitted solution and issues a pass token. Hosts call it
    /// when [`Policy::route_own`] says [`super::OwnReply::Verify`], with
    /// the request body (empty for a GET).
    ///
    /// The solution comes one of three ways:
    /// - `GET <prefix>verify?data=…&nonce=…`, answered with a 303 to the
    ///   ticket's return path. It needs no request body, so it works where
    ///   the filter cannot read one (an Istio `WasmPlugin` cannot set
    ///   `allow_on_headers_stop_iteration`); the challenge pages use it.
    /// - `POST` of a form with `data` and `nonce`: the same 303.
    /// - `POST` of JSON `{"data", "nonce"}`: 200 with the token, for programs.
    pub fn handle_own(
        &self,
        request: &Request,
        body: &[u8],
        now_ns: u64,
    ) -> (Response, VerifyOutcome) {
        if request.path != self.verify_path() {
            return (
                Response::json(404, json!({"error": "not_found"})),
                VerifyOutcome::BadRequest,
            );
        }
        let get = request.method.eq_ignore_ascii_case("GET");
        if !get && !request.method.eq_ignore_ascii_case("POST") {
            return (
                Response::json(
                    405,
                    json!({"error": "method_not_allowed", "message": "use GET or POST"}),
                )
                .with_header("allow", "GET, POST".into()),
                VerifyOutcome::BadRequest,
            );
        }
        if body.len() > MAX_VERIFY_BODY {
            return (
                Response::json(413, json!({"error": "too_large"})),
                VerifyOutcome::BadRequest,
            );
        }
        let content_type = request.header("content-type").unwrap_or("");
        let redirect = get || content_type.starts_with("application/x-www-form-urlencoded");
        let fields = if get {
            parse_form(request.query.as_bytes())
        } else if redirect {
            parse_form(body)
        } else {
            parse_json(body)
        };
        let Some((data, nonce)) = fields else {
            return (
                Response::json(
                    400,
                    json!({"error": "bad_request",
                           "message": "send GET ?data=...&nonce=..., JSON {\"data\": \"...\", \"nonce\": \"...\"} or a form with `data` and `nonce`"}),
                ),
                VerifyOutcome::BadRequest,
            );
        };
        let ip = self.client_ip(request);
        let ua = request.user_agent();
        let now_s = now_ns / 1_000_000_000;
        match challenge::verify_solution(
            &self.tokens.keyring,
            &data,
            &nonce,
            now_s,
            &self.binding(ip, ua),
        ) {
            Ok(ticket) => {
                let token = self.issue_token(ip, ua, Passed::pow(ticket.level), now_s);
                let expires = now_s.saturating_add(self.tokens.ttl_s);
                let response = if redirect {
                    let mut r = Response::new(303, "text/plain; charset=utf-8", String::new());
                    r.headers.push(("location".into(), ticket.return_path));
                    r
                } else {
                    Response::json(200, json!({"token": token, "expires": expires}))
                };
                (
                    response.with_header("set-cookie", self.pass_cookie(&token)),
                    VerifyOutcome::Passed,
                )
            }
            Err(e) => (
                Response::json(403, json!({"error": e.label(), "message": e.to_string()})),
                VerifyOutcome::Failed(e),
            ),
        }
    }

    /// The `Set-Cookie` value carrying a pass token.
    pub fn pass_cookie(&self, token: &str) -> String {
        let c = &self.tokens.cookie;
        let mut cookie = format!(
            "{}={}; Path={}; Max-Age={}",
            c.name, token, c.path, self.tokens.ttl_s
        );
        if let Some(domain) = &c.domain {
            cookie.push_str(&format!("; Domain={domain}"));
        }
        if c.http_only {
            cookie.push_str("; HttpOnly");
        }
        if c.secure || c.same_site == SameSite::None {
            cookie.push_str("; Secure");
        }
        cookie.push_str(match c.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        cookie
    }

    /// Headers to add to the upstream request (when `annotate` is on).
    pub fn upstream_headers(&self, decision: &Decision) -> Vec<(&'static str, String)> {
        if !self.annotate {
            return Vec::new();
        }
        let c = &decision.client;
        let mut client = format!("class={}", c.class.as_str());
        if let Some(name) = c.name {
            client.push_str(&format!("; name={name}"));
        }
        if let Some(v) = c.verification {
            client.push_str(match v {
                crate::crawlers::Verification::Verified => "; verified",
                crate::crawlers::Verification::Spoofed => "; spoofed",
                crate::crawlers::Verification::Unverifiable => "; unverifiable",
            });
        }
        vec![
            (ANNOTATION_HEADERS[0], decision.action.as_str().to_string()),
            (ANNOTATION_HEADERS[1], score_annotation(decision)),
            (ANNOTATION_HEADERS[2], client),
        ]
    }
}

/// `x-palisade-score`: the score, then, when a learned score was supplied,
/// the rules' part, the learned part and what drove it
/// (`72; rules=30; model=72; top=rate_short,timing_cv`). A shadow score
/// is marked `shadow` and does not count in the first number.
fn score_annotation(decision: &Decision) -> String {
    let Some(m) = decision.model else {
        return decision.score.to_string();
    };
    // Written in place: this runs on every scored request in the filter.
    use std::fmt::Write;
    let mut out = String::with_capacity(96);
    let _ = write!(
        out,
        "{}; rules={}; model={}{}; top=",
        decision.score,
        decision.rule_score,
        m.scored.points,
        if m.enforced { "" } else { " shadow" },
    );
    for (i, name) in m.scored.top.names().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
    }
    out
}

fn parse_form(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut data = None;
    let mut nonce = None;
    for (k, v) in super::form_pairs(text) {
        match k.as_str() {
            "data" => data = Some(v),
            "nonce" => nonce = Some(v),
            _ => {} // other fields (a return URL, say) are ignored by design
        }
    }
    Some((data?, nonce?))
}

fn parse_json(body: &[u8]) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = value.get("data")?.as_str()?.to_string();
    let nonce = match value.get("nonce")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    Some((data, nonce))
}
