//! The simulated site: its pages, the assets each page pulls in, and
//! what the origin answers (including its own rate limits, which give
//! API clients beyond their limits their 429s).

use super::rng::Rng;

/// The site's origin, for referrers.
pub const ORIGIN: &str = "https://www.example.com";

/// How many products (and so product pages) exist; ids above are 404s.
pub const PRODUCTS: u64 = 4000;

const CATEGORIES: &[&str] = &[
    "shoes", "jackets", "bags", "kitchen", "garden", "toys", "books", "lamps", "sale", "new",
];
const TOPICS: &[&str] = &[
    "shipping", "returns", "payment", "sizes", "contact", "privacy",
];
const WORDS: &[&str] = &[
    "red+shoes",
    "winter",
    "lamp",
    "gift",
    "oak+table",
    "sale",
    "rain+jacket",
    "mug",
    "kids",
    "tent",
];

/// Stylesheets, scripts, fonts and icons every page links.
pub const BASE_ASSETS: &[&str] = &[
    "/static/css/main.3f9a1c.css",
    "/static/js/vendor.5d0e77.js",
    "/static/js/app.81c2b4.js",
    "/static/fonts/inter-var.woff2",
    "/favicon.ico",
];

/// A page a visitor (or a crawler) might ask for.
pub fn page(rng: &mut Rng) -> String {
    let roll = rng.unit();
    if roll < 0.45 {
        format!("/products/{}", rng.int(1, PRODUCTS))
    } else if roll < 0.6 {
        format!("/category/{}", rng.pick(CATEGORIES))
    } else if roll < 0.75 {
        format!(
            "/blog/{}-{}",
            rng.pick(WORDS).replace('+', "-"),
            rng.int(1, 300)
        )
    } else if roll < 0.85 {
        format!("/search?q={}", rng.pick(WORDS))
    } else if roll < 0.95 {
        format!("/help/{}", rng.pick(TOPICS))
    } else {
        rng.pick(&["/", "/about", "/cart", "/account"]).to_string()
    }
}

/// A page a scraper walks to: products by id (sometimes past the last
/// one), and category listings by page number.
pub fn scraped_page(rng: &mut Rng, sequential: &mut u64, max_id: u64) -> String {
    if rng.chance(0.15) {
        return format!("/category/{}?page={}", rng.pick(CATEGORIES), rng.int(1, 60));
    }
    *sequential += 1;
    if *sequential > max_id {
        *sequential = 1;
    }
    format!("/products/{}", *sequential)
}

/// The images a page shows (in addition to [`BASE_ASSETS`]).
pub fn images(path: &str, n: u64) -> Vec<String> {
    let stem = path
        .split('?')
        .next()
        .unwrap_or(path)
        .trim_matches('/')
        .replace('/', "-");
    let stem = if stem.is_empty() {
        "home".to_string()
    } else {
        stem
    };
    (0..n).map(|i| format!("/img/{stem}-{i}.webp")).collect()
}

/// The status of a GET for `path`: 404 for products past the last id,
/// else 200 (other 404s are drawn by the actors: stale links, probes).
pub fn status(path: &str) -> u16 {
    let id = path
        .strip_prefix("/products/")
        .and_then(|id| id.parse::<u64>().ok());
    match id {
        Some(id) if id > PRODUCTS || id == 0 => 404,
        _ => 200,
    }
}

/// The origin's own rate limit, a token bucket per client and route kind:
/// `/api/` at 10 a minute with a burst of 10 (as in the demo policy), the
/// rest at 10 a second with a burst of 100.
#[derive(Debug, Clone)]
pub struct OriginLimits {
    api: Bucket,
    pages: Bucket,
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: f64,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            last: 0.0,
            rate,
            burst,
        }
    }

    fn take(&mut self, t: f64) -> bool {
        self.tokens = (self.tokens + (t - self.last).max(0.0) * self.rate).min(self.burst);
        self.last = t;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for OriginLimits {
    fn default() -> OriginLimits {
        OriginLimits {
            api: Bucket::new(10.0 / 60.0, 10.0),
            pages: Bucket::new(10.0, 100.0),
        }
    }
}

impl OriginLimits {
    /// Whether a request for `path` at `t` seconds is within the limits.
    pub fn allows(&mut self, path: &str, t: f64) -> bool {
        if path.starts_with("/api/") {
            self.api.take(t)
        } else {
            self.pages.take(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_limit_answers_429_past_its_burst_and_refills() {
        let mut limits = OriginLimits::default();
        let allowed = (0..20)
            .filter(|i| limits.allows("/api/v1/items", f64::from(*i) * 0.1))
            .count();
        assert_eq!(allowed, 10);
        assert!(limits.allows("/api/v1/items", 60.0));
        assert_eq!(status("/products/99999"), 404);
        assert_eq!(status("/products/12"), 200);
        assert_eq!(
            images("/products/12", 2),
            ["/img/products-12-0.webp", "/img/products-12-1.webp"]
        );
    }
}
