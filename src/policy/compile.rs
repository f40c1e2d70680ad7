//! Turning a [`Config`] into a [`Policy`]: every check and every pattern
//! compiled here, once, so deciding a request only matches.

use super::condition::{Cond, FieldTest, ValueTest};
use super::origin::GeoTest;
use super::paths::PathIndex;
use super::resolved::Resolver;
use super::{
    BlockSpec, ClientSettings, CompiledLimit, CompiledRoute, CompiledRule, Policy, TokenSettings,
};
use crate::config::{
    AsnValue, ChallengeKind, ChallengeSettings, ClientSource, CompanionConfig, Condition, Config,
    ConfigError, FieldCondition, IpList, LimitsStore, Patterns, ProvidersConfig, RateLimitSettings,
    Route, ScoreUse, ScoringConfig,
};
use crate::crawlers::{self, Anomalies, CrawlerSpec, Crawlers};
use crate::geo;
use crate::net::{self, Cidr, ClientPrefix, IpSet, LabelTable, MAX_LABELS};
use crate::ratelimit::Limit;
use crate::reputation;
use crate::token::{Key, Keyring};
use crate::{glob, policy::ChallengeSpec};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What compiling may need from the host: environment variables (keys)
/// and files (IP lists). Tests pass a fake; hosts pass [`ProcessEnv`].
pub trait CompileEnv {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &str) -> Result<String, String>;
}

/// The real process environment and file system.
pub struct ProcessEnv;

impl CompileEnv for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_file(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))
    }

    #[cfg(target_arch = "wasm32")]
    fn read_file(&self, path: &str) -> Result<String, String> {
        Err(format!(
            "cannot read `{path}`: the Envoy filter has no file system; use `cidrs` or `builtin`"
        ))
    }
}

/// Collects the patterns of one `RegexSet` (rule user agents, rule paths);
/// conditions refer to their patterns by index.
#[derive(Default)]
struct SetBuilder {
    patterns: Vec<String>,
    /// `paths.case_insensitive` (the path matched is then folded too).
    case_insensitive: bool,
}

impl SetBuilder {
    /// Adds globs and regexes, checking each alone so an error names its place.
    fn add(
        &mut self,
        globs: &Patterns,
        regexes: &Patterns,
        globs_path: &str,
        regexes_path: &str,
    ) -> Result<Vec<usize>, ConfigError> {
        check_patterns(globs, regexes, globs_path, regexes_path)?;
        let globs = globs.0.iter().map(|g| glob::to_regex(g));
        let regexes = regexes.0.iter().cloned();
        Ok(globs.chain(regexes).map(|p| self.push(p)).collect())
    }

    fn push(&mut self, pattern: String) -> usize {
        self.patterns.push(pattern);
        self.patterns.len() - 1
    }

    fn build(self, path: &str) -> Result<RegexSet, ConfigError> {
        RegexSetBuilder::new(&self.patterns)
            .case_insensitive(self.case_insensitive)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| ConfigError::new(path, format!("patterns too large to compile: {e}")))
    }
}

/// User-agent patterns as one byte set, case-insensitive and ASCII-only:
/// user agents are ASCII, and Unicode classes make the set several times
/// slower on every request (the crawler datasets make the same choice).
fn user_agent_regex(patterns: &[String]) -> Result<regex::bytes::RegexSet, regex::Error> {
    regex::bytes::RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .unicode(false)
        .size_limit(64 << 20)
        .build()
}

/// Checks globs (not empty) and regexes (valid), each alone so that an
/// error names its place.
fn check_patterns(
    globs: &Patterns,
    regexes: &Patterns,
    globs_path: &str,
    regexes_path: &str,
) -> Result<(), ConfigError> {
    if let Some(i) = globs.0.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            indexed(globs_path, i, globs.0.len()),
            "empty glob",
        ));
    }
    for (i, r) in regexes.0.iter().enumerate() {
        check_regex(r)
            .map_err(|e| ConfigError::new(indexed(regexes_path, i, regexes.0.len()), e))?;
    }
    Ok(())
}

/// Files a route's path patterns in the route index. With `fold`
/// (`paths.case_insensitive`) the index is searched with a lower-cased
/// path, so globs are filed lower-cased and regexes ignore case.
fn index_route_paths(
    index: &mut PathIndex,
    owner: usize,
    m: &crate::config::RouteMatch,
    at: &str,
    fold: bool,
) -> Result<(), ConfigError> {
    let (globs_at, regexes_at) = (format!("{at}.match.path"), format!("{at}.match.path_regex"));
    check_patterns(&m.path, &m.path_regex, &globs_at, &regexes_at)?;
    for g in &m.path.0 {
        let glob = if fold {
            g.to_ascii_lowercase()
        } else {
            g.clone()
        };
        index
            .add_glob(owner, &glob)
            .map_err(|e| ConfigError::new(&globs_at, e.to_string()))?;
    }
    for r in &m.path_regex.0 {
        let regex = if fold { format!("(?i){r}") } else { r.clone() };
        index
            .add_regex(owner, &regex)
            .map_err(|e| ConfigError::new(&regexes_at, e.to_string()))?;
    }
    Ok(())
}

/// One regex for a route's `except` globs, checked only for candidate routes.
fn compile_except(except: &Patterns, at: &str, fold: bool) -> Result<Option<Regex>, ConfigError> {
    check_patterns(except, &Patterns::default(), at, "")?;
    if except.0.is_empty() {
        return Ok(None);
    }
    let alternation: Vec<String> = except.0.iter().map(|g| glob::to_regex(g)).collect();
    RegexBuilder::new(&alternation.join("|"))
        .case_insensitive(fold)
        .build()
        .map(Some)
        .map_err(|e| ConfigError::new(at, e.to_string()))
}

