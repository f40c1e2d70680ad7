//! The companion's Prometheus metrics (`/metrics`) and their JSON totals
//! (`/stats`). They outlive policy reloads.

use super::scoring::records::WriterCounters;
use crate::config::{ChallengeKind, LimitsUnavailable};
use crate::policy::AuthAnswer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    action: &'static str,
    /// `first`, or `repeat` (the same request id again: not counted again).
    check: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedbackLabel {
    source: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabel {
    part: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

fn score_histogram() -> Histogram {
    // 0–100 in tens.
    Histogram::new((1..=10).map(|i| f64::from(i) * 10.0))
}

fn solve_histogram() -> Histogram {
    // 1 s to about 17 minutes.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

pub struct Metrics {
    registry: Registry,
    issued: Family<KindLabel, Counter>,
    solved: Family<KindLabel, Counter>,
    failed: Family<FailureLabel, Counter>,
    expired: Family<KindLabel, Counter>,
    lockouts: Counter,
    locked_requests: Counter,
    store_errors: Family<StoreLabel, Counter>,
    solve_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    render_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    reloads: Family<FailureLabel, Counter>,
    checks: Family<CheckLabel, Counter>,
    limit_fallbacks: Family<ModeLabel, Counter>,
    scoring_fallbacks: Family<PartLabel, Counter>,
    crawler_hints: Family<OutcomeLabel, Counter>,
    interactions: Family<VerdictLabel, Counter>,
    scores: Histogram,
    shadow_scores: Histogram,
    scored: Family<ActionLabel, Counter>,
    unscored: Counter,
    model_loads: Family<OutcomeLabel, Counter>,
    feedback: Family<FeedbackLabel, Counter>,
    /// Not exported: the totals of `feedback` by outcome, and of scores
    /// at or above the challenge threshold, for `/stats`.
    feedback_totals: Family<OutcomeLabel, Counter>,
    flagged: Counter,
    training_runs: Family<OutcomeLabel, Counter>,
    records: WriterCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade_companion");
        let m = Metrics {
            issued: Family::default(),
            solved: Family::default(),
            failed: Family::default(),
            expired: Family::default(),
            lockouts: Counter::default(),
            locked_requests: Counter::default(),
            store_errors: Family::default(),
            solve_seconds: Family::new_with_constructor(solve_histogram),
            render_seconds: Family::new_with_constructor(latency_histogram),
            reloads: Family::default(),
            checks: Family::default(),
            limit_fallbacks: Family::default(),
            scoring_fallbacks: Family::default(),
            crawler_hints: Family::default(),
            interactions: Family::default(),
            scores: score_histogram(),
            shadow_scores: score_histogram(),
            scored: Family::default(),
            unscored: Counter::default(),
            model_loads: Family::default(),
            feedback: Family::default(),
            feedback_totals: Family::default(),
            flagged: Counter::default(),
            training_runs: Family::default(),
            records: WriterCounters::default(),
            registry: Registry::default(),
        };
        registry.register(
            "challenges_issued",
            "Challenges issued, by kind",
            m.issued.clone(),
        );
        registry.register(
            "challenges_solved",
            "Challenges answered right, by kind",
            m.solved.clone(),
        );
        registry.register(
            "challenges_failed",
            "Answers refused, by kind and reason (wrong_answer, unknown, used)",
            m.failed.clone(),
        );
        registry.register(
            "challenges_expired",
            "Answers that came after expiry, by kind",
            m.expired.clone(),
        );
        registry.register(
            "lockouts",
            "Clients locked out after too many wrong answers",
            m.lockouts.clone(),
        );
        registry.register(
            "locked_requests",
            "Challenge requests and answers refused because the client is locked out",
            m.locked_requests.clone(),
        );
        registry.register(
            "store_errors",
            "Store operations that failed, by store",
            m.store_errors.clone(),
        );
        registry.register(
            "solve_seconds",
            "Time from issue to the right answer, by kind",
            m.solve_seconds.clone(),
        );
        registry.register(
            "render_seconds",
            "Time to render a challenge's picture, tile or clip, by kind",
            m.render_seconds.clone(),
        );
        registry.register(
            "reloads",
            "Policy reloads on SIGHUP, by outcome (ok, refused)",
            m.reloads.clone(),
        );
        registry.register(
            "checks",
            "nginx auth_request checks answered, by action and whether the request id was seen before",
            m.checks.clone(),
        );
        registry.register(
            "limit_fallbacks",
            "Rate-limit counts for /auth that Redis could not take, by what was done instead (companion.limits_unavailable: local, allow, deny)",
            m.limit_fallbacks.clone(),
        );
        registry.register(
            "scoring_fallbacks",
            "Scoring state that Redis could not share, kept in this replica alone instead, by part (clients, caps, labels, reputation, checkpoints)",
            m.scoring_fallbacks.clone(),
        );
        registry.register(
            "crawler_hints",
            "Challenge pages for crawlers by where their hints came from: fetched, cached, none (the page head had none or could not be fetched)",
            m.crawler_hints.clone(),
        );
        registry.register(
            "interactions",
            "Right answers by how the page was solved: person, bot (asked again) or none (no record, neutral)",
            m.interactions.clone(),
        );
        registry.register(
            "scores",
            "Learned scores given (0-100), by /auth, /check and /score",
            m.scores.clone(),
        );
        registry.register(
            "shadow_scores",
            "Scores the shadow candidate gave alongside, not enforced",
            m.shadow_scores.clone(),
        );
        registry.register(
            "scored",
            "Requests scored, by the action taken (/auth, /check) or the score's alone (/score)",
            m.scored.clone(),
        );
        registry.register(
            "unscored",
            "Requests decided on rules only with scoring enabled, because no model is loaded",
            m.unscored.clone(),
        );
        registry.register(
            "model_loads",
            "Loads of scoring.model at start and on reload, by outcome (ok, failed: the companion serves rules only)",
            m.model_loads.clone(),
        );
        registry.register(
            "feedback",
            "Labels from /feedback and challenge outcomes, by source and outcome (accepted, capped, no_features)",
            m.feedback.clone(),
        );
        registry.register(
            "training_runs",
            "Guarded retrains, by outcome (shadow, promoted, rejected, too_few_labels, failed)",
            m.training_runs.clone(),
        );
        registry.register(
            "records_dropped",
            "Scoring records dropped because the writer's queue was full",
            m.records.dropped.clone(),
        );
        registry.register(
            "records_failed",
            "Batches of scoring records the file refused",
            m.records.failed.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn interaction(&self, verdict: &'static str) {
        self.interactions
            .get_or_create(&VerdictLabel { verdict })
            .inc();
    }

    /// A score given, the action it went with, and whether the score
    /// alone judged a bot (at or above the challenge threshold).
    pub fn scored(&self, action: &'static str, score: f32, flagged: bool) {
        self.scores.observe(f64::from(score));
        self.scored.get_or_create(&ActionLabel { action }).inc();
        if flagged {
            self.flagged.inc();
        }
    }

    pub fn shadow_scored(&self, score: f32) {
        self.shadow_scores.observe(f64::from(score));
    }

    /// A decision on rules only although scoring is enabled.
    pub fn unscored(&self) {
        self.unscored.inc();
    }

    pub fn model_load(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.model_loads
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn feedback(&self, source: &str, outcome: &'static str) {
        let l = FeedbackLabel {
            source: source.to_string(),
            outcome,
        };
        self.feedback.get_or_create(&l).inc();
        self.feedback_totals
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn training_run(&self, outcome: &'static str) {
        self.training_runs
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The counters the records writer reports to.
    pub fn records(&self) -> WriterCounters {
        self.records.clone()
    }

    /// Scoring totals for `/stats`.
    pub fn scoring_stats(&self) -> Value {
        let mut by_action = Map::new();
        let mut total = 0;
        for action in ["allow", "monitor", "challenge", "rate_limited", "block"] {
            let n = self.scored.get_or_create(&ActionLabel { action }).get();
            total += n;
            by_action.insert(action.to_string(), n.into());
        }
        let outcome = |family: &Family<OutcomeLabel, Counter>, outcome| {
            family.get_or_create(&OutcomeLabel { outcome }).get()
        };
        let bot_share = if total == 0 {
            0.0
        } else {
            self.flagged.get() as f64 / total as f64
        };
        json!({
            "requests_scored": total,
            "by_action": by_action,
            "unscored": self.unscored.get(),
            "model_load_failures": outcome(&self.model_loads, "failed"),
            "bot_share": bot_share,
            "feedback_accepted": outcome(&self.feedback_totals, "accepted"),
            "feedback_capped": outcome(&self.feedback_totals, "capped"),
            "promotions": outcome(&self.training_runs, "promoted"),
            "rejections": outcome(&self.training_runs, "rejected"),
            "records_dropped": self.records.dropped.get(),
        })
    }

    pub fn issued(&self, kind: ChallengeKind) {
        self.issued.get_or_create(&label(kind)).inc();
    }

    pub fn solved(&self, kind: ChallengeKind, solve_s: u64) {
        self.solved.get_or_create(&label(kind)).inc();
        self.solve_seconds
            .get_or_create(&label(kind))
            .observe(solve_s as f64);
    }

    pub fn failed(&self, kind: ChallengeKind, reason: &'static str) {
        let l = FailureLabel {
            kind: kind.as_str(),
            reason,
        };
        self.failed.get_or_create(&l).inc();
    }

    pub fn expired(&self, kind: ChallengeKind) {
        self.expired.get_or_create(&label(kind)).inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    pub fn locked_request(&self) {
        self.locked_requests.inc();
    }

    pub fn store_error(&self, store: &'static str) {
        self.store_errors.get_or_create(&StoreLabel { store }).inc();
    }

    pub fn rendered(&self, kind: ChallengeKind, seconds: f64) {
        self.render_seconds
            .get_or_create(&label(kind))
            .observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        let l = FailureLabel {
            kind: "policy",
            reason: if ok { "ok" } else { "refused" },
        };
        self.reloads.get_or_create(&l).inc();
    }

    pub fn checked(&self, answer: &AuthAnswer, repeat: bool) {
        let l = CheckLabel {
            action: answer.action,
            check: if repeat { "repeat" } else { "first" },
        };
        self.checks.get_or_create(&l).inc();
    }

    pub fn limit_fallback(&self, mode: LimitsUnavailable) {
        let l = ModeLabel {
            mode: mode.as_str(),
        };
        self.limit_fallbacks.get_or_create(&l).inc();
    }

    /// A challenge page for a crawler: its hints `fetched`, `cached`, or
    /// `none`.
    pub fn crawler_hints(&self, outcome: &'static str) {
        self.crawler_hints
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Scoring state that Redis could not take (`part`): kept locally.
    pub fn scoring_fallback(&self, part: &'static str) {
        self.scoring_fallbacks
            .get_or_create(&PartLabel { part })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Totals for `/stats`: per kind, and overall.
    pub fn stats(&self) -> Value {
        let mut kinds = Map::new();
        let mut totals = [0u64; 4];
        for kind in ChallengeKind::ALL {
            let l = label(kind);
            let failed: u64 = ["wrong_answer", "unknown", "used"]
                .iter()
                .map(|&reason| {
                    self.failed
                        .get_or_create(&FailureLabel {
                            kind: kind.as_str(),
                            reason,
                        })
                        .get()
                })
                .sum();
            let row = [
                self.issued.get_or_create(&l).get(),
                self.solved.get_or_create(&l).get(),
                failed,
                self.expired.get_or_create(&l).get(),
            ];
            for (t, v) in totals.iter_mut().zip(row) {
                *t += v;
            }
            kinds.insert(
                kind.as_str().to_string(),
                json!({"issued": row[0], "solved": row[1], "failed": row[2], "expired": row[3]}),
            );
        }
        json!({
            "issued": totals[0],
            "solved": totals[1],
            "failed": totals[2],
            "expired": totals[3],
            "lockouts": self.lockouts.get(),
            "locked_requests": self.locked_requests.get(),
            "kinds": kinds,
        })
    }
}

fn label(kind: ChallengeKind) -> KindLabel {
    KindLabel {
        kind: kind.as_str(),
    }
}
