//! The actor models: how each kind of client behaves, with per-client
//! parameters drawn from wide ranges, and other ranges for the holdout
//! variant (see `docs/scoring.md` for the table). Each generator returns
//! the client's requests in time order, statuses included except the
//! origin's 429s, which [`super::simulate`] applies afterwards.

use super::agents::{self, Browser, Copied, Fetch};
use super::rng::Rng;
use super::site::{self, BASE_ASSETS, ORIGIN, PRODUCTS};
use super::Variant;
use serde::Serialize;

/// The kinds of client the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Person,
    SearchCrawler,
    AggressiveScraper,
    SlowScraper,
    CredentialStuffer,
    HeadlessBrowser,
    ApiClient,
}

impl Actor {
    pub const ALL: [Actor; 7] = [
        Actor::Person,
        Actor::SearchCrawler,
        Actor::AggressiveScraper,
        Actor::SlowScraper,
        Actor::CredentialStuffer,
        Actor::HeadlessBrowser,
        Actor::ApiClient,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Actor::Person => "person",
            Actor::SearchCrawler => "search_crawler",
            Actor::AggressiveScraper => "aggressive_scraper",
            Actor::SlowScraper => "slow_scraper",
            Actor::CredentialStuffer => "credential_stuffer",
            Actor::HeadlessBrowser => "headless_browser",
            Actor::ApiClient => "api_client",
        }
    }

    /// The label: everything but people is a bot, crawlers included.
    pub fn is_bot(&self) -> bool {
        *self != Actor::Person
    }

    /// The actor of the `i`-th client: half people, the rest spread over
    /// the bot kinds.
    pub fn of_client(rng: &mut Rng) -> Actor {
        if rng.chance(0.5) {
            Actor::Person
        } else {
            *rng.pick(&Actor::ALL[1..])
        }
    }
}

/// One request as the client sends it and the origin answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Seconds from the start of the simulation.
    pub t: f64,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub referrer: Option<String>,
    /// The request headers, `user-agent` and `referer` included.
    pub headers: Vec<(String, String)>,
}

/// How a person uses a challenge page (drawn with the browsing, so that
/// mobile users tap and keyboard users type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Mouse,
    Touch,
    Keyboard,
    /// The audio challenge: nothing the page can measure about a pointer.
    Audio,
}

/// What a generator hands back.
#[derive(Debug, Clone)]
pub struct Generated {
    pub hits: Vec<Hit>,
    /// How a person would use a challenge page; `None` for bots.
    pub input: Option<Input>,
}

/// Most requests one client makes: keeps output files and tests small.
const MAX_HITS: usize = 3000;

/// The simulated time span a client acts in.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

/// Collects hits, stopping at the window's end or [`MAX_HITS`].
struct Hits {
    hits: Vec<Hit>,
    end: f64,
}

impl Hits {
    fn new(end: f64) -> Hits {
        Hits {
            hits: Vec::new(),
            end,
        }
    }

    fn full(&self, t: f64) -> bool {
        t >= self.end || self.hits.len() >= MAX_HITS
    }

    fn push(
        &mut self,
        t: f64,
        method: &'static str,
        path: String,
        status: u16,
        referrer: Option<String>,
        headers: Vec<(String, String)>,
    ) {
        if !self.full(t) {
            self.hits.push(Hit {
                t,
                method,
                path,
                status,
                referrer,
                headers,
            });
        }
    }
}

fn url(path: &str) -> String {
    format!("{ORIGIN}{path}")
}

const SEARCH_REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://news.ycombinator.com/",
];

/// Generates one client's traffic.
pub fn generate(actor: Actor, rng: &mut Rng, v: Variant, w: Window) -> Generated {
    let hits = match actor {
        Actor::Person => {
            let (hits, input) = person(rng, v, w);
            return Generated {
                hits,
                input: Some(input),
            };
        }
        Actor::SearchCrawler => search_crawler(rng, v, w),
        Actor::AggressiveScraper => aggressive_scraper(rng, v, w),
        Actor::SlowScraper => slow_scraper(rng, v, w),
        Actor::CredentialStuffer => credential_stuffer(rng, v, w),
        Actor::HeadlessBrowser => headless_browser(rng, v, w),
        Actor::ApiClient => api_client(rng, v, w),
    };
    Generated { hits, input: None }
}