/// `path[i]` when a list was written, `path` for a single value.
fn indexed(path: &str, i: usize, len: usize) -> String {
    if len == 1 {
        path.to_string()
    } else {
        format!("{path}[{i}]")
    }
}

fn check_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| regex_reason(pattern, &e))
}

/// regex's multi-line message as one line: the reason and where it is.
fn regex_reason(pattern: &str, err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => syntax_reason(pattern, text),
        other => other.to_string(),
    }
}

/// The last line of a regex syntax error is the reason itself; the `^^^`
/// line under the pattern marks the offending span: give its offset.
fn syntax_reason(pattern: &str, text: &str) -> String {
    let reason = text
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(text)
        .trim_start_matches("error: ");
    let offset = marker_offset(pattern, text).map(|o| format!(" at offset {o}"));
    format!("{reason}{}", offset.unwrap_or_default())
}

/// The character offset in `pattern` of the first `^` marker of regex's
/// message. A one-line pattern is printed indented by four spaces with the
/// marker line below it; a multi-line pattern line by line as `N: LINE`
/// between `~~~` dividers, each line followed by its marker line, if any.
/// (The pattern line itself may start with `^`: it is never the marker.)
fn marker_offset(pattern: &str, text: &str) -> Option<usize> {
    let mut lines = text.lines().skip(1); // "regex parse error:"
    if !pattern.contains('\n') {
        lines.next()?; // the pattern
        return marker_column(lines.next()?, 4);
    }
    let mut current: Option<(usize, usize)> = None; // (line number, prefix width)
    for line in lines.skip(1) {
        if line.starts_with('~') {
            break;
        }
        if let Some((number, width)) = current {
            if let Some(column) = marker_column(line, width) {
                let before: usize = pattern
                    .split('\n')
                    .take(number.saturating_sub(1))
                    .map(|l| l.chars().count() + 1)
                    .sum();
                return Some(before + column);
            }
        }
        let (number, _) = line.split_once(": ")?;
        current = Some((number.trim().parse().ok()?, number.len() + 2));
    }
    None
}

/// Where the first `^` of a marker line is, past its indent.
fn marker_column(line: &str, indent: usize) -> Option<usize> {
    let marks = line.trim_end();
    if !marks.contains('^') || !marks.bytes().all(|b| b == b' ' || b == b'^') {
        return None;
    }
    marks.find('^')?.checked_sub(indent)
}

pub(super) fn compile(mut config: Config, env: &dyn CompileEnv) -> Result<Policy, ConfigError> {
    // The lists leave the configuration to be consumed as they compile.
    let implicit = implicit_lists(&config);
    let named = std::mem::take(&mut config.lists);
    let config = &config;
    let client = compile_client(config)?;
    let tokens = compile_tokens(config, env)?;
    check_thresholds(config)?;
    let challenge = &config.challenge;
    check_status(challenge.status, "challenge.status")?;
    if challenge.ticket_ttl.0 == 0 {
        return Err(ConfigError::new(
            "challenge.ticket_ttl",
            "must be longer than 0s, or no challenge could be solved",
        ));
    }
    let prefix = &challenge.path_prefix;
    if prefix.len() < 3
        || !prefix.starts_with('/')
        || !prefix.ends_with('/')
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        return Err(ConfigError::new(
            "challenge.path_prefix",
            "must be a path segment of its own, starting and ending with `/`, in letters, digits and `/._-` (default `/.palisade/`)",
        ));
    }
    let providers = &config.companion.providers;
    let default_challenge = ChallengeSpec {
        kind: check_kind(challenge.kind, providers, "challenge.kind")?,
        difficulty: check_difficulty(challenge.difficulty, "challenge.difficulty")?,
    };
    check_status(config.block.status, "block.status")?;
    check_companion(&config.companion)?;
    let trusted_peers = trusted_peers(&config.companion.trusted_peers)?;
    if config.rate_limiting.buckets == 0 {
        return Err(ConfigError::new(
            "rate_limiting.buckets",
            "must be at least 1",
        ));
    }

    let mut resolver = Resolver::new(&config.resolved_ranges);
    let lists = compile_lists(named, implicit, config, env, &mut resolver)?;
    let crawlers = compile_crawlers(config, &lists)?;
    let hints = super::hints::compile_hints(&config.crawlers.hints, &crawlers)?;

    let fold_paths = config.paths.case_insensitive;
    let mut route_paths = PathIndex::new();
    // Routes folding case on their own (`match.case_insensitive`): searched
    // with the lower-cased path, only when there are any.
    let mut folded_route_paths = PathIndex::new();
    let mut routes = Vec::with_capacity(config.routes.len() + 1);
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let m = &route.matcher;
        let fold = fold_paths || m.case_insensitive;
        let index = if fold && !fold_paths {
            &mut folded_route_paths
        } else {
            &mut route_paths
        };
        index_route_paths(index, i, m, &at, fold)?;
        let name = route.name.clone().unwrap_or_else(|| at.clone());
        if name == "default" || routes.iter().any(|r: &CompiledRoute| r.name == name) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("route name `{name}` is used twice (`default` is the default route's)"),
            ));
        }
        let mut compiled = compile_route(config, route, &at, name, default_challenge)?;
        compiled.any_path = m.path.0.is_empty() && m.path_regex.0.is_empty();
        compiled.except = compile_except(&m.except, &format!("{at}.match.except"), fold)?;
        compiled.hosts = compile_hosts(&m.host, &format!("{at}.match.host"))?;
        compiled.methods = compile_methods(&m.methods, &format!("{at}.match.methods"))?;
        compiled.headers = compile_fields(&m.headers, &format!("{at}.match.headers"), true)?;
        compiled.query = compile_fields(&m.query, &format!("{at}.match.query"), false)?;
        routes.push(compiled);
    }
    let d = &config.default_route;
    if d.name.is_some() || !route_match_is_empty(d) {
        return Err(ConfigError::new(
            "default_route",
            "the default route applies when no route matches; it takes no `name` or `match`",
        ));
    }
    routes.push(compile_route(
        config,
        d,
        "default_route",
        "default".into(),
        default_challenge,
    )?);
    let any_path_routes = (0..routes.len() - 1)
        .filter(|&i| routes[i].any_path)
        .collect();

    let mut ua = SetBuilder::default();
    let mut rule_paths = SetBuilder {
        case_insensitive: fold_paths,
        ..SetBuilder::default()
    };
    let mut rules = Vec::with_capacity(config.rules.len());
    for (i, rule) in config.rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if rule.name.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.name"),
                "a rule needs a name",
            ));
        }
        if rules.iter().any(|r: &CompiledRule| r.name == rule.name) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("rule name `{}` is used twice", rule.name),
            ));
        }
        let mut ctx = CondCtx {
            lists: &lists,
            ua: &mut ua,
            paths: &mut rule_paths,
            resolver: &mut resolver,
        };
        let when = compile_condition(&rule.when, &format!("{at}.when"), &mut ctx)?;
        if rule.weight == 0
            && rule.action.is_none()
            && rule.challenge.is_none()
            && rule.rate_limit.is_none()
        {
            return Err(ConfigError::new(
                at,
                "the rule has no effect: give it a `weight`, `action`, `challenge` or `rate_limit`",
            ));
        }
        rules.push(CompiledRule {
            name: rule.name.clone(),
            when,
            weight: rule.weight,
            action: rule.action,
            challenge: rule
                .challenge
                .map(|c| check_challenge_settings(c, providers, &format!("{at}.challenge")))
                .transpose()?,
            rate_limit: rule
                .rate_limit
                .as_ref()
                .map(|r| compile_limit(r, format!("{at}.rate_limit")))
                .transpose()?,
        });
    }
    let user_agents = user_agent_regex(&ua.patterns).map_err(|e| {
        ConfigError::new(
            "rules",
            format!("user-agent patterns too large to compile: {e}"),
        )
    })?;
    let rule_paths = rule_paths.build("rules")?;
    let resolved = resolver.finish()?;
    let list_labels = LabelTable::new(&lists.iter().map(|l| &l.set).collect::<Vec<_>>());
    let (lists, unlabelled_lists) = kept_lists(lists);

    Ok(Policy {
        client,
        tokens,
        thresholds: config.thresholds,
        verify_path: format!("{}verify", challenge.path_prefix),
        challenge_path: format!("{}challenge", challenge.path_prefix),
        challenge: challenge.clone(),
        companion: config.companion.clone(),
        scoring: compile_scoring(config)?,
        trusted_peers,
        annotate: config.annotate.upstream_headers,
        rate_buckets: config.rate_limiting.buckets,
        list_labels,
        lists,
        unlabelled_lists,
        resolved,
        crawlers,
        hints,
        routes,
        route_paths,
        folded_route_paths: (!folded_route_paths.is_empty()).then_some(folded_route_paths),
        fold_paths,
        any_path_routes,
        rules,
        user_agents,
        rule_paths,
    })
}

