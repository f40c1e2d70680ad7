//! Who is asking: user-agent classes and verified-crawler checks.
//!
//! The patterns and published IP ranges ship as data in `datasets/` and are
//! built into the library with `include_str!`; configs may add more.
//!
//! STUB: interface only; being implemented.

use crate::net::IpSet;
use std::net::IpAddr;

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
    Unknown,
}

impl ClientClass {
    /// The snake_case name used in configs and output.
    pub fn as_str(&self) -> &'static str {
        todo!()
    }
}

/// Whether a crawler's address is in the ranges its operator publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// A malformed dataset line: which file and line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct DatasetError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Names of the built-in network lists (`google-crawlers`, `aws`, ...).
pub fn builtin_network_names() -> Vec<&'static str> {
    todo!()
}

/// The text of a built-in network list, by name.
pub fn builtin_network(_name: &str) -> Option<&'static str> {
    todo!()
}

/// The built-in crawler and client specs, in precedence order.
pub fn builtin_specs() -> Result<Vec<CrawlerSpec>, DatasetError> {
    todo!()
}

/// Compiled classifier: every pattern in one case-insensitive `RegexSet`;
/// the first spec (in order) whose pattern matches wins.
#[derive(Debug, Clone)]
pub struct Crawlers {}

impl Crawlers {
    /// Compiles specs; on a bad pattern returns the spec's index and the regex error text.
    pub fn compile(_specs: Vec<CrawlerSpec>) -> Result<Crawlers, (usize, String)> {
        todo!()
    }

    pub fn classify(&self, _user_agent: &str, _ip: Option<IpAddr>) -> Classification<'_> {
        todo!()
    }

    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
