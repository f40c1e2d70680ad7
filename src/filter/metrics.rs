//! Envoy stats for the filter, defined once per VM and shown on the admin
//! `/stats` and `/stats/prometheus` pages (Envoy prefixes custom wasm
//! metrics with `wasmcustom.`).
//!
//! Names: `palisade.requests.<action>`, `palisade.route.<route>.requests`,
//! `palisade.rule.<rule>.fired`, `palisade.challenge.{issued,passed,failed}`,
//! `palisade.challenge.failed.<reason>`, `palisade.rate_limited`,
//! `palisade.token.rejected.<reason>`, `palisade.config_errors`,
//! `palisade.ratelimit.store_degraded`.
//!
//! The companion: `palisade.companion.up` (a gauge: 1 up, 0 down, as the
//! last probe left it), `palisade.companion.became_{up,down}` (transitions),
//! `palisade.companion.probe_failed`, `palisade.companion.handoff`
//! (challenges sent to the companion) and
//! `palisade.companion.fallback.{pow,fail_open,fail_closed}` (challenges
//! `companion.failure_mode` answered while it was down; `fail_open` counts
//! the requests let through unchallenged).
//!
//! Learned scores (defined only with `scoring.enabled`):
//! `palisade.score.points` (a histogram of the learned scores the
//! companion sent back, one per client scored), `palisade.score.fallback.<reason>` (decisions on a
//! route that uses the score made on rules only: `companion_down` — no
//! fresh cached score and the companion down; on blocking routes
//! `timeout`, `error` (an answer other than 200) and `bad_answer`; and
//! `no_model`, per client the companion answered without a score, as well
//! as `bad_answer` per refused report answer),
//! `palisade.score.reports.{sent,failed}` (report batches),
//! `palisade.score.reports.clients` (clients in the batches sent),
//! `palisade.score.reports.dropped` (queued reports not sent: beyond
//! `report_batch`, or while the companion is down) and
//! `palisade.score.slot_degraded` (slot updates given up).

use crate::config::FailureMode;
use crate::policy::{
    failure_mode_name, Action, CompanionHealth, CompanionUse, Decision, Policy, TokenState,
};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn histogram(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Histogram, name).ok()
}

fn gauge(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Gauge, name).ok()
}

fn bump(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

fn add(id: Option<u32>, n: usize) {
    if let (Some(id), Ok(n @ 1..)) = (id, i64::try_from(n)) {
        let _ = hostcalls::increment_metric(id, n);
    }
}

/// Stat names allow letters, digits, `_` and `-`; anything else becomes `_`.
fn stat_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

const FAILURE_MODES: [FailureMode; 3] = [
    FailureMode::Pow,
    FailureMode::FailOpen,
    FailureMode::FailClosed,
];

/// Why a decision on a route that uses the learned score had none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    CompanionDown,
    Timeout,
    Error,
    BadAnswer,
    NoModel,
}

const FALLBACKS: [Fallback; 5] = [
    Fallback::CompanionDown,
    Fallback::Timeout,
    Fallback::Error,
    Fallback::BadAnswer,
    Fallback::NoModel,
];

impl Fallback {
    fn label(self) -> &'static str {
        match self {
            Fallback::CompanionDown => "companion_down",
            Fallback::Timeout => "timeout",
            Fallback::Error => "error",
            Fallback::BadAnswer => "bad_answer",
            Fallback::NoModel => "no_model",
        }
    }
}

/// The learned-score metrics (see the module doc).
#[derive(Clone, Copy)]
struct ScoreMetrics {
    points: Option<u32>,
    /// By [`FALLBACKS`].
    fallback: [Option<u32>; 5],
    reports_sent: Option<u32>,
    reports_failed: Option<u32>,
    reports_clients: Option<u32>,
    reports_dropped: Option<u32>,
    slot_degraded: Option<u32>,
}

impl ScoreMetrics {
    fn define() -> ScoreMetrics {
        ScoreMetrics {
            points: histogram("palisade.score.points"),
            fallback: FALLBACKS.map(|f| counter(&format!("palisade.score.fallback.{}", f.label()))),
            reports_sent: counter("palisade.score.reports.sent"),
            reports_failed: counter("palisade.score.reports.failed"),
            reports_clients: counter("palisade.score.reports.clients"),
            reports_dropped: counter("palisade.score.reports.dropped"),
            slot_degraded: counter("palisade.score.slot_degraded"),
        }
    }
}

const ACTIONS: [Action; 5] = [
    Action::Allow,
    Action::Monitor,
    Action::Challenge,
    Action::RateLimited,
    Action::Block,
];

pub struct Metrics {
    actions: Vec<Option<u32>>,
    routes: Vec<Option<u32>>,
    rules: Vec<Option<u32>>,
    challenges_issued: Option<u32>,
    challenges_passed: Option<u32>,
    challenges_failed: Option<u32>,
    rate_limited: Option<u32>,
    config_errors: Option<u32>,
    store_degraded: Option<u32>,
    companion_up: Option<u32>,
    companion_became_up: Option<u32>,
    companion_became_down: Option<u32>,
    companion_probe_failed: Option<u32>,
    companion_handoff: Option<u32>,
    /// By [`FAILURE_MODES`].
    companion_fallback: [Option<u32>; 3],
    /// With `scoring.enabled` only.
    score: Option<ScoreMetrics>,
}

