//! The hand-off to the companion service (`palisade serve`): where a
//! challenge of a kind the filter cannot render sends the client, what the
//! filter answers while the companion is down (`companion.failure_mode`),
//! and what becomes of requests under the challenge prefix.
//!
//! Pure like the rest of the engine: the host tells it the companion's
//! health ([`CompanionHealth`], see [`super::health`]) and carries out the
//! [`Reply`] or [`OwnReply`] it gets back.

use super::respond::{escape_html, CompanionUse, Reply, Response};
use super::{ChallengeSpec, CompanionHealth, Policy, Request};
use crate::challenge;
use crate::config::{ChallengeKind, FailureMode};
use serde_json::json;
use std::net::IpAddr;

/// What to do with a request under the challenge prefix
/// (see [`Policy::route_own`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnReply {
    /// The companion is up and serves the whole prefix: let the request go
    /// upstream unchanged (Envoy's route sends the prefix to the companion's
    /// cluster). The filter reads no body.
    Companion,
    /// The companion is down and this is `<prefix>verify`: verify the proof
    /// of work in the filter. Read the body if one comes (a POST; a GET has
    /// its solution in the query), then call [`Policy::handle_own`].
    Verify,
    /// Answer (or, for `fail_open`, pass on) as the reply says.
    Reply(Reply),
}

/// Where a challenge is answered while the companion is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// On the challenged request itself.
    OnRequest,
    /// At the companion's challenge URL (a client that was sent there).
    AtChallengeUrl,
}

impl Policy {
    /// The companion's page for a challenge:
    /// `<prefix>challenge?kind=K&difficulty=N&return=R`, with the return
    /// path percent-encoded (only unreserved characters and `/` stay).
    pub fn companion_challenge_url(&self, spec: ChallengeSpec, return_path: &str) -> String {
        let urls = crate::challenge::urls::Urls {
            prefix: &self.challenge.path_prefix,
        };
        urls.challenge(spec.kind, spec.difficulty, return_path)
    }

    /// The answer to a challenged request.
    ///
    /// A `pow` challenge is the filter's own proof of work, whatever the
    /// companion's health (when the companion is up it verifies the
    /// solutions, since Envoy routes `<prefix>verify` to it); except for a
    /// crawler that gets crawler hints ([`Policy::gets_crawler_hints`]),
    /// which is sent to the companion's page while it is up.
    ///
    /// Any other kind needs the companion. While it is up (`health` is
    /// called only here):
    /// - clients asking for JSON (`Accept: application/json`) get
    ///   `challenge.status` with
    ///   `{"action": "challenge", "challenge": {"kind", "difficulty", "url"}}`,
    ///   `url` being the companion's page ([`Policy::companion_challenge_url`]);
    /// - `GET` and `HEAD` get `303 See Other` to that page, with
    ///   `cache-control: no-store`; once passed, the companion sends the
    ///   client back to the path and query it asked for;
    /// - other methods (`POST`, ...) get `challenge.status` with a small
    ///   HTML page linking to the challenge, which returns to the same path.
    ///   A redirect would turn the request into a `GET` and lose its body,
    ///   so the page says so: the client sends it again after the check.
    ///
    /// While the companion is down, `companion.failure_mode` decides: `pow`
    /// answers with the filter's proof of work at the same difficulty;
    /// `fail_open` lets the request through (the reply has no response and
    /// says [`CompanionUse::Fallback`]`(FailOpen)`, for the host to count);
    /// `fail_closed` answers 503 with `Retry-After` (the health interval,
    /// at least 1 s), as JSON or HTML.
    pub(super) fn challenge_reply(
        &self,
        spec: ChallengeSpec,
        ip: Option<IpAddr>,
        request: &Request,
        health: impl FnOnce() -> CompanionHealth,
        now_ns: u64,
    ) -> Reply {
        let path_and_query = if request.query.is_empty() {
            request.path.to_string()
        } else {
            format!("{}?{}", request.path, request.query)
        };
        let return_path = challenge::safe_return_path(&path_and_query).unwrap_or("/");
        let status = self.challenge.status;
        if !spec.kind.needs_companion() {
            // Only the companion's page carries crawler hints: a crawler
            // that gets them goes there while it is up.
            let hinted = self.gets_crawler_hints(request, ip) && health() == CompanionHealth::Up;
            if hinted {
                return Reply {
                    response: Some(self.hand_off(spec, request, return_path)),
                    companion: CompanionUse::HandedOff,
                };
            }
            return Reply::send(self.pow_challenge(
                spec.difficulty,
                ip,
                request,
                return_path,
                status,
                now_ns,
            ));
        }
        match health() {
            CompanionHealth::Up => Reply {
                response: Some(self.hand_off(spec, request, return_path)),
                companion: CompanionUse::HandedOff,
            },
            CompanionHealth::Down => self.companion_down(
                Asked::OnRequest,
                spec.difficulty,
                ip,
                request,
                return_path,
                now_ns,
            ),
        }
    }

