//! The configuration schema, exactly as users write it (JSON or YAML).
//!
//! These types only describe and parse; [`crate::policy::Policy::compile`]
//! validates them and compiles every pattern, list and key. Every struct
//! denies unknown fields, so a typo is an error rather than a silently
//! ignored setting. `docs/configuration.md` documents each field.

mod chart;
mod cidrs;
mod error;
mod providers;
mod values;

pub use chart::{ChartConfig, TableSource, TemplateConfig};
pub use cidrs::CidrEntries;
pub use error::ConfigError;
pub use providers::{AltchaConfig, ProvidersConfig, SiteverifyConfig};
pub use values::Patterns;

use crate::crawlers::ClientClass;
use crate::ratelimit::Rate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole configuration document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub client: ClientConfig,
    #[serde(default)]
    pub tokens: TokenConfig,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub challenge: ChallengeConfig,
    #[serde(default)]
    pub block: BlockResponse,
    #[serde(default)]
    pub annotate: AnnotateConfig,
    #[serde(default)]
    pub rate_limiting: RateLimitingConfig,
    /// Named IP lists, referenced by rules (`ip_in: NAME`).
    #[serde(default)]
    pub lists: BTreeMap<String, IpList>,
    #[serde(default)]
    pub crawlers: CrawlersConfig,
    /// Routes, first match wins in file order.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// What applies when no route matches (a route without `match`).
    #[serde(default)]
    pub default_route: Route,
    /// Rules, evaluated for every request.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The companion service (`palisade serve`) and how the filter uses it.
    #[serde(default)]
    pub companion: CompanionConfig,
    /// Learned bot scores (`docs/scoring.md`).
    #[serde(default)]
    pub scoring: ScoringConfig,
    /// The address ranges of each geo condition (`country`, `asn`, ...),
    /// keyed by the condition. `palisade policy-json` writes them so that
    /// the Envoy filter, which carries no geo table, can decide on them;
    /// not meant to be written by hand.
    #[serde(default)]
    pub resolved_ranges: BTreeMap<String, EncodedRanges>,
    /// How request paths are matched (`docs/configuration.md`, "Paths").
    #[serde(default)]
    pub paths: PathsConfig,
}

/// How routes and rules match paths. They always match the canonical form
/// (`src/policy/canonical.rs`); this chooses whether case counts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Match paths and patterns without regard to case, for upstreams that
    /// read `/Admin` as `/admin` (IIS, most Windows stacks).
    pub case_insensitive: bool,
}

/// One geo condition's address ranges: per family, big-endian inclusive
/// `(start, end)` pairs, base64-encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodedRanges {
    pub v4: String,
    pub v6: String,
}

/// Learned bot scores: whether they are used, where the companion finds
/// its models, and how the filter reports features and caches scores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Track behaviour features and use the companion's scores.
    pub enabled: bool,
    /// Scores are computed, logged and shown in `x-palisade-score`, but
    /// not enforced: how a new model is tried before it decides anything.
    pub shadow: bool,
    /// The request-behaviour model the companion serves (schema `request-v1`).
    pub model: String,
    /// Per-client feature slots (the filter's shared data; the companion's
    /// check table). Memory is fixed: `slots × 128` bytes.
    pub slots: u32,
    /// How long a score sent back by the companion applies to its client.
    pub cache_ttl: Duration,
    /// How often Envoy sends queued features to `/score` (one batch per
    /// interval for the whole Envoy, whatever its number of workers).
    pub report_interval_ms: u64,
    /// The most clients one report carries.
    pub report_batch: u32,
    /// How long a request on a `score: blocking` route waits for `/score`.
    pub blocking_timeout_ms: u64,
    /// How routes that give no `score` use it: `cached`, or `off` to have
    /// routes opt in one by one.
    pub routes_default: ScoreUse,
    /// How the companion judges the way a challenge page was solved.
    pub interaction: InteractionConfig,
    /// What the companion keeps of what it scores (`docs/scoring.md`).
    pub records: RecordsConfig,
    /// How many labels `/feedback` and challenge outcomes may give.
    pub feedback: FeedbackConfig,
    /// The guarded retrain behind `POST /train`.
    pub training: TrainingConfig,
}

