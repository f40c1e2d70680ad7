//! A decision as JSON, for `palisade explain --json`, logs and tests.

use super::{Action, Decision, Reason, TokenState};
use crate::config::{ActionName, FailureMode, RateScope};
use crate::crawlers::Verification;
use serde_json::{json, Value};

pub fn action_name(a: ActionName) -> &'static str {
    match a {
        ActionName::Allow => "allow",
        ActionName::Monitor => "monitor",
        ActionName::Challenge => "challenge",
        ActionName::ChallengeAll => "challenge_all",
        ActionName::Block => "block",
    }
}

pub fn scope_name(s: RateScope) -> &'static str {
    match s {
        RateScope::Client => "client",
        RateScope::ClientRoute => "client_route",
        RateScope::Global => "global",
    }
}

/// `companion.failure_mode` as the configuration spells it.
pub fn failure_mode_name(m: FailureMode) -> &'static str {
    match m {
        FailureMode::Pow => "pow",
        FailureMode::FailOpen => "fail_open",
        FailureMode::FailClosed => "fail_closed",
    }
}

impl Decision<'_> {
    /// The HTTP status the host answers with, when it answers itself.
    pub fn status(&self, challenge_status: u16) -> Option<u16> {
        match self.action {
            Action::Allow | Action::Monitor => None,
            Action::Challenge => Some(challenge_status),
            Action::RateLimited => Some(429),
            Action::Block => self.block.map(|(status, _)| status),
        }
    }

    /// What decided the action, in a few words.
    pub fn reason_text(&self) -> String {
        match self.reason {
            Reason::RuleAllow(rule) => format!("rule `{rule}` allows"),
            Reason::RuleAction(rule) => format!("rule `{rule}` sets the action"),
            Reason::RouteAndScore => match self.route_action {
                Some(a) => format!(
                    "route action `{}` with score {}",
                    action_name(a),
                    self.score
                ),
                None => format!("score {} (route leaves it to the score)", self.score),
            },
            Reason::PassToken => "a valid pass token satisfied the challenge".to_string(),
            Reason::RateLimit => "rate limit exceeded".to_string(),
            Reason::BadPath(bad) => format!("refused: {bad}"),
        }
    }

    pub fn to_json(&self) -> Value {
        let client = &self.client;
        json!({
            "action": self.action.as_str(),
            "reason": self.reason_text(),
            "route": self.route,
            "route_index": self.route_index,
            "route_action": self.route_action.map(action_name),
            "rules": self.rules.iter().map(|r| json!({
                "name": r.name,
                "weight": r.weight,
                "action": r.action.map(action_name),
            })).collect::<Vec<_>>(),
            "score": self.score,
            "rule_score": self.rule_score,
            "learned": self.model.map(|m| json!({
                "score": m.scored.points,
                "enforced": m.enforced,
                "top_features": m.scored.top.names().collect::<Vec<_>>(),
            })),
            "score_action": action_name(self.score_action),
            "client": {
                "ip": client.ip.map(|ip| ip.to_string()),
                "prefix": client.prefix.map(|p| p.to_string()),
                "class": client.class.as_str(),
                "name": client.name,
                "verified": client.verification.map(|v| v == Verification::Verified),
                "verification": client.verification,
            },
            "token": match self.token {
                TokenState::Absent => json!({"state": "absent"}),
                TokenState::Valid { passed, expires_at } => json!({
                    "state": "valid",
                    "kind": passed.kind,
                    "level": passed.difficulty,
                    "expires": expires_at,
                }),
                TokenState::Rejected(e) => json!({"state": "rejected", "reason": e.label()}),
            },
            "challenge": self.challenge.map(|c| json!({
                "kind": c.kind,
                "difficulty": c.difficulty,
            })),
            "rate_limit": self.rate_limit.as_ref().map(|r| json!({
                "source": r.source,
                "rate": r.limit.rate.to_string(),
                "burst": r.limit.burst,
                "scope": scope_name(r.scope),
                "key": r.key_text(),
                "allowed": r.outcome.allowed,
                "remaining": r.outcome.remaining,
                "retry_after_ms": r.outcome.retry_after_ns / 1_000_000,
            })),
        })
    }
}
