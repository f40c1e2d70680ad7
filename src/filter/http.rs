//! One HTTP request in Envoy: read it, decide, carry the decision out.

use super::headers::RawHeaders;
use super::health;
use super::metrics::Metrics;
use super::profile::{self, Phase};
use super::reports;
use super::scoring::{Looked, Scorer, Step};
use super::store::SharedStore;
use super::{log, now_ns};
use crate::policy::{
    Action, Decision, Headers, OwnReply, Policy, Reply, Request, Response, VerifyOutcome,
    ANNOTATION_HEADERS, CLIENT_IP_HEADER,
};
use crate::scoring::cache::SlotKey;
use crate::scoring::report::Report;
use crate::scoring::Scored;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action as Next, BufferType, LogLevel, MapType};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

pub struct Http {
    policy: Rc<Policy>,
    metrics: Rc<Metrics>,
    /// With `scoring.enabled` only.
    scorer: Option<Rc<Scorer>>,
    /// Request headers kept while the body of a verify POST arrives.
    pending: Option<Vec<(String, String)>>,
    connection_ip: Option<IpAddr>,
    /// The client's scoring slot and whether the route is a login, kept
    /// for the response when its status is to be read.
    slot: Option<(SlotKey, bool)>,
    /// A request paused for its blocking score.
    waiting: Option<Waiting>,
}

/// What a request waiting for `/score` needs when the answer comes.
struct Waiting {
    token: u32,
    report: Report,
    looked: Looked,
    headers: Vec<(String, String)>,
}

impl Http {
    pub fn new(policy: Rc<Policy>, metrics: Rc<Metrics>, scorer: Option<Rc<Scorer>>) -> Http {
        Http {
            policy,
            metrics,
            scorer,
            pending: None,
            connection_ip: None,
            slot: None,
            waiting: None,
        }
    }
}

impl Context for Http {
    /// The blocking score's answer (or its failure after
    /// `scoring.blocking_timeout_ms`): decide with it, or on rules only.
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        let Some(waiting) = self.waiting.take_if(|w| w.token == token) else {
            return;
        };
        let scored = match reports::answer(std::slice::from_ref(&waiting.report), body) {
            Ok(scores) => {
                // A request waits only with a scorer.
                if let Some(scorer) = &self.scorer {
                    reports::store_scores(
                        scorer,
                        &self.policy,
                        &self.metrics,
                        std::slice::from_ref(&waiting.report),
                        &scores,
                    );
                }
                scores.first().copied().flatten()
            }
            Err(failed) => {
                self.metrics.score_fallback(failed.fallback());
                None
            }
        };
        let req = request(&waiting.headers, self.connection_ip);
        if self.decide(&req, scored, Some((waiting.looked, true)), now_ns()) == Next::Continue {
            let _ = hostcalls::resume_http_request();
        }
    }
}

/// Owned copies of the headers, for a request that waits past this
/// callback (a verify POST's body, a blocking score).
fn owned(headers: Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The downstream peer's address (`source.address` is `ip:port`).
fn connection_ip() -> Option<IpAddr> {
    let bytes = hostcalls::get_property(vec!["source", "address"]).ok()??;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| text.parse::<IpAddr>())
        .ok()
}

fn request<'a>(headers: impl Into<Headers<'a>>, ip: Option<IpAddr>) -> Request<'a> {
    let headers = headers.into();
    // Envoy's pseudo-headers are lower case; no case folding needed.
    let pseudo = |name| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    };
    Request::new(
        pseudo(":method"),
        pseudo(":path"),
        pseudo(":authority"),
        headers,
        ip,
    )
}

fn send(response: &Response) {
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(
        u32::from(response.status),
        headers,
        Some(response.body.as_bytes()),
    );
}

impl Http {
    /// A request under the challenge prefix: to the companion while it is
    /// up, else answered here (the verify endpoint once its body arrives).
    fn own_path(&mut self, req: &Request, end_of_stream: bool) -> Next {
        let own = self
            .policy
            .route_own(req, health::read(&self.policy), now_ns());
        let client_ip = self.policy.client_ip(req);
        match own {
            OwnReply::Companion => {
                if let Some(ip) = client_ip {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        CLIENT_IP_HEADER,
                        Some(&ip.to_string()),
                    );
                }
                Next::Continue
            }
            OwnReply::Verify => {
                if end_of_stream {
                    self.verify(req, &[]);
                } else {
                    self.pending = Some(owned(req.headers));
                }
                Next::Pause
            }
            OwnReply::Reply(reply) => self.carry_out(reply),
        }
    }

    /// The in-filter proof-of-work verify endpoint.
    fn verify(&self, req: &Request, body: &[u8]) {
        let now = now_ns();
        let (response, outcome) = self.policy.handle_own(req, body, now);
        let passed = match outcome {
            VerifyOutcome::Passed => {
                self.metrics.challenge_passed();
                Some(true)
            }
            VerifyOutcome::Failed(e) => {
                self.metrics.challenge_failed(e.label());
                Some(false)
            }
            VerifyOutcome::BadRequest => None,
        };
        if let (Some(scorer), Some(passed)) = (&self.scorer, passed) {
            scorer.record_challenge(&self.policy, &self.metrics, req, passed, now);
        }
        send(&response);
    }

    /// Sends the reply's response, or lets the request continue without one.
    fn carry_out(&self, reply: Reply) -> Next {
        self.metrics.companion_use(reply.companion);
        match reply.response {
            Some(response) => {
                send(&response);
                Next::Pause
            }
            None => Next::Continue,
        }
    }

    /// Decides `req` (with the client's learned score, if any), counts the
    /// request in the client's slot unless the blocking path did already
    /// (`looked`'s flag), and carries the decision out.
    fn decide(
        &mut self,
        req: &Request,
        scored: Option<Scored>,
        looked: Option<(Looked, bool)>,
        now: u64,
    ) -> Next {
        let mut store = SharedStore {
            buckets: self.policy.rate_limit_buckets(),
            degraded: false,
        };
        let decision = profile::time(Phase::Decide, || {
            self.policy.decide_scored(req, &mut store, now, scored)
        });
        profile::time(Phase::Metrics, || {
            if store.degraded {
                self.metrics.store_degraded();
            }
            self.metrics.decision(&decision);
        });
        if let (Some(scorer), Some((looked, counted))) = (&self.scorer, looked) {
            // A request counted before its decision (the blocking path) is
            // rare: its status is always read.
            let watch_status = counted
                || profile::time(Phase::ScoreRecord, || {
                    scorer.record(&self.policy, &self.metrics, req, &looked, &decision, now)
                });
            if watch_status {
                self.slot = Some((looked.key, decision.login));
            }
        }
        profile::time(Phase::Enforce, || self.enforce(&decision, req, now))
    }

    fn enforce(&self, decision: &Decision, req: &Request, now: u64) -> Next {
        let reply = self
            .policy
            .respond(decision, req, || health::read(&self.policy), now);
        if reply.response.is_none() {
            // Allowed, monitored, or let through by `fail_open` (then the
            // upstream sees `x-palisade-action: challenge`).
            for (name, value) in self.policy.upstream_headers(decision) {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(&value));
            }
            if decision.action == Action::Monitor {
                log(LogLevel::Info, &monitor_line(decision, req));
            }
        }
        self.carry_out(reply)
    }
}

