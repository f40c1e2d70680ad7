//! Feature reports to the companion: queued by requests, sent in batches
//! by a root context, answered into the clients' slots.
//!
//! The queue is a proxy-wasm shared queue (`palisade.sc.reports`): one
//! host call to enqueue, any VM may dequeue, and each item is dequeued
//! once. Every root context registers it (the host returns the same queue
//! for the same VM id and name). A shared queue has no bound, so the
//! bound is kept here: whichever root wins a send empties the whole queue
//! and sends at most `scoring.report_batch` reports, dropping (and
//! counting) the rest. What the queue holds is therefore at most what
//! requests queue in one interval, and a client queues at most once per
//! interval (its slot records when), so its dropped report is simply
//! queued again an interval later.
//!
//! At most one batch per `report_interval_ms` for the whole Envoy: a send
//! is claimed by compare-and-swap on `palisade.sc.sent` (the time of the
//! last send), as the health prober claims its probes, so N workers
//! ticking do not send N batches.

use super::health;
use super::metrics::{Fallback, Metrics};
use super::now_ns;
use super::scoring::Scorer;
use crate::policy::{CompanionHealth, Policy};
use crate::scoring::report::{self, BadAnswer, Report};
use crate::scoring::Scored;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::time::Duration;

const QUEUE: &str = "palisade.sc.reports";
const SENT_KEY: &str = "palisade.sc.sent";

/// The wait for a batch's answer never exceeds this (nor the interval).
const MAX_BATCH_TIMEOUT: Duration = Duration::from_secs(1);

/// Registers the report queue (idempotent across VMs) and creates the
/// send claim, so that claiming is always compare-and-swap; `None` when
/// the host has no shared queues, and then no reports are sent.
pub fn register() -> Option<u32> {
    if let Ok((None, _)) = hostcalls::get_shared_data(SENT_KEY) {
        let _ = hostcalls::set_shared_data(SENT_KEY, Some(&0u64.to_le_bytes()), None);
    }
    hostcalls::register_shared_queue(QUEUE).ok()
}

/// Queues one client's report; a refusal loses only this report.
pub fn enqueue(queue: u32, report: &Report) -> bool {
    hostcalls::enqueue_shared_queue(queue, Some(&report.to_bytes())).is_ok()
}

fn ms(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

pub fn interval_ns(policy: &Policy) -> u64 {
    ms(policy.scoring().report_interval_ms)
}

pub fn ttl_ns(policy: &Policy) -> u64 {
    policy.scoring().cache_ttl.0.saturating_mul(1_000_000_000)
}

/// Sends `reports` to the companion's `POST /score`; the answer arrives
/// in the dispatching context's `on_http_call_response`.
pub fn dispatch(policy: &Policy, reports: &[Report], timeout: Duration) -> Result<u32, Status> {
    let cluster = policy.companion().health_cluster.as_str();
    let headers = vec![
        (":method", "POST"),
        (":path", "/score"),
        (":authority", cluster),
        ("content-type", "application/json"),
    ];
    let body = report::batch_body(reports);
    hostcalls::dispatch_http_call(cluster, headers, Some(&body), vec![], timeout)
}

/// Why an answer gave no scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// No answer in time: Envoy answers the call itself with 504.
    Timeout,
    /// Any other status but 200 (503 when the companion cannot be
    /// reached), or no answer at all (the call was reset).
    Status,
    Bad(BadAnswer),
}

impl Failed {
    pub fn fallback(self) -> Fallback {
        match self {
            Failed::Timeout => Fallback::Timeout,
            Failed::Status => Fallback::Error,
            Failed::Bad(_) => Fallback::BadAnswer,
        }
    }
}

