//! Who is asking: user-agent classes and verified-crawler checks.
//!
//! The patterns and published IP ranges ship as data in `datasets/` and are
//! built into the library with `include_str!` (see [`builtin_datasets`]);
//! configs may add more.
//!
//! # Model
//!
//! A [`CrawlerSpec`] names one crawler or client family, its [`ClientClass`],
//! a case-insensitive user-agent regex and, optionally, the networks its
//! operator publishes. [`Crawlers::compile_tiers`] puts each tier's patterns
//! into one case-insensitive `RegexSet` (byte-oriented, ASCII semantics), so
//! a tier costs one pass over the user agent whatever the number of specs;
//! the lowest-index matching spec of the first tier that matches wins.
//!
//! The built-ins come in two tiers: the named patterns (search_engine,
//! ai_crawler, ai_assistant, seo, monitoring, automation, tool), then the
//! generic bot rules, browsers and apps. Crawlers that embed browser tokens
//! (Googlebot's smartphone agent carries `Chrome/... Mobile Safari/...`) are
//! found before the browsers. Around the patterns sit the rules written in
//! code: [`malformed`] user agents first, the canonical-browser fast path
//! ([`canonical`]), unexpected product tokens on desktop browsers
//! ([`tokens`]) and the last resort. [`consistency`] checks the other
//! headers of a browser request against its user agent.
//!
//! # Verification
//!
//! Only crawler classes ([`ClientClass::is_crawler`]) are verified. A spec
//! with networks is [`Verification::Verified`] when the client address is in
//! them and [`Verification::Spoofed`] when it is not; a spec without
//! networks, or a request without an address, is
//! [`Verification::Unverifiable`]. Browsers, tools and automation get no
//! verification at all (`None`): their user agents are claims nobody
//! publishes ranges for.
//!
//! Nothing here panics on any user agent or address: this runs inside Envoy.

pub mod canonical;
pub mod consistency;
mod dataset;
pub mod malformed;
pub mod tokens;

pub use consistency::{Anomalies, HeaderAnomaly};
pub use dataset::{
    builtin_browser_tokens, builtin_datasets, builtin_network, builtin_network_names,
    builtin_network_set, builtin_spec_tiers, builtin_specs, parse_specs, BUILTIN_CRAWLER_FILES,
    CLOUD_LISTS,
};
pub use tokens::BrowserTokens;

use crate::net::IpSet;
use regex::bytes::{RegexSet, RegexSetBuilder};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// The class of client a user agent belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientClass {
    Browser,
    SearchEngine,
    AiCrawler,
    AiAssistant,
    Seo,
    Monitoring,
    Tool,
    Automation,
    /// A self-declared or obviously non-browser client whose operator is
    /// unknown: the generic rules in `datasets/crawlers/bot.txt`, the ones
    /// written in code (malformed user agents, unexpected product tokens,
    /// the last resort), see `datasets/README.md`.
    Bot,
    /// A native app with its own HTTP stack (Dalvik, CFNetwork, media
    /// players): not a browser, not a bot either.
    App,
    Unknown,
}

impl ClientClass {
    /// Every class, in declaration order.
    pub const ALL: [ClientClass; 11] = [
        ClientClass::Browser,
        ClientClass::SearchEngine,
        ClientClass::AiCrawler,
        ClientClass::AiAssistant,
        ClientClass::Seo,
        ClientClass::Monitoring,
        ClientClass::Tool,
        ClientClass::Automation,
        ClientClass::Bot,
        ClientClass::App,
        ClientClass::Unknown,
    ];

    /// The snake_case name used in configs and output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientClass::Browser => "browser",
            ClientClass::SearchEngine => "search_engine",
            ClientClass::AiCrawler => "ai_crawler",
            ClientClass::AiAssistant => "ai_assistant",
            ClientClass::Seo => "seo",
            ClientClass::Monitoring => "monitoring",
            ClientClass::Tool => "tool",
            ClientClass::Automation => "automation",
            ClientClass::Bot => "bot",
            ClientClass::App => "app",
            ClientClass::Unknown => "unknown",
        }
    }

    /// Whether the class is a crawler class, the only ones verified against
    /// published networks: search_engine, ai_crawler, ai_assistant, seo and
    /// monitoring.
    pub fn is_crawler(&self) -> bool {
        matches!(
            self,
            ClientClass::SearchEngine
                | ClientClass::AiCrawler
                | ClientClass::AiAssistant
                | ClientClass::Seo
                | ClientClass::Monitoring
        )
    }
}

