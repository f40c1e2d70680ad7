//! The benchmark policy: 1,000 routes, 100 rules, 10 IP lists totalling
//! 200,000 CIDRs (v4 and v6) and three token keys, generated from a fixed
//! seed.
//!
//! The Envoy benchmark loads the same document
//! (`PALISADE_BENCH_DUMP_POLICY=FILE cargo bench --bench engine` writes it),
//! so both benchmarks measure one policy.
//!
//! Landmarks the benchmarks rely on (asserted when the benchmark starts):
//! - route 980 `bench-block` (`/svc980/*`, action block): proves a filter is live;
//! - route 990 `bench-allow` (`/svc990/*`, action allow): the allow path;
//! - route 995 `bench-token` (`/svc995/*`, challenge_all, difficulty 3):
//!   the valid-token path;
//! - `list03` holds `203.0.113.0/24` and rule 33 is `ip_in: list03`;
//! - no random IPv4 prefix starts with 10, 127, 192, 198 or 203, so
//!   127.0.0.1 and 192.0.2.0/24 are in no list.

use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const SEED: u64 = 0x7061_6c69_7361_6465; // "palisade"
pub const ROUTES: usize = 1000;
pub const RULES: usize = 100;
pub const LISTS: usize = 10;
pub const CIDRS_PER_LIST: usize = 20_000;

pub const BLOCK_ROUTE: usize = 980;
pub const ALLOW_ROUTE: usize = 990;
pub const TOKEN_ROUTE: usize = 995;
pub const TOKEN_DIFFICULTY: u8 = 3;

/// SplitMix64: tiny, fast, and easy to reproduce bit for bit in Python.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (modulo bias is irrelevant here, and simple to mirror).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const V4_LENS: [u8; 10] = [16, 20, 22, 24, 24, 24, 28, 32, 32, 32];
const V6_LENS: [u8; 8] = [32, 40, 48, 48, 56, 64, 64, 64];
/// First octets never drawn, so bench clients (127.0.0.1, 192.0.2.x) stay
/// clean and the deliberate hits (203.0.113.0/24) are the only ones.
const V4_EXCLUDED: [u64; 5] = [10, 127, 192, 198, 203];

/// One random prefix, host bits cleared: 3 in 4 IPv4, else IPv6 in 2000::/4.
pub fn random_prefix(rng: &mut Rng) -> (IpAddr, u8) {
    if rng.below(4) == 0 {
        let g0 = 0x2000 + rng.below(0x1000);
        let g1 = rng.below(0x10000);
        let g2 = rng.below(0x10000);
        let g3 = rng.below(0x10000);
        let len = *rng.pick(&V6_LENS);
        let hi = (g0 << 48) | (g1 << 32) | (g2 << 16) | g3;
        let hi = hi & (u64::MAX << (64 - u32::from(len)));
        (IpAddr::V6(Ipv6Addr::from(u128::from(hi) << 64)), len)
    } else {
        let first = loop {
            let o = 1 + rng.below(223);
            if !V4_EXCLUDED.contains(&o) {
                break o;
            }
        };
        let addr = ((first << 24) | rng.below(1 << 24)) as u32;
        let len = *rng.pick(&V4_LENS);
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        (IpAddr::V4(Ipv4Addr::from(addr & mask)), len)
    }
}

/// The text form the Python generator writes too (IPv6 as four groups and `::`).
pub fn prefix_text((addr, len): (IpAddr, u8)) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/{len}"),
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/{len}", s[0], s[1], s[2], s[3])
        }
    }
}

pub fn list_name(i: usize) -> String {
    format!("list{i:02}")
}

const UA_WORDS: [&str; 10] = [
    "sqlmap",
    "nikto",
    "masscan",
    "zgrab",
    "nuclei",
    "httpx",
    "dirbuster",
    "gobuster",
    "wpscan",
    "acunetix",
];

fn ua_regex(j: usize, rng: &mut Rng) -> String {
    let a = rng.pick(&UA_WORDS);
    let b = rng.pick(&UA_WORDS);
    format!(r"^(?:{a}|{b})[/ -]v?[0-9]+(?:\.[0-9]+)*(?:-r{j})?")
}