/// Interaction signals on the companion's challenge pages (pointer, keys,
/// timing, automation tells), checked when `scoring.enabled`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InteractionConfig {
    /// The interaction model (schema `interaction-v1`); the additive
    /// baseline alone when the file is missing.
    pub model: String,
    /// An interaction score at or above this counts as bot-like.
    pub threshold: u8,
    /// What a right answer with bot-like interaction gets.
    pub on_bot: OnBotInteraction,
    /// The harder challenge an escalation asks for.
    pub escalate_to: ChallengeSettings,
}

impl Default for InteractionConfig {
    fn default() -> Self {
        InteractionConfig {
            model: "datasets/models/interaction.json".to_string(),
            threshold: 70,
            on_bot: OnBotInteraction::Escalate,
            escalate_to: ChallengeSettings {
                kind: Some(ChallengeKind::Grid),
                difficulty: Some(4),
            },
        }
    }
}

/// What a right answer with bot-like interaction gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBotInteraction {
    /// A harder challenge (`escalate_to`); a bot-like answer to that one
    /// is rejected.
    #[default]
    Escalate,
    /// A new challenge of the same kind, as for a wrong answer.
    Reject,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            enabled: false,
            shadow: false,
            model: "datasets/models/request.json".to_string(),
            slots: 8192,
            cache_ttl: Duration(60),
            report_interval_ms: 1000,
            report_batch: 128,
            blocking_timeout_ms: 250,
            routes_default: ScoreUse::Cached,
            interaction: InteractionConfig::default(),
            records: RecordsConfig::default(),
            feedback: FeedbackConfig::default(),
            training: TrainingConfig::default(),
        }
    }
}

/// The companion's scoring records: a sample of scored requests, per-client
/// reputation, labelled examples and model checkpoints, in
/// `<companion.data_dir>/scoring.sqlite3`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Share of scored requests whose features are kept (0 to 1).
    pub sample: f64,
    /// How long sampled requests are kept.
    pub retention: Duration,
    /// How long labelled examples and reputation rows are kept.
    pub labels_retention: Duration,
    /// Records waiting for the writer at most; more are dropped (counted),
    /// so a slow disk never slows a check down.
    pub queue: u32,
    /// With `companion.redis_url`: the most labels Redis keeps for the
    /// replicas' retrains (the newest).
    pub shared_labels: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            sample: 0.05,
            retention: Duration(30 * 86_400),
            labels_retention: Duration(180 * 86_400),
            queue: 8192,
            shared_labels: 100_000,
        }
    }
}

/// Caps on labels, so that no one source and no one client can outweigh
/// the rest (`docs/scoring.md`, "Guarded learning").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// The window the caps count in.
    pub window: Duration,
    /// Labels accepted per client in a window, whatever their source.
    pub per_client: u32,
    /// Labels accepted per source in a window; a source not named here is
    /// refused.
    pub sources: BTreeMap<String, u32>,
    /// Turn challenge outcomes into labels (source `challenge`): a failed
    /// answer is a bot label, a passed one a human label of half weight.
    pub challenge_labels: bool,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            window: Duration(86_400),
            per_client: 5,
            sources: [
                ("operator".to_string(), 10_000),
                ("challenge".to_string(), 2_000),
            ]
            .into_iter()
            .collect(),
            challenge_labels: true,
        }
    }
}

