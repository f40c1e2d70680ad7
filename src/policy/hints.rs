//! Which challenged clients get crawler hints (`crawlers.hints`): the
//! challenge page that stands in for a page carries that page's title,
//! description and preview tags (`src/challenge/hints.rs`), so search
//! snippets and link previews stay right while the content stays behind
//! the challenge.
//!
//! Hints go to crawlers whose address is inside their operator's published
//! ranges, and to the link-preview fetchers named in `previews` (they
//! publish no ranges, and a preview shows only what the page itself
//! publishes for previews). Never to a client whose user agent claims a
//! crawler its address does not belong to. The companion serves every page
//! that carries hints: the filter's own proof-of-work page never does,
//! so a crawler that is to get them is sent to the companion even for
//! `pow` while it is up.

use super::{Policy, Request};
use crate::config::{ConfigError, CrawlerHintsConfig};
use crate::crawlers::{Crawlers, Verification};
use std::net::IpAddr;

/// `crawlers.hints`, checked; only when enabled with an `upstream`.
#[derive(Debug, Clone)]
pub struct HintSettings {
    /// `scheme://host[:port]`, without a trailing slash.
    pub upstream: String,
    previews: Vec<String>,
    pub timeout_ms: u64,
    pub max_bytes: u64,
    pub cache_ttl_s: u64,
    pub cache_entries: u64,
}

impl Policy {
    /// The crawler-hint settings, when hints are on.
    pub fn crawler_hints(&self) -> Option<&HintSettings> {
        self.hints.as_ref()
    }

    /// Whether a challenge page for `request`, from `ip`, carries hints
    /// (see the module doc).
    pub fn gets_crawler_hints(&self, request: &Request, ip: Option<IpAddr>) -> bool {
        let Some(hints) = &self.hints else {
            return false;
        };
        let found = self.crawlers.classify(request.user_agent(), ip);
        match found.verification {
            Some(Verification::Verified) => true,
            Some(Verification::Spoofed) => false,
            _ => found
                .name
                .is_some_and(|name| hints.previews.iter().any(|p| p == name)),
        }
    }
}

const AT: &str = "crawlers.hints";

/// Checks `crawlers.hints` against the compiled crawler patterns.
pub(super) fn compile_hints(
    config: &CrawlerHintsConfig,
    crawlers: &Crawlers,
) -> Result<Option<HintSettings>, ConfigError> {
    let in_range = |field: &str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                format!("{AT}.{field}"),
                format!("must be from {min} to {max}, not {value}"),
            ))
        }
    };
    in_range("timeout_ms", config.timeout_ms, 1, 10_000)?;
    in_range("max_bytes", config.max_bytes, 1024, 1024 * 1024)?;
    in_range("cache_entries", config.cache_entries, 1, 100_000)?;
    in_range("cache_ttl", config.cache_ttl.0, 1, 86_400)?;
    let upstream = match &config.upstream {
        Some(url) => Some(origin(url).map_err(|e| ConfigError::new(format!("{AT}.upstream"), e))?),
        None => None,
    };
    let Some(upstream) = upstream.filter(|_| config.enabled) else {
        return Ok(None);
    };
    // Checked only with hints on: the default names are built-in crawlers,
    // which a policy with `crawlers.builtin: false` does not have.
    for (i, name) in config.previews.iter().enumerate() {
        if !crawlers.specs().iter().any(|s| &s.name == name) {
            return Err(ConfigError::new(
                format!("{AT}.previews[{i}]"),
                format!(
                    "no crawler is named `{name}` (see datasets/crawlers/ and `crawlers.extra`)"
                ),
            ));
        }
    }
    Ok(Some(HintSettings {
        upstream,
        previews: config.previews.clone(),
        timeout_ms: config.timeout_ms,
        max_bytes: config.max_bytes,
        cache_ttl_s: config.cache_ttl.0,
        cache_entries: config.cache_entries,
    }))
}

/// `url` as an origin, `http(s)://host[:port]`: the path comes from the
/// challenged request.
fn origin(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{url}` must be an origin, scheme://host[:port], with no path, query or credentials"
        ));
    }
    Ok(url.strip_suffix('/').unwrap_or(url).to_string())
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn the_upstream_is_an_origin() {
        assert_eq!(
            origin("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            origin("https://app.internal").unwrap(),
            "https://app.internal"
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:8080",
            "http://",
            "http://h/path",
            "http://u:p@h",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
