//! The internal listener: health, metrics and totals for operators and for
//! the filter's health probe.

use super::verdicts::{is_request_id, Asked, Verdict};
use super::{headers_as_text, now_ns, Loaded, Shared, REAL_IP};
use crate::policy::{AuthAnswer, CompanionHealth, Request};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
        .route("/auth", any(auth))
        .route("/auth/reply", any(reply))
        .with_state(shared)
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

async fn stats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let mut stats = shared.metrics.stats();
    stats["check_verdicts"] = shared.verdicts.held().into();
    Json(stats)
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
    // rate limits wait on Redis, which must not hold up this runtime thread.
    let loaded = shared.current();
    let answer = if loaded.limits.waits_on_network() {
        let blocking = move || check(&shared, &loaded, peer.ip(), &headers);
        match tokio::task::spawn_blocking(blocking).await {
            Ok(answer) => answer,
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    } else {
        check(&shared, &loaded, peer.ip(), &headers)
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
    let decision = loaded.limits.with_store(&shared.metrics, |store| {
        loaded.policy.decide(&request, store, now)
    });
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
