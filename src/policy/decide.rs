//! [`Policy::decide`]: one request in, one decision out.

use super::canonical::{self, BadPath};
use super::condition::Facts;
use super::{
    Action, ChallengeSpec, Client, CompiledRoute, Decision, FiredRule, ModelUse, Policy,
    RateLimitResult, Reason, Request, TokenState, BAD_PATH_BODY,
};
use crate::challenge::Passed;
use crate::config::{ActionName, RateScope, ScoreUse};
use crate::crawlers::{Anomalies, ClientClass, Verification};
use crate::net::MAX_LABELS;
use crate::ratelimit::RateLimitStore;
use crate::scoring::{self, Scored};
use crate::token::TokenError;
use regex::SetMatches;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

/// Facts about one request, each computed on first use.
struct RequestFacts<'r, 'p> {
    policy: &'p Policy,
    request: &'r Request<'r>,
    ip: Option<IpAddr>,
    class: ClientClass,
    verification: Option<Verification>,
    anomalies: OnceCell<Anomalies>,
    user_agents: OnceCell<regex::bytes::SetMatches>,
    paths: OnceCell<SetMatches>,
    list_labels: OnceCell<u64>,
    query: OnceCell<Vec<(String, String)>>,
}

impl Facts for RequestFacts<'_, '_> {
    fn ip_in(&self, list: usize) -> bool {
        let Some(ip) = self.ip else { return false };
        if list < MAX_LABELS {
            let labels = self
                .list_labels
                .get_or_init(|| self.policy.list_labels.labels(ip));
            labels & (1 << list) != 0
        } else {
            self.policy
                .unlabelled_lists
                .get(list - MAX_LABELS)
                .is_some_and(|set| set.contains(ip))
        }
    }
    fn user_agent_matches(&self, pattern: usize) -> bool {
        self.user_agents
            .get_or_init(|| {
                self.policy
                    .user_agents
                    .matches(self.request.user_agent().as_bytes())
            })
            .matched(pattern)
    }
    fn class(&self) -> ClientClass {
        self.class
    }
    fn verification(&self) -> Option<Verification> {
        self.verification
    }
    fn header_anomalies(&self) -> Anomalies {
        *self
            .anomalies
            .get_or_init(|| self.policy.header_anomalies(self.request, self.class))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .get_or_init(|| self.request.query_pairs())
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn method(&self) -> &str {
        self.request.method
    }
    fn path_matches(&self, pattern: usize) -> bool {
        self.paths
            .get_or_init(|| self.policy.rule_paths.matches(self.request.path))
            .matched(pattern)
    }
    fn in_resolved(&self, set: usize) -> bool {
        match (self.policy.resolved.get(set), self.ip) {
            (Some((_, set)), Some(ip)) => set.contains(ip),
            _ => false,
        }
    }
}

/// Severity order of the actions a route or rule can name.
fn severity(a: ActionName) -> u8 {
    match a {
        ActionName::Allow => 0,
        ActionName::Monitor => 1,
        ActionName::Challenge | ActionName::ChallengeAll => 2,
        ActionName::Block => 3,
    }
}

impl Policy {
    /// Decides `request` at `now_ns` (nanoseconds since the Unix epoch),
    /// counting it against rate limits in `store`, on rules alone.
    pub fn decide<'p>(
        &'p self,
        request: &Request,
        store: &mut dyn RateLimitStore,
        now_ns: u64,
    ) -> Decision<'p> {
        self.decide_scored(request, store, now_ns, None)
    }

    /// [`Policy::decide`] with the client's learned score, when the host
    /// has one. Where the route uses it (and not in shadow mode), the
    /// score is `max(positive weights, learned) + negative weights`,
    /// clamped to 0–100: the learned score stands in for the rules'
    /// suspicion when it is higher, and trust the rules grant (negative
    /// weights, a verified crawler say) still counts against it.
    pub fn decide_scored<'p>(
        &'p self,
        request: &Request,
        store: &mut dyn RateLimitStore,
        now_ns: u64,
        scored: Option<Scored>,
    ) -> Decision<'p> {
        // Routes and rules match the canonical path; a path that cannot
        // have one is refused, whatever the routes say.
        let (path, bad_path) = match self.matching_path(request) {
            Ok(path) => (path, None),
            Err(bad) => (Cow::Borrowed(request.path), Some(bad)),
        };
        let request = &Request {
            path: &path,
            ..*request
        };
        let ip = self.client_ip(request);
        let prefix = ip.map(|ip| self.client.prefix.of(ip));
        let classification = self.crawlers.classify(request.user_agent(), ip);
        let facts = RequestFacts {
            policy: self,
            request,
            ip,
            class: classification.class,
            verification: classification.verification,
            anomalies: OnceCell::new(),
            user_agents: OnceCell::new(),
            paths: OnceCell::new(),
            list_labels: OnceCell::new(),
            query: OnceCell::new(),
        };

        let route_index = self.match_route(request);
        let route = &self.routes[route_index];

        let mut fired = Vec::with_capacity(8);
        let (mut suspicion, mut trust): (i64, i64) = (0, 0);
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.when.holds(&facts) {
                if rule.weight >= 0 {
                    suspicion += i64::from(rule.weight);
                } else {
                    trust += i64::from(rule.weight);
                }
                fired.push(FiredRule {
                    index,
                    name: &rule.name,
                    weight: rule.weight,
                    action: rule.action,
                });
            }
        }
        let rule_score = (suspicion + trust).clamp(0, 100) as u8;
        let model = match route.score {
            ScoreUse::Off => None,
            ScoreUse::Cached | ScoreUse::Blocking => scored.map(|scored| ModelUse {
                scored,
                enforced: !self.scoring.shadow,
            }),
        };
        let score = match model {
            Some(m) if m.enforced => {
                (suspicion.max(i64::from(m.scored.points)) + trust).clamp(0, 100) as u8
            }
            _ => rule_score,
        };
        let score_action = self.score_action(score);

        let from_route = combine(route.action, score_action);
        // Rule actions, whatever the rules' order: an `allow` is an
        // allow-list entry and wins; otherwise the most severe action any
        // fired rule names (the first of equals) is a floor.
        let allow_rule = fired.iter().find(|f| f.action == Some(ActionName::Allow));
        let floor = fired
            .iter()
            .rev()
            .filter_map(|f| f.action.map(|a| (f.name, a)))
            .max_by_key(|(_, a)| severity(*a));
        let (mut wanted, mut reason) = match (allow_rule, floor) {
            (Some(rule), _) => (ActionName::Allow, Reason::RuleAllow(rule.name)),
            (None, Some((rule, a))) if severity(a) >= severity(from_route) => {
                (a, Reason::RuleAction(rule))
            }
            _ => (from_route, Reason::RouteAndScore),
        };

        if let Some(bad) = bad_path {
            (wanted, reason) = (ActionName::Block, Reason::BadPath(bad));
        }

        let challenge = self.challenge_for(route, &fired);
        let token = self.check_token(request, ip, now_ns);
        let mut action = match wanted {
            ActionName::Allow => Action::Allow,
            ActionName::Monitor => Action::Monitor,
            ActionName::Challenge | ActionName::ChallengeAll => Action::Challenge,
            ActionName::Block => Action::Block,
        };
        if action == Action::Challenge {
            if let TokenState::Valid { passed, .. } = token {
                if passed.satisfies(challenge.difficulty) {
                    action = Action::Allow;
                    reason = Reason::PassToken;
                }
            }
        }

        let mut rate_limit = None;
        if action != Action::Block {
            let limit = fired
                .iter()
                .find_map(|f| self.rules[f.index].rate_limit.as_ref())
                .or(route.rate_limit.as_ref());
            if let Some(limit) = limit {
                let key = rate_key(limit, route_index, prefix.as_ref());
                let outcome = store.acquire(key, &limit.limit, now_ns);
                if !outcome.allowed {
                    action = Action::RateLimited;
                    reason = Reason::RateLimit;
                }
                rate_limit = Some(RateLimitResult {
                    source: &limit.source,
                    limit: limit.limit,
                    scope: limit.scope,
                    key,
                    client: prefix,
                    route: &route.name,
                    outcome,
                });
            }
        }

        let challenged = matches!(action, Action::Challenge) || reason == Reason::PassToken;
        Decision {
            action,
            reason,
            route: &route.name,
            route_index: (route_index + 1 < self.routes.len()).then_some(route_index),
            route_action: route.action,
            rules: fired,
            score,
            rule_score,
            model,
            login: route.login,
            score_action,
            client: Client {
                ip,
                prefix,
                class: classification.class,
                name: classification.name,
                verification: classification.verification,
            },
            token,
            challenge: challenged.then_some(challenge),
            rate_limit,
            block: (action == Action::Block).then_some(match bad_path {
                Some(_) => (400, BAD_PATH_BODY),
                None => (route.block.status, route.block.body.as_str()),
            }),
        }
    }

    /// The path routes and rules match for `request`: its canonical form
    /// (see `canonical.rs`), lower-cased under `paths.case_insensitive`.
    fn matching_path<'r>(&self, request: &Request<'r>) -> Result<Cow<'r, str>, BadPath> {
        let path = canonical::canonical(request.path)?;
        if !self.fold_paths {
            return Ok(path);
        }
        Ok(match canonical::folded(&path) {
            Cow::Borrowed(_) => path,
            Cow::Owned(folded) => Cow::Owned(folded),
        })
    }

    /// How the route `request` matches uses the learned score: whether the
    /// host should wait for one (`Blocking`) or use what it has cached.
    pub fn score_use(&self, request: &Request) -> ScoreUse {
        if !self.scoring.enabled {
            return ScoreUse::Off;
        }
        self.routes[self.match_route_of(request)].score
    }

    /// [`Policy::score_use`] and whether the route is marked `login`, from
    /// one route match: what a host needs to score a request before it is
    /// decided (the blocking path), since the login flag is a feature.
    pub fn score_route(&self, request: &Request) -> (ScoreUse, bool) {
        if !self.scoring.enabled {
            return (ScoreUse::Off, false);
        }
        let route = &self.routes[self.match_route_of(request)];
        (route.score, route.login)
    }

    /// What this request says about its client beyond its history, for the
    /// behaviour features: the client class (`class`, as a decision found
    /// it, or classified here when `None`) and how many header-consistency
    /// checks failed.
    pub fn score_facts(
        &self,
        request: &Request,
        class: Option<ClientClass>,
    ) -> scoring::RequestFacts {
        let class = class.unwrap_or_else(|| {
            self.crawlers
                .classify(request.user_agent(), self.client_ip(request))
                .class
        });
        scoring::RequestFacts {
            class,
            anomalies: self.header_anomalies(request, class).len(),
        }
    }

    /// [`Policy::match_route`] on the canonical path (the default route
    /// for a path that is refused, which its decision blocks anyway).
    fn match_route_of(&self, request: &Request) -> usize {
        match self.matching_path(request) {
            Ok(path) => self.match_route(&Request {
                path: &path,
                ..*request
            }),
            Err(_) => self.routes.len() - 1,
        }
    }

    /// The index of the first matching route (on a request whose path is
    /// already the matching path); the default route when none.
    fn match_route(&self, request: &Request) -> usize {
        let mut by_path = Vec::new();
        self.route_paths.owners_matching(request.path, &mut by_path);
        if let Some(folded) = &self.folded_route_paths {
            let mut more = Vec::new();
            folded.owners_matching(&canonical::folded(request.path), &mut more);
            if !more.is_empty() {
                by_path.extend(more);
                by_path.sort_unstable();
            }
        }
        let host = request.host_name();
        let holds = |i: usize| {
            let route = &self.routes[i];
            route
                .except
                .as_ref()
                .is_none_or(|e| !e.is_match(request.path))
                && route.hosts.as_ref().is_none_or(|h| h.is_match(host))
                && (route.methods.is_empty()
                    || route
                        .methods
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(request.method)))
                && route
                    .headers
                    .iter()
                    .all(|t| t.holds(request.header(&t.name)))
                && route
                    .query
                    .iter()
                    .all(|t| t.holds(request.query_param(&t.name).as_deref()))
        };
        // The candidates in file order: routes whose path matched, merged
        // with routes that match any path.
        let (mut a, mut b) = (
            by_path.iter().peekable(),
            self.any_path_routes.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => return self.routes.len() - 1,
            };
            if let Some(&i) = next {
                if holds(i) {
                    return i;
                }
            }
        }
    }

    /// What the thresholds alone make of `score`.
    pub fn score_action(&self, score: u8) -> ActionName {
        let t = &self.thresholds;
        if score >= t.block {
            ActionName::Block
        } else if score >= t.challenge {
            ActionName::Challenge
        } else if score >= t.monitor {
            ActionName::Monitor
        } else {
            ActionName::Allow
        }
    }

    /// The route's challenge, as the first fired rule with `challenge`
    /// adjusts it: its kind replaces the route's; its difficulty only
    /// raises it, so flagging a client never makes its puzzle easier.
    fn challenge_for(&self, route: &CompiledRoute, fired: &[FiredRule]) -> ChallengeSpec {
        let mut spec = route.challenge;
        if let Some(settings) = fired.iter().find_map(|f| self.rules[f.index].challenge) {
            spec.kind = settings.kind.unwrap_or(spec.kind);
            spec.difficulty = spec.difficulty.max(settings.difficulty.unwrap_or(0));
        }
        spec
    }

    fn check_token(&self, request: &Request, ip: Option<IpAddr>, now_ns: u64) -> TokenState {
        let t = &self.tokens;
        let Some(text) = request
            .cookie(&t.cookie.name)
            .or_else(|| request.header(&t.header))
        else {
            return TokenState::Absent;
        };
        match self.verify_token(text, ip, request.user_agent(), now_ns / 1_000_000_000) {
            Ok(claims) => match Passed::from_level_byte(claims.level) {
                Some(passed) => TokenState::Valid {
                    passed,
                    expires_at: claims.expires_at,
                },
                None => TokenState::Rejected(TokenError::Malformed),
            },
            Err(e) => TokenState::Rejected(e),
        }
    }
}

/// How the route's action caps or raises the score's (see the module doc).
fn combine(route: Option<ActionName>, score: ActionName) -> ActionName {
    use ActionName::*;
    match route {
        None => score,
        Some(Allow) => {
            if severity(score) > severity(Monitor) {
                Monitor
            } else {
                score
            }
        }
        Some(Monitor) => Monitor,
        Some(Challenge) => match score {
            Block => Block,
            Allow => Allow,
            _ => Challenge,
        },
        Some(ChallengeAll) => {
            if score == Block {
                Block
            } else {
                ChallengeAll
            }
        }
        Some(Block) => Block,
    }
}

/// The store key for a limit: FNV-1a over the limit's source and the scope's
/// parts. FNV is stable across builds and workers, which shared stores need.
fn rate_key(
    limit: &super::CompiledLimit,
    route_index: usize,
    prefix: Option<&crate::net::Cidr>,
) -> u64 {
    let mut h = Fnv::new();
    h.write(limit.source.as_bytes());
    if limit.scope != RateScope::Global {
        h.write(&prefix.map_or([0; 18], |p| p.to_bytes()));
    }
    if limit.scope == RateScope::ClientRoute {
        h.write(&(route_index as u64).to_le_bytes());
    }
    h.0
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