fn lists(rng: &mut Rng) -> Value {
    let mut lists = Map::new();
    for i in 0..LISTS {
        let mut cidrs: Vec<String> = (0..CIDRS_PER_LIST)
            .map(|_| prefix_text(random_prefix(rng)))
            .collect();
        if i == 3 {
            cidrs[0] = "203.0.113.0/24".to_string();
        }
        if i == 7 {
            cidrs[0] = "2001:db8:bad::/48".to_string();
        }
        lists.insert(list_name(i), json!({ "cidrs": cidrs }));
    }
    Value::Object(lists)
}

const ACTIONS: [Option<&str>; 8] = [
    None,
    None,
    Some("allow"),
    Some("allow"),
    Some("monitor"),
    Some("challenge"),
    Some("challenge_all"),
    Some("block"),
];
const SCOPES: [&str; 3] = ["client", "client_route", "global"];

fn route(i: usize, rng: &mut Rng) -> Value {
    let mut m = Map::new();
    if i % 10 == 3 {
        m.insert(
            "path_regex".into(),
            json!([format!("^/api/v[0-9]+/svc{i}/[a-z]+/[0-9]+$")]),
        );
    } else {
        m.insert("path".into(), json!([format!("/svc{i}/*")]));
    }
    match i % 10 {
        5 => {
            m.insert(
                "host".into(),
                json!([
                    format!("svc{i}.example.com"),
                    format!("*.svc{i}.example.net")
                ]),
            );
        }
        7 => {
            let methods = if rng.below(2) == 0 {
                ["GET", "HEAD"]
            } else {
                ["POST", "PUT"]
            };
            m.insert("methods".into(), json!(methods));
        }
        9 => {
            m.insert(
                "headers".into(),
                json!([{ "name": "x-tenant", "equals": format!("t{i}") }]),
            );
            m.insert("except".into(), json!([format!("/svc{i}/public/*")]));
        }
        _ => {}
    }
    let mut r = Map::new();
    r.insert("name".into(), json!(format!("r{i:04}")));
    r.insert("match".into(), Value::Object(m));
    let action = *rng.pick(&ACTIONS);
    if let Some(a) = action {
        r.insert("action".into(), json!(a));
    }
    if matches!(action, Some("challenge" | "challenge_all")) && rng.below(2) == 0 {
        r.insert(
            "challenge".into(),
            json!({ "difficulty": 1 + rng.below(5) }),
        );
    }
    if rng.below(5) == 0 {
        let rate = format!("{}/minute", 100 + rng.below(900));
        let burst = rng.below(50);
        let scope = rng.pick(&SCOPES);
        r.insert(
            "rate_limit".into(),
            json!({ "rate": rate, "burst": burst, "scope": scope }),
        );
    }
    match i {
        BLOCK_ROUTE => json!({
            "name": "bench-block",
            "match": { "path": [format!("/svc{i}/*")] },
            "action": "block",
        }),
        ALLOW_ROUTE => json!({
            "name": "bench-allow",
            "match": { "path": [format!("/svc{i}/*")] },
            "action": "allow",
        }),
        TOKEN_ROUTE => json!({
            "name": "bench-token",
            "match": { "path": [format!("/svc{i}/*")] },
            "action": "challenge_all",
            "challenge": { "difficulty": TOKEN_DIFFICULTY },
        }),
        _ => Value::Object(r),
    }
}

const CLASS_SETS: [&[&str]; 6] = [
    &["tool"],
    &["automation"],
    &["ai_crawler"],
    &["seo"],
    &["tool", "automation"],
    &["unknown"],
];

