//! The internal listener: health, metrics and totals for operators and for
//! the filter's health probe.

use super::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
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
