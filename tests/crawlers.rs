//! The built-in crawler datasets and the classifier, from the outside.
//!
//! User agents are the ones operators document (or, for tools and browsers,
//! the defaults those programs send).

use palisade::crawlers::{
    builtin_network, builtin_network_names, builtin_network_set, builtin_specs, ClientClass,
    CrawlerSpec, Crawlers, Verification, BUILTIN_CRAWLER_FILES, BUILTIN_DATASETS,
};
use palisade::net::parse_cidr_list;
use proptest::prelude::*;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::OnceLock;

fn builtin() -> &'static Crawlers {
    static CRAWLERS: OnceLock<Crawlers> = OnceLock::new();
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
fn unknown_and_empty_user_agents() {
    for ua in [
        "",
        "   ",
        "\t",
        "definitely-not-known/1.0",
        "Mozilla/4.0",
        "x",
    ] {
        let c = builtin().classify(ua, Some(ip("66.249.66.1")));
        assert_eq!(c.class, ClientClass::Unknown, "{ua:?}");
        assert_eq!(
            (c.name, c.pattern, c.verification),
            (None, None, None),
            "{ua:?}"
        );
    }
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
    for ua in [
        HEADLESS_CHROME,
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
            ClientClass::Browser,
        ]
    );
    let ranks: Vec<usize> = specs
        .iter()
        .map(|s| order.iter().position(|&c| c == s.class).unwrap())
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "specs are grouped by file in precedence order"
    );
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
            BUILTIN_DATASETS.iter().any(|(p, _)| *p == path),
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
            assert!(
                BUILTIN_DATASETS.iter().any(|(p, _)| *p == path),
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
            assert!(set.contains(cidr.addr), "{name}: {cidr}");
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
    let long = "a".repeat(1 << 20);
    assert_eq!(c.classify(&long, None).class, ClientClass::Unknown);
    let long_bot = format!("{long} Googlebot/2.1");
    assert_eq!(
        c.classify(&long_bot, Some(ip("66.249.66.1"))).verification,
        Some(Verification::Verified)
    );
    let unicode = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 — ünïcödé ✓";
    assert_eq!(c.classify(unicode, None).name, Some("chrome"));
    assert_eq!(
        c.classify("\u{0}\u{1}curl/8.0\u{7f}", None).name,
        Some("curl")
    );
}
