//! The policy engine: a compiled configuration and the one entry point,
//! [`Policy::decide`].
//!
//! How the final action is reached (also in `docs/configuration.md`):
//! 1. The first route whose match holds, in file order, else the default route.
//! 2. Every rule is evaluated; fired rules add their weights into the
//!    suspicion score (clamped to 0–100) and the thresholds map the score
//!    to `allow`, `monitor`, `challenge` or `block`.
//! 3. The route's action caps or raises that: none lets the score decide;
//!    `allow` caps at `monitor`; `monitor` always monitors (the score never
//!    stops a request there; rule actions and rate limits still apply);
//!    `challenge` challenges anyone the score finds suspicious (at or above
//!    the monitor threshold); `challenge_all` challenges everyone; `block`
//!    blocks. A score at the block threshold blocks on `challenge` and
//!    `challenge_all` routes too.
//! 4. Rules with an `action`, whatever their order: if any fired rule says
//!    `allow`, the request goes through whatever the route and score say (an
//!    allow-list); otherwise the most severe action a fired rule names is a
//!    floor, raising the result to at least itself.
//! 5. A challenge is skipped when the request carries a valid pass token of
//!    at least the required level. A token never lifts a block.
//! 6. Unless blocked, the rate limit (the first fired rule's, else the
//!    route's) counts the request; over the limit it is `rate_limited`.

mod auth;
mod canonical;
mod compile;
mod condition;
mod decide;
mod decision;
mod handoff;
mod health;
mod hints;
mod origin;
mod paths;
mod report;
mod request;
mod resolved;
mod respond;

pub use auth::AuthAnswer;
pub use canonical::{canonical, BadPath};
pub use compile::{CompileEnv, ProcessEnv};
pub use decision::{
    Action, ChallengeSpec, Client, Decision, FiredRule, ModelUse, RateLimitResult, Reason,
    TokenState, BAD_PATH_BODY,
};
pub use handoff::OwnReply;
pub use health::{CompanionHealth, HealthRecord, DOWN_AFTER, HEALTH_KEY, STALE_AFTER};
pub use hints::HintSettings;
pub use report::{action_name, failure_mode_name, scope_name};
pub use request::{form_pairs, logged_path, percent_decode, percent_encode, Headers, Request};
// The companion's pages escape text the same way.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use respond::escape_html;
pub use respond::{
    CompanionUse, Reply, Response, VerifyOutcome, ANNOTATION_HEADERS, CLIENT_IP_HEADER,
    MAX_VERIFY_BODY,
};

use crate::challenge::Passed;
use crate::config::{
    ActionName, ChallengeConfig, ChallengeSettings, CompanionConfig, Config, ConfigError,
    CookieConfig, EncodedRanges, RateScope, ScoreUse, ScoringConfig, Thresholds,
};
use crate::crawlers::{Anomalies, ClientClass, Crawlers};
#[cfg(not(target_arch = "wasm32"))]
use crate::geo::Place;
use crate::net::{Cidr, ClientPrefix, IpSet, LabelTable};
use crate::ratelimit::Limit;
use crate::token::{self, Binding, Claims, Keyring, TokenError};
use condition::{Cond, FieldTest};
use paths::PathIndex;
use regex::{Regex, RegexSet};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A compiled, validated configuration. Immutable; share it freely.
#[derive(Debug)]
pub struct Policy {
    client: ClientSettings,
    tokens: TokenSettings,
    thresholds: Thresholds,
    challenge: ChallengeConfig,
    companion: CompanionConfig,
    scoring: ScoringConfig,
    /// `companion.trusted_peers`, parsed.
    trusted_peers: Vec<Cidr>,
    /// `<challenge.path_prefix>verify`, made once.
    verify_path: String,
    /// `<challenge.path_prefix>challenge`, the companion's challenge page.
    challenge_path: String,
    annotate: bool,
    rate_buckets: u32,
    /// Each named list's name and merged range count, in `ip_in` order.
    lists: Vec<(String, usize)>,
    /// Every list in one table, so a request needs one search for all.
    list_labels: LabelTable,
    /// The sets of the lists past the first [`MAX_LABELS`](crate::net::MAX_LABELS), which the label
    /// table cannot hold. The others' sets are not kept: the table answers
    /// for them, and a second copy would double the lists' memory.
    unlabelled_lists: Vec<IpSet>,
    /// The sets resolved from data the filter lacks, keyed as in
    /// `resolved_ranges` (`resolved`): each geo test's (searched only when a
    /// rule reaches the test, so not labelled) and each reputation list's
    /// (also merged into its named lists).
    resolved: Vec<(String, IpSet)>,
    crawlers: Arc<Crawlers>,
    /// `crawlers.hints`, when on.
    hints: Option<HintSettings>,
    /// Configured routes, then the default route last.
    routes: Vec<CompiledRoute>,
    route_paths: PathIndex,
    /// `paths.case_insensitive`: paths are matched lower-cased.
    fold_paths: bool,
    /// The path patterns of routes with `match.case_insensitive` (when the
    /// policy does not fold every path), searched with the lower-cased path.
    folded_route_paths: Option<PathIndex>,
    /// Routes without path patterns (they match any path), ascending.
    any_path_routes: Vec<usize>,
    rules: Vec<CompiledRule>,
    user_agents: regex::bytes::RegexSet,
    rule_paths: RegexSet,
}

