//! The rate limits of the nginx check (`/auth`): counted in the companion's
//! own bounded table (`companion.limits: memory`), or in Redis so that
//! replicas share one allowance per client (`limits: redis`), with
//! `companion.limits_unavailable` saying what a request counts against
//! while Redis cannot be reached.
//!
//! The local table is a [`MemoryStore`] of `rate_limiting.buckets`, made
//! afresh on every reload. The Redis limiter (its connections, and whether
//! it was last seen failing) is kept across a reload while `redis_url` is
//! unchanged. A Redis round trip never holds a lock: the local table is
//! locked only to count in it.

use super::metrics::Metrics;
use crate::config::{CompanionConfig, LimitsStore, LimitsUnavailable};
use crate::ratelimit::{Limit, MemoryStore, Outcome, RateLimitStore, RedisLimiter};
use crate::redis_pool::PoolError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How long `limits_unavailable: deny` tells a client to wait.
const DENY_RETRY_NS: u64 = 1_000_000_000;

/// Where the check counts its requests.
pub struct CheckLimits {
    local: Mutex<MemoryStore>,
    remote: Option<Arc<Remote>>,
    unavailable: LimitsUnavailable,
}

/// The Redis limiter of one `redis_url`, and whether its last call failed,
/// so that each change is logged once rather than on every request.
struct Remote {
    url: String,
    limiter: RedisLimiter,
    failing: AtomicBool,
}

impl CheckLimits {
    /// The limits `config` asks for, with a new local table of `buckets`.
    /// `previous`'s Redis limiter is kept when it has the same URL; a new
    /// one does not contact Redis yet.
    pub fn new(
        config: &CompanionConfig,
        buckets: usize,
        previous: Option<&CheckLimits>,
    ) -> Result<CheckLimits, PoolError> {
        let remote = match (config.limits, &config.redis_url) {
            (LimitsStore::Redis, Some(url)) => {
                let kept = previous
                    .and_then(|p| p.remote.as_ref())
                    .filter(|r| &r.url == url);
                Some(match kept {
                    Some(remote) => remote.clone(),
                    None => Arc::new(Remote {
                        url: url.clone(),
                        limiter: RedisLimiter::open(url)?,
                        failing: AtomicBool::new(false),
                    }),
                })
            }
            // `redis` without a URL is refused when the policy compiles.
            (LimitsStore::Memory, _) | (LimitsStore::Redis, None) => None,
        };
        Ok(CheckLimits {
            local: Mutex::new(MemoryStore::new(buckets)),
            remote,
            unavailable: config.limits_unavailable,
        })
    }

    /// "memory" or "redis" (for logs).
    pub fn name(&self) -> &'static str {
        match self.remote {
            Some(_) => "redis",
            None => "memory",
        }
    }

    /// Whether counting may wait on the network (Redis): the caller then
    /// runs it where blocking is allowed.
    pub fn waits_on_network(&self) -> bool {
        self.remote.is_some()
    }

    /// Runs `decide` with the store the check counts in, such as
    /// `policy.decide(&request, store, now)`. Requests that could not be
    /// counted in Redis are counted in `metrics` by fallback.
    pub fn with_store<R>(
        &self,
        metrics: &Metrics,
        decide: impl FnOnce(&mut dyn RateLimitStore) -> R,
    ) -> R {
        decide(&mut CheckStore {
            limits: self,
            metrics,
        })
    }

    fn acquire(&self, key: u64, limit: &Limit, now_ns: u64, metrics: &Metrics) -> Outcome {
        let Some(remote) = &self.remote else {
            return self.count_locally(key, limit, now_ns);
        };
        match remote.limiter.acquire(key, limit, now_ns) {
            Ok(outcome) => {
                remote.succeeded();
                outcome
            }
            Err(e) => {
                metrics.limit_fallback(self.unavailable);
                remote.failed(&e, self.unavailable);
                match self.unavailable {
                    LimitsUnavailable::Local => self.count_locally(key, limit, now_ns),
                    // As for a client never seen, and forgotten at once.
                    LimitsUnavailable::Allow => limit.apply(&mut 0, now_ns),
                    LimitsUnavailable::Deny => Outcome {
                        allowed: false,
                        remaining: 0,
                        retry_after_ns: DENY_RETRY_NS,
                        reset_ns: DENY_RETRY_NS,
                    },
                }
            }
        }
    }

    fn count_locally(&self, key: u64, limit: &Limit, now_ns: u64) -> Outcome {
        let mut local = match self.local.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        local.acquire(key, limit, now_ns)
    }
}

impl Remote {
    fn succeeded(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                event = "limits_redis_back",
                redis = self.limiter.location(),
                "rate limits are counted in Redis again"
            );
        }
    }

    fn failed(&self, e: &PoolError, fallback: LimitsUnavailable) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                event = "limits_redis_failing",
                error = %e,
                fallback = fallback.as_str(),
                "rate limits cannot be counted in Redis; companion.limits_unavailable applies until it answers"
            );
        }
    }
}

/// One check's view of [`CheckLimits`], with the metrics it reports to.
struct CheckStore<'a> {
    limits: &'a CheckLimits,
    metrics: &'a Metrics,
}

impl RateLimitStore for CheckStore<'_> {
    fn acquire(&mut self, key: u64, limit: &Limit, now_ns: u64) -> Outcome {
        self.limits.acquire(key, limit, now_ns, self.metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(limits: LimitsStore, redis_url: &str) -> CompanionConfig {
        CompanionConfig {
            limits,
            redis_url: Some(redis_url.to_string()),
            ..CompanionConfig::default()
        }
    }

    fn same_remote(a: &CheckLimits, b: &CheckLimits) -> bool {
        match (&a.remote, &b.remote) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    #[test]
    fn a_reload_keeps_the_redis_limiter_while_its_url_is_unchanged() {
        // Nothing listens there: opening does not connect.
        let url = "redis://127.0.0.1:1/0";
        let first = CheckLimits::new(&config(LimitsStore::Redis, url), 8, None).unwrap();
        assert_eq!(first.name(), "redis");
        let reloaded = CheckLimits::new(&config(LimitsStore::Redis, url), 8, Some(&first)).unwrap();
        assert!(same_remote(&first, &reloaded));
        let moved = "redis://127.0.0.1:2/0";
        let elsewhere =
            CheckLimits::new(&config(LimitsStore::Redis, moved), 8, Some(&first)).unwrap();
        assert!(!same_remote(&first, &elsewhere));
        let memory = CheckLimits::new(&config(LimitsStore::Memory, url), 8, Some(&first)).unwrap();
        assert_eq!(memory.name(), "memory");
    }
}