/// Reads the answer to a `/score` call for `reports` (call it from
/// `on_http_call_response`).
pub fn answer(reports: &[Report], body_size: usize) -> Result<Vec<Option<Scored>>, Failed> {
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status");
    match status {
        Ok(Some(s)) if s == b"200" => {}
        Ok(Some(s)) if s == b"504" => return Err(Failed::Timeout),
        _ => return Err(Failed::Status),
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    report::read_answer(&body, reports).map_err(Failed::Bad)
}

/// Stores each score in its client's slot (unless another client has
/// taken the slot since), applying for `scoring.cache_ttl`.
pub fn store_scores(
    scorer: &Scorer,
    policy: &Policy,
    metrics: &Metrics,
    reports: &[Report],
    scores: &[Option<Scored>],
) {
    let (now, ttl) = (now_ns(), ttl_ns(policy));
    for (report, scored) in reports.iter().zip(scores) {
        let Some(scored) = *scored else {
            metrics.score_fallback(Fallback::NoModel);
            continue;
        };
        metrics.score_received(scored.points);
        scorer.store_score(metrics, report.key, scored, now, ttl);
    }
}

/// The root context's half: claims sends, drains the queue, sends one
/// batch and stores its answer.
pub struct Reporter {
    queue: Option<u32>,
    /// Batches awaiting their answers, by dispatch token (Envoy answers
    /// every call, by its timeout at the latest, so this stays short).
    in_flight: Vec<(u32, Vec<Report>)>,
}

impl Reporter {
    pub fn new(queue: Option<u32>) -> Reporter {
        Reporter {
            queue,
            in_flight: Vec::new(),
        }
    }

    /// Claims this interval's send for this VM; false if another worker
    /// sent within the interval, or won the race to.
    fn claim(interval: u64, now: u64) -> bool {
        let Ok((bytes, cas)) = hostcalls::get_shared_data(SENT_KEY) else {
            return false;
        };
        let last = bytes
            .as_deref()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes);
        now.saturating_sub(last) >= interval
            && hostcalls::set_shared_data(SENT_KEY, Some(&now.to_le_bytes()), cas).is_ok()
    }

    /// One tick: if this interval's send is ours, empties the queue and
    /// sends what it held (at most `scoring.report_batch` clients).
    pub fn tick(&mut self, policy: &Policy, metrics: &Metrics) {
        let Some(queue) = self.queue else { return };
        let scoring = policy.scoring();
        if !Reporter::claim(interval_ns(policy), now_ns()) {
            return;
        }
        let mut queued = Vec::new();
        while let Ok(Some(bytes)) = hostcalls::dequeue_shared_queue(queue) {
            queued.extend(Report::from_bytes(&bytes));
        }
        if queued.is_empty() {
            return;
        }
        let total = queued.len();
        let limit = usize::try_from(scoring.report_batch).unwrap_or(usize::MAX);
        // Nothing to send to while the companion is down: the clients
        // queue again an interval later.
        let batch = match health::read(policy) {
            CompanionHealth::Up => {
                queued.truncate(limit);
                queued
            }
            CompanionHealth::Down => Vec::new(),
        };
        metrics.reports_dropped(total - batch.len());
        if batch.is_empty() {
            return;
        }
        let timeout = Duration::from_millis(scoring.report_interval_ms).min(MAX_BATCH_TIMEOUT);
        match dispatch(policy, &batch, timeout) {
            Ok(token) => {
                metrics.report_sent(batch.len());
                self.in_flight.push((token, batch));
            }
            Err(_) => metrics.report_failed(),
        }
    }

    /// The answer to `token`, if it is this reporter's batch (else false:
    /// the root's other calls, health probes, are someone else's).
    pub fn answered(
        &mut self,
        token: u32,
        body_size: usize,
        policy: &Policy,
        metrics: &Metrics,
        scorer: &Scorer,
    ) -> bool {
        let Some(at) = self.in_flight.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, batch) = self.in_flight.swap_remove(at);
        match answer(&batch, body_size) {
            Ok(scores) => store_scores(scorer, policy, metrics, &batch, &scores),
            Err(failed) => {
                metrics.report_failed();
                if let Failed::Bad(bad) = failed {
                    metrics.score_fallback(Fallback::BadAnswer);
                    super::log(
                        proxy_wasm::types::LogLevel::Warn,
                        &format!("palisade: the companion's /score answer was refused ({}); scores stay as they were", bad.label()),
                    );
                }
            }
        }
        true
    }
}