fn rule(j: usize, rng: &mut Rng) -> Value {
    let mut weight = 5 + rng.below(40) as i64;
    let mut action: Option<&str> = None;
    let mut rate_limit = None;
    let when = match j % 10 {
        0 => json!({ "user_agent": ua_regex(j, rng) }),
        1 => {
            let classes = rng.pick(&CLASS_SETS);
            if rng.below(3) == 0 {
                rate_limit = Some(json!({ "rate": "60/minute", "burst": 10 }));
            }
            json!({ "client_class": classes })
        }
        2 => match rng.below(3) {
            0 => json!({ "headers": [{ "name": format!("x-debug-{j}"), "present": true }] }),
            1 => {
                json!({ "headers": [{ "name": "accept", "regex": format!("^application/x-evil-{j}") }] })
            }
            _ => json!({ "headers": [{ "name": "accept-language", "absent": true }] }),
        },
        3 => {
            let first = j / 10;
            let mut names = vec![list_name(first)];
            if rng.below(2) == 0 {
                names.push(list_name((first + 1 + rng.below(9) as usize) % LISTS));
            }
            action = *rng.pick(&[None, None, Some("challenge"), Some("block")]);
            json!({ "ip_in": names })
        }
        4 => {
            let ua = ua_regex(j, rng);
            let list = list_name(rng.below(LISTS as u64) as usize);
            json!({ "any": [
                { "user_agent": ua },
                { "ip_in": [list] },
                { "headers": [{ "name": format!("x-probe-{j}"), "present": true }] },
            ] })
        }
        5 => {
            let list = list_name(rng.below(LISTS as u64) as usize);
            json!({ "all": [
                { "client_class": ["tool", "automation"] },
                { "not": { "ip_in": [list] } },
            ] })
        }
        6 => json!({
            "not": { "any": [
                { "client_class": ["browser", "search_engine"] },
                { "headers": [{ "name": "accept-language", "present": true }] },
            ] },
            "methods": ["GET", "POST"],
        }),
        7 => {
            if rng.below(2) == 0 {
                json!({ "path_regex": [format!(r"^/(?:wp-admin|phpmyadmin|\.git|\.env|cgi-bin)/r{j}")] })
            } else {
                json!({ "path": [format!("/svc{}/debug/*", rng.below(ROUTES as u64))], "methods": ["POST"] })
            }
        }
        8 => json!({ "query": [{ "name": format!("debug{j}"), "present": true }] }),
        _ => {
            if rng.below(2) == 0 {
                action = Some("block");
                json!({ "crawler": ["spoofed"] })
            } else {
                weight = -weight;
                json!({ "all": [{ "client_class": ["search_engine"] }, { "crawler": ["verified"] }] })
            }
        }
    };
    let mut r = Map::new();
    r.insert("name".into(), json!(format!("rule{j:03}")));
    r.insert("when".into(), when);
    r.insert("weight".into(), json!(weight));
    if let Some(a) = action {
        r.insert("action".into(), json!(a));
    }
    if let Some(l) = rate_limit {
        r.insert("rate_limit".into(), l);
    }
    Value::Object(r)
}

/// Token keys (`ID:SECRET`, the last signs). Bench-only secrets.
pub const KEYS: [&str; 3] = [
    "1:bench-only-key-one-0123456789abcdef",
    "2:bench-only-key-two-0123456789abcdef",
    "3:bench-only-key-three-0123456789abcdef",
];

/// The whole policy document.
pub fn policy() -> Value {
    let lists = lists(&mut Rng::new(SEED ^ 1));
    let mut rng = Rng::new(SEED ^ 2);
    let routes: Vec<Value> = (0..ROUTES).map(|i| route(i, &mut rng)).collect();
    let mut rng = Rng::new(SEED ^ 3);
    let rules: Vec<Value> = (0..RULES).map(|j| rule(j, &mut rng)).collect();
    json!({
        "client": { "source": "connection" },
        "tokens": {
            "keys": KEYS,
            "ttl": "1h",
            "max_age": "1h",
            "bind_ip": true,
            "bind_user_agent": true,
            "header": "X-Palisade-Token",
        },
        "rate_limiting": { "buckets": 16384 },
        "lists": lists,
        "routes": routes,
        "default_route": { "rate_limit": { "rate": "600/minute", "burst": 60 } },
        "rules": rules,
    })
}