#[derive(Debug)]
struct ClientSettings {
    /// 0 means "use the connection address".
    trusted_hops: u8,
    prefix: ClientPrefix,
}

/// Compiled token settings.
#[derive(Debug)]
pub struct TokenSettings {
    pub keyring: Keyring,
    pub ttl_s: u64,
    pub max_age_s: u64,
    pub bind_ip: bool,
    pub bind_user_agent: bool,
    pub cookie: CookieConfig,
    /// Lower-cased.
    pub header: String,
}

#[derive(Debug)]
struct CompiledRoute {
    name: String,
    /// True when the route gives no path patterns.
    any_path: bool,
    except: Option<Regex>,
    hosts: Option<Regex>,
    methods: Vec<String>,
    headers: Vec<FieldTest>,
    query: Vec<FieldTest>,
    action: Option<ActionName>,
    challenge: ChallengeSpec,
    rate_limit: Option<CompiledLimit>,
    block: BlockSpec,
    /// `Off` whenever scoring is disabled.
    score: ScoreUse,
    login: bool,
}

#[derive(Debug)]
struct CompiledLimit {
    source: String,
    limit: Limit,
    scope: RateScope,
}

#[derive(Debug)]
struct BlockSpec {
    status: u16,
    body: String,
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    when: Cond,
    weight: i32,
    action: Option<ActionName>,
    challenge: Option<ChallengeSettings>,
    rate_limit: Option<CompiledLimit>,
}

/// Counts for a one-line summary (`check-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub routes: usize,
    pub rules: usize,
    pub lists: Vec<(String, usize)>,
    pub crawler_patterns: usize,
    pub keys: usize,
}

impl Policy {
    /// Validates and compiles `config`. Nothing is half-applied: either the
    /// whole policy compiles or the first problem is returned with its path.
    /// Takes the configuration: its lists' entries are freed as each list
    /// compiles, which keeps the load's peak down (in the Envoy filter, a
    /// VM keeps its peak for good).
    pub fn compile(config: Config, env: &dyn CompileEnv) -> Result<Policy, ConfigError> {
        compile::compile(config, env)
    }

    /// Parses and compiles a JSON document.
    pub fn from_json(text: &str, env: &dyn CompileEnv) -> Result<Policy, ConfigError> {
        Policy::compile(Config::from_json(text)?, env)
    }