impl std::fmt::Display for ClientClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class name that is not one of [`ClientClass::ALL`]; the message lists
/// the valid names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown client class `{name}` (expected one of: browser, search_engine, ai_crawler, ai_assistant, seo, monitoring, tool, automation, bot, app, unknown)")]
pub struct ParseClientClassError {
    /// The rejected input (shortened if very long).
    pub name: String,
}

impl FromStr for ClientClass {
    type Err = ParseClientClassError;

    /// Parses the snake_case name produced by [`ClientClass::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ParseClientClassError {
                name: s.chars().take(64).collect(),
            })
    }
}

/// Whether a crawler's address is in the ranges its operator publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// The address is inside the operator's published ranges.
    Verified,
    /// The user agent claims the crawler but the address is outside its ranges.
    Spoofed,
    /// The operator publishes no ranges (or the address is unknown).
    Unverifiable,
}

/// One crawler or client family: a name, its class, a user-agent regex
/// (case-insensitive), and the operator's published networks if any.
#[derive(Debug, Clone)]
pub struct CrawlerSpec {
    pub name: String,
    pub class: ClientClass,
    pub pattern: String,
    pub networks: Option<IpSet>,
}

/// The result of classifying one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'a> {
    pub class: ClientClass,
    /// The matched crawler or family name (`googlebot`, `curl`, `chrome`).
    pub name: Option<&'a str>,
    pub pattern: Option<&'a str>,
    /// `Some` only for a matched crawler spec.
    pub verification: Option<Verification>,
}

impl Classification<'_> {
    /// Nothing matched (or the user agent was empty).
    pub const UNKNOWN: Classification<'static> = Classification {
        class: ClientClass::Unknown,
        name: None,
        pattern: None,
        verification: None,
    };
}

/// A malformed dataset line: which file and line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct DatasetError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Why [`Crawlers::with_builtins`] failed: an extra entry's pattern (its
/// index and the regex error), or a built-in dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinsError {
    #[error("extra entry {index}: {reason}")]
    Extra { index: usize, reason: String },
    #[error("built-in dataset: {0}")]
    Dataset(#[from] DatasetError),
}

/// Compiled classifier: the malformed-user-agent checks, then the specs'
/// patterns tier by tier (each tier one case-insensitive `RegexSet`); the
/// first spec (in order) whose pattern matches wins. With the built-in
/// datasets, the generic rules written in code follow (see
/// [`Crawlers::with_generic_rules`]).
#[derive(Debug, Clone)]
pub struct Crawlers {
    tiers: Vec<Tier>,
    specs: Vec<CrawlerSpec>,
    /// The `unexpected-product-token` rule and the last-resort rules.
    generic: Option<BrowserTokens>,
    /// The canonical-browser fast path (see [`canonical`]): each browser
    /// spec name it can return, with that spec's index.
    canonical: Option<Vec<(&'static str, usize)>>,
}

/// One tier: its set and the index of its first spec in `Crawlers::specs`.
#[derive(Debug, Clone)]
struct Tier {
    set: RegexSet,
    offset: usize,
}

impl Tier {
    fn first_match(&self, user_agent: &str) -> Option<usize> {
        // Most user agents match nothing in the first tier, and a plain
        // `is_match` search is cheaper than collecting every matching pattern.
        if !self.set.is_match(user_agent.as_bytes()) {
            return None;
        }
        // SetMatches iterates in ascending index order: the first wins.
        let index = self.set.matches(user_agent.as_bytes()).iter().next()?;
        Some(self.offset + index)
    }
}

/// Size limit for each tier's pattern set. The built-ins compile to well
/// under a megabyte; the headroom is for configs that add many patterns.
const SET_SIZE_LIMIT: usize = 64 << 20;

/// The lazy DFA's cache limit for each tier, grown on demand. The regex
/// crate's default (2 MiB) is too small for either built-in tier on varied
/// traffic: the cache fills, is cleared again and again, and matching
/// falls back to an engine 30-50 times slower (measured over the corpora in
/// `tests/data/`). This much keeps both on the fast path; it is memory
/// every Envoy worker VM may come to hold.
const DFA_CACHE_LIMIT: usize = 6 << 20;

/// What the last-resort rules report: a user agent no pattern matched.
pub const NO_BROWSER_ENGINE: &str = "no-browser-engine";
pub const NOT_A_BROWSER: &str = "not-a-browser";

impl Crawlers {
    /// Compiles specs as one tier; on a bad pattern returns the spec's
    /// index and the regex error text.
    ///
    /// Patterns are compiled as byte regexes with Unicode mode off: `\b`,
    /// `\w`, `\d`, `\s` and case folding are ASCII-only, which user agents
    /// are in practice. With Unicode on, a single non-ASCII byte in a user
    /// agent makes the lazy DFA give up on Unicode word boundaries and fall
    /// back to a much slower engine, which a client could use to slow every
    /// request down. Non-ASCII literals in a pattern still match their UTF-8
    /// bytes; Unicode classes such as `\p{L}` are rejected.
    ///
    /// An empty pattern is rejected (it would match every user agent). If
    /// every pattern is valid on its own but together they exceed the size
    /// limit, the index returned is `specs.len()`.
    pub fn compile(specs: Vec<CrawlerSpec>) -> Result<Crawlers, (usize, String)> {
        Crawlers::compile_tiers(vec![specs])
    }