impl Metrics {
    /// The metrics that exist whatever the policy (config errors among them).
    pub fn base() -> Metrics {
        Metrics {
            actions: ACTIONS
                .iter()
                .map(|a| counter(&format!("palisade.requests.{}", a.as_str())))
                .collect(),
            routes: Vec::new(),
            rules: Vec::new(),
            challenges_issued: counter("palisade.challenge.issued"),
            challenges_passed: counter("palisade.challenge.passed"),
            challenges_failed: counter("palisade.challenge.failed"),
            rate_limited: counter("palisade.rate_limited"),
            config_errors: counter("palisade.config_errors"),
            store_degraded: counter("palisade.ratelimit.store_degraded"),
            companion_up: gauge("palisade.companion.up"),
            companion_became_up: counter("palisade.companion.became_up"),
            companion_became_down: counter("palisade.companion.became_down"),
            companion_probe_failed: counter("palisade.companion.probe_failed"),
            companion_handoff: counter("palisade.companion.handoff"),
            companion_fallback: FAILURE_MODES.map(|m| {
                counter(&format!(
                    "palisade.companion.fallback.{}",
                    failure_mode_name(m)
                ))
            }),
            score: None,
        }
    }

    /// Adds per-route and per-rule counters for `policy`.
    pub fn with_policy(&self, policy: &Policy) -> Metrics {
        Metrics {
            actions: self.actions.clone(),
            routes: policy
                .route_names()
                .map(|n| counter(&format!("palisade.route.{}.requests", stat_name(n))))
                .collect(),
            rules: policy
                .rule_names()
                .map(|n| counter(&format!("palisade.rule.{}.fired", stat_name(n))))
                .collect(),
            score: match (self.score, policy.scoring().enabled) {
                (_, false) => None,
                (Some(defined), true) => Some(defined),
                (None, true) => Some(ScoreMetrics::define()),
            },
            ..*self
        }
    }

    pub fn config_error(&self) {
        bump(self.config_errors);
    }

    pub fn store_degraded(&self) {
        bump(self.store_degraded);
    }

    pub fn decision(&self, d: &Decision) {
        let action = ACTIONS.iter().position(|a| *a == d.action);
        bump(action.and_then(|i| self.actions.get(i).copied().flatten()));
        let route = d.route_index.unwrap_or(self.routes.len().saturating_sub(1));
        bump(self.routes.get(route).copied().flatten());
        for rule in &d.rules {
            bump(self.rules.get(rule.index).copied().flatten());
        }
        match d.action {
            Action::Challenge => bump(self.challenges_issued),
            Action::RateLimited => bump(self.rate_limited),
            _ => {}
        }
        if let TokenState::Rejected(e) = d.token {
            bump(counter(&format!("palisade.token.rejected.{}", e.label())));
        }
    }

    /// A score the companion sent back for a client. (Recorded as it
    /// arrives, once per client and report, rather than per request: a
    /// histogram record costs each request about 0.5 µs in Envoy.)
    pub fn score_received(&self, points: u8) {
        if let Some(id) = self.score.and_then(|m| m.points) {
            let _ = hostcalls::record_metric(id, u64::from(points));
        }
    }

    pub fn score_fallback(&self, why: Fallback) {
        let index = FALLBACKS.iter().position(|f| *f == why);
        bump(
            self.score
                .and_then(|m| m.fallback.get(index?).copied().flatten()),
        );
    }

    pub fn report_sent(&self, clients: usize) {
        if let Some(m) = self.score {
            bump(m.reports_sent);
            add(m.reports_clients, clients);
        }
    }

    pub fn report_failed(&self) {
        bump(self.score.and_then(|m| m.reports_failed));
    }

    pub fn reports_dropped(&self, reports: usize) {
        add(self.score.and_then(|m| m.reports_dropped), reports);
    }

    pub fn slot_degraded(&self) {
        bump(self.score.and_then(|m| m.slot_degraded));
    }

    pub fn challenge_passed(&self) {
        bump(self.challenges_passed);
    }

    pub fn challenge_failed(&self, reason: &str) {
        bump(self.challenges_failed);
        bump(counter(&format!("palisade.challenge.failed.{reason}")));
    }

    /// The health a probe left, and whether it changed.
    pub fn companion_health(&self, health: CompanionHealth, changed: bool) {
        if let Some(id) = self.companion_up {
            let _ = hostcalls::record_metric(id, u64::from(health == CompanionHealth::Up));
        }
        if changed {
            bump(match health {
                CompanionHealth::Up => self.companion_became_up,
                CompanionHealth::Down => self.companion_became_down,
            });
        }
    }

    pub fn companion_probe_failed(&self) {
        bump(self.companion_probe_failed);
    }

    /// How the companion figured in a reply.
    pub fn companion_use(&self, used: CompanionUse) {
        match used {
            CompanionUse::NotInvolved => {}
            CompanionUse::HandedOff => bump(self.companion_handoff),
            CompanionUse::Fallback(mode) => {
                let index = FAILURE_MODES.iter().position(|m| *m == mode);
                bump(index.and_then(|i| self.companion_fallback.get(i).copied().flatten()));
            }
        }
    }
}