/// The guarded retrain: what a candidate is trained on and what it must
/// pass before it is served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// The shipped training base (a feature file), trained on with the labels.
    pub base: String,
    /// The frozen held-out set (a feature file) candidates are judged on.
    pub holdout: String,
    /// Labels needed before a retrain runs.
    pub min_labels: u32,
    /// The labels' total weight at most, as a share of the base's.
    pub max_label_share: f32,
    /// How much lower the candidate's ROC-AUC on the held-out set may be.
    pub max_auc_drop: f32,
    /// How much higher the share of held-out people challenged or blocked may be.
    pub max_challenged_rise: f32,
    /// How much higher the share of held-out bots the score lets through
    /// (below the challenge threshold) may be.
    pub max_missed_rise: f32,
    /// Scores a candidate must give in shadow mode before promotion.
    pub shadow_scores: u64,
    /// How long at least a candidate runs in shadow mode.
    pub shadow_period: Duration,
    /// With `companion.redis_url`: how often a replica looks for a model
    /// another replica promoted.
    pub sync_interval: Duration,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            base: "datasets/models/train-request.jsonl".to_string(),
            holdout: "datasets/models/holdout-request.jsonl".to_string(),
            min_labels: 20,
            max_label_share: 0.1,
            max_auc_drop: 0.005,
            max_challenged_rise: 0.005,
            max_missed_rise: 0.02,
            shadow_scores: 1000,
            shadow_period: Duration(3600),
            sync_interval: Duration(30),
        }
    }
}

/// How a route uses the learned score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreUse {
    /// The route ignores the score (rules only).
    Off,
    /// The client's cached score applies from its next request; a request
    /// never waits for the companion.
    #[default]
    Cached,
    /// Without a fresh cached score the request waits (up to
    /// `scoring.blocking_timeout_ms`) for the companion to score it.
    Blocking,
}

/// The companion service: its listeners, state and challenge settings, and
/// how the filter reaches it and what it does when it is down.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompanionConfig {
    /// Listener for what clients reach through the proxy (the challenge prefix).
    pub public: String,
    /// Listener for `/healthz`, `/metrics`, `/stats` and the nginx check
    /// (`/auth`); never route it from outside.
    pub internal: String,
    /// Peers whose checks describe a request through `X-Original-*` and
    /// `X-Real-IP` (nginx beside the companion): addresses or CIDRs.
    pub trusted_peers: Vec<String>,
    /// Envoy cluster of the public listener (the filter names it in redirects' routing).
    pub cluster: String,
    /// Envoy cluster of the internal listener, which the filter probes.
    pub health_cluster: String,
    /// How often each filter worker probes `/healthz`.
    pub health_interval: Duration,
    /// What the filter does while the companion is down.
    pub failure_mode: FailureMode,
    /// Where the SQLite store keeps its file.
    pub data_dir: String,
    /// The shared store for replicas; SQLite under `data_dir` when unset.
    pub redis_url: Option<String>,
    /// What the companion does when its store cannot be reached.
    pub store_unavailable: StoreUnavailable,
    /// Where the companion's `/auth` check keeps its rate-limit state.
    pub limits: LimitsStore,
    /// What the `/auth` check does when Redis (`limits: redis`) cannot be reached.
    pub limits_unavailable: LimitsUnavailable,
    /// Directory with `fonts/`, `images/` and `audio/`.
    pub datasets: String,
    /// How long a challenge may be answered.
    pub ttl: Duration,
    /// Wrong answers before a client is locked out.
    pub retries: u32,
    /// How long a locked-out client gets the block response.
    pub lockout: Duration,
    /// Edit distance a text or audio answer may be off by; unset: 1 for
    /// answers of 6 or more characters, else 0.
    pub typo_tolerance: Option<u8>,
    /// Third-party and ALTCHA challenge kinds (`docs/providers.md`).
    pub providers: ProvidersConfig,
}

impl Default for CompanionConfig {
    fn default() -> Self {
        CompanionConfig {
            public: "127.0.0.1:8181".to_string(),
            internal: "127.0.0.1:8182".to_string(),
            trusted_peers: vec!["127.0.0.0/8".to_string(), "::1".to_string()],
            cluster: "palisade_companion".to_string(),
            health_cluster: "palisade_companion_internal".to_string(),
            health_interval: Duration(1),
            failure_mode: FailureMode::Pow,
            data_dir: "palisade-data".to_string(),
            redis_url: None,
            store_unavailable: StoreUnavailable::Unavailable,
            limits: LimitsStore::Memory,
            limits_unavailable: LimitsUnavailable::Local,
            datasets: "datasets".to_string(),
            ttl: Duration(180),
            retries: 3,
            lockout: Duration(600),
            typo_tolerance: None,
            providers: ProvidersConfig::default(),
        }
    }
}