    /// Sends a challenged client to the companion's page (see
    /// [`Policy::challenge_reply`]).
    fn hand_off(&self, spec: ChallengeSpec, request: &Request, return_path: &str) -> Response {
        let url = self.companion_challenge_url(spec, return_path);
        let status = self.challenge.status;
        if request.wants_json() {
            return Response::json(
                status,
                json!({
                    "action": "challenge",
                    "challenge": {
                        "kind": spec.kind,
                        "difficulty": spec.difficulty,
                        "url": url,
                    },
                }),
            );
        }
        if is_get_or_head(request) {
            return Response::new(303, "text/plain; charset=utf-8", String::new())
                .with_header("location", url);
        }
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <meta name=\"robots\" content=\"noindex\"><title>One more step</title></head>\
             <body><main><h1>One more step</h1>\
             <p>This site checks that visitors are people before it accepts this request.</p>\
             <p><a href=\"{url}\">Continue to the check</a></p>\
             <p>Afterwards you return to <code>{path}</code>. What this request sent \
             was not kept: please send it again from there.</p></main></body></html>\n",
            url = escape_html(&url),
            path = escape_html(return_path),
        );
        Response::new(status, "text/html; charset=utf-8", body)
    }

    /// What `companion.failure_mode` makes of a challenge the companion
    /// should have served.
    fn companion_down(
        &self,
        asked: Asked,
        difficulty: u8,
        ip: Option<IpAddr>,
        request: &Request,
        return_path: &str,
        now_ns: u64,
    ) -> Reply {
        let mode = self.companion.failure_mode;
        let response = match mode {
            FailureMode::Pow => {
                let status = match asked {
                    Asked::OnRequest => self.challenge.status,
                    Asked::AtChallengeUrl => 200,
                };
                Some(self.pow_challenge(difficulty, ip, request, return_path, status, now_ns))
            }
            FailureMode::FailOpen => match asked {
                Asked::OnRequest => None,
                Asked::AtChallengeUrl => Some(
                    Response::new(303, "text/plain; charset=utf-8", String::new())
                        .with_header("location", return_path.to_string()),
                ),
            },
            FailureMode::FailClosed => Some(self.companion_unavailable(request.wants_json())),
        };
        Reply {
            response,
            companion: CompanionUse::Fallback(mode),
        }
    }

    /// 503 while the companion is down: JSON
    /// `{"error": "companion_unavailable", "retry_after": S}` or a page, with
    /// `Retry-After` one health interval (the longest until the next probe
    /// can see the companion back), at least 1 s.
    fn companion_unavailable(&self, json: bool) -> Response {
        let retry_s = self.companion.health_interval.0.max(1);
        let response = if json {
            Response::json(
                503,
                json!({"error": "companion_unavailable", "retry_after": retry_s}),
            )
        } else {
            Response::html(
                503,
                "Temporarily unavailable",
                &format!(
                    "The check this page needs is unavailable right now. Please try again in {retry_s} second{}.",
                    if retry_s == 1 { "" } else { "s" }
                ),
            )
        };
        response.with_header("retry-after", retry_s.to_string())
    }

    /// What happens to a request under the challenge prefix
    /// ([`Policy::is_own_path`]), from its headers alone.
    ///
    /// - Companion up: everything goes to the companion
    ///   ([`OwnReply::Companion`]); the filter reads no body, so it needs no
    ///   `allow_on_headers_stop_iteration` in this state.
    /// - Companion down:
    ///   - `<prefix>verify`: the filter verifies the proof of work itself
    ///     ([`OwnReply::Verify`]), as the fallback. Every pow ticket is the
    ///     filter's scheme, so one issued while the companion was up
    ///     verifies here too. The pages submit with a GET (solution in the
    ///     query), which needs no request body.
    ///   - `GET`/`HEAD <prefix>challenge?kind=K&difficulty=N&return=R` (a
    ///     client sent there before the companion went down): a `pow` kind
    ///     gets the proof-of-work page (200) for `R` at `N`; other kinds as
    ///     `failure_mode` says: `pow` the same page, `fail_closed` 503 with
    ///     `Retry-After`, `fail_open` 303 to `R` (when it is a safe
    ///     same-origin path, else `/`). `kind` and `difficulty` default to
    ///     the `challenge` section's; an unknown kind or a difficulty outside
    ///     1–5 is a 400, another method a 405.
    ///   - anything else (the companion's images, audio, per-challenge
    ///     verify URLs): 503 `{"error": "companion_unavailable"}` with
    ///     `Retry-After`, in every mode. Those resources exist, they are
    ///     only unavailable for now, so a 404 would be wrong.
    pub fn route_own(&self, request: &Request, health: CompanionHealth, now_ns: u64) -> OwnReply {
        if health == CompanionHealth::Up {
            return OwnReply::Companion;
        }
        if request.path == self.verify_path() {
            return OwnReply::Verify;
        }
        if request.path != self.challenge_path {
            return OwnReply::Reply(Reply::send(self.companion_unavailable(true)));
        }
        if !is_get_or_head(request) {
            return OwnReply::Reply(Reply::send(
                Response::json(
                    405,
                    json!({"error": "method_not_allowed", "message": "use GET"}),
                )
                .with_header("allow", "GET, HEAD".into()),
            ));
        }
        let spec = match self.challenge_query(request) {
            Ok(spec) => spec,
            Err(message) => {
                return OwnReply::Reply(Reply::send(Response::json(
                    400,
                    json!({"error": "bad_request", "message": message}),
                )))
            }
        };
        let wanted = request.query_param("return").unwrap_or_default();
        let return_path = challenge::safe_return_path(&wanted).unwrap_or("/");
        let ip = self.client_ip(request);
        if !spec.kind.needs_companion() {
            return OwnReply::Reply(Reply::send(self.pow_challenge(
                spec.difficulty,
                ip,
                request,
                return_path,
                200,
                now_ns,
            )));
        }
        OwnReply::Reply(self.companion_down(
            Asked::AtChallengeUrl,
            spec.difficulty,
            ip,
            request,
            return_path,
            now_ns,
        ))
    }

    /// The kind and difficulty a challenge URL asks for, defaulting to the
    /// `challenge` section's; the reason when they are not valid.
    fn challenge_query(&self, request: &Request) -> Result<ChallengeSpec, String> {
        let kind = match request.query_param("kind") {
            None => self.challenge.kind,
            Some(text) => ChallengeKind::parse(&text)
                .ok_or_else(|| format!("`kind` must be one of {}", ChallengeKind::names()))?,
        };
        let difficulty = match request.query_param("difficulty") {
            None => self.challenge.difficulty,
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|d| (1..=5).contains(d))
                .ok_or_else(|| "`difficulty` must be a number from 1 to 5".to_string())?,
        };
        Ok(ChallengeSpec { kind, difficulty })
    }
}

fn is_get_or_head(request: &Request) -> bool {
    request.method.eq_ignore_ascii_case("GET") || request.method.eq_ignore_ascii_case("HEAD")
}
