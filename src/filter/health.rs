//! The companion's health in shared data: the root context's probes write
//! it, HTTP contexts read it (rules and record format:
//! [`crate::policy::HealthRecord`]).
//!
//! Every worker's root context ticks and may probe, so probing goes on as
//! long as any worker runs; the claim in the record keeps them to about one
//! probe per interval between them. Writes are compare-and-swap, retried on
//! conflict, so two workers never lose each other's result.

use super::metrics::Metrics;
use super::{log, now_ns};
use crate::policy::{failure_mode_name, CompanionHealth, HealthRecord, Policy, HEALTH_KEY};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, Status};
use std::time::Duration;

/// Conflicting writes are rare (two workers finishing a probe in the same
/// instant); after this many the result is dropped, and the next probe
/// writes again.
const MAX_ATTEMPTS: usize = 16;

/// The wait for `/healthz` never exceeds this (nor the interval).
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn interval_ns(policy: &Policy) -> u64 {
    policy
        .companion()
        .health_interval
        .0
        .saturating_mul(1_000_000_000)
}

/// The record and its compare-and-swap token; a missing or unreadable
/// record reads as the default (never probed: down).
fn load() -> (HealthRecord, Option<u32>) {
    match hostcalls::get_shared_data(HEALTH_KEY) {
        Ok((bytes, cas)) => (
            bytes
                .as_deref()
                .and_then(HealthRecord::decode)
                .unwrap_or_default(),
            cas,
        ),
        Err(_) => (HealthRecord::default(), None),
    }
}

/// Writes `record` if nobody wrote since `cas` was read.
fn store(record: &HealthRecord, cas: Option<u32>) -> Result<(), Status> {
    hostcalls::set_shared_data(HEALTH_KEY, Some(&record.encode()), cas)
}

/// The companion's health now, for a request that needs it.
pub fn read(policy: &Policy) -> CompanionHealth {
    load().0.health(now_ns(), interval_ns(policy))
}

/// What a root context needs to probe.
pub struct Prober {
    /// Set once the "cluster not configured" hint is logged (once per VM).
    warned_missing_cluster: bool,
}

impl Prober {
    pub fn new() -> Prober {
        Prober {
            warned_missing_cluster: false,
        }
    }

    /// One tick: claims the next probe if it is due, then dispatches it.
    /// A dispatch that fails counts as a failed probe at once.
    pub fn tick(&mut self, policy: &Policy, metrics: &Metrics) {
        let now = now_ns();
        let interval = interval_ns(policy);
        let (record, cas) = load();
        if !record.should_probe(now, interval) || store(&record.claimed(now), cas).is_err() {
            return; // not due, or another worker claimed it first
        }
        let companion = policy.companion();
        let cluster = companion.health_cluster.as_str();
        let timeout = Duration::from_secs(companion.health_interval.0).min(MAX_PROBE_TIMEOUT);
        let headers = vec![
            (":method", "GET"),
            (":path", "/healthz"),
            (":authority", cluster),
        ];
        match hostcalls::dispatch_http_call(cluster, headers, None, vec![], timeout) {
            Ok(_) => {} // the answer arrives in `answered`
            Err(status) => {
                if status == Status::BadArgument && !self.warned_missing_cluster {
                    self.warned_missing_cluster = true;
                    log(
                        LogLevel::Warn,
                        &format!(
                            "palisade: cannot probe the companion: Envoy has no cluster `{cluster}` \
                             (the policy's companion.health_cluster); treating the companion as down \
                             (companion.failure_mode applies)"
                        ),
                    );
                }
                record_probe(policy, metrics, false);
            }
        }
    }

    /// A probe's answer (or its failure: Envoy then reports no headers).
    pub fn answered(&self, policy: &Policy, metrics: &Metrics) {
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status");
        let ok = matches!(status, Ok(Some(s)) if s == b"200");
        record_probe(policy, metrics, ok);
    }
}

/// Writes a probe's result; the writer that changes the health logs and
/// counts the transition, so each one is counted once.
fn record_probe(policy: &Policy, metrics: &Metrics, ok: bool) {
    if !ok {
        metrics.companion_probe_failed();
    }
    let interval = interval_ns(policy);
    for _ in 0..MAX_ATTEMPTS {
        let now = now_ns();
        let (before, cas) = load();
        let after = before.after_probe(ok, now, interval);
        match store(&after, cas) {
            Ok(()) => {
                let (was, is) = (before.health(now, interval), after.health(now, interval));
                metrics.companion_health(is, was != is);
                if was != is {
                    log_transition(policy, is);
                }
                return;
            }
            Err(Status::CasMismatch) => continue,
            Err(_) => return,
        }
    }
}

fn log_transition(policy: &Policy, health: CompanionHealth) {
    let companion = policy.companion();
    let message = match health {
        CompanionHealth::Up => format!(
            "palisade: companion up (cluster `{}` answers /healthz); challenges go to it",
            companion.health_cluster
        ),
        CompanionHealth::Down => format!(
            "palisade: companion down (cluster `{}` failed /healthz); failure_mode `{}` applies",
            companion.health_cluster,
            failure_mode_name(companion.failure_mode)
        ),
    };
    log(LogLevel::Warn, &message);
}