/// A person: visits of a few pages with log-normal think times; after
/// each page the browser fetches its assets (stylesheets and scripts only
/// when not cached yet or revalidated, the page's images always), with
/// the page as referrer. Some log in, some mistype the password first
/// (401, then success), some are on mobile, some strip referrers.
fn person(rng: &mut Rng, v: Variant, w: Window) -> (Vec<Hit>, Input) {
    let mobile = rng.chance(v.pick(0.3, 0.45));
    let browser = Browser::person(rng, if mobile { 1.0 } else { 0.0 });
    let think_median = rng.range(v.pick((2.0, 40.0), (1.5, 90.0)));
    let think_sigma = rng.range(v.pick((0.5, 1.4), (0.4, 1.7)));
    let pages_median = rng.range(v.pick((1.0, 20.0), (1.0, 30.0)));
    let images_mean = rng.range(v.pick((0.5, 18.0), (0.3, 25.0)));
    let revalidate = rng.range(v.pick((0.0, 0.4), (0.0, 0.6)));
    let asset_gap = rng.range(v.pick((0.005, 0.12), (0.003, 0.2)));
    let strips_referrer = rng.chance(v.pick(0.05, 0.15));
    let logs_in = rng.chance(v.pick(0.2, 0.3));
    let typo = rng.range((0.2, 0.5));
    let xhr_mean = rng.range(v.pick((0.0, 1.0), (0.0, 3.0)));
    let sessions = rng.int(1, 3);
    let input = if mobile {
        if rng.chance(0.1) {
            Input::Audio
        } else {
            Input::Touch
        }
    } else {
        let roll = rng.unit();
        if roll < 0.1 {
            Input::Keyboard
        } else if roll < 0.15 {
            Input::Audio
        } else {
            Input::Mouse
        }
    };
    let referrer = |rng: &mut Rng, r: Option<String>| {
        if strips_referrer || rng.chance(0.03) {
            None
        } else {
            r
        }
    };

    let mut out = Hits::new(w.end);
    let mut t = w.start;
    let mut cached = false;
    for _ in 0..sessions {
        let pages = rng.lognormal(pages_median, 0.6).ceil().max(1.0) as u64;
        let mut previous: Option<String> = if rng.chance(0.5) {
            Some(rng.pick(SEARCH_REFERRERS).to_string())
        } else {
            None
        };
        let login_at = if logs_in { rng.int(0, pages) } else { u64::MAX };
        for page_index in 0..pages {
            if out.full(t) {
                break;
            }
            let path = if page_index == 0 && rng.chance(0.3) {
                "/".to_string()
            } else {
                site::page(rng)
            };
            let r = referrer(rng, previous.clone());
            let status = if rng.chance(0.01) {
                404
            } else {
                site::status(&path)
            };
            out.push(
                t,
                "GET",
                path.clone(),
                status,
                r.clone(),
                browser.headers(Fetch::Document, r.as_deref()),
            );
            let page_url = Some(url(&path));
            let mut a = t;
            let mut assets: Vec<(String, u16)> = Vec::new();
            for asset in BASE_ASSETS {
                if !cached {
                    assets.push((asset.to_string(), 200));
                } else if rng.chance(revalidate) {
                    assets.push((asset.to_string(), 304));
                }
            }
            let n_images = rng.exponential(images_mean).round() as u64;
            assets.extend(site::images(&path, n_images).into_iter().map(|p| (p, 200)));
            cached = true;
            for (asset, status) in assets {
                a += rng.exponential(asset_gap);
                let r = referrer(rng, page_url.clone());
                let headers = browser.headers(Fetch::of_asset(&asset), r.as_deref());
                out.push(a, "GET", asset, status, r, headers);
            }
            for _ in 0..rng.exponential(xhr_mean).round() as u64 {
                a += rng.exponential(0.5);
                let path = format!("/api/public/recommendations?item={}", rng.int(1, PRODUCTS));
                let r = referrer(rng, page_url.clone());
                let headers = browser.headers(Fetch::Data, r.as_deref());
                out.push(a, "GET", path, 200, r, headers);
            }
            t = a;
            if page_index == login_at {
                t += rng.lognormal(3.0, 0.5);
                out.push(
                    t,
                    "GET",
                    "/login".into(),
                    200,
                    page_url.clone(),
                    browser.headers(Fetch::Document, page_url.as_deref()),
                );
                let form = Some(url("/login"));
                if rng.chance(typo) {
                    t += rng.lognormal(8.0, 0.5);
                    out.push(
                        t,
                        "POST",
                        "/login".into(),
                        401,
                        form.clone(),
                        browser.headers(Fetch::Document, form.as_deref()),
                    );
                }
                t += rng.lognormal(8.0, 0.5);
                out.push(
                    t,
                    "POST",
                    "/login".into(),
                    302,
                    form.clone(),
                    browser.headers(Fetch::Document, form.as_deref()),
                );
                t += rng.range((0.1, 0.6));
                out.push(
                    t,
                    "GET",
                    "/account".into(),
                    200,
                    form.clone(),
                    browser.headers(Fetch::Document, form.as_deref()),
                );
            }
            previous = page_url;
            t += rng.lognormal(think_median, think_sigma).clamp(0.5, 900.0);
        }
        t += rng.exponential(900.0);
    }
    (out.hits, input)
}