/// What the filter does with a challenge while the companion is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Serve the filter's own proof of work instead.
    #[default]
    Pow,
    /// Let the request through (counted).
    FailOpen,
    /// Answer 503 with `Retry-After`.
    FailClosed,
}

/// What the companion does when its store is unreachable. It never accepts
/// an answer it cannot check, whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreUnavailable {
    /// New challenges get 503 with `Retry-After`.
    #[default]
    Unavailable,
    /// New challenges become proof of work, which needs no state.
    Pow,
}

/// Where the companion's `/auth` check keeps its rate-limit state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitsStore {
    /// The companion's own bounded table (`rate_limiting.buckets`): each
    /// replica counts alone.
    #[default]
    Memory,
    /// `companion.redis_url`, shared by every replica.
    Redis,
}

/// What the `/auth` check does with a rate limit while Redis cannot be
/// reached (`limits: redis`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitsUnavailable {
    /// Count in the companion's own bounded table, as `limits: memory` does.
    #[default]
    Local,
    /// Count nothing: the limit lets the request pass.
    Allow,
    /// Answer as rate limited, retry after 1 s.
    Deny,
}

impl LimitsUnavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitsUnavailable::Local => "local",
            LimitsUnavailable::Allow => "allow",
            LimitsUnavailable::Deny => "deny",
        }
    }
}

/// Where the client address comes from and how clients are grouped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub source: ClientSource,
    /// Proxies in front that append to `X-Forwarded-For` (with `x_forwarded_for`).
    pub trusted_hops: u8,
    /// IPv4 clients are grouped by this prefix length for limits and tokens.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length for limits and tokens.
    pub ipv6_prefix: u8,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            source: ClientSource::Connection,
            trusted_hops: 1,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    Connection,
    XForwardedFor,
}

/// Pass tokens: keys, lifetime, binding and where they travel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Keys as `ID:SECRET` or `ID:base64:SECRET`, oldest first; the last signs.
    pub keys: Vec<String>,
    /// Name of an environment variable holding comma-separated keys.
    pub keys_env: Option<String>,
    /// How long an issued token is valid.
    pub ttl: Duration,
    /// Tokens issued longer ago than this are refused, whatever their expiry.
    pub max_age: Duration,
    pub bind_ip: bool,
    pub bind_user_agent: bool,
    pub cookie: CookieConfig,
    /// Request header that may carry the token for clients without cookies.
    pub header: String,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            keys: Vec::new(),
            keys_env: None,
            ttl: Duration(3600),
            max_age: Duration(3600),
            bind_ip: true,
            bind_user_agent: true,
            cookie: CookieConfig::default(),
            header: "x-palisade-token".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    pub name: String,
    pub path: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "palisade".to_string(),
            path: "/".to_string(),
            domain: None,
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    #[serde(alias = "Strict")]
    Strict,
    #[serde(alias = "Lax")]
    Lax,
    #[serde(alias = "None")]
    None,
}

/// A duration written as seconds or as `30s`, `15m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub u64);

/// Score thresholds: a score at or above each maps to that action.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub monitor: u8,
    pub challenge: u8,
    pub block: u8,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            monitor: 50,
            challenge: 70,
            block: 90,
        }
    }
}