fn route_match_is_empty(route: &Route) -> bool {
    let m = &route.matcher;
    m.path.0.is_empty()
        && m.path_regex.0.is_empty()
        && m.host.0.is_empty()
        && m.methods.is_empty()
        && m.headers.is_empty()
        && m.query.is_empty()
        && m.except.0.is_empty()
}

fn compile_client(config: &Config) -> Result<ClientSettings, ConfigError> {
    let c = &config.client;
    if c.ipv4_prefix == 0 || c.ipv4_prefix > 32 {
        return Err(ConfigError::new("client.ipv4_prefix", "must be 1-32"));
    }
    if c.ipv6_prefix == 0 || c.ipv6_prefix > 128 {
        return Err(ConfigError::new("client.ipv6_prefix", "must be 1-128"));
    }
    let trusted_hops = match c.source {
        ClientSource::Connection => 0,
        ClientSource::XForwardedFor if c.trusted_hops == 0 => {
            return Err(ConfigError::new(
                "client.trusted_hops",
                "must be at least 1 with `source: x_forwarded_for` (the proxies in front that append to it)",
            ))
        }
        ClientSource::XForwardedFor => c.trusted_hops,
    };
    Ok(ClientSettings {
        trusted_hops,
        prefix: ClientPrefix {
            v4: c.ipv4_prefix,
            v6: c.ipv6_prefix,
        },
    })
}