/// A random address outside every published crawler range.
pub fn random_ip(rng: &mut Rng) -> [u8; 4] {
    [
        rng.int(77, 223) as u8,
        rng.int(0, 255) as u8,
        rng.int(0, 255) as u8,
        rng.int(1, 254) as u8,
    ]
}

/// A search crawler: `robots.txt` first and again now and then, a steady
/// pace, many distinct pages, no referrer, rarely assets, a few HEADs.
fn search_crawler(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let crawler = rng.pick(agents::CRAWLERS);
    let gap = rng.range(v.pick((1.0, 10.0), (0.5, 30.0)));
    let cv = rng.range(v.pick((0.05, 0.3), (0.2, 0.8)));
    let heads = rng.range(v.pick((0.0, 0.05), (0.0, 0.15)));
    let assets = rng.range(v.pick((0.0, 0.02), (0.0, 0.15)));
    let robots_every = rng.int(100, 600);
    let headers = agents::crawler(crawler.user_agent);
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    let mut n = 0u64;
    while !out.full(t) {
        let (method, path) = if n.is_multiple_of(robots_every) {
            ("GET", "/robots.txt".to_string())
        } else if n % robots_every == 1 {
            ("GET", "/sitemap.xml".to_string())
        } else if rng.chance(assets) {
            ("GET", rng.pick(BASE_ASSETS).to_string())
        } else {
            (
                if rng.chance(heads) { "HEAD" } else { "GET" },
                site::page(rng),
            )
        };
        let status = if rng.chance(0.03) {
            404
        } else {
            site::status(&path)
        };
        out.push(t, method, path, status, None, headers.clone());
        n += 1;
        t += rng.jittered(gap, cv);
    }
    out.hits
}

/// An aggressive scraper: fast, walks product ids (past the last one,
/// hence 404s), no assets; a tool's user agent or a faked browser's with
/// some of its headers; in the holdout variant, sometimes a fake referrer.
fn aggressive_scraper(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let rate = rng.range(v.pick((1.0, 15.0), (0.3, 40.0)));
    let cv = rng.range(v.pick((0.0, 0.5), (0.0, 1.2)));
    let requests = rng.int(100, 1500) as usize;
    let fakes_referrer = rng.range(v.pick((0.0, 0.0), (0.0, 0.5)));
    let max_id = PRODUCTS + rng.int(0, PRODUCTS / 4);
    let mut sequential = rng.int(0, PRODUCTS / 2);
    let tool = rng.chance(v.pick(0.6, 0.4));
    let browser = Browser::person(rng, 0.1);
    let copied = Copied::draw(rng, v.pick(0.1, 0.3), 0.4);
    let ua = rng.pick(agents::TOOLS).to_string();
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    while !out.full(t) && out.hits.len() < requests {
        let path = site::scraped_page(rng, &mut sequential, max_id);
        let referrer = rng.chance(fakes_referrer).then(|| url("/"));
        let headers = if tool {
            agents::tool(&ua, referrer.as_deref())
        } else {
            agents::faked_browser(&browser, copied, Fetch::Document, referrer.as_deref())
        };
        let status = site::status(&path);
        out.push(t, "GET", path, status, referrer, headers);
        t += rng.jittered(1.0 / rate, cv);
    }
    out.hits
}