    /// Compiles specs in tiers: all of a tier's patterns go into one set,
    /// and a later tier is only searched when no earlier one matched.
    ///
    /// Why tiers: a lazy DFA runs every pattern of a set at once, and the
    /// states of product-token patterns (mostly literals) multiplied by
    /// those of the generic rules' anchored, structural patterns overflow
    /// its cache, at which point matching falls back to an engine a
    /// hundred times slower. Two sets of moderate size each stay on the
    /// fast path. Errors index the specs as if the tiers were concatenated.
    pub fn compile_tiers(tiers: Vec<Vec<CrawlerSpec>>) -> Result<Crawlers, (usize, String)> {
        let mut sets = Vec::with_capacity(tiers.len());
        let mut specs = Vec::new();
        for tier in tiers {
            let offset = specs.len();
            let set = compile_set(&tier).map_err(|(i, e)| (offset + i, e))?;
            sets.push(Tier { set, offset });
            specs.extend(tier);
        }
        Ok(Crawlers {
            tiers: sets,
            specs,
            generic: None,
            canonical: None,
        })
    }

    /// Adds the generic rules written in code, which belong with the
    /// built-in datasets: `unexpected-product-token` for user agents a
    /// browser spec matched (see [`tokens`]), and for user agents no spec
    /// matched, `no-browser-engine` (it starts with `Mozilla/`) or
    /// `not-a-browser` (anything else), both [`ClientClass::Bot`].
    pub fn with_generic_rules(mut self, browser_tokens: BrowserTokens) -> Crawlers {
        self.generic = Some(browser_tokens);
        self
    }

    /// Turns on the fast path for canonical browser user agents (see
    /// [`canonical`]), which answers what the built-in specs would. Without
    /// a browser spec of each name it returns, it stays off.
    fn with_canonical_browsers(mut self) -> Crawlers {
        let mut names: Vec<&'static str> = canonical::shapes().map(|(_, n)| n).collect();
        names.sort_unstable();
        names.dedup();
        let found: Option<Vec<(&'static str, usize)>> = names
            .into_iter()
            .map(|name| {
                let index = self
                    .specs
                    .iter()
                    .position(|s| s.class == ClientClass::Browser && s.name == name)?;
                Some((name, index))
            })
            .collect();
        self.canonical = found;
        self
    }

    /// The built-in specs ([`builtin_specs`]) compiled in their two tiers,
    /// with the generic rules and the canonical-browser fast path. A bad
    /// built-in pattern is reported with its dataset file and line.
    ///
    /// Compiled once per process (per VM in the filter) and shared by every
    /// policy: the sets' literal prefilters take most of a policy's compile
    /// time, and a reload, or a policy with entries of its own
    /// ([`Crawlers::with_builtins`]), need not pay it again.
    pub fn builtin() -> Result<Arc<Crawlers>, DatasetError> {
        static BUILTIN: OnceLock<Result<Arc<Crawlers>, DatasetError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Crawlers::compile_builtins().map(Arc::new))
            .clone()
    }