fn compile_tokens(config: &Config, env: &dyn CompileEnv) -> Result<TokenSettings, ConfigError> {
    let t = &config.tokens;
    let mut keys = Vec::new();
    for (i, spec) in t.keys.iter().enumerate() {
        let key = Key::parse(spec)
            .map_err(|e| ConfigError::new(format!("tokens.keys[{i}]"), e.to_string()))?;
        keys.push(key);
    }
    // The environment, when set, replaces inline keys: those are for
    // development, and a deployment's secrets should be the only keys.
    if let Some(var) = &t.keys_env {
        match env.var(var) {
            Some(value) => {
                keys = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Key::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| {
                        ConfigError::new(
                            "tokens.keys_env",
                            format!("environment variable `{var}`: {e}"),
                        )
                    })?;
                if keys.is_empty() {
                    return Err(ConfigError::new(
                        "tokens.keys_env",
                        format!("environment variable `{var}` is set but holds no keys"),
                    ));
                }
            }
            None if keys.is_empty() => {
                return Err(ConfigError::new(
                    "tokens.keys_env",
                    format!("environment variable `{var}` is not set and `tokens.keys` is empty"),
                ))
            }
            None => {}
        }
    }
    if keys.is_empty() {
        return Err(ConfigError::new(
            "tokens.keys",
            "no keys: challenges and pass tokens need at least one `ID:SECRET` key \
             (set `tokens.keys`, or `tokens.keys_env` naming an environment variable)",
        ));
    }
    let keyring = Keyring::new(keys).map_err(|e| ConfigError::new("tokens.keys", e.to_string()))?;
    if t.ttl.0 == 0 {
        return Err(ConfigError::new("tokens.ttl", "must be longer than 0s"));
    }
    if t.max_age.0 == 0 {
        return Err(ConfigError::new("tokens.max_age", "must be longer than 0s"));
    }
    if !is_token(&t.cookie.name) {
        return Err(ConfigError::new(
            "tokens.cookie.name",
            "must be a non-empty cookie name (letters, digits, `-`, `_`)",
        ));
    }
    if !is_token(&t.header) {
        return Err(ConfigError::new("tokens.header", "must be a header name"));
    }
    Ok(TokenSettings {
        keyring,
        ttl_s: t.ttl.0,
        max_age_s: t.max_age.0,
        bind_ip: t.bind_ip,
        bind_user_agent: t.bind_user_agent,
        cookie: t.cookie.clone(),
        header: t.header.to_ascii_lowercase(),
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn check_thresholds(config: &Config) -> Result<(), ConfigError> {
    let t = config.thresholds;
    for (name, v) in [
        ("monitor", t.monitor),
        ("challenge", t.challenge),
        ("block", t.block),
    ] {
        if v > 101 {
            return Err(ConfigError::new(
                format!("thresholds.{name}"),
                "must be 0-100 (101 turns it off)",
            ));
        }
    }
    if !(t.monitor <= t.challenge && t.challenge <= t.block) {
        return Err(ConfigError::new(
            "thresholds",
            format!(
                "must rise: monitor ({}) <= challenge ({}) <= block ({})",
                t.monitor, t.challenge, t.block
            ),
        ));
    }
    Ok(())
}

fn check_status(status: u16, at: &str) -> Result<u16, ConfigError> {
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err(ConfigError::new(
            at,
            format!("{status} is not an HTTP status for a response (200-599)"),
        ))
    }
}

fn check_difficulty(d: u8, at: &str) -> Result<u8, ConfigError> {
    if (1..=5).contains(&d) {
        Ok(d)
    } else {
        Err(ConfigError::new(
            at,
            format!("difficulty {d} is out of range 1-5"),
        ))
    }
}

/// The companion's settings: listeners that parse, lifetimes that allow
/// an answer, and limits that mean something.
fn check_companion(c: &CompanionConfig) -> Result<(), ConfigError> {
    for (field, addr) in [("public", &c.public), ("internal", &c.internal)] {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                format!("companion.{field}"),
                format!("`{addr}` is not a listen address (IP:PORT, such as 127.0.0.1:8181)"),
            ));
        }
    }
    if c.public == c.internal {
        return Err(ConfigError::new(
            "companion.internal",
            "must differ from `companion.public`: the internal endpoints are never routed from outside",
        ));
    }
    for (field, d) in [
        ("ttl", c.ttl),
        ("health_interval", c.health_interval),
        ("lockout", c.lockout),
    ] {
        if d.0 == 0 {
            return Err(ConfigError::new(
                format!("companion.{field}"),
                "must be longer than 0s",
            ));
        }
    }
    if c.retries == 0 {
        return Err(ConfigError::new(
            "companion.retries",
            "must be at least 1 (the wrong answers a client may give before it is locked out)",
        ));
    }
    if c.typo_tolerance.is_some_and(|t| t > 3) {
        return Err(ConfigError::new(
            "companion.typo_tolerance",
            "must be 0 to 3: a larger edit distance accepts guesses",
        ));
    }
    if let Some(url) = &c.redis_url {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::new(
                "companion.redis_url",
                format!("`{url}` is not a Redis URL (redis://HOST:PORT/DB, rediss://... or unix://PATH)"),
            ));
        }
    }
    if c.limits == LimitsStore::Redis && c.redis_url.is_none() {
        return Err(ConfigError::new(
            "companion.limits",
            "`redis` needs `companion.redis_url` (the server the replicas share)",
        ));
    }
    for (field, name) in [
        ("cluster", &c.cluster),
        ("health_cluster", &c.health_cluster),
    ] {
        if name.is_empty() {
            return Err(ConfigError::new(
                format!("companion.{field}"),
                "must name an Envoy cluster",
            ));
        }
    }
    Ok(())
}

/// `companion.trusted_peers`, parsed once. An empty list is refused: no
/// nginx could then describe a request, and every check would judge the
/// check itself.
fn trusted_peers(peers: &[String]) -> Result<Vec<Cidr>, ConfigError> {
    if peers.is_empty() {
        return Err(ConfigError::new(
            "companion.trusted_peers",
            "must name at least one address or CIDR (default: 127.0.0.0/8 and ::1, nginx beside the companion)",
        ));
    }
    peers
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<Cidr>()
                .map_err(|e| ConfigError::new(format!("companion.trusted_peers[{i}]"), e.0))
        })
        .collect()
}

fn check_challenge_settings(
    c: ChallengeSettings,
    providers: &ProvidersConfig,
    at: &str,
) -> Result<ChallengeSettings, ConfigError> {
    if let Some(kind) = c.kind {
        check_kind(kind, providers, &format!("{at}.kind"))?;
    }
    if let Some(d) = c.difficulty {
        check_difficulty(d, &format!("{at}.difficulty"))?;
    }
    Ok(c)
}

/// A provider kind can only be asked for with its block in
/// `companion.providers` (its secret is read where it is used: by the
/// companion, and by `check-config`).
fn check_kind(
    kind: ChallengeKind,
    providers: &ProvidersConfig,
    at: &str,
) -> Result<ChallengeKind, ConfigError> {
    if kind.is_provider() && !providers.configures(kind) {
        return Err(ConfigError::new(
            at,
            format!(
                "`{0}` is a provider kind and needs its settings in companion.providers.{0} (docs/providers.md)",
                kind.as_str()
            ),
        ));
    }
    Ok(kind)
}