/// A low-and-slow scraper: a browser user agent, jittered slow delays,
/// distinct pages, no assets (in the holdout variant, the odd favicon).
fn slow_scraper(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let gap = rng.range(v.pick((5.0, 60.0), (3.0, 150.0)));
    let cv = rng.range(v.pick((0.1, 0.6), (0.3, 1.2)));
    let fakes_referrer = rng.range(v.pick((0.0, 0.2), (0.0, 0.6)));
    let assets = rng.range(v.pick((0.0, 0.0), (0.0, 0.1)));
    let browser = Browser::person(rng, 0.2);
    let copied = Copied::draw(rng, v.pick(0.3, 0.6), v.pick(0.5, 0.3));
    let mut sequential = rng.int(0, PRODUCTS);
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    let mut previous: Option<String> = None;
    while !out.full(t) {
        let path = if rng.chance(assets) {
            "/favicon.ico".to_string()
        } else if rng.chance(0.5) {
            site::scraped_page(rng, &mut sequential, PRODUCTS)
        } else {
            site::page(rng)
        };
        let referrer = if rng.chance(fakes_referrer) {
            previous.clone().or_else(|| Some(url("/")))
        } else {
            None
        };
        let headers = agents::faked_browser(&browser, copied, Fetch::Document, referrer.as_deref());
        let status = site::status(&path);
        previous = Some(url(&path));
        out.push(t, "GET", path, status, referrer, headers);
        t += rng.jittered(gap, cv);
    }
    out.hits
}

const LOGIN_PATHS: &[&str] = &[
    "/login",
    "/account/login",
    "/wp-login.php",
    "/api/v1/auth",
    "/user/signin",
];

/// A credential stuffer: POSTs to a login endpoint, nearly all refused
/// (401, or 403 from some sites), often a new user agent per attempt;
/// from one address with many attempts, or (the low counts) one address
/// of a rotating pool.
fn credential_stuffer(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let attempts = rng.range(v.pick((5.0, 80.0), (2.0, 200.0))) as usize;
    let gap = rng.range(v.pick((0.3, 5.0), (0.1, 20.0)));
    let cv = rng.range(v.pick((0.0, 0.8), (0.0, 1.5)));
    let rotates = rng.chance(v.pick(0.7, 0.5));
    let forbidden = rng.chance(v.pick(0.0, 0.2));
    let fakes_referrer = rng.range(v.pick((0.0, 0.3), (0.0, 0.9)));
    let copied = Copied::draw(rng, v.pick(0.1, 0.3), 0.4);
    let login = rng.pick(LOGIN_PATHS).to_string();
    let mut browser = Browser::person(rng, 0.2);
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    if rng.chance(0.5) {
        out.push(
            t,
            "GET",
            login.clone(),
            200,
            None,
            agents::faked_browser(&browser, copied, Fetch::Document, None),
        );
        t += rng.jittered(gap, cv);
    }
    while !out.full(t) && out.hits.len() < attempts {
        if rotates {
            browser = Browser::person(rng, 0.2);
        }
        let referrer = rng.chance(fakes_referrer).then(|| url(&login));
        let headers = if rotates && rng.chance(0.2) {
            agents::tool(rng.pick::<&str>(agents::TOOLS), referrer.as_deref())
        } else {
            agents::faked_browser(&browser, copied, Fetch::Data, referrer.as_deref())
        };
        let status = if rng.chance(0.01) {
            302
        } else if forbidden {
            403
        } else {
            401
        };
        out.push(t, "POST", login.clone(), status, referrer, headers);
        t += rng.jittered(gap, cv);
    }
    out.hits
}

