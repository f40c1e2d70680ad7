//! Envoy stats for the filter, defined once per VM and shown on the admin
//! `/stats` and `/stats/prometheus` pages (Envoy prefixes custom wasm
//! metrics with `wasmcustom.`).
//!
//! Names: `palisade.requests.<action>`, `palisade.route.<route>.requests`,
//! `palisade.rule.<rule>.fired`, `palisade.challenge.{issued,passed,failed}`,
//! `palisade.challenge.failed.<reason>`, `palisade.rate_limited`,
//! `palisade.token.rejected.<reason>`, `palisade.config_errors`,
//! `palisade.ratelimit.store_degraded`.

use crate::policy::{Action, Decision, Policy, TokenState};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn bump(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
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

    pub fn challenge_passed(&self) {
        bump(self.challenges_passed);
    }

    pub fn challenge_failed(&self, reason: &str) {
        bump(self.challenges_failed);
        bump(counter(&format!("palisade.challenge.failed.{reason}")));
    }
}