fn compile_route(
    config: &Config,
    route: &Route,
    at: &str,
    name: String,
    default_challenge: ChallengeSpec,
) -> Result<CompiledRoute, ConfigError> {
    let challenge = match route.challenge {
        Some(c) => {
            let c = check_challenge_settings(
                c,
                &config.companion.providers,
                &format!("{at}.challenge"),
            )?;
            ChallengeSpec {
                kind: c.kind.unwrap_or(default_challenge.kind),
                difficulty: c.difficulty.unwrap_or(default_challenge.difficulty),
            }
        }
        None => default_challenge,
    };
    let block = route.block.clone().unwrap_or_default();
    let status = match block.status {
        Some(s) => check_status(s, &format!("{at}.block.status"))?,
        None => config.block.status,
    };
    Ok(CompiledRoute {
        name,
        any_path: true,
        except: None,
        hosts: None,
        methods: Vec::new(),
        headers: Vec::new(),
        query: Vec::new(),
        action: route.action,
        challenge,
        rate_limit: route
            .rate_limit
            .as_ref()
            .map(|r| compile_limit(r, format!("{at}.rate_limit")))
            .transpose()?,
        block: BlockSpec {
            status,
            body: block.body.unwrap_or_else(|| config.block.body.clone()),
        },
        score: match (config.scoring.enabled, route.score) {
            (true, score) => score.unwrap_or(config.scoring.routes_default),
            (false, None | Some(ScoreUse::Off)) => ScoreUse::Off,
            (false, Some(_)) => {
                return Err(ConfigError::new(
                    format!("{at}.score"),
                    "the route asks for the learned score, but `scoring.enabled` is false",
                ))
            }
        },
        login: route.login,
    })
}

/// Checks the scoring settings' ranges.
fn compile_scoring(config: &Config) -> Result<ScoringConfig, ConfigError> {
    let s = &config.scoring;
    let check = |field: &str, value: u64, low: u64, high: u64| {
        if (low..=high).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                format!("scoring.{field}"),
                format!("must be {low} to {high}, not {value}"),
            ))
        }
    };
    check("slots", u64::from(s.slots), 16, 1 << 20)?;
    check("report_interval_ms", s.report_interval_ms, 100, 60_000)?;
    check("report_batch", u64::from(s.report_batch), 1, 1024)?;
    check("blocking_timeout_ms", s.blocking_timeout_ms, 10, 5_000)?;
    check("cache_ttl", s.cache_ttl.0, 1, 86_400)?;
    check(
        "interaction.threshold",
        u64::from(s.interaction.threshold),
        1,
        100,
    )?;
    check_challenge_settings(
        s.interaction.escalate_to,
        &config.companion.providers,
        "scoring.interaction.escalate_to",
    )?;
    check(
        "feedback.per_client",
        u64::from(s.feedback.per_client),
        0,
        1_000_000,
    )?;
    check("records.queue", u64::from(s.records.queue), 16, 1 << 20)?;
    check(
        "records.shared_labels",
        u64::from(s.records.shared_labels),
        1,
        10_000_000,
    )?;
    check(
        "training.sync_interval",
        s.training.sync_interval.0,
        1,
        86_400,
    )?;
    check(
        "training.min_labels",
        u64::from(s.training.min_labels),
        1,
        1 << 24,
    )?;
    let share = |field: &str, value: f64| {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                format!("scoring.{field}"),
                format!("must be 0 to 1, not {value}"),
            ))
        }
    };
    share("records.sample", s.records.sample)?;
    share(
        "training.max_label_share",
        f64::from(s.training.max_label_share),
    )?;
    share("training.max_auc_drop", f64::from(s.training.max_auc_drop))?;
    share(
        "training.max_challenged_rise",
        f64::from(s.training.max_challenged_rise),
    )?;
    share(
        "training.max_missed_rise",
        f64::from(s.training.max_missed_rise),
    )?;
    if s.enabled && s.model.trim().is_empty() {
        return Err(ConfigError::new(
            "scoring.model",
            "give the model file's path",
        ));
    }
    Ok(s.clone())
}

fn compile_limit(
    settings: &RateLimitSettings,
    source: String,
) -> Result<CompiledLimit, ConfigError> {
    Ok(CompiledLimit {
        source,
        limit: Limit {
            rate: settings.rate,
            burst: settings.burst,
        },
        scope: settings.scope,
    })
}

fn compile_hosts(hosts: &Patterns, at: &str) -> Result<Option<Regex>, ConfigError> {
    if hosts.0.is_empty() {
        return Ok(None);
    }
    if let Some(i) = hosts.0.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            indexed(at, i, hosts.0.len()),
            "empty glob",
        ));
    }
    if let Some(i) = hosts
        .0
        .iter()
        .position(|h| h.contains(':') && !h.starts_with('['))
    {
        return Err(ConfigError::new(
            indexed(at, i, hosts.0.len()),
            "host globs match the host name without its port; remove `:PORT`",
        ));
    }
    let alternation = hosts
        .0
        .iter()
        .map(|h| glob::to_regex(&h.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join("|");
    RegexBuilder::new(&alternation)
        .case_insensitive(true)
        .build()
        .map(Some)
        .map_err(|e| ConfigError::new(at, regex_reason(&alternation, &e)))
}

fn compile_methods(methods: &[String], at: &str) -> Result<Vec<String>, ConfigError> {
    methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if is_token(m) {
                Ok(m.to_ascii_uppercase())
            } else {
                Err(ConfigError::new(
                    format!("{at}[{i}]"),
                    format!("`{m}` is not an HTTP method"),
                ))
            }
        })
        .collect()
}

fn compile_fields(
    fields: &[FieldCondition],
    at: &str,
    header: bool,
) -> Result<Vec<FieldTest>, ConfigError> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| compile_field(f, &format!("{at}[{i}]"), header))
        .collect()
}

