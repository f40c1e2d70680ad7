//! User agents and the header sets that go with them: full browser headers
//! (what the header-consistency checks expect, see
//! [`crate::crawlers::consistency`]), the thin headers of tools, and the
//! faked-browser mixes in between.

use super::rng::Rng;

/// What a request fetches, which decides a browser's `Accept` and
/// `Sec-Fetch-Dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Document,
    Style,
    Script,
    Image,
    Font,
    /// `fetch()`/XHR from a page, and form posts.
    Data,
}

impl Fetch {
    /// The fetch an asset path implies.
    pub fn of_asset(path: &str) -> Fetch {
        let ext = path.rsplit('.').next().unwrap_or("");
        match ext {
            "css" => Fetch::Style,
            "js" => Fetch::Script,
            "woff2" | "woff" => Fetch::Font,
            _ => Fetch::Image,
        }
    }
}

/// A browser as its requests show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Browser {
    pub user_agent: String,
    family: Family,
    accept_language: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    /// Chrome or Edge; `headless` puts `HeadlessChrome` in the client hints.
    Chromium {
        major: u32,
        edge: bool,
        mobile: bool,
        platform: &'static str,
        headless: bool,
    },
    Firefox,
    Safari,
}

const LANGUAGES: &[&str] = &[
    "en-US,en;q=0.9",
    "en-GB,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
    "es-ES,es;q=0.9",
    "nl-NL,nl;q=0.9,en;q=0.8",
    "pt-BR,pt;q=0.9,en;q=0.8",
    "ja,en-US;q=0.9,en;q=0.8",
    "pl-PL,pl;q=0.9,en-US;q=0.8",
    "en-US,en;q=0.5",
];

const DESKTOP_OS: &[(&str, &str)] = &[
    ("Windows NT 10.0; Win64; x64", "\"Windows\""),
    ("Macintosh; Intel Mac OS X 10_15_7", "\"macOS\""),
    ("X11; Linux x86_64", "\"Linux\""),
];