/// A headless browser (Puppeteer, Playwright): real browser headers
/// (`HeadlessChrome` in them, or patched to hide it), every page's assets,
/// referrers from clicking through, and machine timing: short, regular
/// gaps between pages and near-instant asset fetches.
fn headless_browser(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let stealth = rng.chance(v.pick(0.5, 0.7));
    let browser = Browser::headless(rng, stealth);
    let gap = rng.range(v.pick((0.4, 5.0), (0.3, 8.0)));
    let cv = rng.range(v.pick((0.0, 0.35), (0.05, 0.5)));
    let caches = rng.range(v.pick((0.0, 0.3), (0.0, 0.5)));
    let follows = rng.range(v.pick((0.5, 1.0), (0.3, 1.0)));
    let images = rng.int(1, 8);
    let pages = rng.int(30, 400) as usize;
    let mut sequential = rng.int(0, PRODUCTS);
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    let mut previous: Option<String> = None;
    for n in 0..pages {
        if out.full(t) {
            break;
        }
        let path = site::scraped_page(rng, &mut sequential, PRODUCTS);
        let referrer = previous.clone().filter(|_| rng.chance(follows));
        let status = site::status(&path);
        out.push(
            t,
            "GET",
            path.clone(),
            status,
            referrer.clone(),
            browser.headers(Fetch::Document, referrer.as_deref()),
        );
        let page_url = Some(url(&path));
        let mut a = t;
        let mut assets: Vec<String> = BASE_ASSETS
            .iter()
            .filter(|_| n == 0 || !rng.chance(caches))
            .map(|s| s.to_string())
            .collect();
        assets.extend(site::images(&path, images));
        for asset in assets {
            a += rng.range((0.001, 0.012));
            let headers = browser.headers(Fetch::of_asset(&asset), page_url.as_deref());
            out.push(a, "GET", asset, 200, page_url.clone(), headers);
        }
        previous = page_url;
        t = a + rng.jittered(gap, cv);
    }
    out.hits
}

/// An API client: an SDK or app polling JSON endpoints with a token, now
/// and then refreshing it (a login-like path). Within its limits it polls
/// slower than the origin's 10 a minute; beyond them it sends bursts and
/// collects 429s.
fn api_client(rng: &mut Rng, v: Variant, w: Window) -> Vec<Hit> {
    let ua = rng.pick(agents::API_CLIENTS).to_string();
    let beyond = rng.chance(0.5);
    let poll = rng.range(v.pick((7.0, 60.0), (6.5, 120.0)));
    let cv = rng.range(v.pick((0.0, 0.2), (0.0, 0.5)));
    let burst = rng.int(20, 200);
    let burst_gap = rng.range(v.pick((0.05, 1.0), (0.02, 2.0)));
    let pause = rng.range((30.0, 300.0));
    let mut headers = agents::tool(&ua, None);
    headers[1].1 = "application/json".to_string();
    headers.push((
        "authorization".to_string(),
        "Bearer eyJhbGciOi.sim.token".to_string(),
    ));
    let mut out = Hits::new(w.end);
    let mut t = w.start;
    let mut n = 0u64;
    while !out.full(t) {
        let (method, path, status) = if n.is_multiple_of(200) {
            let status = if rng.chance(0.05) { 401 } else { 200 };
            ("POST", "/api/v1/auth/token".to_string(), status)
        } else {
            let path = match rng.int(0, 2) {
                0 => format!("/api/v1/items?page={}", rng.int(1, 50)),
                1 => format!("/api/v1/orders/{}", rng.int(1000, 9999)),
                _ => "/api/v1/status".to_string(),
            };
            ("GET", path, 200)
        };
        out.push(t, method, path, status, None, headers.clone());
        n += 1;
        t += if beyond {
            if n.is_multiple_of(burst) {
                rng.jittered(pause, 0.3)
            } else {
                rng.jittered(burst_gap, cv)
            }
        } else {
            rng.jittered(poll, cv)
        };
    }
    out.hits
}