/// Challenge defaults and the filter's own challenge endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeConfig {
    pub kind: ChallengeKind,
    pub difficulty: u8,
    /// Status of a challenge response.
    pub status: u16,
    /// Prefix of Palisade's own endpoints (`<prefix>verify`).
    pub path_prefix: String,
    /// How long a challenge ticket may be solved.
    pub ticket_ttl: Duration,
    /// The `chart` kind's tables and templates.
    pub chart: ChartConfig,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            kind: ChallengeKind::Pow,
            difficulty: 2,
            status: 403,
            path_prefix: "/.palisade/".to_string(),
            ticket_ttl: Duration(300),
            chart: ChartConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeKind {
    /// Proof of work: served by the filter or the companion, no state.
    Pow,
    /// Distorted characters to type (the companion renders them).
    Text,
    /// Pick the one picture of a named thing.
    OneClick,
    /// Select every square of a 3×3 or 4×4 grid showing a named thing.
    Grid,
    /// Spoken digits in noise: the alternative to every visual kind.
    Audio,
    /// A chart drawn from the site's own data, with a question about it
    /// (`challenge.chart`).
    Chart,
    /// Third-party widgets the companion verifies server-side
    /// (`companion.providers`, `docs/providers.md`).
    Turnstile,
    Hcaptcha,
    RecaptchaV2,
    RecaptchaV3,
    FriendlyCaptcha,
    /// Self-hosted proof of work with the ALTCHA widget.
    Altcha,
}

impl ChallengeKind {
    pub const ALL: [ChallengeKind; 12] = [
        ChallengeKind::Pow,
        ChallengeKind::Text,
        ChallengeKind::OneClick,
        ChallengeKind::Grid,
        ChallengeKind::Audio,
        ChallengeKind::Chart,
        ChallengeKind::Turnstile,
        ChallengeKind::Hcaptcha,
        ChallengeKind::RecaptchaV2,
        ChallengeKind::RecaptchaV3,
        ChallengeKind::FriendlyCaptcha,
        ChallengeKind::Altcha,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Pow => "pow",
            ChallengeKind::Text => "text",
            ChallengeKind::OneClick => "one_click",
            ChallengeKind::Grid => "grid",
            ChallengeKind::Audio => "audio",
            ChallengeKind::Chart => "chart",
            ChallengeKind::Turnstile => "turnstile",
            ChallengeKind::Hcaptcha => "hcaptcha",
            ChallengeKind::RecaptchaV2 => "recaptcha_v2",
            ChallengeKind::RecaptchaV3 => "recaptcha_v3",
            ChallengeKind::FriendlyCaptcha => "friendly_captcha",
            ChallengeKind::Altcha => "altcha",
        }
    }

    pub fn parse(text: &str) -> Option<ChallengeKind> {
        ChallengeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Every kind's name, `, `-separated: for errors naming the choices.
    pub fn names() -> String {
        ChallengeKind::ALL.map(ChallengeKind::as_str).join(", ")
    }

    /// Whether the companion must render it (everything but `pow`).
    pub fn needs_companion(self) -> bool {
        self != ChallengeKind::Pow
    }

    /// Whether it is a third-party widget or ALTCHA, which need their
    /// block in `companion.providers`.
    pub fn is_provider(self) -> bool {
        matches!(
            self,
            ChallengeKind::Turnstile
                | ChallengeKind::Hcaptcha
                | ChallengeKind::RecaptchaV2
                | ChallengeKind::RecaptchaV3
                | ChallengeKind::FriendlyCaptcha
                | ChallengeKind::Altcha
        )
    }
}

/// Per-route or per-rule challenge settings; unset fields inherit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSettings {
    pub kind: Option<ChallengeKind>,
    pub difficulty: Option<u8>,
}

/// The response to a blocked request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockResponse {
    pub status: u16,
    pub body: String,
}

impl Default for BlockResponse {
    fn default() -> Self {
        BlockResponse {
            status: 403,
            body: "Access denied.".to_string(),
        }
    }
}

/// Per-route block response; unset fields inherit the top-level `block`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSettings {
    pub status: Option<u16>,
    pub body: Option<String>,
}

/// Headers added to requests sent upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnotateConfig {
    /// Add `x-palisade-action`, `x-palisade-score`, `x-palisade-client`
    /// (any such headers from the client are always removed).
    pub upstream_headers: bool,
}

impl Default for AnnotateConfig {
    fn default() -> Self {
        AnnotateConfig {
            upstream_headers: true,
        }
    }
}

/// Sizing of the rate-limit table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    /// Buckets in the limiter table; each holds 4 clients in 64 bytes.
    pub buckets: u32,
}

impl Default for RateLimitingConfig {
    fn default() -> Self {
        RateLimitingConfig { buckets: 16384 }
    }
}

