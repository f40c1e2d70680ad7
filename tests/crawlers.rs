//! The built-in crawler datasets and the classifier, from the outside.
//!
//! User agents are the ones operators document (or, for tools and browsers,
//! the defaults those programs send).

use palisade::crawlers::{
    builtin_datasets, builtin_network, builtin_network_names, builtin_network_set, builtin_specs,
    ClientClass, CrawlerSpec, Crawlers, Verification, BUILTIN_CRAWLER_FILES,
};
use palisade::net::parse_cidr_list;
use proptest::prelude::*;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

fn builtin() -> &'static Crawlers {
    static CRAWLERS: OnceLock<Arc<Crawlers>> = OnceLock::new();
    CRAWLERS.get_or_init(|| match Crawlers::builtin() {
        Ok(c) => c,
        Err(e) => panic!("built-in datasets: {e}"),
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Asserts class and name for each user agent.
fn expect(class: ClientClass, cases: &[(&str, &str)]) {
    for &(name, ua) in cases {
        let c = builtin().classify(ua, None);
        assert_eq!((c.class, c.name), (class, Some(name)), "{ua}");
        assert!(c.pattern.is_some(), "{ua}");
    }
}

const GOOGLEBOT_SMARTPHONE: &str = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2272.96 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const HEADLESS_CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36";

#[test]
fn search_engines() {
    expect(
        ClientClass::SearchEngine,
        &[
            ("googlebot", GOOGLEBOT_SMARTPHONE),
            (
                "googlebot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/120.0.6099.216 Safari/537.36",
            ),
            ("googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            ("googlebot", "Googlebot-Image/1.0"),
            (
                "storebot-google",
                "Mozilla/5.0 (X11; Linux x86_64; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.216 Safari/537.36",
            ),
            ("google-inspectiontool", "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)"),
            ("adsbot-google", "AdsBot-Google (+http://www.google.com/adsbot.html)"),
            ("feedfetcher-google", "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)"),
            (
                "bingbot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            ),
            ("bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
            // Bing's ads crawler links bingbot.htm but is not bingbot.
            ("adidxbot", "Mozilla/5.0 (compatible; adidxbot/2.0; +http://www.bing.com/bingbot.htm)"),
            (
                "applebot",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            ),
            ("duckduckbot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)"),
            ("yandexbot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"),
            ("baiduspider", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"),
            ("yahoo-slurp", "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)"),
            (
                "linkedinbot",
                "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            ),
            ("facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
        ],
    );
}

#[test]
fn ai_crawlers() {
    expect(
        ClientClass::AiCrawler,
        &[
            (
                "gptbot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)",
            ),
            (
                "claudebot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
            ),
            ("ccbot", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
            (
                "bytespider",
                "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            ),
            (
                "meta-externalagent",
                "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
            ),
            (
                "perplexitybot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
            ),
            (
                "amazonbot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36",
            ),
            (
                "oai-searchbot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot)",
            ),
        ],
    );
}

#[test]
fn ai_assistants() {
    expect(
        ClientClass::AiAssistant,
        &[
            (
                "chatgpt-user",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
            ),
            (
                "perplexity-user",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
            ),
            ("duckassistbot", "DuckAssistBot/1.2; (+http://duckduckgo.com/duckassistbot.html)"),
            (
                "mistralai-user",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)",
            ),
        ],
    );
}

#[test]
fn seo_crawlers() {
    expect(
        ClientClass::Seo,
        &[
            ("ahrefsbot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
            ("semrushbot", "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"),
            ("mj12bot", "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)"),
            ("dotbot", "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)"),
        ],
    );
}

#[test]
fn monitoring() {
    expect(
        ClientClass::Monitoring,
        &[
            (
                "uptimerobot",
                "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            ),
            (
                "pingdom",
                "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            ),
        ],
    );
}

#[test]
fn automation() {
    expect(
        ClientClass::Automation,
        &[
            ("headlesschrome", HEADLESS_CHROME),
            (
                "phantomjs",
                "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
            ),
        ],
    );
}

#[test]
fn tools() {
    expect(
        ClientClass::Tool,
        &[
            ("curl", "curl/8.5.0"),
            ("wget", "Wget/1.21.4"),
            ("python-requests", "python-requests/2.31.0"),
            ("python-urllib", "Python-urllib/3.11"),
            ("aiohttp", "Python/3.11 aiohttp/3.9.1"),
            ("httpx", "python-httpx/0.27.0"),
            ("go-http-client", "Go-http-client/1.1"),
            ("go-http-client", "Go-http-client/2.0"),
            ("okhttp", "okhttp/4.12.0"),
            ("java", "Java/1.8.0_392"),
            ("apache-httpclient", "Apache-HttpClient/4.5.14 (Java/17.0.8)"),
            ("libwww-perl", "libwww-perl/6.72"),
            ("node-fetch", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"),
            ("axios", "axios/1.6.2"),
            ("undici", "undici"),
            ("postman", "PostmanRuntime/7.36.0"),
            ("scrapy", "Scrapy/2.11.0 (+https://scrapy.org)"),
            ("httpie", "HTTPie/3.2.2"),
            (
                "powershell",
                "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.0",
            ),
        ],
    );
}

#[test]
fn browsers() {
    expect(
        ClientClass::Browser,
        &[
            ("chrome", CHROME_WINDOWS),
            (
                "chrome",
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            ),
            (
                "chrome",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            ),
            ("firefox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"),
            ("firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
            (
                "safari",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            ),
            (
                "safari",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            ),
            (
                "edge",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            ),
            (
                "opera",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
            ),
            (
                "samsung",
                "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            ),
        ],
    );
}

#[test]
fn malformed_and_unrecognised_user_agents_are_bots() {
    for (ua, rule) in [
        ("", "empty"),
        ("   ", "empty"),
        ("\t", "empty"),
        ("Mozilla/5.0\t(X11)", "malformed"),
        ("Mozilla/5.0 (X11) \u{fffd}\u{fffd}bot", "malformed"),
        ("12345", "no-letters"),
        ("definitely-not-known/1.0", "not-a-browser"),
        ("x", "not-a-browser"),
        ("Mozilla/4.0", "missing-platform"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X) Word/14.0.0",
            "no-browser-engine",
        ),
    ] {
        let c = builtin().classify(ua, Some(ip("66.249.66.1")));
        assert_eq!((c.class, c.name), (ClientClass::Bot, Some(rule)), "{ua:?}");
        assert!(c.pattern.is_some(), "{ua:?}");
        assert_eq!(c.verification, None, "{ua:?}");
    }
    let oversized = format!("{CHROME_WINDOWS} {}", "x".repeat(1024));
    assert_eq!(builtin().classify(&oversized, None).name, Some("oversized"));
}

#[test]
fn googlebot_is_verified_only_from_googles_ranges() {
    let c = builtin();
    let from = |addr: &str| {
        c.classify(GOOGLEBOT_SMARTPHONE, Some(ip(addr)))
            .verification
    };
    assert_eq!(from("66.249.66.1"), Some(Verification::Verified));
    assert_eq!(from("66.249.79.70"), Some(Verification::Verified));
    assert_eq!(from("2001:4860:4801:10::1"), Some(Verification::Verified));
    // An IPv4-mapped IPv6 peer is the IPv4 address.
    assert_eq!(from("::ffff:66.249.66.1"), Some(Verification::Verified));
    assert_eq!(from("203.0.113.9"), Some(Verification::Spoofed));
    assert_eq!(from("8.8.8.8"), Some(Verification::Spoofed));
    assert_eq!(from("2001:db8::1"), Some(Verification::Spoofed));
    assert_eq!(
        c.classify(GOOGLEBOT_SMARTPHONE, None).verification,
        Some(Verification::Unverifiable)
    );
    // Google's common crawlers share one list.
    let inspection = c.classify(
        "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
        Some(ip("66.249.66.1")),
    );
    assert_eq!(inspection.verification, Some(Verification::Verified));
}

#[test]
fn other_published_ranges_verify_their_crawlers() {
    let c = builtin();
    let cases = [
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "157.55.39.10", "10.0.0.1"),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)",
            "20.171.206.5",
            "20.171.205.5",
        ),
        ("CCBot/2.0 (https://commoncrawl.org/faq/)", "18.97.14.81", "18.97.14.100"),
        ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "20.191.45.212", "20.191.45.213"),
        ("AdsBot-Google (+http://www.google.com/adsbot.html)", "66.249.90.1", "66.249.66.1"),
        (
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "216.144.248.29",
            "216.144.248.30",
        ),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148.7", "54.36.150.7"),
    ];
    for (ua, inside, outside) in cases {
        assert_eq!(
            c.classify(ua, Some(ip(inside))).verification,
            Some(Verification::Verified),
            "{ua} from {inside}"
        );
        assert_eq!(
            c.classify(ua, Some(ip(outside))).verification,
            Some(Verification::Spoofed),
            "{ua} from {outside}"
        );
    }
}

#[test]
fn crawlers_without_published_ranges_are_unverifiable() {
    let c = builtin();
    for ua in [
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
    ] {
        let got = c.classify(ua, Some(ip("198.51.100.1")));
        assert!(got.class.is_crawler(), "{ua}");
        assert_eq!(got.verification, Some(Verification::Unverifiable), "{ua}");
    }
}

#[test]
fn browsers_tools_and_automation_are_never_verified() {
    let c = builtin();
    for ua in [CHROME_WINDOWS, HEADLESS_CHROME, "curl/8.5.0"] {
        let got = c.classify(ua, Some(ip("66.249.66.1")));
        assert!(!got.class.is_crawler(), "{ua}");
        assert_eq!(got.verification, None, "{ua}");
    }
}

/// The browser fallback alone must not claim automation, tools or crawlers
/// that merely embed browser tokens.
#[test]
fn browser_patterns_do_not_match_headless_or_tools() {
    let browsers: Vec<CrawlerSpec> = builtin_specs()
        .unwrap()
        .into_iter()
        .filter(|s| s.class == ClientClass::Browser)
        .collect();
    assert!(!browsers.is_empty());
    let only = Crawlers::compile(browsers).unwrap();
    // The browser file's last-resort `webkit` entry matches any WebKit user
    // agent, HeadlessChrome's too: precedence (automation.txt first) is what
    // keeps headless clients out of `browser`.
    assert_eq!(only.classify(HEADLESS_CHROME, None).name, Some("webkit"));
    assert_eq!(
        builtin().classify(HEADLESS_CHROME, None).class,
        ClientClass::Automation
    );
    for ua in [
        "curl/8.5.0",
        "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.0",
        "Chrome-Lighthouse",
        "python-requests/2.31.0 Chrome/120",
    ] {
        assert_eq!(only.classify(ua, None).class, ClientClass::Unknown, "{ua}");
    }
    assert_eq!(only.classify(CHROME_WINDOWS, None).name, Some("chrome"));
    // ...whereas the full table puts the smartphone Googlebot first.
    assert_eq!(
        only.classify(GOOGLEBOT_SMARTPHONE, None).name,
        Some("chrome")
    );
    assert_eq!(
        builtin().classify(GOOGLEBOT_SMARTPHONE, None).name,
        Some("googlebot")
    );
}

#[test]
fn builtin_specs_follow_the_file_order_with_unique_names() {
    let specs = builtin_specs().unwrap();
    assert_eq!(specs.len(), builtin().len());
    let order: Vec<ClientClass> = BUILTIN_CRAWLER_FILES.iter().map(|&(c, _)| c).collect();
    assert_eq!(
        order,
        [
            ClientClass::SearchEngine,
            ClientClass::AiCrawler,
            ClientClass::AiAssistant,
            ClientClass::Seo,
            ClientClass::Monitoring,
            ClientClass::Automation,
            ClientClass::Tool,
            ClientClass::Bot,
            ClientClass::Browser,
            ClientClass::App,
        ]
    );
    // Runs of one class, in order, are the files.
    let mut runs: Vec<ClientClass> = specs.iter().map(|s| s.class).collect();
    runs.dedup();
    assert_eq!(runs, order, "specs are grouped by file in precedence order");
    let mut seen = HashSet::new();
    for s in &specs {
        assert!(seen.insert(s.name.as_str()), "duplicate name {}", s.name);
        if s.networks.is_some() {
            assert!(
                s.class.is_crawler(),
                "{} has networks but is {}",
                s.name,
                s.class
            );
        }
    }
    for class in order {
        assert!(specs.iter().any(|s| s.class == class), "no {class} entries");
    }
}

#[test]
fn every_dataset_file_is_embedded_and_parses() {
    for (_, stem) in BUILTIN_CRAWLER_FILES {
        let path = format!("crawlers/{stem}.txt");
        assert!(
            builtin_datasets().any(|(p, _)| *p == path),
            "{path} not embedded"
        );
    }
    // Every file on disk is in the table, and nothing else is.
    for dir in ["crawlers", "networks"] {
        let on_disk =
            std::fs::read_dir(format!("{}/datasets/{dir}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for entry in on_disk {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let path = format!("{dir}/{name}");
            // The reputation lists are embedded by `palisade::reputation`.
            let reputation = dir == "networks"
                && name
                    .strip_suffix(".txt")
                    .is_some_and(|stem| palisade::reputation::source(stem).is_some());
            assert!(
                reputation || builtin_datasets().any(|(p, _)| *p == path),
                "{path} is not embedded"
            );
        }
    }
    assert!(builtin_specs().is_ok());
    assert!(Crawlers::builtin().is_ok());
}

#[test]
fn every_network_file_is_non_empty_and_parses() {
    let names = builtin_network_names();
    for expected in [
        "google-crawlers",
        "google-special-crawlers",
        "bingbot",
        "applebot",
        "openai-gptbot",
        "duckduckbot",
        "commoncrawl",
        "cloudflare",
        "gcp",
    ] {
        assert!(names.contains(&expected), "missing {expected}: {names:?}");
    }
    for name in names {
        let text = builtin_network(name).unwrap();
        let cidrs = match parse_cidr_list(text) {
            Ok(c) => c,
            Err((line, e)) => panic!("datasets/networks/{name}.txt:{line}: {e}"),
        };
        assert!(!cidrs.is_empty(), "{name} is empty");
        let set = builtin_network_set(name).unwrap();
        assert!(!set.is_empty(), "{name}");
        assert!(
            text.lines().any(|l| l.starts_with("# Source: http")),
            "{name}: no source URL"
        );
        assert!(
            text.lines().any(|l| l.starts_with("# Data as of: ")),
            "{name}: no date"
        );
        // Every listed prefix is inside the compiled set.
        for cidr in &cidrs {
            assert!(set.contains(cidr.addr()), "{name}: {cidr}");
        }
    }
    assert!(builtin_network("no-such-list").is_none());
}

#[test]
fn a_bad_pattern_reports_its_index() {
    let spec = |pattern: &str| CrawlerSpec {
        name: "x".into(),
        class: ClientClass::Tool,
        pattern: pattern.into(),
        networks: None,
    };
    let err = Crawlers::compile(vec![
        spec("good"),
        spec("also[good]"),
        spec("bad("),
        spec("fine"),
    ])
    .unwrap_err();
    assert_eq!(err.0, 2);
    assert!(!err.1.is_empty());
    let err = Crawlers::compile(vec![spec("[z-a]")]).unwrap_err();
    assert_eq!(err.0, 0);
}

#[test]
fn config_specs_placed_first_take_precedence() {
    let mut specs = vec![CrawlerSpec {
        name: "internal-monitor".into(),
        class: ClientClass::Monitoring,
        pattern: r"^curl/.*\sinternal-probe$".into(),
        networks: None,
    }];
    specs.extend(builtin_specs().unwrap());
    let c = Crawlers::compile(specs).unwrap();
    assert_eq!(
        c.classify("curl/8.5.0 internal-probe", None).name,
        Some("internal-monitor")
    );
    assert_eq!(c.classify("curl/8.5.0", None).name, Some("curl"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_never_panics(ua in ".{0,300}", octets in any::<[u8; 4]>(), v6 in any::<u128>()) {
        let c = builtin();
        let _ = c.classify(&ua, None);
        let _ = c.classify(&ua, Some(IpAddr::from(octets)));
        let _ = c.classify(&ua, Some(IpAddr::from(v6.to_be_bytes())));
    }

    #[test]
    fn known_agents_survive_surrounding_noise(prefix in "[a-z0-9 ;]{0,20}", suffix in "[a-z0-9 ;]{0,20}") {
        // Unanchored crawler patterns still match inside other text.
        let ua = format!("{prefix}; GPTBot/1.1; {suffix}");
        prop_assert_eq!(builtin().classify(&ua, None).name, Some("gptbot"));
    }
}

#[test]
fn huge_and_odd_user_agents() {
    let c = builtin();
    // Past 1 KiB nothing is examined: not even a real crawler's token.
    let long = "a".repeat(1 << 20);
    assert_eq!(c.classify(&long, None).name, Some("oversized"));
    let long_bot = format!("{long} Googlebot/2.1");
    let got = c.classify(&long_bot, Some(ip("66.249.66.1")));
    assert_eq!((got.class, got.verification), (ClientClass::Bot, None));
    let unicode = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 — ünïcödé ✓";
    // Text after a desktop browser's tokens is another program's.
    assert_eq!(
        c.classify(unicode, None).name,
        Some("unexpected-product-token")
    );
    let mobile = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 — ünïcödé ✓";
    assert_eq!(c.classify(mobile, None).name, Some("chrome"));
    assert_eq!(
        c.classify("\u{0}\u{1}curl/8.0\u{7f}", None).name,
        Some("malformed")
    );
}

/// Asserts the class and rule name for each user agent (generic rules and
/// browsers alike).
fn expect_rules(cases: &[(ClientClass, &str, &str)]) {
    for &(class, name, ua) in cases {
        let c = builtin().classify(ua, None);
        assert_eq!((c.class, c.name), (class, Some(name)), "{ua}");
    }
}

#[test]
fn generic_bot_rules_with_real_examples() {
    use ClientClass::Bot;
    expect_rules(&[
        (Bot, "bot-word", "Mozilla/5.0 (compatible; SomeRandomBot/1.0)"),
        (Bot, "bot-word", "WGETbot/1.0 (+http://wget.alanreed.org)"),
        (Bot, "bot-word", "istellabot-nutch/Nutch-1.10"),
        (Bot, "bot-word", "SkroutzBot v1.0"),
        (Bot, "bot-word", "screeenly-bot 2.0"),
        (Bot, "bot-word", "Mozilla/5.0 (Windows NT 6.1; rv:38.0) Gecko/20100101 Firefox/38.0 (IndeedBot 1.1)"),
        (Bot, "crawler-word", "magpie-crawler/1.1 (U; Linux amd64; en-GB; +http://www.brandwatch.net)"),
        (Bot, "crawler-word", "Mozilla/4.0 (compatible; Vagabondo/2.2; webcrawler at wise-guys dot nl)"),
        (Bot, "crawler-word", "Validator.nu/LV"),
        (Bot, "crawler-word", "Chatwork LinkPreview v1"),
        (Bot, "contact-url", "NutchCVS/0.7.1 (Nutch; http://lucene.apache.org/nutch/bot.html; nutch-agent@lucene.apache.org)"),
        (Bot, "contact-url", "Mozilla/5.0 (compatible; Foo/2.0; +https://example.org/foo)"),
        (Bot, "contact-email", "ExampleFetch/1.0 (ops@example.org)"),
        (Bot, "contact-domain", "Mozilla/5.0 (compatible; theoldreader.com)"),
        (Bot, "contact-domain", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/58.0.3029.81 Safari/537.36 PrintFriendly.com"),
        (Bot, "compatible-only", "Mozilla/5.0 (compatible; RSiteAuditor)"),
        (Bot, "compatible-only", "Mozilla/5.0 (compatible; Attracta)"),
        (Bot, "engine-comment", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; GeedoShopProductFinder) Chrome/142.0.0.0 Safari/537.36"),
        (Bot, "missing-platform", "Mozilla/5.0 AppleWebKit/537.36 Chrome/139.0.7258.127 Safari/537.36 Google-Ads-Conversions"),
        (Bot, "missing-platform", "Mozilla/5.0"),
        (Bot, "embedded-compatible", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/27.0.1453 Safari/537.36 (compatible; Google-HotelAdsVerifier/2.0)"),
        (Bot, "no-browser-engine", "Mozilla/5.0 (Anturis Agent)"),
        (Bot, "not-a-browser", "httpunit/1.x"),
        (Bot, "not-a-browser", "Disqus/1.0"),
    ]);
}

#[test]
fn generic_rules_spare_near_misses() {
    use ClientClass::{App, Browser};
    expect_rules(&[
        // Device names containing "bot" (the Cubot brand, "M bot" models).
        (Browser, "chrome", "Mozilla/5.0 (Linux; Android 7.0; CUBOT DINOSAUR Build/MRA58K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/61.0.3163.98 Mobile Safari/537.36"),
        (Browser, "chrome", "Mozilla/5.0 (Linux; Android 8.0.0; CUBOT_X18_Plus Build/O006) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/65.0.3325.109 Mobile Safari/537.36"),
        (Browser, "chrome", "Mozilla/5.0 (Linux; Android 7.0; M bot 60 Build/NRD90M; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/64.0.3282.137 Mobile Safari/537.36"),
        // Carrier domains in Facebook's in-app token follow a "/".
        (Browser, "webkit", "Mozilla/5.0 (iPhone; CPU iPhone OS 10_2_1 like Mac OS X) AppleWebKit/602.4.6 (KHTML, like Gecko) Mobile/14D27 [FBAN/FBIOS;FBAV/83.0.0.38.70;FBBV/51754296;FBDV/iPhone9,4;FBMD/iPhone;FBSN/iOS;FBSV/10.2.1;FBSS/3;FBCR/T-Mobile.pl;FBID/phone;FBLC/pl_PL;FBOP/5;FBRV/0]"),
        // Ecosia's "android@150" is not an e-mail address.
        (Browser, "chrome", "Mozilla/5.0 (Linux; Android 8.0.0; SM-G950F Build/R16NW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/62.0.3202.101 Mobile Safari/537.36 (Ecosia android@62.0.3202.101)"),
        // Internet Explorer's "compatible" is followed by "MSIE 10.0".
        (Browser, "ie", "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"),
        (Browser, "ie", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"),
        // Native apps: their own HTTP stacks, not bots.
        (App, "dalvik", "ExampleApp/1 Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240805.005)"),
        (App, "cfnetwork", "MyApp/3 CFNetwork/1496.0.7 Darwin/23.5.0"),
        (App, "android-app", "Instagram 275.0.0.27.98 Android (33/13; 420dpi; 1080x2400; samsung; SM-G991B; o1s; exynos2100; en_US; 458229237)"),
        (App, "media-player", "AppleCoreMedia/1.0.0.21F90 (iPhone; U; CPU OS 17_5_1 like Mac OS X; en_us)"),
        (App, "ios-app", "LinkedIn/9.29.8149 (iPhone; iOS 17.1; Scale/3.00)"),
        (App, "ios-app", "Twitter-iPhone/10.14 iOS/17.1 (Apple;iPhone14,2;;;;;1;2021)"),
        (App, "android-app", "Pinterest for Android/11.40.0 (SM-G991B; 13)"),
        (App, "facebook-app", "[FBAN/FBIOS;FBDV/iPhone12,1;FBMD/iPhone;FBSN/iOS;FBSV/16.0;FBSS/2;FBID/phone;FBLC/en_US;FBOP/5]"),
    ]);
}

#[test]
fn browsers_of_every_kind_stay_browsers() {
    for ua in [
        // In-app webviews.
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 617293185)",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/468.1.0.56.78;]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.4.0",
        "Mozilla/5.0 (Linux; Android 13; V2111 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
        "Mozilla/5.0 (Linux; Android 12; SM-A125F Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 musical_ly_2023201030 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/32.1.3 ByteLocale/en ByteFullLocale/en Region/US BytedanceWebview/d8a21c6",
        // Smart TVs, consoles, e-readers.
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
        "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0.4430.225 Safari/537.36 CrKey/1.56.500000",
        "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 CrKey/1.56.500000 DeviceType/AndroidTV",
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like Chrome/124.0.6367.219 Safari/537.36",
        // Older engines.
        "Opera/9.80 (Android; Opera Mini/7.5.35199/35.4053; U; en) Presto/2.8.119 Version/11.10",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
    ] {
        assert_eq!(builtin().classify(ua, None).class, ClientClass::Browser, "{ua}");
    }
}

#[test]
fn desktop_browsers_with_a_foreign_product_token_are_bots() {
    use ClientClass::{Bot, Browser};
    expect_rules(&[
        (Bot, "unexpected-product-token", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.75 Safari/537.36 Google Favicon"),
        (Bot, "unexpected-product-token", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:82.0) Gecko/20100101 Firefox/82.0 Observatory/82.0"),
        (Bot, "unexpected-product-token", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT) NewsNow/1.0"),
        (Bot, "unexpected-product-token", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.115.0 Chrome/142.0.7444.265 Electron/39.8.5 Safari/537.36"),
        // Browsers' own tokens, forks and rebrands are fine.
        (Browser, "edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"),
        (Browser, "opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
        (Browser, "chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.7339.63 YaBrowser/25.10.6.63.00 SA/3 Safari/537.36"),
        (Browser, "firefox", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
        (Browser, "gecko", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:3.0) Goanna/20170302 PaleMoon/27.1.2"),
        // Mobile user agents carry in-app tokens of every kind: not checked.
        (Browser, "chrome", "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram 406.0.0.58.159 Android"),
    ]);
}

#[test]
fn the_canonical_browser_fast_path_agrees_with_the_patterns() {
    use palisade::crawlers::{builtin_browser_tokens, builtin_spec_tiers, canonical};
    let (named, generic) = builtin_spec_tiers().unwrap();
    let slow = Crawlers::compile_tiers(vec![named, generic])
        .unwrap()
        .with_generic_rules(builtin_browser_tokens().unwrap());
    let mut checked = 0;
    for (shape, name) in canonical::shapes() {
        for (version, ios) in [
            ("1", "1"),
            ("131.0.0.0", "17_5_1"),
            ("10.15", "18_0"),
            ("0.1", "9_3_5"),
        ] {
            let ua = shape.replace('#', version).replace('~', ios);
            let fast = builtin().classify(&ua, None);
            assert_eq!(fast.name, Some(name), "{ua}");
            assert_eq!(fast, slow.classify(&ua, None), "{ua}");
            checked += 1;
        }
    }
    assert!(checked > 400);
}
