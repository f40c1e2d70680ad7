//! The internal listener: health, metrics and totals for operators and for
//! the filter's health probe, nginx's check, and the scoring API
//! (`docs/scoring.md`, "Companion API"). The scoring handlers read JSON,
//! make one call on [`super::scoring`] and write JSON; anything refused is
//! a 4xx with `{"error": reason}`.

use super::scoring::api::{self, ApiError, CheckRequest, FeedbackRequest, ScoreBody};
use super::scoring::Assessed;
use super::verdicts::{is_request_id, Asked, Verdict};
use super::{headers_as_text, now_ns, Loaded, Shared, REAL_IP};
use crate::config::ScoreUse;
use crate::policy::{AuthAnswer, CompanionHealth, Decision, Request};
use crate::scoring::wire::ScoreBatchAnswer;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The largest scoring request body: a full batch with names is ~300 KiB.
const MAX_SCORING_BODY: usize = 1 << 20;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
        .route("/auth", any(auth))
        .route("/auth/reply", any(reply))
        .route("/score", json_only(post(score)))
        .route("/check", json_only(post(check_described)))
        .route("/feedback", json_only(post(feedback)))
        .route(
            "/train",
            json_only(post(start_training).get(training_status)),
        )
        .with_state(shared)
}

/// A scoring route: other methods get a JSON 405.
fn json_only(route: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    route.fallback(|| async { error(405, "method not allowed") })
}

fn error(status: u16, reason: &str) -> Response {
    json_response(status, &json!({ "error": reason }))
}

fn json_response(status: u16, value: &Value) -> Response {
    let mut r = Json(value).into_response();
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

fn refused(e: &ApiError) -> Response {
    error(e.status(), &e.to_string())
}

async fn body_bytes(body: Body) -> Result<axum::body::Bytes, Response> {
    to_bytes(body, MAX_SCORING_BODY)
        .await
        .map_err(|_| error(413, &format!("the body is over {MAX_SCORING_BODY} bytes")))
}

/// 200 `ok` when the store answers; 503 with the reason otherwise, so the
/// filter falls back to its `failure_mode` rather than sending clients to
/// challenges that cannot be kept.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.current();
    let ping = tokio::task::spawn_blocking(move || loaded.store.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let totals = tokio::task::spawn_blocking(move || {
        let mut stats = shared.metrics.stats();
        stats["check_verdicts"] = shared.verdicts.held().into();
        stats["scoring"] = shared.scoring.stats(&shared.metrics);
        stats
    })
    .await;
    match totals {
        Ok(stats) => Json(stats).into_response(),
        Err(_) => error(500, "internal error"),
    }
}

/// `POST /score`: one client (`ScoreQuery`) or a batch (`ScoreBatch`, the
/// filter's reports) in; `ScoreAnswer` or `ScoreBatchAnswer` out.
async fn score(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (queries, batch) = match api::score_body(&bytes) {
        Ok(ScoreBody::One(q)) => (vec![q], false),
        Ok(ScoreBody::Batch(b)) => (b.batch, true),
        Err(e) => return refused(&e),
    };
    let loaded = shared.current();
    let waits = shared.scoring.waits_on_network();
    let answer = move || {
        shared
            .scoring
            .score_queries(&loaded.policy, &queries, &shared.metrics, now_ns())
    };
    let answers = match off_the_runtime(waits, answer).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return refused(&e),
        Err(r) => return r,
    };
    if batch {
        Json(ScoreBatchAnswer { scores: answers }).into_response()
    } else {
        match answers.into_iter().next() {
            Some(answer) => Json(answer).into_response(),
            None => error(500, "internal error"),
        }
    }
}

/// `POST /check`: a described request in, the full decision out (as
/// `palisade explain --json`, with the score's parts and what drove it).
async fn check_described(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let described: CheckRequest = match api::parse(&bytes).and_then(|r: CheckRequest| {
        r.validate()?;
        Ok(r)
    }) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let loaded = shared.current();
    let waits = loaded.limits.waits_on_network() || shared.scoring.waits_on_network();
    let answer = move || {
        let headers = described.headers();
        let host = described.host.clone().unwrap_or_default();
        let request = Request::new(
            &described.method,
            &described.path,
            &host,
            &headers,
            Some(described.ip),
        );
        let (decision, assessed) = decide(&shared, &loaded, &request, now_ns(), Timing::Now);
        check_answer(&loaded, &decision, assessed.as_ref())
    };
    // As for /auth: off the runtime thread only when it waits on Redis.
    match off_the_runtime(waits, answer).await {
        Ok(value) => Json(value).into_response(),
        Err(r) => r,
    }
}

