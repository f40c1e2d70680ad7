//! Per-phase timers for the request path, compiled in only with the cargo
//! feature `profile` (`scripts/build-wasm.sh --profile`, used by
//! `BENCH_PROFILE=1 make bench`). Without it [`time`] is the closure
//! itself and [`request_done`] nothing, so the shipped filter pays nothing.
//!
//! Why inside the VM: Envoy's CPU time per request says how much Palisade
//! costs, not where. Each VM sums the nanoseconds of each phase and logs
//! the means every [`EVERY`] requests, with the cost of one timer pair
//! (`clock`) measured alongside so it can be subtracted. [`Phase::Request`]
//! spans the whole request-headers callback, so what no phase names (the
//! SDK's dispatch, building the request, dropping it) shows as the rest.
//! The timers read the wall clock (WASI has no thread CPU clock in Envoy),
//! so a worker that shares its CPU with another counts the other's time
//! slices too: `make bench` profiles with one worker.

/// The phases of one request, in the order they run.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Fetching the request headers from the host and reading them.
    Headers,
    /// The `source.address` property (when the client address is not
    /// taken from `X-Forwarded-For`).
    ClientAddress,
    /// Reading the client's scoring slot.
    ScoreLookUp,
    /// The policy engine's decision (routes, rules, lists, limits, token).
    Decide,
    /// Counting the decision in the metrics.
    Metrics,
    /// Counting the request in the client's scoring slot.
    ScoreRecord,
    /// The reply and the annotation headers for the upstream.
    Enforce,
    /// The response-headers callback.
    Response,
    /// The whole request-headers callback, the phases above it included.
    Request,
}

#[cfg(feature = "profile")]
mod timers {
    use super::Phase;
    use std::cell::RefCell;
    use std::time::Instant;

    const PHASES: [&str; 9] = [
        "headers",
        "client_address",
        "score_look_up",
        "decide",
        "metrics",
        "score_record",
        "enforce",
        "response",
        "request",
    ];
    /// Small enough that each run gives every VM dozens of windows, to
    /// take medians over; large enough that logging costs nothing.
    pub const EVERY: u64 = 2_000;

    #[derive(Default)]
    struct Totals {
        requests: u64,
        ns: [u64; PHASES.len()],
        clock_ns: u64,
    }

    thread_local! {
        static TOTALS: RefCell<Totals> = RefCell::new(Totals::default());
    }

    fn nanos(start: Instant) -> u64 {
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn time<R>(phase: Phase, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let result = f();
        let ns = nanos(start);
        TOTALS.with_borrow_mut(|t| {
            if let Some(sum) = t.ns.get_mut(phase as usize) {
                *sum = sum.saturating_add(ns);
            }
        });
        result
    }

    pub fn request_done() {
        let clock = nanos(Instant::now());
        let line = TOTALS.with_borrow_mut(|t| {
            t.clock_ns = t.clock_ns.saturating_add(clock);
            t.requests += 1;
            if t.requests < EVERY {
                return None;
            }
            let mean = |ns: u64| ns / t.requests;
            let phases: Vec<String> = PHASES
                .iter()
                .zip(t.ns)
                .map(|(name, ns)| format!("{name}={}", mean(ns)))
                .collect();
            let line = format!(
                "palisade profile: requests={} ns/request: {} clock={}",
                t.requests,
                phases.join(" "),
                mean(t.clock_ns)
            );
            *t = Totals::default();
            Some(line)
        });
        if let Some(line) = line {
            super::super::log(proxy_wasm::types::LogLevel::Warn, &line);
        }
    }
}

#[cfg(feature = "profile")]
pub use timers::{request_done, time};

/// Runs `f` (timed, with the `profile` feature).
#[cfg(not(feature = "profile"))]
#[inline(always)]
pub fn time<R>(_phase: Phase, f: impl FnOnce() -> R) -> R {
    f()
}

/// Marks the end of one request's phases (with the `profile` feature,
/// logs the means every [`EVERY`](timers::EVERY) requests).
#[cfg(not(feature = "profile"))]
#[inline(always)]
pub fn request_done() {}
