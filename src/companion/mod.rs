//! The companion service (`palisade serve`): the HTTP side of what a wasm
//! VM should not do. Handlers only translate HTTP into calls on
//! [`crate::challenge::service`] and back.
//!
//! Two listeners:
//! - **public** ([`public`]): everything under the challenge prefix that
//!   clients reach through the proxy (pages, media, answers, and the
//!   proof-of-work verify endpoint the filter's pages post to);
//! - **internal** ([`internal`]): `/healthz`, `/metrics`, `/stats`,
//!   `/auth`, the check nginx's `auth_request` asks, and the scoring API
//!   ([`scoring`]: `/score`, `/check`, `/feedback`, `/train`); never routed
//!   from the internet.
//!
//! The policy file is the filter's own: the same keys, so each side accepts
//! the other's pass tokens and tickets. SIGHUP reloads it; a policy that
//! does not compile (or whose datasets or store cannot be opened) is
//! refused with its path-qualified error and the old one keeps serving.

mod hints;
mod input;
mod internal;
mod limits;
mod metrics;
mod providers;
mod public;
pub mod scoring;
mod verdicts;

pub use input::{answer as parse_answer, challenge_query as parse_challenge_query, BadInput};
pub use limits::CheckLimits;
pub use metrics::Metrics;

use crate::challenge::chart::ChartKit;
use crate::challenge::providers::Providers;
use crate::challenge::second_look::SecondLook;
use crate::challenge::service::Assets;
use crate::challenge::store::{self, Store, StoreError};
use crate::challenge::DatasetError;
use crate::config::ConfigError;
use crate::policy::{Policy, ProcessEnv};
use crate::redis_pool::PoolError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why the companion could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {reason}")]
    Config { path: String, reason: String },
    #[error("companion.datasets: {0}")]
    Datasets(DatasetError),
    #[error("companion store: {0}")]
    Store(StoreError),
    #[error("companion.limits: {0}")]
    Limits(PoolError),
    #[error("companion.{field}: cannot listen on {addr}: {reason}")]
    Listen {
        field: &'static str,
        addr: String,
        reason: String,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// One loaded policy with what it needs to serve.
pub struct Loaded {
    pub policy: Policy,
    pub assets: Assets,
    pub store: Arc<dyn Store>,
    /// Rate limits for the nginx check: in memory, bounded like the
    /// filter's table, or in Redis (`companion.limits`).
    pub limits: CheckLimits,
    /// How right answers' interaction records are judged.
    pub second_look: SecondLook,
    /// The configured provider kinds, with their secrets.
    pub providers: Providers,
    /// The vendored ALTCHA widget, when ALTCHA is configured.
    pub altcha_widget: Option<Arc<Vec<u8>>>,
}

/// `$remote_addr`, as nginx tells the companion the connection address of
/// the client it proxies (read only from `companion.trusted_peers`).
const REAL_IP: &str = "x-real-ip";

/// What every handler shares: the current [`Loaded`] (swapped on reload)
/// and the metrics, which outlive reloads.
pub struct Shared {
    current: RwLock<Arc<Loaded>>,
    metrics: Metrics,
    /// The nginx check's recent verdicts, by request id.
    verdicts: verdicts::Verdicts,
    /// The model, the per-client table and the records (outlive reloads).
    scoring: scoring::Scoring,
    /// Page heads fetched for crawler hints (outlive reloads).
    hints: hints::HeadFetcher,
    /// Calls providers' siteverify (outlives reloads).
    siteverify: providers::SiteverifyClient,
    config_path: PathBuf,
}

impl Shared {
    /// The policy in force now; a reload does not disturb requests that
    /// already hold it.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, loaded: Loaded) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(loaded);
    }
}

