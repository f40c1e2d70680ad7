//! What the engine decided, with everything needed to explain it.

use super::BadPath;
use crate::challenge::Passed;
use crate::config::{ActionName, ChallengeKind, RateScope};
use crate::crawlers::{ClientClass, Verification};
use crate::net::Cidr;
use crate::ratelimit::{Limit, Outcome};
use crate::scoring::Scored;
use crate::token::TokenError;
use std::net::IpAddr;

/// The action a host must carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Monitor,
    Challenge,
    RateLimited,
    Block,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Monitor => "monitor",
            Action::Challenge => "challenge",
            Action::RateLimited => "rate_limited",
            Action::Block => "block",
        }
    }

    /// Whether the request goes on to the upstream.
    pub fn passes(&self) -> bool {
        matches!(self, Action::Allow | Action::Monitor)
    }
}

/// A rule that fired for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiredRule<'p> {
    pub index: usize,
    pub name: &'p str,
    pub weight: i32,
    pub action: Option<ActionName>,
}

/// Who the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client<'p> {
    pub ip: Option<IpAddr>,
    /// The client's group for limits and token binding (`/32`, `/64`).
    pub prefix: Option<Cidr>,
    pub class: ClientClass,
    /// The matched crawler or client family.
    pub name: Option<&'p str>,
    pub verification: Option<Verification>,
}

/// The pass token the request carried, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Absent,
    Valid { passed: Passed, expires_at: u64 },
    Rejected(TokenError),
}

/// The challenge to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeSpec {
    pub kind: ChallengeKind,
    /// 1 (easiest) to 5.
    pub difficulty: u8,
}

/// The rate limit that applied and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitResult<'p> {
    /// Where the limit is configured (`routes[2].rate_limit`).
    pub source: &'p str,
    pub limit: Limit,
    pub scope: RateScope,
    /// The store key.
    pub key: u64,
    /// The client group and route the key was made from.
    pub client: Option<Cidr>,
    pub route: &'p str,
    pub outcome: Outcome,
}

impl RateLimitResult<'_> {
    /// Whole seconds until the client may retry, at least 1 (`Retry-After`).
    pub fn retry_after_s(&self) -> u64 {
        self.outcome.retry_after_ns.div_ceil(1_000_000_000).max(1)
    }

    /// The key in words (`client 192.0.2.1/32 (routes[2].rate_limit)`),
    /// made only when asked: formatting costs more than deciding.
    pub fn key_text(&self) -> String {
        let client = self
            .client
            .map_or_else(|| "unknown".to_string(), |p| p.to_string());
        let text = match self.scope {
            RateScope::Global => "global".to_string(),
            RateScope::Client => format!("client {client}"),
            RateScope::ClientRoute => format!("client {client} on route {}", self.route),
        };
        format!("{text} ({})", self.source)
    }
}

/// A learned score and whether it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelUse {
    pub scored: Scored,
    /// False in shadow mode: shown and logged, not enforced.
    pub enforced: bool,
}

/// Why the final action is what it is (for `explain` and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'p> {
    /// A rule's `action: allow` let the request through.
    RuleAllow(&'p str),
    /// The route's action and the score combined (see `docs/configuration.md`).
    RouteAndScore,
    /// A rule's action raised the result.
    RuleAction(&'p str),
    /// A valid pass token satisfied the challenge.
    PassToken,
    /// The rate limit was exceeded.
    RateLimit,
    /// The path has no canonical form (answered 400).
    BadPath(BadPath),
}

/// The body of the 400 answering a path that has no canonical form.
pub const BAD_PATH_BODY: &str = "Bad request: the path is not one a valid request holds.";

/// The engine's decision for one request.
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    pub action: Action,
    pub reason: Reason<'p>,
    /// The matched route's name (`default` when none matched) and index.
    pub route: &'p str,
    pub route_index: Option<usize>,
    pub route_action: Option<ActionName>,
    pub rules: Vec<FiredRule<'p>>,
    /// The suspicion score, 0–100: the rules' weights, and the learned
    /// score where the route uses it (see [`Decision::model`]).
    pub score: u8,
    /// The rules' weights alone, clamped to 0–100.
    pub rule_score: u8,
    /// The learned score the host supplied, when the route uses it.
    pub model: Option<ModelUse>,
    /// The route is marked `login`.
    pub login: bool,
    /// What the thresholds alone make of the score.
    pub score_action: ActionName,
    pub client: Client<'p>,
    pub token: TokenState,
    /// Set when the action is `Challenge` (and when a token satisfied one).
    pub challenge: Option<ChallengeSpec>,
    pub rate_limit: Option<RateLimitResult<'p>>,
    /// Status and body text when the action is `Block`.
    pub block: Option<(u16, &'p str)>,
}