    fn compile_builtins() -> Result<Crawlers, DatasetError> {
        let (located, named) = dataset::builtin_specs_located()?;
        let (mut builtin, origins): (Vec<CrawlerSpec>, Vec<(&'static str, usize)>) =
            located.into_iter().unzip();
        let generic = builtin.split_off(named);
        let crawlers =
            Crawlers::compile_tiers(vec![builtin, generic]).map_err(|(i, reason)| match origins
                .get(i)
            {
                Some(&(file, line)) => DatasetError {
                    file: file.to_string(),
                    line,
                    reason: format!("bad pattern: {reason}"),
                },
                None => DatasetError {
                    file: "datasets/crawlers".to_string(),
                    line: 0,
                    reason,
                },
            })?;
        Ok(crawlers
            .with_generic_rules(dataset::builtin_browser_tokens()?)
            .with_canonical_browsers())
    }

    /// The built-ins with a policy's own entries ahead of them and its own
    /// browser tokens added (validated with [`tokens::token_error`]). The
    /// entries are a tier of their own, searched first: the same first
    /// match as putting them at the head of the named tier, without
    /// compiling the built-in sets again; with neither, the shared
    /// [`Crawlers::builtin`] itself. The canonical-browser fast path is on
    /// only without extra entries: one of them could claim those user
    /// agents.
    pub fn with_builtins(
        extra: Vec<CrawlerSpec>,
        extra_tokens: &[String],
    ) -> Result<Arc<Crawlers>, BuiltinsError> {
        let builtin = Crawlers::builtin()?;
        if extra.is_empty() && extra_tokens.is_empty() {
            return Ok(builtin);
        }
        let mut tiers = Vec::with_capacity(builtin.tiers.len() + 1);
        if !extra.is_empty() {
            let set = compile_set(&extra)
                .map_err(|(index, reason)| BuiltinsError::Extra { index, reason })?;
            tiers.push(Tier { set, offset: 0 });
        }
        let extras = extra.len();
        tiers.extend(builtin.tiers.iter().map(|t| Tier {
            set: t.set.clone(),
            offset: t.offset + extras,
        }));
        let mut specs = extra;
        specs.extend(builtin.specs.iter().cloned());
        let mut generic = builtin.generic.clone();
        if let Some(tokens) = &mut generic {
            tokens.extend(extra_tokens.iter().map(String::as_str));
        }
        Ok(Arc::new(Crawlers {
            tiers,
            specs,
            generic,
            canonical: if extras == 0 {
                builtin.canonical.clone()
            } else {
                None
            },
        }))
    }

    /// The first spec whose pattern matches, tier by tier.
    fn first_match(&self, user_agent: &str) -> Option<&CrawlerSpec> {
        if let Some(fast) = &self.canonical {
            if let Some(name) = canonical::browser(user_agent) {
                let index = fast.iter().find(|(n, _)| *n == name).map(|&(_, i)| i);
                return index.and_then(|i| self.specs.get(i));
            }
        }
        let index = self.tiers.iter().find_map(|t| t.first_match(user_agent))?;
        self.specs.get(index)
    }

    /// Classifies a request by its user agent and, for crawler classes,
    /// verifies the client address against the matched spec's networks.
    ///
    /// A malformed user agent ([`malformed::check`]: empty, oversized,
    /// control characters or invalid bytes, no letters) is
    /// [`ClientClass::Bot`] before any pattern is tried. One that no spec
    /// matches is [`ClientClass::Unknown`] with no name and no verification,
    /// unless the generic rules are on (the built-ins), which make it a bot.
    pub fn classify(&self, user_agent: &str, ip: Option<IpAddr>) -> Classification<'_> {
        let bot = |name, description| Classification {
            class: ClientClass::Bot,
            name: Some(name),
            pattern: Some(description),
            verification: None,
        };
        if let Some(rule) = malformed::check(user_agent) {
            return bot(rule.name, rule.description);
        }
        let Some(spec) = self.first_match(user_agent) else {
            return match &self.generic {
                None => Classification::UNKNOWN,
                Some(_) if user_agent.starts_with("Mozilla/") => bot(
                    NO_BROWSER_ENGINE,
                    "(Mozilla/ with no browser engine or product that browser.txt recognises)",
                ),
                Some(_) => bot(NOT_A_BROWSER, "(matches no browser, app or named client)"),
            };
        };
        if spec.class == ClientClass::Browser {
            let tokens = self.generic.as_ref();
            if tokens.is_some_and(|t| t.unexpected(user_agent).is_some()) {
                return bot(tokens::RULE_NAME, tokens::RULE_DESCRIPTION);
            }
        }
        let verification = if spec.class.is_crawler() {
            Some(match (&spec.networks, ip) {
                (Some(networks), Some(ip)) => {
                    if networks.contains(ip) {
                        Verification::Verified
                    } else {
                        Verification::Spoofed
                    }
                }
                _ => Verification::Unverifiable,
            })
        } else {
            None
        };
        Classification {
            class: spec.class,
            name: Some(spec.name.as_str()),
            pattern: Some(spec.pattern.as_str()),
            verification,
        }
    }

    /// The compiled specs, in precedence order.
    pub fn specs(&self) -> &[CrawlerSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One tier's set; on error, the failing spec's index within the tier.
fn compile_set(specs: &[CrawlerSpec]) -> Result<RegexSet, (usize, String)> {
    if let Some(i) = specs.iter().position(|s| s.pattern.is_empty()) {
        return Err((
            i,
            "empty pattern (it would match every user agent)".to_string(),
        ));
    }
    RegexSetBuilder::new(specs.iter().map(|s| s.pattern.as_str()))
        .case_insensitive(true)
        .unicode(false)
        .size_limit(SET_SIZE_LIMIT)
        .dfa_size_limit(DFA_CACHE_LIMIT)
        .build()
        .map_err(|set_error| {
            // RegexSet errors do not say which pattern failed: find it.
            specs
                .iter()
                .enumerate()
                .find_map(|(i, spec)| {
                    regex::bytes::RegexBuilder::new(&spec.pattern)
                        .case_insensitive(true)
                        .unicode(false)
                        .size_limit(SET_SIZE_LIMIT)
                        .build()
                        .err()
                        .map(|e| (i, e.to_string()))
                })
                .unwrap_or((specs.len(), set_error.to_string()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, class: ClientClass, pattern: &str) -> CrawlerSpec {
        CrawlerSpec {
            name: name.to_string(),
            class,
            pattern: pattern.to_string(),
            networks: None,
        }
    }

    #[test]
    fn class_names_round_trip() {
        for c in ClientClass::ALL {
            assert_eq!(c.as_str().parse::<ClientClass>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        let e = "Bot".parse::<ClientClass>().unwrap_err();
        assert!(e.to_string().contains("`Bot`"), "{e}");
        assert!(e.to_string().contains("search_engine"), "{e}");
    }

    #[test]
    fn first_spec_wins_and_matching_ignores_case() {
        let c = Crawlers::compile(vec![
            spec("a", ClientClass::Tool, "foo"),
            spec("b", ClientClass::Browser, "foo|bar"),
        ])
        .unwrap();
        assert_eq!(c.classify("xFOOx", None).name, Some("a"));
        assert_eq!(c.classify("BAR", None).name, Some("b"));
        assert_eq!(c.classify("baz", None), Classification::UNKNOWN);
        // Malformed user agents are bots whatever the specs say.
        for ua in ["", "   ", "foo\u{1}"] {
            let m = c.classify(ua, None);
            assert_eq!(m.class, ClientClass::Bot, "{ua:?}");
            assert!(m.name.is_some_and(|n| n == "empty" || n == "malformed"));
        }
    }

    #[test]
    fn empty_and_bad_patterns_report_their_index() {
        let e = Crawlers::compile(vec![
            spec("a", ClientClass::Tool, "ok"),
            spec("b", ClientClass::Tool, ""),
        ]);
        assert_eq!(e.unwrap_err().0, 1);
        let e = Crawlers::compile(vec![
            spec("a", ClientClass::Tool, "ok"),
            spec("b", ClientClass::Tool, "fine"),
            spec("c", ClientClass::Tool, "(unclosed"),
        ]);
        assert_eq!(e.unwrap_err().0, 2);
    }

    #[test]
    fn ascii_semantics_and_non_ascii_input() {
        let c = Crawlers::compile(vec![
            spec("word", ClientClass::Tool, r"\bbot\b"),
            spec("accent", ClientClass::Tool, "caf\u{e9}"),
        ])
        .unwrap();
        // ASCII word boundaries: a non-ASCII neighbour is not a word character.
        assert_eq!(c.classify("\u{e9}bot\u{e9}", None).name, Some("word"));
        assert_eq!(c.classify("robot", None).name, None);
        assert_eq!(c.classify("CAF\u{e9}", None).name, Some("accent"));
        let e = Crawlers::compile(vec![spec("u", ClientClass::Tool, r"\p{L}")]).unwrap_err();
        assert_eq!(e.0, 0);
    }

    #[test]
    fn empty_classifier_knows_nothing() {
        let c = Crawlers::compile(Vec::new()).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.classify("curl/8.0", None), Classification::UNKNOWN);
    }
}
