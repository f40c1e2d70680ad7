//! Rate limits: the human syntax (`10/second`, `5 per hour`), the GCRA
//! arithmetic, and a bounded table of slots that any host can store.
//!
//! STUB: interface only; being implemented.

use std::str::FromStr;

/// `count` requests per `period_ns` nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(pub String);

impl FromStr for Rate {
    type Err = RateError;
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}

/// A rate plus the extra requests allowed at once.
/// Guarantee: in any window `[t, t + period)` at most `count + burst` are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub rate: Rate,
    pub burst: u32,
}

/// The result of one admission attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// Requests that could still be admitted right now.
    pub remaining: u32,
    /// When denied: how long until one request would be admitted.
    pub retry_after_ns: u64,
    /// How long until the limiter is back to its full allowance.
    pub reset_ns: u64,
}

/// Where limiter state lives. Implementations: [`MemoryStore`] (one
/// process) and the Envoy filter's shared-data store (all workers).
pub trait RateLimitStore {
    /// Counts one request for `key` against `limit` at `now_ns`.
    fn acquire(&mut self, key: u64, limit: &Limit, now_ns: u64) -> Outcome;
}

/// In-process store with memory fixed at construction.
pub struct MemoryStore {}

impl MemoryStore {
    /// A store of `buckets` buckets (each holds a few clients).
    pub fn new(_buckets: usize) -> MemoryStore {
        todo!()
    }
}

impl RateLimitStore for MemoryStore {
    fn acquire(&mut self, _key: u64, _limit: &Limit, _now_ns: u64) -> Outcome {
        todo!()
    }
}