/// The headers nginx sets on the check subrequest (and on the reply) to
/// describe the original request (`nginx/palisade.conf`). They are read
/// only from `companion.trusted_peers`.
const ORIGINAL_URI: &str = "x-original-uri";
const ORIGINAL_METHOD: &str = "x-original-method";
/// `$scheme`: the engine's `:scheme`, as Envoy sets it.
const ORIGINAL_PROTO: &str = "x-original-proto";
/// `$request_id`: one id for every check of one client request.
const REQUEST_ID: &str = "x-request-id";
const NGINX_HEADERS: [&str; 5] = [
    ORIGINAL_URI,
    ORIGINAL_METHOD,
    ORIGINAL_PROTO,
    REAL_IP,
    REQUEST_ID,
];

/// The original request as a trusted nginx describes it.
struct Original {
    method: String,
    uri: String,
    host: String,
    client: IpAddr,
    /// The client's headers, with `:scheme` from `X-Original-Proto`.
    headers: Vec<(String, String)>,
    request_id: Option<String>,
}

impl Original {
    /// `None` when `peer` is not a trusted peer: its headers could say
    /// anything.
    fn read(loaded: &Loaded, peer: IpAddr, headers: &HeaderMap) -> Option<Original> {
        if !loaded.policy.is_trusted_peer(peer) {
            return None;
        }
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let mut original = headers_as_text(headers);
        original.retain(|(n, _)| !NGINX_HEADERS.contains(&n.as_str()));
        if let Some(scheme) = text(ORIGINAL_PROTO) {
            original.push((":scheme".to_string(), scheme));
        }
        Some(Original {
            method: text(ORIGINAL_METHOD).unwrap_or_else(|| "GET".into()),
            uri: text(ORIGINAL_URI).unwrap_or_else(|| "/".into()),
            host: text("host").unwrap_or_default(),
            client: text(REAL_IP)
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
                .unwrap_or(peer),
            headers: original,
            request_id: text(REQUEST_ID).filter(|id| is_request_id(id)),
        })
    }

    fn request(&self) -> Request<'_> {
        Request::new(
            &self.method,
            &self.uri,
            &self.host,
            &self.headers,
            Some(self.client),
        )
    }

    fn asked(&self) -> Asked {
        Asked {
            method: self.method.clone(),
            uri: self.uri.clone(),
            client: Some(self.client),
        }
    }
}

/// `/auth`: the nginx `auth_request` check. Runs the policy on the original
/// request and answers as [`crate::policy::AuthAnswer`] documents, with an
/// empty body so nginx keeps the connection. A repeated check of one
/// request (same `X-Request-Id`) gets the first answer again, uncounted.
/// A check from an untrusted peer is refused (403) and logged: it cannot
/// describe the request it asks about.
async fn auth(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // The decision is a few microseconds of CPU: run it here, unless the
    // rate limits or the scoring state wait on Redis, which must not hold
    // up this runtime thread.
    let loaded = shared.current();
    let waits = loaded.limits.waits_on_network() || shared.scoring.waits_on_network();
    let answer =
        match off_the_runtime(waits, move || check(&shared, &loaded, peer.ip(), &headers)).await {
            Ok(answer) => answer,
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    let mut response = status(answer.status).into_response();
    for (name, value) in answer.headers {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// The check's answer for the request `headers` describe, under `loaded`.
fn check(shared: &Shared, loaded: &Loaded, peer: IpAddr, headers: &HeaderMap) -> AuthAnswer {
    let Some(original) = Original::read(loaded, peer, headers) else {
        return untrusted(peer);
    };
    let asked = original.asked();
    let now = now_ns();
    if let Some(id) = &original.request_id {
        if let Some(verdict) = shared.verdicts.get(id, &asked, now) {
            shared.metrics.checked(&verdict.answer, true);
            return verdict.answer;
        }
    }
    let request = original.request();
    let (decision, _) = decide(shared, loaded, &request, now, Timing::AsTheFilter);
    let answer = loaded.policy.auth_answer(&decision, &request);
    shared.metrics.checked(&answer, false);
    if let Some(id) = &original.request_id {
        let response = loaded
            .policy
            .respond(&decision, &request, || CompanionHealth::Up, now)
            .response;
        let verdict = Verdict {
            answer: answer.clone(),
            response,
        };
        shared.verdicts.insert(id, asked, verdict, now);
    }
    answer
}

/// Runs `work` where it may block when it `waits` on the network, else
/// here; a 500 if the blocking task failed.
async fn off_the_runtime<T: Send + 'static>(
    waits: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    if !waits {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| error(500, "internal error"))
}

/// Which score a decision applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Timing {
    /// The score with this request counted (`/check`: what the score makes
    /// of the request described).
    Now,
    /// As the Envoy filter applies it, so nginx and Envoy decide alike:
    /// the score left by the client's previous request (from its next
    /// request on), or, on a `score: blocking` route, the score now.
    AsTheFilter,
}

/// Decides `request` as the check does: counted in its client's behaviour
/// and scored (with scoring enabled), against the check's rate limits;
/// then the answer's own status goes back into the behaviour.
fn decide<'p>(
    shared: &Shared,
    loaded: &'p Loaded,
    request: &Request,
    now: u64,
    timing: Timing,
) -> (Decision<'p>, Option<Assessed>) {
    let policy = &loaded.policy;
    let assessed = shared.scoring.assess(policy, request, &shared.metrics, now);
    let scored = assessed.as_ref().and_then(|a| {
        if timing == Timing::Now || policy.score_use(request) == ScoreUse::Blocking {
            a.scored()
        } else {
            a.cached
        }
    });
    let decision = loaded.limits.with_store(&shared.metrics, |store| {
        policy.decide_scored(request, store, now, scored)
    });
    if let Some(a) = &assessed {
        shared
            .scoring
            .settle(policy, a, &decision, &shared.metrics, now);
    }
    (decision, assessed)
}