/// A rate limit on a route or set by a rule.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub rate: Rate,
    #[serde(default)]
    pub burst: u32,
    #[serde(default)]
    pub scope: RateScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// One allowance per client, shared by every route using this limit.
    #[default]
    Client,
    /// One allowance per client and route.
    ClientRoute,
    /// One allowance for everyone.
    Global,
}

/// A named IP list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpList {
    /// Inline CIDRs or addresses, parsed as they are read.
    #[serde(default)]
    pub cidrs: CidrEntries,
    /// Built-in network datasets by name (`google-crawlers`, `aws`, ...).
    #[serde(default)]
    pub builtin: Vec<String>,
    /// Files of CIDRs, one per line (native hosts only).
    #[serde(default)]
    pub files: Vec<String>,
}

/// Crawler and client-class detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlersConfig {
    /// Use the built-in datasets.
    pub builtin: bool,
    /// Extra entries, checked before the built-ins.
    pub extra: Vec<CrawlerEntry>,
    /// Product tokens added to `datasets/crawlers/browser_tokens.txt` (your
    /// own browser builds), so they do not make a desktop browser user
    /// agent a bot. Needs `builtin: true`.
    pub browser_tokens: Vec<String>,
    /// What challenge pages show crawlers of the page they stand in for.
    pub hints: CrawlerHintsConfig,
}

impl Default for CrawlersConfig {
    fn default() -> Self {
        CrawlersConfig {
            builtin: true,
            extra: Vec::new(),
            browser_tokens: Vec::new(),
            hints: CrawlerHintsConfig::default(),
        }
    }
}

/// Crawler hints: a challenged crawler's page (served by the companion)
/// carries the real page's title, description, Open Graph and Twitter
/// card tags, fetched from `upstream`, so previews and snippets stay
/// right; never its body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlerHintsConfig {
    pub enabled: bool,
    /// Where the companion fetches page heads (`http://host:port`, the
    /// app behind the proxy); without it no hints are served.
    pub upstream: Option<String>,
    /// Crawlers that get hints though their address cannot be verified
    /// (link-preview fetchers publish no ranges); crawlers whose address is
    /// verified always get them, spoofed ones never.
    pub previews: Vec<String>,
    /// How long a fetch may take.
    pub timeout_ms: u64,
    /// How much of a page is read, at most, looking for the end of its head.
    pub max_bytes: u64,
    /// How long a fetched head (or a failed fetch) is reused.
    pub cache_ttl: Duration,
    /// Heads kept, at most.
    pub cache_entries: u64,
}

impl Default for CrawlerHintsConfig {
    fn default() -> Self {
        CrawlerHintsConfig {
            enabled: true,
            upstream: None,
            previews: [
                "facebookexternalhit",
                "twitterbot",
                "linkedinbot",
                "slackbot",
                "discordbot",
                "telegrambot",
                "whatsapp",
                "pinterestbot",
                "redditbot",
                "microsoftpreview",
            ]
            .map(String::from)
            .to_vec(),
            timeout_ms: 1500,
            max_bytes: 64 * 1024,
            cache_ttl: Duration(300),
            cache_entries: 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerEntry {
    pub name: String,
    pub class: ClientClass,
    /// User-agent regex (case-insensitive).
    pub pattern: String,
    /// The IP list (from `lists`) its operator publishes, for verification.
    pub networks: Option<String>,
}

/// The actions a route or rule can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Allow,
    Monitor,
    Challenge,
    ChallengeAll,
    Block,
}

/// A route: what it matches and what applies there.
/// An absent `action` lets the score decide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: RouteMatch,
    pub action: Option<ActionName>,
    pub challenge: Option<ChallengeSettings>,
    pub rate_limit: Option<RateLimitSettings>,
    pub block: Option<BlockSettings>,
    /// How the learned score applies here (with `scoring.enabled`).
    pub score: Option<ScoreUse>,
    /// A login endpoint: its 401 and 403 answers count as failed logins.
    #[serde(default)]
    pub login: bool,
}

/// Which requests a route matches; every given test must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Path globs; any may match.
    #[serde(default)]
    pub path: Patterns,
    /// Path regexes; any may match (together with `path`).
    #[serde(default)]
    pub path_regex: Patterns,
    /// Host globs (case-insensitive, port ignored); any may match.
    #[serde(default)]
    pub host: Patterns,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub headers: Vec<FieldCondition>,
    #[serde(default)]
    pub query: Vec<FieldCondition>,
    /// Path globs excluded from this route.
    #[serde(default)]
    pub except: Patterns,
    /// Match `path`, `path_regex` and `except` regardless of case, as
    /// `paths.case_insensitive` does for every route.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// A test on one header or query parameter: give exactly one of
/// `equals`, `regex`, `present: true`, `absent: true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    pub name: String,
    pub equals: Option<String>,
    pub regex: Option<String>,
    pub present: Option<bool>,
    pub absent: Option<bool>,
}