fn compile_field(f: &FieldCondition, at: &str, header: bool) -> Result<FieldTest, ConfigError> {
    if f.name.is_empty() {
        return Err(ConfigError::new(format!("{at}.name"), "must not be empty"));
    }
    let mut tests = Vec::new();
    if let Some(v) = &f.equals {
        tests.push(ValueTest::Equals(v.clone()));
    }
    if let Some(r) = &f.regex {
        tests.push(ValueTest::Regex(
            check_regex(r).map_err(|e| ConfigError::new(format!("{at}.regex"), e))?,
        ));
    }
    match f.present {
        Some(true) => tests.push(ValueTest::Present),
        Some(false) => tests.push(ValueTest::Absent),
        None => {}
    }
    match f.absent {
        Some(true) => tests.push(ValueTest::Absent),
        Some(false) => tests.push(ValueTest::Present),
        None => {}
    }
    if tests.len() != 1 {
        return Err(ConfigError::new(
            at,
            "give exactly one of `equals`, `regex`, `present` or `absent`",
        ));
    }
    Ok(FieldTest {
        name: if header {
            f.name.to_ascii_lowercase()
        } else {
            f.name.clone()
        },
        test: tests.remove(0),
    })
}

/// A named list while the policy compiles: rules find it by name, and
/// crawler entries take its set.
struct NamedList {
    name: String,
    set: IpSet,
}

/// What the policy keeps of its lists once the label table holds them:
/// each one's name and size, and the sets the table could not take.
fn kept_lists(lists: Vec<NamedList>) -> (Vec<(String, usize)>, Vec<IpSet>) {
    let mut kept = Vec::with_capacity(lists.len());
    let mut unlabelled = Vec::new();
    for (i, list) in lists.into_iter().enumerate() {
        kept.push((list.name, list.set.range_count()));
        if i >= MAX_LABELS {
            unlabelled.push(list.set);
        }
    }
    (kept, unlabelled)
}

/// Compiles the named lists, then the implicit ones. Consumes the named
/// ones: each list's entries are freed once its set is built, so the load
/// never holds every entry and every set at once.
fn compile_lists(
    named: BTreeMap<String, IpList>,
    implicit: Vec<String>,
    config: &Config,
    env: &dyn CompileEnv,
    resolver: &mut Resolver,
) -> Result<Vec<NamedList>, ConfigError> {
    let datasets = config.companion.datasets.as_str();
    let mut lists = Vec::with_capacity(named.len() + implicit.len());
    for (name, list) in named {
        let set = compile_list(&list, &format!("lists.{name}"), datasets, env, resolver)?;
        lists.push(NamedList { name, set });
    }
    for name in implicit {
        let list = IpList {
            builtin: vec![name.clone()],
            ..IpList::default()
        };
        let set = compile_list(&list, &format!("lists.{name}"), datasets, env, resolver)?;
        lists.push(NamedList { name, set });
    }
    Ok(lists)
}

/// A reputation list's entries: the refreshed copy in
/// `<datasets>/networks/` where the host can read it (the companion
/// rereads it on reload), else the copy built into native hosts. The
/// filter has neither: it takes the list from `resolved_ranges`.
#[cfg(not(target_arch = "wasm32"))]
fn reputation_list(
    source: &reputation::Source,
    datasets: &str,
    env: &dyn CompileEnv,
) -> Result<IpSet, String> {
    let file = format!("{datasets}/networks/{}.txt", source.name);
    let (text, shown) = match env.read_file(&file) {
        Ok(text) => (text, file),
        Err(_) => (
            source.embedded.to_string(),
            format!("built-in datasets/networks/{}.txt", source.name),
        ),
    };
    let cidrs =
        net::parse_cidr_list(&text).map_err(|(line, e)| format!("{shown}: line {line}: {e}"))?;
    if cidrs.is_empty() {
        return Err(format!(
            "the list `{}` has no entries ({shown}; no copy could be obtained where this \
             build was made): download it with `palisade datasets refresh {}`",
            source.name, source.name
        ));
    }
    Ok(IpSet::from_cidrs(cidrs))
}

#[cfg(target_arch = "wasm32")]
fn reputation_list(
    source: &reputation::Source,
    _datasets: &str,
    _env: &dyn CompileEnv,
) -> Result<IpSet, String> {
    Err(super::resolved::missing(
        "reputation lists",
        &reputation_key(source),
    ))
}