/// `/check`'s answer: the decision as `explain --json` gives it, with the
/// rules' and the model's parts of the score and what drove the model.
fn check_answer(loaded: &Loaded, decision: &Decision, assessed: Option<&Assessed>) -> Value {
    let mut value = decision.to_json();
    value["status"] = decision
        .status(loaded.policy.challenge_config().status)
        .into();
    value["rule_score"] = decision.rule_score.into();
    value["model_score"] = assessed.and_then(|a| a.score).into();
    value["model"] = assessed.and_then(|a| a.model.clone()).into();
    value["enforced"] = decision.model.is_some_and(|m| m.enforced).into();
    value["shadow_candidate_score"] = assessed.and_then(|a| a.shadow).into();
    value["top_features"] = assessed
        .map(|a| serde_json::to_value(a.top_features()).unwrap_or_default())
        .unwrap_or_else(|| json!([]));
    value["reasons"] = json!({
        "reason": decision.reason_text(),
        "route": decision.route,
        "rules": value["rules"].clone(),
    });
    value
}

/// `POST /feedback`: a label for a client (its given or last features).
async fn feedback(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request: FeedbackRequest = match api::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let loaded = shared.current();
    let waits = shared.scoring.waits_on_network();
    let answer = move || {
        shared
            .scoring
            .feedback(&loaded.policy, &request, &shared.metrics, now_ns())
    };
    match off_the_runtime(waits, answer).await {
        Ok(Ok(v)) => json_response(202, &v),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

/// `POST /train`: starts a guarded retrain in the background (202 with
/// its job id; 409 while one runs).
async fn start_training(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.current();
    let now_s = now_ns() / 1_000_000_000;
    let id = match shared.scoring.start_training(&loaded.policy, now_s) {
        Ok(id) => id,
        Err(e) => return refused(&e),
    };
    tokio::task::spawn_blocking(move || {
        shared
            .scoring
            .run_training(&loaded.policy, &shared.metrics, id, now_s);
    });
    json_response(202, &json!({"job": id, "status": "running"}))
}

/// `GET /train`: the last retrain's status and evaluation.
async fn training_status(State(shared): State<Arc<Shared>>) -> Response {
    match shared.scoring.training_status() {
        Some(job) => Json(job).into_response(),
        None => error(404, "no retrain has run since the companion started"),
    }
}

/// `/auth/reply`: what nginx's `error_page` for a refused check sends the
/// client: the response the filter would send for the same decision (the
/// block page, the 429, the challenge redirect, JSON or proof of work),
/// kept with the verdict. Without one (an nginx 403 of its own, or a
/// verdict gone), a plain 403.
async fn reply(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let loaded = shared.current();
    let Some(original) = Original::read(&loaded, peer.ip(), &headers) else {
        return status(untrusted(peer.ip()).status).into_response();
    };
    let kept = original
        .request_id
        .as_ref()
        .and_then(|id| shared.verdicts.get(id, &original.asked(), now_ns()))
        .and_then(|v| v.response);
    let Some(kept) = kept else {
        return (StatusCode::FORBIDDEN, "Forbidden\n").into_response();
    };
    let mut response = Response::new(axum::body::Body::from(kept.body));
    *response.status_mut() = status(kept.status);
    for (name, value) in kept.headers {
        if let (Ok(n), Ok(v)) = (
            name.parse::<axum::http::HeaderName>(),
            value.parse::<axum::http::HeaderValue>(),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN)
}

/// The answer to a check from a peer outside `companion.trusted_peers`.
fn untrusted(peer: IpAddr) -> AuthAnswer {
    tracing::warn!(
        %peer,
        "check refused: the peer is not in companion.trusted_peers"
    );
    AuthAnswer {
        status: 403,
        action: "untrusted",
        headers: vec![("x-palisade-status", "403".to_string())],
    }
}