/// Reads and compiles the policy at `path`, loads its datasets and opens
/// its store and limits (reusing `previous`'s store and Redis limiter when
/// their settings are unchanged).
pub fn load(path: &Path, previous: Option<&Loaded>) -> Result<Loaded, ServeError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    let policy = Policy::from_yaml(&text, &ProcessEnv).map_err(|e| ServeError::Config {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    let c = policy.companion();
    let mut assets = Assets::load(Path::new(&c.datasets)).map_err(ServeError::Datasets)?;
    let config_error = |e: ConfigError| ServeError::Config {
        path: file.clone(),
        reason: e.to_string(),
    };
    // The chart kind's tables are read afresh on every load, so a reload
    // picks up new data.
    assets.charts =
        ChartKit::load(policy.challenge_config(), Path::new(&c.datasets)).map_err(config_error)?;
    // Every provider kind the policy asks for has its block (checked when
    // it compiled); here their secrets are read.
    let providers = Providers::load(&c.providers, &policy.tokens().keyring, &ProcessEnv)
        .map_err(config_error)?;
    let altcha_widget = providers::load_altcha_widget(&providers, Path::new(&c.datasets))
        .map_err(ServeError::Datasets)?
        .map(Arc::new);
    let store = match previous {
        Some(p)
            if p.policy.companion().redis_url == c.redis_url
                && p.policy.companion().data_dir == c.data_dir =>
        {
            p.store.clone()
        }
        _ => Arc::from(store::open(c).map_err(ServeError::Store)?),
    };
    let limits = CheckLimits::new(c, policy.rate_limit_buckets(), previous.map(|p| &p.limits))
        .map_err(ServeError::Limits)?;
    let (second_look, problem) = SecondLook::load(&policy.scoring().interaction);
    if let (Some(problem), true) = (problem, policy.scoring().enabled) {
        tracing::warn!(
            event = "interaction_model",
            problem,
            "scoring.interaction.model not loaded; the additive baseline judges alone"
        );
    }
    Ok(Loaded {
        policy,
        assets,
        store,
        limits,
        second_look,
        providers,
        altcha_widget,
    })
}

/// Runs the companion until SIGINT or SIGTERM.
pub fn serve(config_path: &Path) -> Result<(), ServeError> {
    init_logging();
    let loaded = load(config_path, None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(config_path.to_path_buf(), loaded))
}

fn init_logging() {
    // One JSON object per line on stdout; a second init (tests) is a no-op.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stdout)
        .try_init();
}

async fn bind(field: &'static str, addr: &str) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Listen {
            field,
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

async fn run(config_path: PathBuf, loaded: Loaded) -> Result<(), ServeError> {
    let c = loaded.policy.companion().clone();
    let public_listener = bind("public", &c.public).await?;
    let internal_listener = bind("internal", &c.internal).await?;
    let shared = Arc::new(Shared {
        current: RwLock::new(Arc::new(loaded)),
        metrics: Metrics::new(),
        verdicts: verdicts::Verdicts::default(),
        scoring: scoring::Scoring::new(),
        hints: hints::HeadFetcher::new(),
        siteverify: providers::SiteverifyClient::new(),
        config_path,
    });
    shared
        .scoring
        .configure(&shared.current().policy, &shared.metrics);
    tracing::info!(
        public = %c.public,
        internal = %c.internal,
        store = shared.current().store.name(),
        limits = shared.current().limits.name(),
        crawler_hints = shared
            .current()
            .policy
            .crawler_hints()
            .map_or("off (no crawlers.hints.upstream)", |h| h.upstream.as_str()),
        "palisade companion serving"
    );
    tokio::spawn(reload_on_sighup(shared.clone()));
    tokio::spawn(sweep_expired(shared.clone()));
    tokio::spawn(follow_promotions(shared.clone()));
    let public = axum::serve(
        public_listener,
        public::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal());
    let internal = axum::serve(
        internal_listener,
        internal::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal());
    let (a, b) = tokio::join!(public, internal);
    for result in [a, b] {
        if let Err(e) = result {
            tracing::error!(error = %e, "listener failed");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn reload_on_sighup(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP: reloads are off");
        return;
    };
    while hangups.recv().await.is_some() {
        let shared = shared.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let old = shared.current();
            let result = load(&shared.config_path, Some(&old));
            match result {
                Ok(new) => {
                    let (o, n) = (old.policy.companion(), new.policy.companion());
                    if o.public != n.public || o.internal != n.internal {
                        tracing::warn!(
                            "companion.public and companion.internal take effect on restart only"
                        );
                    }
                    shared.replace(new);
                    shared
                        .scoring
                        .configure(&shared.current().policy, &shared.metrics);
                    shared.metrics.reload(true);
                    tracing::info!(path = %shared.config_path.display(), "policy reloaded");
                }
                Err(e) => {
                    shared.metrics.reload(false);
                    tracing::error!(error = %e, "policy reload refused; the old policy keeps serving");
                }
            }
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "policy reload failed");
        }
    }
}

/// Deletes expired challenges once a minute (SQLite; Redis expires its
/// own), and scoring records past `scoring.records` retention.
async fn sweep_expired(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let loaded = shared.current();
            if let Err(e) = loaded.store.sweep(now_s()) {
                shared.metrics.store_error(loaded.store.name());
                tracing::warn!(error = %e, "sweeping expired challenges failed");
            }
            shared
                .scoring
                .sweep(&loaded.policy, &shared.metrics, now_s());
        })
        .await;
    }
}

/// With replicas sharing scoring state through Redis, looks every
/// `scoring.training.sync_interval` for a checkpoint another replica
/// promoted, and serves it.
async fn follow_promotions(shared: Arc<Shared>) {
    loop {
        let interval = shared.current().policy.scoring().training.sync_interval.0;
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
        if !shared.scoring.waits_on_network() {
            continue;
        }
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let loaded = shared.current();
            shared
                .scoring
                .follow(&loaded.policy, &shared.metrics, now_s());
        })
        .await;
    }
}

/// Request headers as the engine takes them: bytes that are not UTF-8 are
/// replaced rather than trusted, as the filter does.
fn headers_as_text(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Seconds since the Unix epoch.
fn now_s() -> u64 {
    now_ns() / 1_000_000_000
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