fn monitor_line(d: &Decision, req: &Request) -> String {
    let rules: Vec<&str> = d.rules.iter().map(|r| r.name).collect();
    format!(
        "palisade: monitor {} {} route={} score={} rules=[{}] client={}",
        req.method,
        crate::policy::logged_path(req.path),
        d.route,
        d.score,
        rules.join(","),
        d.client
            .ip
            .map_or("unknown".to_string(), |ip| ip.to_string()),
    )
}

impl Http {
    /// Counts a 4xx answer in the client's behaviour (failed logins on
    /// `login` routes among them).
    fn count_response(&self) {
        if let (Some(scorer), Some((key, login))) = (&self.scorer, self.slot) {
            // The `response.code` property (a little-endian integer) costs
            // far less than looking `:status` up in the header map, which
            // measured at several microseconds per request.
            let status = hostcalls::get_property(vec!["response", "code"])
                .ok()
                .flatten()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .and_then(|b| u16::try_from(i64::from_le_bytes(b)).ok());
            if let Some(status) = status {
                scorer.record_response(&self.metrics, key, status, login);
            }
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Next {
        profile::time(Phase::Request, || self.request_headers(end_of_stream))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Next {
        profile::time(Phase::Response, || self.count_response());
        profile::request_done();
        Next::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Next {
        let Some(headers) = self.pending.as_ref() else {
            return Next::Continue;
        };
        // Envoy buffers the body (bounded by its buffer limits, 413 beyond
        // them); the policy answers 413 itself above MAX_VERIFY_BODY.
        if !end_of_stream {
            return Next::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let headers = headers.clone();
        self.pending = None;
        self.verify(&request(&headers, self.connection_ip), &body);
        Next::Pause
    }
}

impl Http {
    /// The request-headers callback: read the request, decide (or wait
    /// for a blocking score), carry the decision out.
    fn request_headers(&mut self, end_of_stream: bool) -> Next {
        let raw = profile::time(Phase::Headers, RawHeaders::fetch);
        let lossy;
        let mut headers = match profile::time(Phase::Headers, || raw.text()) {
            Some(headers) => headers,
            None => {
                // Bytes that are not UTF-8 are replaced rather than trusted.
                lossy = raw.lossy();
                lossy
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect()
            }
        };
        // Annotation headers are Palisade's to set; never trust a client's.
        // (Checked in the copy first: a host call per header per request
        // would cost more than the rare removal.)
        for name in ANNOTATION_HEADERS {
            if headers.iter().any(|(n, _)| *n == name) {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
                headers.retain(|(n, _)| *n != name);
            }
        }
        let mut req = request(&headers, None);
        // The peer address is a host call of its own; a client address
        // taken from X-Forwarded-For does not need it.
        if self.policy.needs_connection_ip(&req) {
            req.connection_ip = profile::time(Phase::ClientAddress, connection_ip);
        }
        self.connection_ip = req.connection_ip;
        if self.policy.is_own_path(req.path) {
            return self.own_path(&req, end_of_stream);
        }
        let now = now_ns();
        let scorer = self.scorer.clone();
        let looked = profile::time(Phase::ScoreLookUp, || {
            let scorer = scorer.as_deref()?;
            let mut looked = scorer.look_up(&self.policy, &req, now)?;
            let step = scorer.step(&self.policy, &self.metrics, &req, &mut looked, now);
            Some((looked, step))
        });
        let Some((looked, step)) = looked else {
            return self.decide(&req, None, None, now);
        };
        let (token, report) = match step {
            Step::Decide(scored) => return self.decide(&req, scored, Some((looked, false)), now),
            Step::Wait(token, report) => (token, report),
        };
        self.waiting = Some(Waiting {
            token,
            report,
            looked,
            headers: owned(req.headers),
        });
        Next::Pause
    }
}