/// A rule: conditions and effects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub when: Condition,
    /// Added to the suspicion score when the rule fires (may be negative).
    #[serde(default)]
    pub weight: i32,
    pub action: Option<ActionName>,
    pub challenge: Option<ChallengeSettings>,
    pub rate_limit: Option<RateLimitSettings>,
}

/// A condition: every test given must hold (an implicit `all`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Client address in any of these named lists.
    #[serde(default)]
    pub ip_in: Patterns,
    /// User-agent regex (case-insensitive); an absent user agent is "".
    pub user_agent: Option<String>,
    /// Client class is any of these.
    #[serde(default)]
    pub client_class: Vec<ClientClass>,
    /// Crawler verification is any of these (`verified`, `spoofed`, `unverifiable`).
    #[serde(default)]
    pub crawler: Vec<crate::crawlers::Verification>,
    /// Any of these header-consistency checks fails (`no_accept`,
    /// `no_client_hints`, ...; see `crawlers::consistency`).
    #[serde(default)]
    pub header_anomalies: Vec<crate::crawlers::HeaderAnomaly>,
    #[serde(default)]
    pub headers: Vec<FieldCondition>,
    #[serde(default)]
    pub query: Vec<FieldCondition>,
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path globs; any may match.
    #[serde(default)]
    pub path: Patterns,
    /// Path regexes; any may match.
    #[serde(default)]
    pub path_regex: Patterns,
    /// Client address in any of these countries (ISO 3166-1 alpha-2).
    #[serde(default)]
    pub country: Patterns,
    /// Client address on any of these continents (`EU`, `NA`, ...).
    #[serde(default)]
    pub continent: Patterns,
    /// Client address announced by any of these AS numbers (`15169` or
    /// `AS15169`).
    #[serde(default)]
    pub asn: Vec<AsnValue>,
    /// The AS organisation's name matches any of these globs
    /// (case-insensitive).
    #[serde(default)]
    pub as_org: Patterns,
    /// `true`: the address is a hosting or datacenter network (the shipped
    /// cloud lists and hosting AS numbers); `false`: it is not.
    pub hosting: Option<bool>,
    #[serde(default)]
    pub all: Vec<Condition>,
    #[serde(default)]
    pub any: Vec<Condition>,
    pub not: Option<Box<Condition>>,
}

/// An AS number as a policy writes it: `15169` or `"AS15169"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AsnValue {
    Number(i64),
    Text(String),
}

impl Config {
    /// Parses JSON (what Envoy and Istio deliver).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(ConfigError::from_parse)
    }

    /// Parses YAML (a superset of JSON), as the CLI and companion read files.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // Going through a JSON value gives YAML and JSON one error format
        // and one enum representation.
        serde_path_to_error::deserialize(yaml_to_json(text)?).map_err(ConfigError::from_parse)
    }
}

/// Reads a YAML (or JSON) document as a JSON value: what Envoy's plugin
/// configuration carries.
#[cfg(not(target_arch = "wasm32"))]
pub fn yaml_to_json(text: &str) -> Result<serde_json::Value, ConfigError> {
    serde_norway::from_str(text).map_err(|e| ConfigError::new("", e.to_string()))
}
