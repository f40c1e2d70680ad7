//! The Envoy filter: proxy-wasm glue around the policy engine.
//!
//! Thin by design: the root context compiles the plugin configuration once
//! per VM (Envoy runs one VM per worker thread); each HTTP context turns
//! host data into a [`Request`](crate::policy::Request), asks the policy,
//! and carries out the decision. Rate-limit state lives in shared data so
//! all workers share one limit ([`store`]); so does the companion's health,
//! which the root contexts probe on a timer ([`health`]). With
//! `scoring.enabled`, each client's behaviour and cached learned score live
//! in shared-data slots ([`slots`], used per request by [`scoring`], which
//! serves a busy client from the worker's own recent copy of its slot and
//! writes its requests back on the same timer), and the root contexts send
//! queued feature reports to the companion in batches on that timer too
//! ([`reports`]).
//!
//! No panics on host data: a panic kills the VM and every request on the
//! worker with it, so `unwrap`, `expect`, `panic!` and slice indexing are
//! denied here.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod headers;
mod health;
mod http;
mod metrics;
mod profile;
mod reports;
mod scoring;
mod slots;
mod store;

use crate::config::Config;
use crate::policy::{Policy, ProcessEnv};
use crate::scoring::local;
use metrics::Metrics;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use scoring::Scorer;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Logs through the host; a failed log call is not worth failing a request.
fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// The current time in nanoseconds since the Unix epoch (0 if unavailable).
fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// This VM's linear memory, in MiB: logged once the policy loads, because
/// a wasm memory never shrinks, so the load-time peak is what the VM keeps.
fn linear_memory_mib() -> f64 {
    const PAGE: usize = 64 * 1024;
    (core::arch::wasm32::memory_size::<0>() * PAGE) as f64 / (1024.0 * 1024.0)
}

/// How to fix a configuration that is not a JSON policy.
const GIVE_JSON: &str =
    "give the policy as JSON, as `palisade policy-json FILE` prints it (YAML is not accepted here)";

/// The first probe comes this soon after a policy loads, so a running
/// companion is used within a moment of startup rather than an interval.
const FIRST_PROBE: Duration = Duration::from_millis(100);

struct Root {
    policy: Option<Rc<Policy>>,
    metrics: Option<Rc<Metrics>>,
    /// With `scoring.enabled` only.
    scorer: Option<Rc<Scorer>>,
    reporter: reports::Reporter,
    prober: health::Prober,
    /// Whether the tick period is the health interval yet (see [`FIRST_PROBE`]).
    ticking_at_interval: bool,
}

impl Default for Root {
    fn default() -> Root {
        Root {
            policy: None,
            metrics: None,
            scorer: None,
            reporter: reports::Reporter::new(None),
            prober: health::Prober::new(),
            ticking_at_interval: false,
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        // The root dispatches report batches and health probes.
        if let (Some(policy), Some(metrics)) = (&self.policy, &self.metrics) {
            let report = self
                .scorer
                .as_deref()
                .is_some_and(|scorer| self.reporter.answered(token, body, policy, metrics, scorer));
            if !report {
                self.prober.answered(policy, metrics);
            }
        }
    }
}

/// How often a root context ticks: every health interval, or with
/// scoring on every quarter report interval if that is sooner, so that
/// some worker claims each report send within a quarter interval of it
/// falling due, and at least every [`local::MAX_AGE_NS`], so that the
/// events this worker counted in its copies of the clients' slots reach
/// the shared slots (and other workers) within that.
fn tick_period(policy: &Policy) -> Duration {
    let health = Duration::from_secs(policy.companion().health_interval.0);
    let scoring = policy.scoring();
    if scoring.enabled {
        health
            .min(Duration::from_millis(scoring.report_interval_ms / 4))
            .min(Duration::from_nanos(local::MAX_AGE_NS))
    } else {
        health
    }
}

impl Root {
    /// Reads and compiles the plugin configuration. The configuration's
    /// bytes are dropped once parsed, before compiling: the compile's own
    /// peak then reuses their memory instead of adding to it.
    fn load(&self) -> Result<Policy, String> {
        let config = Self::read_config()?;
        Policy::compile(config, &ProcessEnv).map_err(|e| e.to_string())
    }

    fn read_config() -> Result<Config, String> {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map_err(|status| format!("cannot read the plugin configuration: {status:?}"))?
            .ok_or_else(|| format!("the plugin configuration is empty: {GIVE_JSON}"))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| format!("the plugin configuration is not UTF-8: {e}"))?;
        if text.trim().is_empty() {
            return Err(format!("the plugin configuration is empty: {GIVE_JSON}"));
        }
        // A syntax error would otherwise read like a policy problem
        // ("expected ident at line 1 column 2"); say what is wrong instead.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            if e.is_syntax() || e.is_eof() {
                return Err(format!(
                    "the plugin configuration is not JSON ({e}): {GIVE_JSON}"
                ));
            }
        }
        Config::from_json(text).map_err(|e| e.to_string())
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let metrics = self
            .metrics
            .clone()
            .unwrap_or_else(|| Rc::new(Metrics::base()));
        match self.load() {
            Ok(policy) => {
                store::prepare(policy.rate_limit_buckets());
                self.scorer = Scorer::new(&policy).map(Rc::new);
                self.reporter =
                    reports::Reporter::new(self.scorer.as_ref().and_then(|s| s.queue()));
                self.metrics = Some(Rc::new(metrics.with_policy(&policy)));
                self.policy = Some(Rc::new(policy));
                self.ticking_at_interval = false;
                let _ = hostcalls::set_tick_period(FIRST_PROBE);
                log(
                    LogLevel::Info,
                    &format!(
                        "palisade: policy loaded (wasm linear memory {:.1} MiB)",
                        linear_memory_mib()
                    ),
                );
                true
            }
            Err(reason) => {
                metrics.config_error();
                log(
                    LogLevel::Error,
                    &format!("palisade: invalid configuration: {reason}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let (Some(policy), Some(metrics)) = (&self.policy, &self.metrics) else {
            return;
        };
        if !self.ticking_at_interval {
            self.ticking_at_interval = hostcalls::set_tick_period(tick_period(policy)).is_ok();
        }
        self.prober.tick(policy, metrics);
        if let Some(scorer) = &self.scorer {
            scorer.flush(metrics, now_ns());
            self.reporter.tick(policy, metrics);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let policy = self.policy.clone()?;
        let metrics = self.metrics.clone()?;
        Some(Box::new(http::Http::new(
            policy,
            metrics,
            self.scorer.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
