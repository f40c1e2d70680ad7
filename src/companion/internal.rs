//! The internal listener: health, metrics and totals for operators and for
//! the filter's health probe.

use super::{headers_as_text, now_ns, Shared};
use crate::policy::Request;
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
    Json(shared.metrics.stats())
}

/// The headers nginx sets on the check subrequest to describe the original
/// request (`nginx/palisade.conf`). They are trusted only from a loopback
/// peer, where nginx runs beside the companion; from anyone else they are
/// ignored and the check describes the subrequest itself.
const ORIGINAL_URI: &str = "x-original-uri";
const ORIGINAL_METHOD: &str = "x-original-method";
const REAL_IP: &str = "x-real-ip";

/// `/auth`: the nginx `auth_request` check. Runs the policy on the original
/// request and answers as [`crate::policy::AuthAnswer`] documents, with an
/// empty body so nginx keeps the connection.
async fn auth(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let trusted = peer.ip().is_loopback();
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let uri = text(ORIGINAL_URI)
        .filter(|_| trusted)
        .unwrap_or_else(|| "/".into());
    let method = text(ORIGINAL_METHOD)
        .filter(|_| trusted)
        .unwrap_or_else(|| "GET".into());
    let client = text(REAL_IP)
        .filter(|_| trusted)
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer.ip());
    let mut original = headers_as_text(&headers);
    original.retain(|(n, _)| ![ORIGINAL_URI, ORIGINAL_METHOD, REAL_IP].contains(&n.as_str()));
    let host = text("host").unwrap_or_default();
    let answer = tokio::task::spawn_blocking(move || {
        let loaded = shared.current();
        let request = Request::new(&method, &uri, &host, &original, Some(client));
        let decision = loaded.limits.with_store(&shared.metrics, |store| {
            loaded.policy.decide(&request, store, now_ns())
        });
        loaded.policy.auth_answer(&decision, &request)
    })
    .await;
    let Ok(answer) = answer else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = StatusCode::from_u16(answer.status)
        .unwrap_or(StatusCode::FORBIDDEN)
        .into_response();
    for (name, value) in answer.headers {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    response
}