/// A cloud provider's list ([`crawlers::CLOUD_LISTS`]): built into native
/// hosts; the filter takes it from `resolved_ranges`.
#[cfg(not(target_arch = "wasm32"))]
fn cloud_list(name: &str) -> Result<IpSet, String> {
    crawlers::builtin_network_set(name).map_err(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
fn cloud_list(name: &str) -> Result<IpSet, String> {
    Err(super::resolved::missing(
        "cloud providers' lists",
        &format!("builtin={name}"),
    ))
}

/// A reputation list's key in `resolved_ranges`.
fn reputation_key(source: &reputation::Source) -> String {
    format!("builtin={}", source.name)
}

fn compile_list(
    list: &IpList,
    at: &str,
    datasets: &str,
    env: &dyn CompileEnv,
    resolver: &mut Resolver,
) -> Result<IpSet, ConfigError> {
    // Sets resolved by key: the reputation and cloud lists.
    let mut resolved = Vec::new();
    let inline = list
        .cidrs
        .parsed()
        .map_err(|(i, e)| ConfigError::new(format!("{at}.cidrs[{i}]"), e.to_string()))?;
    // Entries from built-in lists and files.
    let mut cidrs = Vec::new();
    for (i, name) in list.builtin.iter().enumerate() {
        if let Some(source) = reputation::source(name) {
            let here = format!("{at}.builtin[{i}]");
            resolved.push(resolver.position(reputation_key(source), &here, || {
                reputation_list(source, datasets, env)
            })?);
            continue;
        }
        if crawlers::CLOUD_LISTS.contains(&name.as_str()) {
            let here = format!("{at}.builtin[{i}]");
            resolved
                .push(resolver.position(format!("builtin={name}"), &here, || cloud_list(name))?);
            continue;
        }
        let text = crawlers::builtin_network(name).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.builtin[{i}]"),
                format!(
                    "no built-in network list `{name}` (there are: {}, {})",
                    crawlers::builtin_network_names().join(", "),
                    reputation::names().join(", ")
                ),
            )
        })?;
        cidrs.extend(parse_list_text(text, &format!("{at}.builtin[{i}]"))?);
    }
    for (i, path) in list.files.iter().enumerate() {
        let here = format!("{at}.files[{i}]");
        let text = env
            .read_file(path)
            .map_err(|e| ConfigError::new(&here, e))?;
        cidrs.extend(parse_list_text(&text, &here)?);
    }
    if inline.is_empty() && cidrs.is_empty() && resolved.is_empty() {
        return Err(ConfigError::new(
            at,
            "the list is empty: give `cidrs`, `builtin` or `files`",
        ));
    }
    let mut set = IpSet::from_cidrs(inline.iter().copied().chain(cidrs));
    for position in resolved {
        if let Some(list) = resolver.get(position) {
            set = set.union(list);
        }
    }
    Ok(set)
}

fn parse_list_text(text: &str, at: &str) -> Result<Vec<net::Cidr>, ConfigError> {
    net::parse_cidr_list(text)
        .map_err(|(line, e)| ConfigError::new(at, format!("line {line}: {e}")))
}

fn compile_crawlers(config: &Config, lists: &[NamedList]) -> Result<Arc<Crawlers>, ConfigError> {
    // The policy's own entries join the first (named) tier, ahead of it.
    let mut named = Vec::new();
    for (i, entry) in config.crawlers.extra.iter().enumerate() {
        let at = format!("crawlers.extra[{i}]");
        check_regex(&entry.pattern).map_err(|e| ConfigError::new(format!("{at}.pattern"), e))?;
        let networks = match &entry.networks {
            Some(name) => Some(
                lists[find_list(lists, name, &format!("{at}.networks"))?]
                    .set
                    .clone(),
            ),
            None => None,
        };
        named.push(CrawlerSpec {
            name: entry.name.clone(),
            class: entry.class,
            pattern: entry.pattern.clone(),
            networks,
        });
    }
    let added = &config.crawlers.browser_tokens;
    for (i, token) in added.iter().enumerate() {
        if let Some(reason) = crawlers::tokens::token_error(token) {
            return Err(ConfigError::new(
                format!("crawlers.browser_tokens[{i}]"),
                reason,
            ));
        }
    }
    if !config.crawlers.builtin && !added.is_empty() {
        return Err(ConfigError::new(
            "crawlers.browser_tokens",
            "extends the built-in browser tokens, so it needs `crawlers.builtin: true`",
        ));
    }
    let extra = &config.crawlers.extra;
    let pattern_error = |i: usize, e: String| match extra.get(i) {
        Some(entry) => ConfigError::new(
            format!("crawlers.extra[{i}].pattern"),
            syntax_reason(&entry.pattern, &e),
        ),
        None => ConfigError::new("crawlers.extra", e),
    };
    if !config.crawlers.builtin {
        return Crawlers::compile(named)
            .map(Arc::new)
            .map_err(|(i, e)| pattern_error(i, e));
    }
    Crawlers::with_builtins(named, added).map_err(|e| match e {
        crawlers::BuiltinsError::Extra { index, reason } => pattern_error(index, reason),
        crawlers::BuiltinsError::Dataset(e) => {
            ConfigError::new("crawlers.builtin", format!("built-in dataset: {e}"))
        }
    })
}

/// The index of the list called `name`, or an error listing the known ones.
fn find_list(lists: &[NamedList], name: &str, at: &str) -> Result<usize, ConfigError> {
    lists.iter().position(|l| l.name == name).ok_or_else(|| {
        let known: Vec<&str> = lists.iter().map(|l| l.name.as_str()).collect();
        ConfigError::new(
            at,
            if known.is_empty() {
                format!("no list named `{name}` (no `lists` are defined)")
            } else {
                format!("no list named `{name}` (lists: {})", known.join(", "))
            },
        )
    })
}

struct CondCtx<'a, 'c> {
    lists: &'a [NamedList],
    ua: &'a mut SetBuilder,
    paths: &'a mut SetBuilder,
    /// The geo tests' sets.
    resolver: &'a mut Resolver<'c>,
}