    /// Parses and compiles a YAML (or JSON) document.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_yaml(text: &str, env: &dyn CompileEnv) -> Result<Policy, ConfigError> {
        Policy::compile(Config::from_yaml(text)?, env)
    }

    pub fn summary(&self) -> Summary {
        Summary {
            routes: self.routes.len() - 1,
            rules: self.rules.len(),
            lists: self.lists.clone(),
            crawler_patterns: self.crawlers.len(),
            keys: self.tokens.keyring.len(),
        }
    }

    pub fn tokens(&self) -> &TokenSettings {
        &self.tokens
    }

    pub fn challenge_config(&self) -> &ChallengeConfig {
        &self.challenge
    }

    /// Whether to add `x-palisade-*` headers to upstream requests.
    pub fn annotate_upstream(&self) -> bool {
        self.annotate
    }

    /// Buckets the rate-limit store should have.
    pub fn rate_limit_buckets(&self) -> usize {
        self.rate_buckets as usize
    }

    pub fn crawlers(&self) -> &Crawlers {
        &self.crawlers
    }

    /// The client's address, per `client.source`.
    pub fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        crate::net::client_ip(
            request.connection_ip,
            request.header("x-forwarded-for"),
            self.client.trusted_hops,
        )
    }

    /// Whether [`Policy::client_ip`] needs `request.connection_ip`: hosts
    /// where the peer address costs a call of its own (Envoy's
    /// `source.address` property) skip it when the client address comes
    /// from `X-Forwarded-For`.
    pub fn needs_connection_ip(&self, request: &Request) -> bool {
        crate::net::forwarded_client_ip(request.header("x-forwarded-for"), self.client.trusted_hops)
            .is_none()
    }

    /// Whether the browser saw a potentially trustworthy origin, the only
    /// kind it sends `Sec-Fetch-*` and client hints to: `https` in
    /// `X-Forwarded-Proto` as the trusted proxies wrote it (when
    /// `client.source` is `x_forwarded_for`), else in `:scheme`; or a
    /// loopback host (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`),
    /// which browsers trust over plain http.
    pub fn is_secure(&self, request: &Request) -> bool {
        let scheme = crate::net::forwarded_scheme(
            request.header("x-forwarded-proto"),
            self.client.trusted_hops,
        )
        .unwrap_or(request.scheme());
        scheme.eq_ignore_ascii_case("https") || crate::net::is_loopback_host(request.host_name())
    }

    /// The header-consistency anomalies of `request` from a client of
    /// `class` (see [`crate::crawlers::consistency`]).
    pub fn header_anomalies(&self, request: &Request, class: ClientClass) -> Anomalies {
        crate::crawlers::consistency::check(
            class,
            request.user_agent(),
            self.is_secure(request),
            |name| request.header(name),
        )
    }

    /// Route names in order, the default route last (`default`).
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// What a pass token for this client is bound to, per `tokens.bind_*`.
    pub fn binding(&self, ip: Option<IpAddr>, user_agent: &str) -> Binding {
        let prefix = ip.map(|ip| self.client_prefix(ip));
        Binding::new(
            prefix.as_ref().filter(|_| self.tokens.bind_ip),
            Some(user_agent).filter(|_| self.tokens.bind_user_agent),
        )
    }

    /// The group `ip` is counted and bound in (`/32`, `/64` by default).
    pub fn client_prefix(&self, ip: IpAddr) -> Cidr {
        self.client.prefix.of(ip)
    }

    /// The block response where no route says otherwise (status, body):
    /// what locked-out clients get from the companion.
    pub fn default_block(&self) -> (u16, &str) {
        self.routes.last().map_or((403, "Access denied."), |r| {
            (r.block.status, r.block.body.as_str())
        })
    }

    /// The companion section, validated.
    pub fn companion(&self) -> &CompanionConfig {
        &self.companion
    }

    pub fn scoring(&self) -> &ScoringConfig {
        &self.scoring
    }

    /// Whether a check from `peer` may describe the original request
    /// (`companion.trusted_peers`).
    pub fn is_trusted_peer(&self, peer: IpAddr) -> bool {
        self.trusted_peers.iter().any(|c| c.contains(peer))
    }

    /// Where `ip` is, for reports (`explain`); `None` if the embedded
    /// table is unusable.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn place(&self, ip: IpAddr) -> Option<Place> {
        crate::geo::table().ok().map(|table| table.lookup(ip))
    }

    /// Whether `ip` is in the hosting set, for reports: the policy's set,
    /// or one built now when no rule needed it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn is_hosting(&self, ip: IpAddr) -> Option<bool> {
        let key = origin::GeoTest::Hosting.key();
        if let Some((_, set)) = self.resolved.iter().find(|(k, _)| *k == key) {
            return Some(set.contains(ip));
        }
        let table = crate::geo::table().ok()?;
        crate::geo::hosting_set(table)
            .ok()
            .map(|set| set.contains(ip))
    }

    /// The address ranges of every geo test, reputation list and cloud
    /// provider's list the policy uses, keyed by what they stand for: what
    /// `palisade policy-json` writes as `resolved_ranges`, so the Envoy
    /// filter needs neither the geo table nor those lists built in.
    pub fn resolved_ranges(&self) -> BTreeMap<String, EncodedRanges> {
        self.resolved
            .iter()
            .map(|(key, set)| (key.clone(), resolved::encode(set)))
            .collect()
    }

    /// Issues a pass token to a client that passed a challenge.
    pub fn issue_token(
        &self,
        ip: Option<IpAddr>,
        user_agent: &str,
        passed: Passed,
        now_s: u64,
    ) -> String {
        let binding = self.binding(ip, user_agent);
        token::issue(
            &self.tokens.keyring,
            now_s,
            self.tokens.ttl_s,
            passed.level_byte(),
            binding,
        )
    }

    /// Verifies a pass token presented by this client.
    pub fn verify_token(
        &self,
        text: &str,
        ip: Option<IpAddr>,
        user_agent: &str,
        now_s: u64,
    ) -> Result<Claims, TokenError> {
        let expected = self.binding(ip, user_agent);
        token::verify(
            &self.tokens.keyring,
            text,
            now_s,
            self.tokens.max_age_s,
            &expected,
        )
    }
}