impl Browser {
    /// A person's browser: desktop Chrome, Edge, Firefox or Safari, or
    /// (with probability `mobile`) Chrome on Android or Safari on iOS.
    pub fn person(rng: &mut Rng, mobile: f64) -> Browser {
        let accept_language = rng.pick(LANGUAGES).to_string();
        if rng.chance(mobile) {
            return if rng.chance(0.5) {
                let major = rng.int(118, 133) as u32;
                let model = rng.pick(&["Pixel 8", "SM-S918B", "SM-A546B", "Pixel 7a", "K"]);
                Browser {
                    user_agent: format!(
                        "Mozilla/5.0 (Linux; Android {}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Mobile Safari/537.36",
                        rng.int(10, 15)
                    ),
                    family: Family::Chromium {
                        major,
                        edge: false,
                        mobile: true,
                        platform: "\"Android\"",
                        headless: false,
                    },
                    accept_language,
                }
            } else {
                let (major, minor) = (rng.int(16, 18), rng.int(4, 6));
                Browser {
                    user_agent: format!(
                        "Mozilla/5.0 (iPhone; CPU iPhone OS {major}_{minor} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major}.{minor} Mobile/15E148 Safari/604.1"
                    ),
                    family: Family::Safari,
                    accept_language,
                }
            };
        }
        let (os, platform) = *rng.pick(DESKTOP_OS);
        let roll = rng.unit();
        if roll < 0.55 {
            Browser::chrome(
                rng.int(118, 133) as u32,
                os,
                platform,
                rng.chance(0.15),
                accept_language,
            )
        } else if roll < 0.8 {
            let v = rng.int(115, 134);
            Browser {
                user_agent: format!("Mozilla/5.0 ({os}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"),
                family: Family::Firefox,
                accept_language,
            }
        } else {
            let (major, minor) = (rng.int(16, 18), rng.int(4, 6));
            Browser {
                user_agent: format!(
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major}.{minor} Safari/605.1.15"
                ),
                family: Family::Safari,
                accept_language,
            }
        }
    }

    /// Desktop Chrome (or Edge) with consistent client hints.
    pub fn chrome(
        major: u32,
        os: &str,
        platform: &'static str,
        edge: bool,
        accept_language: String,
    ) -> Browser {
        let edge_token = if edge {
            format!(" Edg/{major}.0.0.0")
        } else {
            String::new()
        };
        Browser {
            user_agent: format!(
                "Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36{edge_token}"
            ),
            family: Family::Chromium {
                major,
                edge,
                mobile: false,
                platform,
                headless: false,
            },
            accept_language,
        }
    }

    /// Headless Chrome as Puppeteer or Playwright launch it: either its
    /// own `HeadlessChrome` user agent and hints, or (`stealth`) patched to
    /// look like desktop Chrome throughout.
    pub fn headless(rng: &mut Rng, stealth: bool) -> Browser {
        let major = rng.int(120, 133) as u32;
        let (os, platform) = *rng.pick(DESKTOP_OS);
        let mut b = Browser::chrome(major, os, platform, false, rng.pick(LANGUAGES).to_string());
        if !stealth {
            b.user_agent = b.user_agent.replace("Chrome/", "HeadlessChrome/");
            if let Family::Chromium { headless, .. } = &mut b.family {
                *headless = true;
            }
        }
        b
    }

    /// The headers this browser sends for `fetch`, with `referrer`.
    pub fn headers(&self, fetch: Fetch, referrer: Option<&str>) -> Vec<(String, String)> {
        let accept = match fetch {
            Fetch::Document => match self.family {
                Family::Firefox => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                _ => "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8",
            },
            Fetch::Style => "text/css,*/*;q=0.1",
            Fetch::Script | Fetch::Font => "*/*",
            Fetch::Image => "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            Fetch::Data => "application/json, text/plain, */*",
        };
        let mut h = vec![
            ("user-agent".to_string(), self.user_agent.clone()),
            ("accept".to_string(), accept.to_string()),
            ("accept-language".to_string(), self.accept_language.clone()),
            (
                "accept-encoding".to_string(),
                "gzip, deflate, br, zstd".to_string(),
            ),
        ];
        if let Family::Chromium {
            major,
            edge,
            mobile,
            platform,
            headless,
        } = self.family
        {
            let brand = if headless {
                "HeadlessChrome"
            } else if edge {
                "Microsoft Edge"
            } else {
                "Google Chrome"
            };
            h.push((
                "sec-ch-ua".to_string(),
                format!("\"{brand}\";v=\"{major}\", \"Chromium\";v=\"{major}\", \"Not_A Brand\";v=\"24\""),
            ));
            h.push((
                "sec-ch-ua-mobile".to_string(),
                if mobile { "?1" } else { "?0" }.to_string(),
            ));
            h.push(("sec-ch-ua-platform".to_string(), platform.to_string()));
        }
        let (dest, mode) = match fetch {
            Fetch::Document => ("document", "navigate"),
            Fetch::Style => ("style", "no-cors"),
            Fetch::Script => ("script", "no-cors"),
            Fetch::Image => ("image", "no-cors"),
            Fetch::Font => ("font", "cors"),
            Fetch::Data => ("empty", "cors"),
        };
        let site = match referrer {
            None => "none",
            Some(r) if r.starts_with("https://www.example.com") => "same-origin",
            Some(_) => "cross-site",
        };
        h.push(("sec-fetch-site".to_string(), site.to_string()));
        h.push(("sec-fetch-mode".to_string(), mode.to_string()));
        h.push(("sec-fetch-dest".to_string(), dest.to_string()));
        if fetch == Fetch::Document {
            h.push(("sec-fetch-user".to_string(), "?1".to_string()));
            h.push(("upgrade-insecure-requests".to_string(), "1".to_string()));
        }
        if let Some(r) = referrer {
            h.push(("referer".to_string(), r.to_string()));
        }
        h
    }
}

/// How much of a browser's header set a script copies along with its
/// browser user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// `Accept: */*` and nothing else (an HTTP library with a UA string set).
    Thin,
    /// `Accept` and `Accept-Language`, but no fetch metadata or client hints.
    Partial,
    /// Everything a browser sends.
    Full,
}

impl Copied {
    pub fn draw(rng: &mut Rng, full: f64, partial: f64) -> Copied {
        let roll = rng.unit();
        if roll < full {
            Copied::Full
        } else if roll < full + partial {
            Copied::Partial
        } else {
            Copied::Thin
        }
    }
}

/// A script's headers: a browser's user agent with `copied` of its headers.
pub fn faked_browser(
    browser: &Browser,
    copied: Copied,
    fetch: Fetch,
    referrer: Option<&str>,
) -> Vec<(String, String)> {
    match copied {
        Copied::Full => browser.headers(fetch, referrer),
        Copied::Partial => {
            let mut h = browser.headers(fetch, referrer);
            h.retain(|(n, _)| !n.starts_with("sec-") && n != "upgrade-insecure-requests");
            h
        }
        Copied::Thin => tool(&browser.user_agent, referrer),
    }
}

/// An HTTP library's or command-line tool's headers.
pub fn tool(user_agent: &str, referrer: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("user-agent".to_string(), user_agent.to_string()),
        ("accept".to_string(), "*/*".to_string()),
        ("accept-encoding".to_string(), "gzip, deflate".to_string()),
    ];
    if let Some(r) = referrer {
        h.push(("referer".to_string(), r.to_string()));
    }
    h
}

/// User agents of HTTP libraries and command-line tools.
pub const TOOLS: &[&str] = &[
    "python-requests/2.32.3",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "curl/7.88.1",
    "Wget/1.21.4",
    "Go-http-client/1.1",
    "Go-http-client/2.0",
    "Scrapy/2.11.2 (+https://scrapy.org)",
    "axios/1.7.7",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "okhttp/4.12.0",
    "Java/17.0.9",
    "aiohttp/3.9.5",
    "python-httpx/0.27.0",
];

/// User agents API clients send: SDKs, apps' HTTP stacks, libraries.
pub const API_CLIENTS: &[&str] = &[
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "axios/1.7.7",
    "Go-http-client/2.0",
    "ShopApp/5.2.1 (iPhone; iOS 17.5; Scale/3.00)",
    "ShopApp/5.1.0 (Android 14; Pixel 8)",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-A546B Build/TP1A.220624.014)",
    "inventory-sync/1.4",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "node",
];

/// A search crawler: its user agent, and addresses it crawls from.
#[derive(Debug, Clone, Copy)]
pub struct Crawler {
    pub user_agent: &'static str,
    /// `None`: an address outside any published range (unverifiable or,
    /// for Googlebot and bingbot, spoofed).
    pub network: Option<[u8; 3]>,
}

/// Googlebot and bingbot from their published ranges, and other search
/// crawlers from addresses no list names.
pub const CRAWLERS: &[Crawler] = &[
    Crawler {
        user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        network: Some([66, 249, 64]),
    },
    Crawler {
        user_agent: "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        network: Some([66, 249, 64]),
    },
    Crawler {
        user_agent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        network: Some([13, 66, 139]),
    },
    Crawler {
        user_agent: "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        network: None,
    },
    Crawler {
        user_agent: "Mozilla/5.0 (compatible; DuckDuckBot-Https/1.1; https://duckduckgo.com/duckduckbot)",
        network: None,
    },
    Crawler {
        user_agent: "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)",
        network: None,
    },
];

/// A crawler's headers: no `Accept-Language`, sometimes `From`.
pub fn crawler(user_agent: &str) -> Vec<(String, String)> {
    let mut h = tool(user_agent, None);
    h[1].1 = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_string();
    if user_agent.contains("Googlebot") {
        h.push(("from".to_string(), "googlebot(at)googlebot.com".to_string()));
    }
    h
}