fn compile_condition(c: &Condition, at: &str, ctx: &mut CondCtx) -> Result<Cond, ConfigError> {
    let mut all = Vec::new();
    if !c.ip_in.0.is_empty() {
        let lists = c
            .ip_in
            .0
            .iter()
            .map(|name| find_list(ctx.lists, name, &format!("{at}.ip_in")))
            .collect::<Result<_, _>>()?;
        all.push(Cond::IpIn(lists));
    }
    if let Some(ua) = &c.user_agent {
        let here = format!("{at}.user_agent");
        check_regex(ua).map_err(|e| ConfigError::new(&here, e))?;
        user_agent_regex(std::slice::from_ref(ua)).map_err(|e| {
            ConfigError::new(
                &here,
                format!(
                    "user-agent patterns are ASCII-only (as user agents are): {}",
                    regex_reason(ua, &e)
                ),
            )
        })?;
        all.push(Cond::UserAgent(ctx.ua.push(ua.clone())));
    }
    if !c.client_class.is_empty() {
        all.push(Cond::Class(c.client_class.clone()));
    }
    if !c.crawler.is_empty() {
        all.push(Cond::Crawler(c.crawler.clone()));
    }
    if !c.header_anomalies.is_empty() {
        all.push(Cond::Anomalies(Anomalies::of(&c.header_anomalies)));
    }
    for (i, f) in c.headers.iter().enumerate() {
        all.push(Cond::Header(compile_field(
            f,
            &format!("{at}.headers[{i}]"),
            true,
        )?));
    }
    for (i, f) in c.query.iter().enumerate() {
        all.push(Cond::Query(compile_field(
            f,
            &format!("{at}.query[{i}]"),
            false,
        )?));
    }
    if !c.methods.is_empty() {
        all.push(Cond::Methods(compile_methods(
            &c.methods,
            &format!("{at}.methods"),
        )?));
    }
    if !c.path.0.is_empty() || !c.path_regex.0.is_empty() {
        let patterns = ctx.paths.add(
            &c.path,
            &c.path_regex,
            &format!("{at}.path"),
            &format!("{at}.path_regex"),
        )?;
        all.push(Cond::Path(patterns));
    }
    compile_geo_conditions(c, at, ctx, &mut all)?;
    if !c.all.is_empty() {
        let conds = c
            .all
            .iter()
            .enumerate()
            .map(|(i, sub)| compile_condition(sub, &format!("{at}.all[{i}]"), ctx))
            .collect::<Result<_, _>>()?;
        all.push(Cond::All(conds));
    }
    if !c.any.is_empty() {
        let conds = c
            .any
            .iter()
            .enumerate()
            .map(|(i, sub)| compile_condition(sub, &format!("{at}.any[{i}]"), ctx))
            .collect::<Result<_, _>>()?;
        all.push(Cond::Any(conds));
    }
    if let Some(sub) = &c.not {
        all.push(Cond::Not(Box::new(compile_condition(
            sub,
            &format!("{at}.not"),
            ctx,
        )?)));
    }
    match all.len() {
        0 => Err(ConfigError::new(
            at,
            "empty condition: give at least one test",
        )),
        1 => Ok(all.remove(0)),
        _ => Ok(Cond::All(all)),
    }
}

/// The conditions on where the address is, each a test of the client's
/// address against its set (see [`super::origin`]). Codes and numbers are
/// checked here, so a typo is an error on any host.
fn compile_geo_conditions(
    c: &Condition,
    at: &str,
    ctx: &mut CondCtx,
    all: &mut Vec<Cond>,
) -> Result<(), ConfigError> {
    let mut tests = Vec::new();
    if !c.country.0.is_empty() {
        let codes = region_codes(&c.country, &format!("{at}.country"), |code| {
            geo::is_country(code).then_some(()).ok_or_else(|| {
                format!("`{code}` is not a country code (ISO 3166-1 alpha-2, e.g. `US`, `DE`)")
            })
        })?;
        tests.push(("country", GeoTest::Country(codes), true));
    }
    if !c.continent.0.is_empty() {
        let codes = region_codes(&c.continent, &format!("{at}.continent"), |code| {
            geo::is_continent(code).then_some(()).ok_or_else(|| {
                format!(
                    "`{code}` is not a continent code (one of {})",
                    geo::CONTINENTS.join(", ")
                )
            })
        })?;
        tests.push(("continent", GeoTest::Continent(codes), true));
    }
    if !c.asn.is_empty() {
        let mut asns = c
            .asn
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let here = indexed(&format!("{at}.asn"), i, c.asn.len());
                match value {
                    AsnValue::Number(n) => u32::try_from(*n)
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("`{n}` is not an AS number (1 to 4294967295)")),
                    AsnValue::Text(text) => geo::parse_asn(text.trim()),
                }
                .map_err(|e| ConfigError::new(here, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        asns.sort_unstable();
        asns.dedup();
        tests.push(("asn", GeoTest::Asn(asns), true));
    }
    if !c.as_org.0.is_empty() {
        let here = format!("{at}.as_org");
        check_patterns(&c.as_org, &Patterns::default(), &here, "")?;
        tests.push(("as_org", GeoTest::AsOrg(c.as_org.0.clone()), true));
    }
    if let Some(wanted) = c.hosting {
        tests.push(("hosting", GeoTest::Hosting, wanted));
    }
    for (field, test, wanted) in tests {
        let at = format!("{at}.{field}");
        let held = Cond::InResolved(ctx.resolver.position(test.key(), &at, || test.resolve())?);
        all.push(if wanted {
            held
        } else {
            Cond::Not(Box::new(held))
        });
    }
    Ok(())
}

/// Two-letter codes, upper-cased, each checked by `known`.
fn region_codes(
    codes: &Patterns,
    at: &str,
    known: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<[u8; 2]>, ConfigError> {
    codes
        .0
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let upper = code.trim().to_ascii_uppercase();
            known(&upper)
                .and_then(|()| {
                    <[u8; 2]>::try_from(upper.as_bytes())
                        .map_err(|_| format!("`{code}`: not two letters"))
                })
                .map_err(|e| ConfigError::new(indexed(at, i, codes.0.len()), e))
        })
        .collect()
}

/// Named lists a rule uses (`ip_in: [tor]`) that the policy does not
/// define but that are built in: defined implicitly, as
/// `lists: {tor: {builtin: [tor]}}` would.
fn implicit_lists(config: &Config) -> Vec<String> {
    fn walk(c: &Condition, out: &mut Vec<String>) {
        out.extend(c.ip_in.0.iter().cloned());
        for sub in c.all.iter().chain(&c.any).chain(c.not.as_deref()) {
            walk(sub, out);
        }
    }
    let mut used = Vec::new();
    for rule in &config.rules {
        walk(&rule.when, &mut used);
    }
    let mut out: Vec<String> = Vec::new();
    for name in used {
        if !config.lists.contains_key(&name)
            && (crawlers::builtin_network_names().contains(&name.as_str())
                || reputation::source(&name).is_some())
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}
