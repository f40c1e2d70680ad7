//! The companion's half of crawler hints: fetching the head of the page a
//! challenge stands in for from `crawlers.hints.upstream`, with a size cap
//! and a timeout, and keeping it in a bounded cache. Who gets hints is the
//! policy's call ([`Policy::gets_crawler_hints`](crate::policy::Policy::gets_crawler_hints));
//! what is kept of a head, and how it is written, is
//! [`crate::challenge::hints`].
//!
//! The fetch reads the page only until its head ends (or `max_bytes`),
//! and a failed fetch is cached like a good one, so that a crawler burst
//! on a slow or broken page costs the upstream one request per TTL.

use super::metrics::Metrics;
use crate::challenge::hints::PageHead;
use crate::policy::HintSettings;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fetches and caches page heads; one per companion, across reloads.
pub struct HeadFetcher {
    client: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// By host and path; `None` when the page gave no hints.
    heads: HashMap<String, (Instant, Option<Arc<PageHead>>)>,
    /// Keys, oldest first, for eviction.
    order: VecDeque<String>,
}

impl Default for HeadFetcher {
    fn default() -> Self {
        HeadFetcher::new()
    }
}

impl HeadFetcher {
    pub fn new() -> HeadFetcher {
        let client = reqwest::Client::builder()
            // A redirect would lead the fetch off the upstream.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        HeadFetcher {
            client,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The hints for `path` (path and query) on `host`: cached, or
    /// fetched now.
    pub async fn head(
        &self,
        settings: &HintSettings,
        host: &str,
        path: &str,
        metrics: &Metrics,
    ) -> Option<Arc<PageHead>> {
        let key = format!("{host}{path}");
        let ttl = Duration::from_secs(settings.cache_ttl_s);
        if let Some(cached) = self.cached(&key, ttl) {
            metrics.crawler_hints(if cached.is_some() { "cached" } else { "none" });
            return cached;
        }
        let head = match self.fetch(settings, host, path).await {
            Ok(head) => Some(head).filter(|h| !h.is_empty()).map(Arc::new),
            Err(reason) => {
                tracing::warn!(
                    event = "crawler_hints_failed",
                    path = crate::policy::logged_path(path),
                    reason,
                    "no crawler hints"
                );
                None
            }
        };
        metrics.crawler_hints(if head.is_some() { "fetched" } else { "none" });
        self.store(key, head.clone(), settings.cache_entries as usize);
        head
    }

    fn cached(&self, key: &str, ttl: Duration) -> Option<Option<Arc<PageHead>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, head) = cache.heads.get(key)?;
        (at.elapsed() < ttl).then(|| head.clone())
    }

    fn store(&self, key: String, head: Option<Arc<PageHead>>, entries: usize) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache
            .heads
            .insert(key.clone(), (Instant::now(), head))
            .is_none()
        {
            cache.order.push_back(key);
        }
        while cache.heads.len() > entries.max(1) {
            let Some(oldest) = cache.order.pop_front() else {
                break;
            };
            cache.heads.remove(&oldest);
        }
    }

    async fn fetch(
        &self,
        settings: &HintSettings,
        host: &str,
        path: &str,
    ) -> Result<PageHead, String> {
        let url = format!("{}{path}", settings.upstream);
        let mut response = self
            .client
            .get(&url)
            .header(reqwest::header::HOST, host)
            .header(reqwest::header::ACCEPT, "text/html")
            .header(reqwest::header::USER_AGENT, "Palisade-crawler-hints")
            .timeout(Duration::from_millis(settings.timeout_ms))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}"));
        }
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.to_ascii_lowercase().starts_with("text/html"));
        if !html {
            return Err(format!("GET {url}: not text/html"));
        }
        let max = usize::try_from(settings.max_bytes).unwrap_or(usize::MAX);
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            // Look for the end of the head where it may straddle chunks.
            let from = bytes.len().saturating_sub(6);
            bytes.extend_from_slice(&chunk);
            let ended = bytes
                .get(from..)
                .is_some_and(|tail| contains_ignore_case(tail, b"</head"));
            if ended || bytes.len() >= max {
                break;
            }
        }
        bytes.truncate(max);
        Ok(PageHead::extract(&bytes))
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
