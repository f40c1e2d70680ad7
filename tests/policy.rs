//! The policy engine through its public API: configuration in (YAML/JSON),
//! decisions and responses out. Every configuration feature and every error
//! the compiler can report.
//!
//! Compiling goes through a fake [`CompileEnv`], so environment variables
//! and list files are exactly what each test says.

use palisade::challenge::{self, Passed};
use palisade::config::{
    ActionName, ChallengeKind, Config, ConfigError, FailureMode, LimitsStore, LimitsUnavailable,
    RateScope, ScoreUse,
};
use palisade::crawlers::{ClientClass, Verification};
use palisade::policy::{
    Action, CompanionHealth, CompanionUse, CompileEnv, Decision, HealthRecord, OwnReply, Policy,
    Reason, Reply, Request, Response, TokenState, VerifyOutcome, DOWN_AFTER, HEALTH_KEY,
    MAX_VERIFY_BODY, STALE_AFTER,
};
use palisade::ratelimit::MemoryStore;
use palisade::scoring::{Scored, TopFeatures};
use palisade::token::TokenError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;

const KEY: &str = "1:policy-test-secret-0123456789";
const NOW_S: u64 = 1_800_000_000;
const NOW: u64 = NOW_S * SECOND;
const SECOND: u64 = 1_000_000_000;

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36";
const CURL: &str = "curl/8.5.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// Inside 66.249.64.0/27 of datasets/networks/google-crawlers.txt.
const GOOGLE_IP: &str = "66.249.64.1";
const CLIENT_IP: &str = "203.0.113.7";

// ---------------------------------------------------------------------------
// Harness

/// Environment variables and files, exactly as each test gives them.
#[derive(Default)]
struct FakeEnv {
    vars: HashMap<String, String>,
    files: HashMap<String, String>,
}

impl FakeEnv {
    fn with_var(mut self, name: &str, value: &str) -> FakeEnv {
        self.vars.insert(name.into(), value.into());
        self
    }
    fn with_file(mut self, path: &str, text: &str) -> FakeEnv {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl CompileEnv for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("cannot read `{path}`: no such file"))
    }
}

/// The configuration with a token key, unless it configures `tokens` itself.
fn with_key(body: &str) -> String {
    let top_level_tokens = body
        .lines()
        .any(|l| l.starts_with("tokens:") || l.starts_with("{\"tokens\""));
    if top_level_tokens {
        body.to_string()
    } else {
        format!("tokens:\n  keys: [\"{KEY}\"]\n{body}")
    }
}

fn compile_in(body: &str, env: &FakeEnv) -> Result<Policy, ConfigError> {
    Policy::from_yaml(&with_key(body), env)
}

fn policy(body: &str) -> Policy {
    policy_in(body, &FakeEnv::default())
}

fn policy_in(body: &str, env: &FakeEnv) -> Policy {
    match compile_in(body, env) {
        Ok(p) => p,
        Err(e) => panic!("does not compile: {e}\n{body}"),
    }
}

fn error_in(body: &str, env: &FakeEnv) -> ConfigError {
    match compile_in(body, env) {
        Ok(_) => panic!("compiled, expected an error:\n{body}"),
        Err(e) => e,
    }
}

/// Asserts the error's path exactly and that its reason mentions each part.
fn assert_error_in(body: &str, env: &FakeEnv, path: &str, reason_parts: &[&str]) {
    let e = error_in(body, env);
    assert_eq!(e.path, path, "path of `{e}` for:\n{body}");
    for part in reason_parts {
        assert!(
            e.reason.contains(part),
            "reason of `{e}` lacks `{part}` for:\n{body}"
        );
    }
    assert!(!e.reason.contains('\n'), "one-line reason: {:?}", e.reason);
    let shown = e.to_string();
    if !path.is_empty() {
        assert_eq!(shown, format!("{path}: {}", e.reason));
    }
}

fn assert_error(body: &str, path: &str, reason_parts: &[&str]) {
    assert_error_in(body, &FakeEnv::default(), path, reason_parts);
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An owned request; [`Req::request`] borrows it as the engine's type.
#[derive(Clone)]
struct Req {
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    ip: Option<IpAddr>,
}

impl Req {
    /// A browser-like GET from `CLIENT_IP`, over plain http to a public
    /// host (so no `Sec-Fetch-*` or client hints are expected).
    fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            host: "example.com".into(),
            headers: vec![
                ("User-Agent".into(), CHROME.into()),
                ("Accept".into(), "text/html".into()),
                ("Accept-Language".into(), "en".into()),
            ],
            ip: Some(ip(CLIENT_IP)),
        }
    }
    fn method(mut self, m: &str) -> Req {
        self.method = m.into();
        self
    }
    fn host(mut self, h: &str) -> Req {
        self.host = h.into();
        self
    }
    fn ip(mut self, a: &str) -> Req {
        self.ip = Some(ip(a));
        self
    }
    fn no_ip(mut self) -> Req {
        self.ip = None;
        self
    }
    /// Sets a header, replacing any of the same name.
    fn header(mut self, name: &str, value: &str) -> Req {
        self = self.without(name);
        self.headers.push((name.into(), value.into()));
        self
    }
    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    fn ua(self, ua: &str) -> Req {
        self.header("User-Agent", ua)
    }
    fn request(&self) -> Request<'_> {
        Request::new(&self.method, &self.path, &self.host, &self.headers, self.ip)
    }
}

/// One decision with a fresh rate-limit store, at `NOW`.
fn decide<'p>(p: &'p Policy, r: &Req) -> Decision<'p> {
    let mut store = MemoryStore::new(64);
    p.decide(&r.request(), &mut store, NOW)
}

fn fired(d: &Decision) -> Vec<String> {
    d.rules.iter().map(|r| r.name.to_string()).collect()
}

fn route_of(p: &Policy, r: &Req) -> String {
    decide(p, r).route.to_string()
}

fn header<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What the policy sends for decision `d` on `r`, at `NOW`, for decisions
/// that must not need the companion's health (the filter's own responses).
fn respond(p: &Policy, d: &Decision, r: &Req) -> Option<Response> {
    let health = || -> CompanionHealth { panic!("health read for {:?}", d.challenge) };
    p.respond(d, &r.request(), health, NOW).response
}

fn body_json(r: &Response) -> Value {
    assert_eq!(header(r, "content-type"), Some("application/json"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

// ---------------------------------------------------------------------------
// Parsing

#[test]
fn json_and_yaml_configs_compile_alike() {
    let json_text = format!(
        r#"{{"tokens": {{"keys": ["{KEY}"]}},
            "routes": [{{"name": "api", "match": {{"path": "/api/*"}}, "action": "block"}}]}}"#
    );
    let env = FakeEnv::default();
    let from_json = Policy::from_json(&json_text, &env).unwrap();
    let config = Config::from_json(&json_text).unwrap();
    let compiled = Policy::compile(config, &env).unwrap();
    let from_yaml = policy("routes:\n  - {name: api, match: {path: /api/*}, action: block}\n");
    for p in [&from_json, &compiled, &from_yaml] {
        let d = decide(p, &Req::get("/api/x"));
        assert_eq!((d.route, d.action), ("api", Action::Block));
        assert_eq!(p.route_names().collect::<Vec<_>>(), ["api", "default"]);
    }
    // JSON errors carry the same paths as YAML ones.
    let e = Config::from_json(r#"{"routes": [{"match": {"pathh": "/a"}}]}"#).unwrap_err();
    assert_eq!(e.path, "routes[0].match.pathh");
    let e = Policy::from_json("{\"routes\": [", &env).unwrap_err();
    assert!(e.reason.contains("EOF"), "{e}");
}

#[test]
fn the_demo_policy_compiles() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/envoy/demo-policy.yaml"
    ))
    .unwrap();
    let p = Policy::from_yaml(&text, &FakeEnv::default()).unwrap();
    let s = p.summary();
    assert_eq!(s.routes, 14);
    assert_eq!(s.rules, 13);
    assert_eq!(s.keys, 1);
    assert_eq!(
        s.lists,
        vec![("denylist".to_string(), 1), ("office".to_string(), 2)]
    );
    // And its comments hold: admin blocked, /login challenges everyone.
    assert_eq!(decide(&p, &Req::get("/admin/users")).action, Action::Block);
    assert_eq!(decide(&p, &Req::get("/login")).action, Action::Challenge);
    assert_eq!(decide(&p, &Req::get("/")).action, Action::Allow);
    // One route per kind, each challenging everyone with that kind.
    for (path, kind) in [
        ("/demo/text", ChallengeKind::Text),
        ("/demo/one-click", ChallengeKind::OneClick),
        ("/demo/grid", ChallengeKind::Grid),
        ("/demo/audio", ChallengeKind::Audio),
        ("/demo/pow", ChallengeKind::Pow),
    ] {
        let d = decide(&p, &Req::get(path));
        assert_eq!(
            (d.action, d.challenge.map(|c| c.kind)),
            (Action::Challenge, Some(kind))
        );
    }
    let fake = Req::get("/").ua(GOOGLEBOT);
    assert_eq!(decide(&p, &fake).action, Action::Block);
    let real = Req::get("/").ua(GOOGLEBOT).ip(GOOGLE_IP);
    assert_eq!(decide(&p, &real).action, Action::Allow);
}

// ---------------------------------------------------------------------------
// Routes

#[test]
fn path_globs() {
    let p = policy(
        r#"
routes:
  - {name: api, match: {path: /api/*}}
  - {name: dev, match: {path: "*/dev/*"}}
  - {name: login, match: {path: /login*}}
  - {name: literal, match: {path: "/a.b[c]?"}}
  - {name: several, match: {path: [/x, /y/*]}}
"#,
    );
    for (path, route) in [
        ("/api/", "api"),
        ("/api/v1/users", "api"),
        ("/api", "default"),
        ("/apix/", "default"),
        ("/API/x", "default"), // paths are case-sensitive
        ("/x/y/dev/z", "dev"),
        ("/dev/", "dev"),
        ("/dev", "default"),
        ("/x/devices/", "default"),
        ("/login", "login"),
        ("/login.php", "login"),
        ("/login/x/y", "login"),
        ("/x/login", "default"),
        ("/a.b[c]?", "literal"),
        ("/axb[c]?", "default"),
        ("/a.bc", "default"),
        ("/x", "several"),
        ("/y/z", "several"),
        ("/xy", "default"),
    ] {
        let mut r = Req::get("/");
        r.path = path.into(); // not through `Request::new`: keeps the `?`
        let req = Request {
            path: &r.path,
            query: "",
            ..r.request()
        };
        let d = p.decide(&req, &mut MemoryStore::new(1), NOW);
        assert_eq!(d.route, route, "{path}");
    }
    // The query string is not part of the path.
    assert_eq!(route_of(&p, &Req::get("/login?next=/api/")), "login");
}

#[test]
fn path_regexes() {
    let p = policy(
        r#"
routes:
  - {name: search, match: {path_regex: '^/search(/|$)'}}
  - {name: php, match: {path_regex: ['\.php$', '^/cgi-bin/']}}
  - {name: mixed, match: {path: /m/*, path_regex: '^/n[0-9]+$'}}
"#,
    );
    for (path, route) in [
        ("/search", "search"),
        ("/search/x", "search"),
        ("/searches", "default"),
        ("/x/index.php", "php"),
        ("/x/index.php5", "default"),
        ("/cgi-bin/x", "php"),
        ("/m/1", "mixed"),
        ("/n42", "mixed"),
        ("/n42x", "default"),
    ] {
        assert_eq!(route_of(&p, &Req::get(path)), route, "{path}");
    }
}

#[test]
fn host_globs_ignore_port_and_case() {
    let p = policy(
        r#"
routes:
  - {name: apex, match: {host: Example.COM}}
  - {name: sub, match: {host: "*.example.com"}}
  - {name: v6, match: {host: "[::1]"}}
  - {name: several, match: {host: [a.test, b.test]}}
"#,
    );
    for (host, route) in [
        ("example.com", "apex"),
        ("EXAMPLE.com:8443", "apex"),
        ("api.example.com", "sub"),
        ("A.B.Example.Com:80", "sub"),
        ("notexample.com", "default"),
        ("example.org", "default"),
        ("example.com.evil.test", "default"),
        ("[::1]:8080", "v6"),
        ("[::1]", "v6"),
        ("b.test:1", "several"),
        ("c.test", "default"),
    ] {
        assert_eq!(route_of(&p, &Req::get("/").host(host)), route, "{host}");
    }
}

#[test]
fn methods_headers_and_query() {
    let p = policy(
        r#"
routes:
  - {name: write, match: {path: /w, methods: [post, PUT]}}
  - name: eq
    match: {headers: [{name: X-Env, equals: staging}]}
  - name: re
    match: {headers: [{name: x-version, regex: '^v[0-9]+$'}]}
  - name: present
    match: {headers: [{name: X-Debug, present: true}]}
  - name: absent
    match: {path: /absent, headers: [{name: cookie, absent: true}]}
  - name: present-false
    match: {path: /pf, headers: [{name: cookie, present: false}]}
  - name: absent-false
    match: {path: /af, headers: [{name: cookie, absent: false}]}
  - name: q-eq
    match: {query: [{name: mode, equals: "a b"}]}
  - name: q-present
    match: {query: [{name: q, present: true}]}
  - name: q-regex
    match: {query: [{name: page, regex: '^\d+$'}]}
  - name: q-absent
    match: {path: /qa, query: [{name: token, absent: true}]}
"#,
    );
    let cases: Vec<(Req, &str)> = vec![
        (Req::get("/w").method("POST"), "write"),
        (Req::get("/w").method("put"), "write"),
        (Req::get("/w"), "default"),
        (Req::get("/").header("x-env", "staging"), "eq"),
        (Req::get("/").header("X-ENV", "Staging"), "default"),
        (Req::get("/").header("X-Version", "v12"), "re"),
        (Req::get("/").header("X-Version", "v12b"), "default"),
        (Req::get("/").header("x-debug", ""), "present"),
        (Req::get("/absent"), "absent"),
        (Req::get("/absent").header("Cookie", "a=1"), "default"),
        (Req::get("/pf"), "present-false"),
        (Req::get("/pf").header("Cookie", "a=1"), "default"),
        (Req::get("/af"), "default"),
        (Req::get("/af").header("Cookie", "a=1"), "absent-false"),
        (Req::get("/?mode=a%20b"), "q-eq"),
        (Req::get("/?x=1&mode=a+b"), "q-eq"),
        (Req::get("/?mode=ab"), "default"),
        (Req::get("/?Mode=a+b"), "default"),
        (Req::get("/?q="), "q-present"),
        (Req::get("/?q"), "q-present"),
        (Req::get("/?page=12"), "q-regex"),
        (Req::get("/?page=x"), "default"),
        (Req::get("/qa"), "q-absent"),
        (Req::get("/qa?token=1"), "default"),
    ];
    for (r, route) in cases {
        assert_eq!(
            route_of(&p, &r),
            route,
            "{} {}?{:?}",
            r.method,
            r.path,
            r.headers
        );
    }
}

#[test]
fn every_match_test_must_hold() {
    let p = policy(
        r#"
routes:
  - name: all
    match:
      path: /app/*
      host: app.test
      methods: [POST]
      headers: [{name: content-type, regex: json}]
      query: [{name: v, equals: "2"}]
"#,
    );
    let good = Req::get("/app/x?v=2")
        .host("app.test")
        .method("POST")
        .header("Content-Type", "application/json");
    assert_eq!(route_of(&p, &good), "all");
    let mut bad = vec![
        good.clone().host("other.test"),
        good.clone().method("GET"),
        good.clone().without("content-type"),
        good.clone().header("Content-Type", "text/plain"),
    ];
    let mut wrong_path = good.clone();
    wrong_path.path = "/other?v=2".into();
    let mut wrong_query = good.clone();
    wrong_query.path = "/app/x?v=3".into();
    bad.extend([wrong_path, wrong_query]);
    for r in bad {
        assert_eq!(route_of(&p, &r), "default", "{} {}", r.method, r.path);
    }
}

#[test]
fn except_first_match_and_default_route() {
    let p = policy(
        r#"
routes:
  - name: api
    match: {path: /api/*, except: [/api/public/*, /api/health]}
    action: block
  - {name: broad, match: {path: /api/public/*}, action: allow}
  - {match: {except: /z*}, action: monitor}
  - {name: never, match: {path: /api/public/x}, action: block}
default_route:
  action: challenge_all
"#,
    );
    let d = decide(&p, &Req::get("/api/users"));
    assert_eq!(
        (d.route, d.route_index, d.action),
        ("api", Some(0), Action::Block)
    );
    let d = decide(&p, &Req::get("/api/public/x"));
    assert_eq!(
        (d.route, d.route_index, d.action),
        ("broad", Some(1), Action::Allow)
    );
    // An unnamed route is named by its place; `except` alone works too.
    let d = decide(&p, &Req::get("/api/health"));
    assert_eq!(
        (d.route, d.route_index, d.action),
        ("routes[2]", Some(2), Action::Monitor)
    );
    let d = decide(&p, &Req::get("/zoo"));
    assert_eq!((d.route, d.route_index), ("default", None));
    assert_eq!(d.route_action, Some(ActionName::ChallengeAll));
    assert_eq!(d.action, Action::Challenge);
    assert_eq!(
        p.route_names().collect::<Vec<_>>(),
        ["api", "broad", "routes[2]", "never", "default"]
    );

    // First match in file order: swapping two overlapping routes swaps the winner.
    let a = policy(
        "routes:\n  - {name: a, match: {path: /x/*}}\n  - {name: b, match: {path: /x/y/*}}\n",
    );
    let b = policy(
        "routes:\n  - {name: b, match: {path: /x/y/*}}\n  - {name: a, match: {path: /x/*}}\n",
    );
    assert_eq!(route_of(&a, &Req::get("/x/y/z")), "a");
    assert_eq!(route_of(&b, &Req::get("/x/y/z")), "b");
    assert_eq!(route_of(&b, &Req::get("/x/q")), "a");
}

// ---------------------------------------------------------------------------
// Actions: the route x score table

/// Routes for every action; rule `sN` adds N when the query has `s=N`.
const TABLE: &str = r#"
routes:
  - {name: none, match: {path: /none}}
  - {name: allow, match: {path: /allow}, action: allow}
  - {name: monitor, match: {path: /monitor}, action: monitor}
  - {name: challenge, match: {path: /challenge}, action: challenge}
  - {name: challenge_all, match: {path: /challenge_all}, action: challenge_all}
  - {name: block, match: {path: /block}, action: block}
rules:
  - {name: s49, when: {query: [{name: s, equals: "49"}]}, weight: 49}
  - {name: s50, when: {query: [{name: s, equals: "50"}]}, weight: 50}
  - {name: s69, when: {query: [{name: s, equals: "69"}]}, weight: 69}
  - {name: s70, when: {query: [{name: s, equals: "70"}]}, weight: 70}
  - {name: s89, when: {query: [{name: s, equals: "89"}]}, weight: 89}
  - {name: s90, when: {query: [{name: s, equals: "90"}]}, weight: 90}
  - {name: s100, when: {query: [{name: s, equals: "100"}]}, weight: 100}
"#;

#[test]
fn route_action_and_score_table() {
    use Action::{Allow as A, Block as B, Challenge as C, Monitor as M};
    let p = policy(TABLE);
    // Scores:          0  49  50  69  70  89  90  100
    let table: [(&str, [Action; 8]); 6] = [
        ("none", [A, A, M, M, C, C, B, B]),
        ("allow", [A, A, M, M, M, M, M, M]),
        ("monitor", [M, M, M, M, M, M, M, M]),
        ("challenge", [A, A, C, C, C, C, B, B]),
        ("challenge_all", [C, C, C, C, C, C, B, B]),
        ("block", [B, B, B, B, B, B, B, B]),
    ];
    let scores = [0u8, 49, 50, 69, 70, 89, 90, 100];
    let score_actions = [
        ActionName::Allow,
        ActionName::Allow,
        ActionName::Monitor,
        ActionName::Monitor,
        ActionName::Challenge,
        ActionName::Challenge,
        ActionName::Block,
        ActionName::Block,
    ];
    for (route, expected) in table {
        for (i, &score) in scores.iter().enumerate() {
            let d = decide(&p, &Req::get(&format!("/{route}?s={score}")));
            assert_eq!(d.route, route);
            assert_eq!(d.score, score);
            assert_eq!(d.score_action, score_actions[i]);
            assert_eq!(d.action, expected[i], "route {route}, score {score}");
            assert_eq!(d.reason, Reason::RouteAndScore);
            assert_eq!(d.challenge.is_some(), d.action == C, "{route} {score}");
            assert_eq!(d.block.is_some(), d.action == B, "{route} {score}");
            assert_eq!(d.action.passes(), matches!(d.action, A | M));
        }
    }
}

// ---------------------------------------------------------------------------
// Rules: conditions

#[test]
fn ip_lists_v4_v6_builtin_and_files() {
    let env = FakeEnv::default().with_file(
        "/etc/palisade/deny.txt",
        "# deny list\n203.0.113.0/25  # first half\n\n2001:db8:ff::/64\n",
    );
    let p = policy_in(
        r#"
lists:
  v4: {cidrs: [192.0.2.0/24, 198.51.100.7]}
  v6: {cidrs: ["2001:db8:1::/48"]}
  google: {builtin: [google-crawlers]}
  fromfile: {files: [/etc/palisade/deny.txt]}
  mixed: {cidrs: [10.0.0.0/8], files: [/etc/palisade/deny.txt]}
rules:
  - {name: in-v4, when: {ip_in: v4}, weight: 1}
  - {name: in-v6, when: {ip_in: v6}, weight: 1}
  - {name: in-google, when: {ip_in: google}, weight: 1}
  - {name: in-file, when: {ip_in: fromfile}, weight: 1}
  - {name: in-either, when: {ip_in: [v4, v6]}, weight: 1}
  - {name: in-mixed, when: {ip_in: mixed}, weight: 1}
"#,
        &env,
    );
    for (addr, rules) in [
        ("192.0.2.200", &["in-v4", "in-either"][..]),
        ("198.51.100.7", &["in-v4", "in-either"]),
        ("198.51.100.8", &[]),
        ("::ffff:192.0.2.1", &["in-v4", "in-either"]),
        ("2001:db8:1:ffff::1", &["in-v6", "in-either"]),
        ("2001:db8:2::1", &[]),
        (GOOGLE_IP, &["in-google"]),
        ("66.249.64.32", &["in-google"]),
        ("203.0.113.5", &["in-file", "in-mixed"]),
        ("203.0.113.200", &[]),
        ("2001:db8:ff::9", &["in-file", "in-mixed"]),
        ("10.1.2.3", &["in-mixed"]),
    ] {
        let d = decide(&p, &Req::get("/").ip(addr));
        assert_eq!(fired(&d), rules, "{addr}");
    }
    assert!(fired(&decide(&p, &Req::get("/").no_ip())).is_empty());
    let lists = p.summary().lists;
    assert!(lists.contains(&("v4".to_string(), 2)));
    assert!(lists.contains(&("fromfile".to_string(), 2)));
}

#[test]
fn user_agent_regex_and_client_class() {
    let p = policy(
        r#"
rules:
  - {name: py, when: {user_agent: '^python-requests/'}, weight: 1}
  - {name: empty-ua, when: {user_agent: '^$'}, weight: 1}
  - {name: tool, when: {client_class: [tool]}, weight: 1}
  - {name: automation, when: {client_class: [automation]}, weight: 1}
  - {name: browser, when: {client_class: [browser]}, weight: 1}
  - {name: bot, when: {client_class: [bot]}, weight: 1}
  - {name: search-or-seo, when: {client_class: [search_engine, seo]}, weight: 1}
"#,
    );
    for (ua, class, rules) in [
        (
            Some("Python-Requests/2.31"),
            ClientClass::Tool,
            &["py", "tool"][..],
        ),
        (Some("x python-requests/2"), ClientClass::Tool, &["tool"]),
        (None, ClientClass::Bot, &["empty-ua", "bot"]),
        (Some(CURL), ClientClass::Tool, &["tool"]),
        (Some(HEADLESS), ClientClass::Automation, &["automation"]),
        (Some(CHROME), ClientClass::Browser, &["browser"]),
        (Some("zzqx-agent/0"), ClientClass::Bot, &["bot"]),
        (
            Some(GOOGLEBOT),
            ClientClass::SearchEngine,
            &["search-or-seo"],
        ),
    ] {
        let r = match ua {
            Some(ua) => Req::get("/").ua(ua),
            None => Req::get("/").without("user-agent"),
        };
        let d = decide(&p, &r);
        assert_eq!(d.client.class, class, "{ua:?}");
        assert_eq!(fired(&d), rules, "{ua:?}");
    }
}

#[test]
fn crawler_verification() {
    let p = policy(
        r#"
lists:
  office: {cidrs: [192.0.2.0/24]}
crawlers:
  extra:
    - {name: acme-uptime, class: monitoring, pattern: 'AcmeUptime/\d', networks: office}
    - {name: my-googlebot, class: seo, pattern: 'Googlebot/9'}
rules:
  - {name: verified, when: {crawler: [verified]}, weight: -10}
  - {name: spoofed, when: {crawler: [spoofed]}, action: block}
  - {name: unverifiable, when: {crawler: [unverifiable]}, weight: 10}
"#,
    );
    let d = decide(&p, &Req::get("/").ua(GOOGLEBOT).ip(GOOGLE_IP));
    assert_eq!(d.client.class, ClientClass::SearchEngine);
    assert_eq!(d.client.name, Some("googlebot"));
    assert_eq!(d.client.verification, Some(Verification::Verified));
    assert_eq!(fired(&d), ["verified"]);
    assert_eq!((d.score, d.action), (0, Action::Allow));

    let d = decide(&p, &Req::get("/").ua(GOOGLEBOT));
    assert_eq!(d.client.verification, Some(Verification::Spoofed));
    assert_eq!(fired(&d), ["spoofed"]);
    assert_eq!(
        (d.action, d.reason),
        (Action::Block, Reason::RuleAction("spoofed"))
    );

    // IPv6 ranges verify too (2001:4860:4801:12::/64 is in the list).
    let d = decide(&p, &Req::get("/").ua(GOOGLEBOT).ip("2001:4860:4801:12::5"));
    assert_eq!(d.client.verification, Some(Verification::Verified));

    let d = decide(&p, &Req::get("/").ua(GOOGLEBOT).no_ip());
    assert_eq!(d.client.verification, Some(Verification::Unverifiable));
    assert_eq!(fired(&d), ["unverifiable"]);

    // Browsers are not crawlers: no verification, no crawler rule.
    let d = decide(&p, &Req::get("/"));
    assert_eq!(d.client.verification, None);
    assert!(fired(&d).is_empty());

    // Extra entries come before the built-ins and verify against named lists.
    let d = decide(&p, &Req::get("/").ua("AcmeUptime/2").ip("192.0.2.9"));
    assert_eq!(
        (d.client.class, d.client.name),
        (ClientClass::Monitoring, Some("acme-uptime"))
    );
    assert_eq!(d.client.verification, Some(Verification::Verified));
    let d = decide(&p, &Req::get("/").ua("AcmeUptime/2"));
    assert_eq!(d.client.verification, Some(Verification::Spoofed));
    let d = decide(
        &p,
        &Req::get("/").ua("Mozilla/5.0 (compatible; Googlebot/9.0)"),
    );
    assert_eq!(
        (d.client.class, d.client.name),
        (ClientClass::Seo, Some("my-googlebot"))
    );
    assert_eq!(d.client.verification, Some(Verification::Unverifiable));

    // Without the built-ins, only the extras classify.
    let bare =
        policy("crawlers:\n  builtin: false\n  extra: [{name: x, class: tool, pattern: '^x/'}]\n");
    assert_eq!(bare.summary().crawler_patterns, 1);
    assert_eq!(
        decide(&bare, &Req::get("/").ua(CURL)).client.class,
        ClientClass::Unknown
    );
    assert_eq!(
        decide(&bare, &Req::get("/").ua("x/1")).client.class,
        ClientClass::Tool
    );
}

#[test]
fn rule_headers_query_methods_and_paths() {
    let p = policy(
        r#"
rules:
  - {name: hdr, when: {headers: [{name: Accept-Language, absent: true}]}, weight: 1}
  - {name: hdr-eq, when: {headers: [{name: x-env, equals: prod}]}, weight: 2}
  - {name: qry, when: {query: [{name: debug, present: true}]}, weight: 4}
  - {name: qry-re, when: {query: [{name: id, regex: "^[0-9]+$"}]}, weight: 8}
  - {name: mth, when: {methods: [post, PUT]}, weight: 16}
  - {name: pth, when: {path: ["/wp-*", "*.php"]}, weight: 32}
  - {name: rx, when: {path_regex: '\.(env|git)$'}, weight: 64}
"#,
    );
    for (r, rules, score) in [
        (Req::get("/"), &[][..], 0),
        (Req::get("/").without("accept-language"), &["hdr"], 1),
        (Req::get("/").header("X-Env", "prod"), &["hdr-eq"], 2),
        (Req::get("/").header("X-Env", "Prod"), &[], 0),
        (Req::get("/?debug"), &["qry"], 4),
        (Req::get("/?id=17"), &["qry-re"], 8),
        (Req::get("/?id=x17"), &[], 0),
        (Req::get("/").method("POST"), &["mth"], 16),
        (Req::get("/").method("PUT"), &["mth"], 16),
        // As for routes, methods match whatever their case.
        (Req::get("/").method("post"), &["mth"], 16),
        (Req::get("/").method("DELETE"), &[], 0),
        (Req::get("/wp-admin/"), &["pth"], 32),
        (Req::get("/x/index.php"), &["pth"], 32),
        (Req::get("/.env"), &["rx"], 64),
        (Req::get("/.git"), &["rx"], 64),
        (Req::get("/.gitignore"), &[], 0),
        (
            Req::get("/wp-x.php?debug=1")
                .method("POST")
                .without("accept-language"),
            &["hdr", "qry", "mth", "pth"],
            53,
        ),
    ] {
        let d = decide(&p, &r);
        assert_eq!(fired(&d), rules, "{} {}", r.method, r.path);
        assert_eq!(d.score, score, "{} {}", r.method, r.path);
        let weights: i32 = d.rules.iter().map(|f| f.weight).sum();
        assert_eq!(weights, i32::from(score));
    }
}

#[test]
fn all_any_not_nesting() {
    let p = policy(
        r#"
rules:
  - name: nested
    when:
      any:
        - all:
            - methods: [POST]
            - path: /login
        - not:
            any:
              - headers: [{name: accept, present: true}]
              - client_class: [browser]
    weight: 30
  - name: implicit-all
    when: {methods: [DELETE], path: /x, user_agent: curl}
    weight: 5
  - name: not-ua
    when: {not: {user_agent: 'mozilla'}}
    weight: 7
"#,
    );
    let with_accept = |r: Req| r.header("Accept", "text/html");
    for (r, rules) in [
        (
            with_accept(Req::get("/login").method("POST")),
            &["nested"][..],
        ),
        (with_accept(Req::get("/login")), &[]),
        (with_accept(Req::get("/other").method("POST")), &[]),
        (
            Req::get("/").ua(CURL).without("Accept"),
            &["nested", "not-ua"],
        ),
        (Req::get("/").without("Accept"), &[]),
        (with_accept(Req::get("/").ua(CURL)), &["not-ua"]),
        (
            with_accept(Req::get("/x").method("DELETE").ua(CURL)),
            &["implicit-all", "not-ua"],
        ),
        (
            with_accept(Req::get("/y").method("DELETE").ua(CURL)),
            &["not-ua"],
        ),
    ] {
        assert_eq!(
            fired(&decide(&p, &r)),
            rules,
            "{} {} {:?}",
            r.method,
            r.path,
            r.headers
        );
    }
}

#[test]
fn shared_pattern_sets_keep_rules_apart() {
    // Path and user-agent patterns of all rules share one RegexSet each.
    let p = policy(
        r#"
rules:
  - {name: a, when: {path: /a, user_agent: alpha}, weight: 1}
  - {name: b, when: {path: [/b1, /b2], user_agent: beta}, weight: 2}
  - {name: c, when: {path_regex: '^/c$', user_agent: gamma}, weight: 4}
"#,
    );
    for (path, ua, rules) in [
        ("/a", "alpha", &["a"][..]),
        ("/a", "beta", &[]),
        ("/b2", "beta", &["b"]),
        ("/b2", "gamma", &[]),
        ("/c", "GAMMA", &["c"]),
        ("/c", "alpha", &[]),
    ] {
        assert_eq!(
            fired(&decide(&p, &Req::get(path).ua(ua))),
            rules,
            "{path} {ua}"
        );
    }
}

#[test]
fn weights_sum_and_clamp() {
    let p = policy(
        r#"
rules:
  - {name: big, when: {headers: [{name: x-big, present: true}]}, weight: 60}
  - {name: big2, when: {headers: [{name: x-big2, present: true}]}, weight: 60}
  - {name: huge, when: {headers: [{name: x-huge, present: true}]}, weight: 100000}
  - {name: minus, when: {headers: [{name: x-minus, present: true}]}, weight: -50}
  - {name: plus, when: {headers: [{name: x-plus, present: true}]}, weight: 30}
"#,
    );
    let with = |names: &[&str]| {
        let mut r = Req::get("/");
        for n in names {
            r = r.header(n, "1");
        }
        decide(&p, &r)
    };
    assert_eq!(with(&["x-big", "x-big2"]).score, 100);
    assert_eq!(with(&["x-big", "x-big2"]).action, Action::Block);
    assert_eq!(with(&["x-huge"]).score, 100);
    assert_eq!(with(&["x-minus", "x-plus"]).score, 0);
    assert_eq!(with(&["x-minus"]).score, 0);
    assert_eq!(with(&["x-minus", "x-big"]).score, 10);
    // Clamping happens on the total, not per rule: -50 + 100000 + 60 = 100.
    assert_eq!(with(&["x-minus", "x-huge"]).score, 100);
    // -50 cancels 60 of 120: the sum is taken before clamping.
    assert_eq!(with(&["x-minus", "x-big", "x-big2"]).score, 70);
    assert_eq!(
        with(&["x-minus", "x-big", "x-big2"]).action,
        Action::Challenge
    );
}

#[test]
fn custom_thresholds() {
    let rules = r#"
rules:
  - {name: s, when: {query: [{name: s, present: true}]}, weight: 10}
  - {name: t, when: {query: [{name: t, present: true}]}, weight: 10}
  - {name: u, when: {query: [{name: u, present: true}]}, weight: 10}
  - {name: v, when: {query: [{name: v, present: true}]}, weight: 70}
"#;
    let p = policy(&format!(
        "thresholds: {{monitor: 10, challenge: 20, block: 30}}\n{rules}"
    ));
    assert_eq!(decide(&p, &Req::get("/")).action, Action::Allow);
    assert_eq!(decide(&p, &Req::get("/?s")).action, Action::Monitor);
    assert_eq!(decide(&p, &Req::get("/?s&t")).action, Action::Challenge);
    assert_eq!(decide(&p, &Req::get("/?s&t&u")).action, Action::Block);
    assert_eq!(p.thresholds().challenge, 20);

    // 101 turns a threshold off: a score of 100 only challenges.
    let p = policy(&format!("thresholds: {{block: 101}}\n{rules}"));
    let d = decide(&p, &Req::get("/?s&t&u&v"));
    assert_eq!((d.score, d.action), (100, Action::Challenge));
    let p = policy(&format!(
        "thresholds: {{monitor: 101, challenge: 101, block: 101}}\n{rules}"
    ));
    assert_eq!(decide(&p, &Req::get("/?s&t&u&v")).action, Action::Allow);

    // Equal thresholds: the most severe wins.
    let p = policy(&format!(
        "thresholds: {{monitor: 20, challenge: 20, block: 20}}\n{rules}"
    ));
    assert_eq!(decide(&p, &Req::get("/?s")).action, Action::Allow);
    assert_eq!(decide(&p, &Req::get("/?s&t")).action, Action::Block);
}

// ---------------------------------------------------------------------------
// Rules: actions and overrides

#[test]
fn rule_actions_allow_wins_else_most_severe() {
    let p = policy(
        r#"
lists:
  office: {cidrs: [192.0.2.0/24]}
  deny: {cidrs: [198.51.100.0/24, 192.0.2.66]}
routes:
  - {name: blocked, match: {path: /admin/*}, action: block}
  - {name: open, match: {path: /open/*}, action: allow}
  - {name: plain, match: {path: /plain/*}}
rules:
  - {name: denied, when: {ip_in: deny}, action: block}
  - {name: office, when: {ip_in: office}, action: allow}
  - {name: watch, when: {headers: [{name: x-watch, present: true}]}, action: monitor}
  - {name: check, when: {headers: [{name: x-check, present: true}]}, action: challenge}
  - {name: check-all, when: {headers: [{name: x-check-all, present: true}]}, action: challenge_all}
  - {name: stop, when: {headers: [{name: x-stop, present: true}]}, action: block}
  - {name: heavy, when: {headers: [{name: x-heavy, present: true}]}, weight: 95}
"#,
    );
    // `allow` overrides a block route and a blocking score.
    let d = decide(
        &p,
        &Req::get("/admin/x").ip("192.0.2.1").header("x-heavy", "1"),
    );
    assert_eq!(
        (d.action, d.reason),
        (Action::Allow, Reason::RuleAllow("office"))
    );
    assert_eq!(d.score, 95);
    assert_eq!(d.block, None);
    // ... and over a blocking rule, whatever the order: an allow-list wins.
    let d = decide(
        &p,
        &Req::get("/plain/x").ip("192.0.2.1").header("x-stop", "1"),
    );
    assert_eq!(
        (d.action, d.reason),
        (Action::Allow, Reason::RuleAllow("office"))
    );
    let d = decide(&p, &Req::get("/plain/x").ip("192.0.2.66"));
    assert_eq!(fired(&d), ["denied", "office"]);
    assert_eq!(
        (d.action, d.reason),
        (Action::Allow, Reason::RuleAllow("office"))
    );
    // Otherwise the most severe rule action counts, not the first: an
    // earlier monitor rule does not cancel a later block rule.
    let d = decide(
        &p,
        &Req::get("/plain/x")
            .header("x-watch", "1")
            .header("x-stop", "1"),
    );
    assert_eq!(
        (d.action, d.reason),
        (Action::Block, Reason::RuleAction("stop"))
    );

    // Other actions are floors: they raise ...
    let d = decide(&p, &Req::get("/open/x").header("x-check", "1"));
    assert_eq!(
        (d.action, d.reason),
        (Action::Challenge, Reason::RuleAction("check"))
    );
    let d = decide(&p, &Req::get("/plain/x").header("x-check-all", "1"));
    assert_eq!(d.action, Action::Challenge);
    let d = decide(&p, &Req::get("/open/x").header("x-stop", "1"));
    assert_eq!(
        (d.action, d.reason),
        (Action::Block, Reason::RuleAction("stop"))
    );
    let d = decide(&p, &Req::get("/open/x").header("x-watch", "1"));
    assert_eq!(d.action, Action::Monitor);
    // ... but never lower.
    let d = decide(&p, &Req::get("/admin/x").header("x-watch", "1"));
    assert_eq!((d.action, d.reason), (Action::Block, Reason::RouteAndScore));
    let d = decide(
        &p,
        &Req::get("/plain/x")
            .header("x-check", "1")
            .header("x-heavy", "1"),
    );
    assert_eq!((d.action, d.reason), (Action::Block, Reason::RouteAndScore));
    assert_eq!(fired(&d), ["check", "heavy"]);
}

#[test]
fn rule_challenge_and_rate_limit_overrides() {
    let p = policy(
        r#"
challenge: {difficulty: 2}
routes:
  - {name: hard, match: {path: /hard/*}, action: challenge_all, challenge: {difficulty: 3},
     rate_limit: {rate: 100/minute}}
  - {name: easy, match: {path: /easy/*}, action: challenge_all}
rules:
  - {name: bot, when: {client_class: [tool]}, challenge: {difficulty: 5}}
  - {name: bot2, when: {user_agent: curl}, challenge: {difficulty: 1}, weight: 1}
  - {name: ai, when: {client_class: [automation]}, rate_limit: {rate: 1/hour}}
"#,
    );
    let spec = |r: Req| decide(&p, &r).challenge.map(|c| (c.kind, c.difficulty));
    assert_eq!(spec(Req::get("/easy/")), Some((ChallengeKind::Pow, 2)));
    assert_eq!(spec(Req::get("/hard/")), Some((ChallengeKind::Pow, 3)));
    // The first fired rule with challenge settings wins.
    assert_eq!(
        spec(Req::get("/hard/").ua(CURL)),
        Some((ChallengeKind::Pow, 5))
    );
    assert_eq!(
        spec(Req::get("/easy/").ua(CURL)),
        Some((ChallengeKind::Pow, 5))
    );
    // A rule's challenge settings alone are an effect, but no action.
    let d = decide(&p, &Req::get("/other").ua(CURL));
    assert_eq!((d.action, d.challenge), (Action::Allow, None));

    let d = decide(&p, &Req::get("/hard/"));
    let r = d.rate_limit.as_ref().unwrap();
    assert_eq!(r.source, "routes[0].rate_limit");
    assert_eq!(r.limit.rate.to_string(), "100/minute");
    let d = decide(&p, &Req::get("/hard/").ua(HEADLESS));
    let r = d.rate_limit.as_ref().unwrap();
    assert_eq!(r.source, "rules[2].rate_limit");
    assert_eq!(r.limit.rate.to_string(), "1/hour");
    assert!(decide(&p, &Req::get("/easy/")).rate_limit.is_none());
}

// ---------------------------------------------------------------------------
// Rate limits

#[test]
fn client_rate_limit_counts_and_429s() {
    let p = policy(
        r#"
routes:
  - name: api
    match: {path: /api/*}
    rate_limit: {rate: 10/minute, burst: 5}
"#,
    );
    let mut store = MemoryStore::new(p.rate_limit_buckets());
    let mut at = |r: &Req, t: u64| p.decide(&r.request(), &mut store, t).action;
    let me = Req::get("/api/x");
    // GCRA: an idle client gets burst + 1 at once ...
    for i in 0..6 {
        assert_eq!(at(&me, NOW), Action::Allow, "request {i}");
    }
    assert_eq!(at(&me, NOW), Action::RateLimited);
    // ... and at most count + burst in any one period (one per 6s refill).
    let mut admitted = 6;
    for s in 1..60 {
        if at(&me, NOW + s * SECOND) == Action::Allow {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 15);
    assert_eq!(at(&me, NOW + 59 * SECOND), Action::RateLimited);
    // Another client is counted on its own; unlimited routes are not counted.
    assert_eq!(
        at(&Req::get("/api/x").ip("203.0.113.8"), NOW),
        Action::Allow
    );
    assert_eq!(at(&Req::get("/other"), NOW), Action::Allow);
    // Later the allowance is back.
    assert_eq!(at(&me, NOW + 3600 * SECOND), Action::Allow);
}

#[test]
fn rate_limited_response_headers() {
    let p = policy(
        r#"
routes:
  - {name: api, match: {path: /api/*}, rate_limit: {rate: 2/second, burst: 1}}
"#,
    );
    let mut store = MemoryStore::new(16);
    let r = Req::get("/api/x");
    for _ in 0..2 {
        assert_eq!(
            p.decide(&r.request(), &mut store, NOW).action,
            Action::Allow
        );
    }
    let d = p.decide(&r.request(), &mut store, NOW);
    assert_eq!(
        (d.action, d.reason),
        (Action::RateLimited, Reason::RateLimit)
    );
    assert_eq!(d.status(403), Some(429));
    let rl = d.rate_limit.as_ref().unwrap();
    assert!(!rl.outcome.allowed);
    assert_eq!(rl.outcome.remaining, 0);
    assert_eq!(rl.outcome.retry_after_ns, SECOND / 2);
    assert_eq!(
        rl.key_text(),
        format!("client {CLIENT_IP}/32 (routes[0].rate_limit)")
    );

    let html = respond(&p, &d, &r).unwrap();
    assert_eq!(html.status, 429);
    assert_eq!(header(&html, "retry-after"), Some("1"));
    assert_eq!(
        header(&html, "ratelimit-policy"),
        Some("\"palisade\";q=3;w=1")
    );
    assert_eq!(header(&html, "ratelimit"), Some("\"palisade\";r=0;t=1"));
    assert_eq!(
        header(&html, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(html.body.contains("Too many requests"));

    let jr = r.clone().header("Accept", "application/json");
    let json = respond(&p, &d, &jr).unwrap();
    assert_eq!(json.status, 429);
    assert_eq!(
        body_json(&json),
        json!({"action": "rate_limited", "retry_after": 1})
    );
    assert_eq!(header(&json, "retry-after"), Some("1"));

    // Minute windows: w=60, Retry-After rounds up to whole seconds.
    let p = policy("default_route: {rate_limit: {rate: 10/minute}}\n");
    let mut store = MemoryStore::new(16);
    let r = Req::get("/");
    assert_eq!(
        p.decide(&r.request(), &mut store, NOW).action,
        Action::Allow
    );
    let d = p.decide(&r.request(), &mut store, NOW + SECOND / 10);
    assert_eq!(d.action, Action::RateLimited);
    assert_eq!(
        d.rate_limit.as_ref().unwrap().source,
        "default_route.rate_limit"
    );
    let resp = respond(&p, &d, &r).unwrap();
    assert_eq!(header(&resp, "retry-after"), Some("6"));
    assert_eq!(
        header(&resp, "ratelimit-policy"),
        Some("\"palisade\";q=10;w=60")
    );
}

#[test]
fn rate_limit_scopes() {
    let p = policy(
        r#"
routes:
  - {name: a, match: {path: /a}, rate_limit: {rate: 1/minute, scope: client}}
  - {name: b, match: {path: /b}, rate_limit: {rate: 1/minute, scope: client_route}}
  - {name: g, match: {path: /g}, rate_limit: {rate: 1/minute, scope: global}}
  - {name: x, match: {path: /x}}
  - {name: y, match: {path: /y}}
rules:
  - {name: shared, when: {headers: [{name: x-shared, present: true}]},
     rate_limit: {rate: 1/minute, scope: client}}
  - {name: per-route, when: {headers: [{name: x-per-route, present: true}]},
     rate_limit: {rate: 1/minute, scope: client_route}}
"#,
    );
    let mut store = MemoryStore::new(256);
    let mut act = |r: Req| p.decide(&r.request(), &mut store, NOW).action;
    use Action::{Allow, RateLimited};

    // global: every client shares one allowance.
    assert_eq!(act(Req::get("/g")), Allow);
    assert_eq!(act(Req::get("/g").ip("198.51.100.1")), RateLimited);
    // client: per client.
    assert_eq!(act(Req::get("/a")), Allow);
    assert_eq!(act(Req::get("/a")), RateLimited);
    assert_eq!(act(Req::get("/a").ip("198.51.100.1")), Allow);
    assert_eq!(act(Req::get("/b")), Allow);
    assert_eq!(act(Req::get("/b")), RateLimited);
    // A rule's `client` limit is shared by every route it fires on ...
    assert_eq!(act(Req::get("/x").header("x-shared", "1")), Allow);
    assert_eq!(act(Req::get("/y").header("x-shared", "1")), RateLimited);
    // ... its `client_route` limit is counted per route.
    assert_eq!(act(Req::get("/x").header("x-per-route", "1")), Allow);
    assert_eq!(act(Req::get("/y").header("x-per-route", "1")), Allow);
    assert_eq!(act(Req::get("/y").header("x-per-route", "1")), RateLimited);

    let d = p.decide(&Req::get("/g").request(), &mut MemoryStore::new(1), NOW);
    let rl = d.rate_limit.unwrap();
    assert_eq!(
        (rl.scope, rl.key_text().as_str()),
        (RateScope::Global, "global (routes[2].rate_limit)")
    );
    let d = p.decide(
        &Req::get("/y").header("x-per-route", "1").request(),
        &mut MemoryStore::new(1),
        NOW,
    );
    let rl = d.rate_limit.unwrap();
    assert_eq!(rl.scope, RateScope::ClientRoute);
    assert_eq!(
        rl.key_text(),
        format!("client {CLIENT_IP}/32 on route y (rules[1].rate_limit)")
    );
}

#[test]
fn ipv6_clients_are_grouped_by_prefix() {
    let body = "default_route: {rate_limit: {rate: 1/minute}}\n";
    let p = policy(body);
    let mut store = MemoryStore::new(256);
    let mut act = |a: &str| {
        p.decide(&Req::get("/").ip(a).request(), &mut store, NOW)
            .action
    };
    assert_eq!(act("2001:db8:1:2::1"), Action::Allow);
    assert_eq!(act("2001:db8:1:2:ffff:ffff:ffff:ffff"), Action::RateLimited);
    assert_eq!(act("2001:db8:1:3::1"), Action::Allow);
    // IPv4 stays per address, also when it arrives IPv4-mapped.
    assert_eq!(act("192.0.2.1"), Action::Allow);
    assert_eq!(act("::ffff:192.0.2.1"), Action::RateLimited);
    assert_eq!(act("192.0.2.2"), Action::Allow);
    let d = decide(&p, &Req::get("/").ip("2001:db8:1:2::1"));
    assert_eq!(d.client.prefix.unwrap().to_string(), "2001:db8:1:2::/64");

    // Configurable: /48 for IPv6, /24 for IPv4.
    let p = policy(&format!(
        "client: {{ipv6_prefix: 48, ipv4_prefix: 24}}\n{body}"
    ));
    let mut store = MemoryStore::new(256);
    let mut act = |a: &str| {
        p.decide(&Req::get("/").ip(a).request(), &mut store, NOW)
            .action
    };
    assert_eq!(act("2001:db8:1:2::1"), Action::Allow);
    assert_eq!(act("2001:db8:1:3::1"), Action::RateLimited);
    assert_eq!(act("192.0.2.1"), Action::Allow);
    assert_eq!(act("192.0.2.200"), Action::RateLimited);
}

#[test]
fn blocked_requests_are_not_counted() {
    let p = policy(
        r#"
routes:
  - {name: a, match: {path: /a}, action: block, rate_limit: {rate: 1/minute}}
  - {name: b, match: {path: /b}, rate_limit: {rate: 1/minute}}
rules:
  - {name: stop, when: {query: [{name: stop, present: true}]}, action: block}
"#,
    );
    let mut store = MemoryStore::new(16);
    for _ in 0..3 {
        let d = p.decide(&Req::get("/a").request(), &mut store, NOW);
        assert_eq!(d.action, Action::Block);
        assert!(d.rate_limit.is_none());
        let d = p.decide(&Req::get("/b?stop").request(), &mut store, NOW);
        assert_eq!(d.action, Action::Block);
    }
    assert_eq!(
        p.decide(&Req::get("/b").request(), &mut store, NOW).action,
        Action::Allow
    );
}

// ---------------------------------------------------------------------------
// Client identity

#[test]
fn x_forwarded_for_with_trusted_hops() {
    let rules = r#"
lists:
  office: {cidrs: [192.0.2.0/24]}
rules:
  - {name: office, when: {ip_in: office}, action: allow}
"#;
    let p = policy(&format!(
        "client: {{source: x_forwarded_for, trusted_hops: 1}}\n{rules}"
    ));
    let via_proxy = |xff: &str| Req::get("/").ip("10.0.0.1").header("X-Forwarded-For", xff);
    let d = decide(&p, &via_proxy("198.51.100.7"));
    assert_eq!(d.client.ip, Some(ip("198.51.100.7")));
    // A client claiming an office address in its own X-Forwarded-For is not believed.
    let d = decide(&p, &via_proxy("192.0.2.1, 198.51.100.7"));
    assert_eq!(d.client.ip, Some(ip("198.51.100.7")));
    assert!(fired(&d).is_empty());
    let d = decide(&p, &via_proxy("198.51.100.7, 192.0.2.1"));
    assert_eq!(fired(&d), ["office"]);
    // Without the header (or with garbage) the connection address is used.
    assert_eq!(
        decide(&p, &Req::get("/").ip("10.0.0.1")).client.ip,
        Some(ip("10.0.0.1"))
    );
    assert_eq!(
        decide(&p, &via_proxy("not an address")).client.ip,
        Some(ip("10.0.0.1"))
    );
    assert_eq!(
        p.client_ip(&via_proxy("[2001:db8::1]:443").request()),
        Some(ip("2001:db8::1"))
    );

    let p = policy(&format!(
        "client: {{source: x_forwarded_for, trusted_hops: 2}}\n{rules}"
    ));
    let d = decide(&p, &via_proxy("192.0.2.1, 198.51.100.7, 10.0.0.2"));
    assert_eq!(d.client.ip, Some(ip("198.51.100.7")));

    // `connection` (the default) ignores the header entirely.
    let p = policy(rules);
    let d = decide(&p, &via_proxy("192.0.2.1"));
    assert_eq!(d.client.ip, Some(ip("10.0.0.1")));
    assert!(fired(&d).is_empty());
}

// ---------------------------------------------------------------------------
// Pass tokens

const TOKENS: &str = r#"
challenge: {difficulty: 3}
routes:
  - {name: all, match: {path: /all/*}, action: challenge_all}
  - {name: some, match: {path: /some/*}, action: challenge}
  - {name: blocked, match: {path: /blocked/*}, action: block}
rules:
  - {name: tool, when: {client_class: [tool]}, weight: 50}
  - {name: hard, when: {query: [{name: hard, present: true}]}, challenge: {difficulty: 5}}
"#;

fn tokens_policy(extra: &str) -> Policy {
    policy(&format!(
        "tokens:\n  keys: [\"{KEY}\"]\n  header: X-Palisade-Token\n{extra}{TOKENS}"
    ))
}

fn with_cookie(r: Req, token: &str) -> Req {
    r.header("Cookie", &format!("other=1; palisade={token}; x=y"))
}

#[test]
fn a_valid_token_skips_challenges_of_its_level() {
    let p = tokens_policy("");
    let token = p.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(3), NOW_S);

    let d = decide(&p, &Req::get("/all/x"));
    assert_eq!((d.action, d.token), (Action::Challenge, TokenState::Absent));

    for r in [
        with_cookie(Req::get("/all/x"), &token),
        Req::get("/all/x").header("x-palisade-token", &token),
        Req::get("/all/x").header("X-PALISADE-TOKEN", &token),
    ] {
        let d = decide(&p, &r);
        assert_eq!((d.action, d.reason), (Action::Allow, Reason::PassToken));
        assert_eq!(
            d.token,
            TokenState::Valid {
                passed: Passed::pow(3),
                expires_at: NOW_S + 3600
            }
        );
        // The challenge it satisfied is still reported.
        assert_eq!(d.challenge.map(|c| c.difficulty), Some(3));
    }
    // `challenge` routes with a suspicious score, too.
    let curl_token = p.issue_token(Some(ip(CLIENT_IP)), CURL, Passed::pow(3), NOW_S);
    let d = decide(&p, &with_cookie(Req::get("/some/x").ua(CURL), &curl_token));
    assert_eq!(d.score, 50);
    assert_eq!(
        d.token,
        TokenState::Valid {
            passed: Passed::pow(3),
            expires_at: NOW_S + 3600
        }
    );
    assert_eq!((d.action, d.reason), (Action::Allow, Reason::PassToken));
    let d = decide(&p, &Req::get("/some/x").ua(CURL));
    assert_eq!(d.action, Action::Challenge);

    // A harder challenge needs a higher level.
    let d = decide(&p, &with_cookie(Req::get("/all/x?hard"), &token));
    assert_eq!(d.action, Action::Challenge);
    assert!(matches!(
        d.token,
        TokenState::Valid {
            passed: Passed { difficulty: 3, .. },
            ..
        }
    ));
    let strong = p.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(5), NOW_S);
    assert_eq!(
        decide(&p, &with_cookie(Req::get("/all/x?hard"), &strong)).action,
        Action::Allow
    );
    let weak = p.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(2), NOW_S);
    assert_eq!(
        decide(&p, &with_cookie(Req::get("/all/x"), &weak)).action,
        Action::Challenge
    );

    // A token never lifts a block.
    let d = decide(&p, &with_cookie(Req::get("/blocked/x"), &strong));
    assert!(matches!(d.token, TokenState::Valid { .. }));
    assert_eq!(d.action, Action::Block);
    // Nor is it needed where nothing is challenged.
    let d = decide(&p, &with_cookie(Req::get("/free"), &token));
    assert_eq!((d.action, d.reason), (Action::Allow, Reason::RouteAndScore));
}

#[test]
fn bad_tokens_are_rejected_with_a_reason() {
    let p = tokens_policy("");
    let client = Some(ip(CLIENT_IP));
    let token = p.issue_token(client, CHROME, Passed::pow(3), NOW_S);
    let state = |r: Req| {
        let d = decide(&p, &r);
        assert_eq!(d.action, Action::Challenge);
        d.token
    };
    let rejected = |e| TokenState::Rejected(e);

    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        state(with_cookie(Req::get("/all/"), &tampered)),
        rejected(TokenError::BadSignature)
    );
    assert_eq!(
        state(with_cookie(Req::get("/all/"), "garbage!")),
        rejected(TokenError::Malformed)
    );

    // Expired (at its expiry), too old, from the future.
    let r = with_cookie(Req::get("/all/"), &token);
    let mut store = MemoryStore::new(1);
    let d = p.decide(&r.request(), &mut store, NOW + 3600 * SECOND);
    assert_eq!(d.token, rejected(TokenError::Expired));
    let future = p.issue_token(client, CHROME, Passed::pow(3), NOW_S + 3600);
    assert_eq!(
        state(with_cookie(Req::get("/all/"), &future)),
        rejected(TokenError::NotYetValid)
    );

    // Bound to the client's address and user agent.
    assert_eq!(
        state(with_cookie(Req::get("/all/").ip("198.51.100.1"), &token)),
        rejected(TokenError::WrongClientIp)
    );
    assert_eq!(
        state(with_cookie(Req::get("/all/").ua(HEADLESS), &token)),
        rejected(TokenError::WrongUserAgent)
    );

    // Other keys: same id, other secret; unknown id.
    let other = policy("tokens: {keys: [\"1:a-different-secret-0123456789\"]}\n");
    let forged = other.issue_token(client, CHROME, Passed::pow(5), NOW_S);
    assert_eq!(
        state(with_cookie(Req::get("/all/"), &forged)),
        rejected(TokenError::BadSignature)
    );
    let other = policy("tokens: {keys: [\"9:a-different-secret-0123456789\"]}\n");
    let forged = other.issue_token(client, CHROME, Passed::pow(5), NOW_S);
    assert_eq!(
        state(with_cookie(Req::get("/all/"), &forged)),
        rejected(TokenError::UnknownKey)
    );

    // The header works as well as the cookie for rejections.
    let d = decide(&p, &Req::get("/all/").header("X-Palisade-Token", &tampered));
    assert_eq!(d.token, rejected(TokenError::BadSignature));
    assert_eq!(
        p.verify_token(&token, client, HEADLESS, NOW_S),
        Err(TokenError::WrongUserAgent)
    );
    assert_eq!(
        p.verify_token(&token, client, CHROME, NOW_S)
            .map(|c| c.level),
        Ok(3)
    );
}

#[test]
fn max_age_and_ttl() {
    let p = policy("tokens: {keys: [\"1:policy-test-secret-0123456789\"], ttl: 2h, max_age: 1h}\n");
    let t = p.issue_token(None, "ua", Passed::pow(1), NOW_S);
    assert_eq!(
        p.verify_token(&t, None, "ua", NOW_S + 3600)
            .map(|c| c.expires_at),
        Ok(NOW_S + 7200)
    );
    assert_eq!(
        p.verify_token(&t, None, "ua", NOW_S + 3601),
        Err(TokenError::TooOld)
    );
    // Up to 60 s of clock skew is tolerated.
    let ahead = p.issue_token(None, "ua", Passed::pow(1), NOW_S + 60);
    assert!(p.verify_token(&ahead, None, "ua", NOW_S).is_ok());
    let ahead = p.issue_token(None, "ua", Passed::pow(1), NOW_S + 61);
    assert_eq!(
        p.verify_token(&ahead, None, "ua", NOW_S),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn binding_can_be_turned_off_and_follows_prefixes() {
    let p = tokens_policy("");
    // Bound to the client's /64, not its exact IPv6 address.
    let t = p.issue_token(Some(ip("2001:db8:5:6::1")), CHROME, Passed::pow(3), NOW_S);
    let d = decide(
        &p,
        &with_cookie(Req::get("/all/").ip("2001:db8:5:6::9"), &t),
    );
    assert_eq!(d.action, Action::Allow);
    let d = decide(
        &p,
        &with_cookie(Req::get("/all/").ip("2001:db8:5:7::1"), &t),
    );
    assert_eq!(d.token, TokenState::Rejected(TokenError::WrongClientIp));

    let loose = policy(&format!(
        "tokens:\n  keys: [\"{KEY}\"]\n  bind_ip: false\n  bind_user_agent: false\n{TOKENS}"
    ));
    let t = loose.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(3), NOW_S);
    let r = with_cookie(Req::get("/all/").ip("198.51.100.1").ua(HEADLESS), &t);
    assert_eq!(decide(&loose, &r).action, Action::Allow);

    let ip_only = policy(&format!(
        "tokens:\n  keys: [\"{KEY}\"]\n  bind_user_agent: false\n{TOKENS}"
    ));
    let t = ip_only.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(3), NOW_S);
    assert_eq!(
        decide(&ip_only, &with_cookie(Req::get("/all/").ua(HEADLESS), &t)).action,
        Action::Allow
    );
    let d = decide(
        &ip_only,
        &with_cookie(Req::get("/all/").ip("198.51.100.1"), &t),
    );
    assert_eq!(d.token, TokenState::Rejected(TokenError::WrongClientIp));
    // A token bound to nothing does not satisfy a policy that binds.
    let t = loose.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(3), NOW_S);
    let d = decide(&p, &with_cookie(Req::get("/all/"), &t));
    assert_eq!(d.token, TokenState::Rejected(TokenError::WrongClientIp));
}

#[test]
fn key_rotation_with_keys_and_keys_env() {
    const OLD: &str = "1:the-old-secret-0123456789";
    const NEW: &str = "2:the-new-secret-0123456789";
    let old = policy(&format!("tokens: {{keys: [\"{OLD}\"]}}\n"));
    let both = policy(&format!("tokens: {{keys: [\"{OLD}\", \"{NEW}\"]}}\n"));
    let new = policy(&format!("tokens: {{keys: [\"{NEW}\"]}}\n"));
    assert_eq!(both.summary().keys, 2);
    let t_old = old.issue_token(None, "ua", Passed::pow(1), NOW_S);
    let t_both = both.issue_token(None, "ua", Passed::pow(1), NOW_S);
    // The last key signs; every key verifies.
    assert_eq!(
        both.verify_token(&t_old, None, "ua", NOW_S)
            .map(|c| c.key_id),
        Ok(1)
    );
    assert_eq!(
        both.verify_token(&t_both, None, "ua", NOW_S)
            .map(|c| c.key_id),
        Ok(2)
    );
    assert_eq!(
        new.verify_token(&t_both, None, "ua", NOW_S)
            .map(|c| c.key_id),
        Ok(2)
    );
    assert_eq!(
        new.verify_token(&t_old, None, "ua", NOW_S),
        Err(TokenError::UnknownKey)
    );
    assert_eq!(
        old.verify_token(&t_both, None, "ua", NOW_S),
        Err(TokenError::UnknownKey)
    );

    // Keys from the environment (comma-separated, base64 allowed) replace `keys`.
    let env = FakeEnv::default().with_var(
        "PALISADE_TEST_KEYS",
        " 3:base64:c2l4dGVlbi1ieXRlcy1zZWNyZXQ= , 4:env-secret-0123456789 ,",
    );
    let p = policy_in(
        &format!("tokens: {{keys: [\"{OLD}\"], keys_env: PALISADE_TEST_KEYS}}\n"),
        &env,
    );
    assert_eq!(p.summary().keys, 2);
    let t = p.issue_token(None, "ua", Passed::pow(1), NOW_S);
    assert_eq!(
        p.verify_token(&t, None, "ua", NOW_S).map(|c| c.key_id),
        Ok(4)
    );
    assert_eq!(
        p.verify_token(&t_old, None, "ua", NOW_S),
        Err(TokenError::UnknownKey),
        "an inline (demo) key no longer verifies once the environment is set"
    );
    // Only the environment.
    let p = policy_in("tokens: {keys_env: PALISADE_TEST_KEYS}\n", &env);
    assert_eq!(p.summary().keys, 2);
    // `keys` are used when the variable is unset.
    let p = policy_in(
        &format!("tokens: {{keys: [\"{OLD}\"], keys_env: UNSET_VARIABLE}}\n"),
        &env,
    );
    assert_eq!(p.summary().keys, 1);
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn block_responses_html_and_json() {
    let p = policy(
        r#"
block: {status: 403, body: "Go away & stay away."}
routes:
  - name: gone
    match: {path: /gone/*}
    action: block
    block: {status: 451, body: "<b>Unavailable</b> for legal reasons"}
  - {name: plain, match: {path: /plain/*}, action: block}
  - {name: status-only, match: {path: /s/*}, action: block, block: {status: 410}}
"#,
    );
    let r = Req::get("/gone/x");
    let d = decide(&p, &r);
    assert_eq!(d.block, Some((451, "<b>Unavailable</b> for legal reasons")));
    assert_eq!(d.status(403), Some(451));
    let html = respond(&p, &d, &r).unwrap();
    assert_eq!(html.status, 451);
    assert_eq!(
        header(&html, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&html, "cache-control"), Some("no-store"));
    assert!(html
        .body
        .contains("&lt;b&gt;Unavailable&lt;/b&gt; for legal reasons"));
    assert!(!html.body.contains("<b>"));

    let r = Req::get("/gone/x").header("Accept", "application/json, text/plain");
    let json = respond(&p, &d, &r).unwrap();
    assert_eq!(json.status, 451);
    assert_eq!(
        body_json(&json),
        json!({"action": "block", "message": "<b>Unavailable</b> for legal reasons"})
    );

    let r = Req::get("/plain/x");
    let d = decide(&p, &r);
    let html = respond(&p, &d, &r).unwrap();
    assert_eq!(html.status, 403);
    assert!(html.body.contains("Go away &amp; stay away."));
    let d = decide(&p, &Req::get("/s/x"));
    assert_eq!(d.block, Some((410, "Go away & stay away.")));

    // Passing requests get no response of Palisade's own.
    let r = Req::get("/open");
    assert_eq!(respond(&p, &decide(&p, &r), &r), None);
}

#[test]
fn upstream_annotations() {
    let p = policy("rules: [{name: t, when: {client_class: [tool]}, weight: 55}]\n");
    let d = decide(&p, &Req::get("/").ua(GOOGLEBOT).ip(GOOGLE_IP));
    assert_eq!(
        p.upstream_headers(&d),
        vec![
            ("x-palisade-action", "allow".to_string()),
            ("x-palisade-score", "0".to_string()),
            (
                "x-palisade-client",
                "class=search_engine; name=googlebot; verified".to_string()
            ),
        ]
    );
    let d = decide(&p, &Req::get("/").ua(CURL));
    assert_eq!(
        p.upstream_headers(&d),
        vec![
            ("x-palisade-action", "monitor".to_string()),
            ("x-palisade-score", "55".to_string()),
            ("x-palisade-client", "class=tool; name=curl".to_string()),
        ]
    );
    let quiet = policy("annotate: {upstream_headers: false}\n");
    assert!(quiet
        .upstream_headers(&decide(&quiet, &Req::get("/")))
        .is_empty());
}

const CHALLENGED: &str = r#"
challenge: {difficulty: 1, status: 429, ticket_ttl: 2m}
default_route: {action: challenge_all}
"#;

/// The challenge the policy answers `r` with, as JSON.
fn challenge_json(p: &Policy, r: &Req) -> Value {
    let r = r.clone().header("Accept", "application/json");
    let d = decide(p, &r);
    assert_eq!(d.action, Action::Challenge);
    let resp = respond(p, &d, &r).unwrap();
    assert_eq!(resp.status, p.challenge_config().status);
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    body_json(&resp)
}

fn ticket(p: &Policy, r: &Req) -> String {
    challenge_json(p, r)["challenge"]["data"]
        .as_str()
        .unwrap()
        .to_string()
}

/// POSTs a JSON body to the verify endpoint as client `from`.
fn verify_json(p: &Policy, from: &Req, body: &str, now: u64) -> (Response, VerifyOutcome) {
    let mut r = from
        .clone()
        .method("POST")
        .header("Content-Type", "application/json");
    r.path = p.verify_path().to_string();
    p.handle_own(&r.request(), body.as_bytes(), now)
}

fn verify_form(p: &Policy, from: &Req, body: &str, now: u64) -> (Response, VerifyOutcome) {
    let mut r = from.clone().method("POST").header(
        "Content-Type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    r.path = p.verify_path().to_string();
    p.handle_own(&r.request(), body.as_bytes(), now)
}

/// GETs the verify endpoint with `query` as client `from` (the pages' way:
/// no body).
fn verify_query(p: &Policy, from: &Req, query: &str, now: u64) -> (Response, VerifyOutcome) {
    let mut r = from.clone();
    r.path = format!("{}?{query}", p.verify_path());
    p.handle_own(&r.request(), b"", now)
}

/// A nonce that does not solve `data` at `bits`.
fn wrong_nonce(data: &str, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| {
            let digest = Sha256::new().chain_update(data).chain_update(n).finalize();
            challenge::leading_zero_bits(&digest) < u32::from(bits)
        })
        .unwrap()
}

#[test]
fn challenge_response_shape() {
    let p = policy(CHALLENGED);
    let r = Req::get("/page?x=1");
    let v = challenge_json(&p, &r);
    let data = v["challenge"]["data"].as_str().unwrap().to_string();
    assert_eq!(
        v,
        json!({
            "action": "challenge",
            "challenge": {"kind": "pow", "algorithm": "sha256", "data": data, "difficulty": 12},
            "verify": "/.palisade/verify",
        })
    );
    assert!(data
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    // Browsers get the page, with the same parts.
    let d = decide(&p, &r);
    let page = respond(&p, &d, &r).unwrap();
    assert_eq!(page.status, 429);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("/.palisade/verify"));
    assert!(page.body.contains(p.verify_path()));

    // Difficulty maps to bits; path_prefix moves the endpoint.
    let p = policy(
        "challenge: {difficulty: 3, path_prefix: /_guard/}\ndefault_route: {action: challenge_all}\n",
    );
    let v = challenge_json(&p, &Req::get("/"));
    assert_eq!(v["challenge"]["difficulty"], 16);
    assert_eq!(v["verify"], "/_guard/verify");
    assert!(p.is_own_path("/_guard/verify"));
    assert!(!p.is_own_path("/.palisade/verify"));
}

#[test]
fn verify_with_json_issues_a_token() {
    let p = policy(CHALLENGED);
    let me = Req::get("/page?x=1");
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let later = NOW + 5 * SECOND;
    let body = json!({"data": data, "nonce": nonce}).to_string();
    let (resp, outcome) = verify_json(&p, &me, &body, later);
    assert_eq!(outcome, VerifyOutcome::Passed);
    assert_eq!(resp.status, 200);
    let v = body_json(&resp);
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v, json!({"token": token, "expires": NOW_S + 5 + 3600}));
    assert_eq!(
        header(&resp, "set-cookie"),
        Some(format!("palisade={token}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax").as_str())
    );
    // The token is for this client at the challenge's level and lets it through.
    assert_eq!(
        p.verify_token(&token, me.ip, CHROME, NOW_S + 5)
            .map(|c| c.level),
        Ok(1)
    );
    let d = decide(&p, &with_cookie(me.clone(), &token));
    assert_eq!((d.action, d.reason), (Action::Allow, Reason::PassToken));
    // Any content type but a form is read as JSON.
    let mut plain = me
        .clone()
        .method("POST")
        .header("Content-Type", "text/plain");
    plain.path = p.verify_path().to_string();
    let (resp, _) = p.handle_own(&plain.request(), body.as_bytes(), later);
    assert_eq!(resp.status, 200);
    // A numeric nonce is accepted too.
    let data = ticket(&p, &me);
    let nonce: u64 = challenge::solve(&data, 12).parse().unwrap();
    let body = json!({"data": data, "nonce": nonce}).to_string();
    assert_eq!(verify_json(&p, &me, &body, later).0.status, 200);
}

#[test]
fn verify_with_a_form_or_a_query_redirects_back() {
    let p = policy(CHALLENGED);
    let me = Req::get("/login?next=%2Fhome&a=b");
    // A form POST, or a GET with the solution in the query (the pages'
    // way: no body needed).
    for by_query in [false, true] {
        let data = ticket(&p, &me);
        let nonce = challenge::solve(&data, 12);
        // Extra fields (a would-be return URL) are ignored.
        let fields = format!("return=https%3A%2F%2Fevil.example%2F&data={data}&nonce={nonce}");
        let (resp, outcome) = if by_query {
            verify_query(&p, &me, &fields, NOW)
        } else {
            verify_form(&p, &me, &fields, NOW)
        };
        assert_eq!(outcome, VerifyOutcome::Passed, "by query: {by_query}");
        assert_eq!(resp.status, 303);
        assert_eq!(header(&resp, "location"), Some("/login?next=%2Fhome&a=b"));
        assert!(header(&resp, "set-cookie")
            .unwrap()
            .starts_with("palisade="));
    }
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    // A wrong nonce in the query is refused like one in a body.
    let wrong = wrong_nonce(&data, 12);
    let (resp, outcome) = verify_query(&p, &me, &format!("data={data}&nonce={wrong}"), NOW);
    assert_eq!(resp.status, 403);
    assert!(matches!(outcome, VerifyOutcome::Failed(_)));
    // A GET's body is never read for the solution.
    let mut get = me.clone();
    get.path = p.verify_path().to_string();
    let body = format!("data={data}&nonce={nonce}");
    let (resp, _) = p.handle_own(&get.request(), body.as_bytes(), NOW);
    assert_eq!(resp.status, 400);
}

#[test]
fn verify_cannot_redirect_off_site() {
    let p = policy(CHALLENGED);
    for path in [
        "//evil.example/x",
        "/%2F%2Fevil.example/x",
        "/%5Cevil.example/x",
    ] {
        let me = Req::get(path);
        let data = ticket(&p, &me);
        let nonce = challenge::solve(&data, 12);
        let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
        assert_eq!(resp.status, 303, "{path}");
        let location = header(&resp, "location").unwrap();
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "{path} -> {location}"
        );
        assert!(!location.contains('\r') && !location.contains('\n'));
    }
    // Too long to carry: back to `/`.
    let long = format!("/{}", "a".repeat(2048));
    let me = Req::get(&long);
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    assert_eq!(header(&resp, "location"), Some("/"));
    let fits = format!("/{}", "a".repeat(2047));
    let me = Req::get(&fits);
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    assert_eq!(header(&resp, "location"), Some(fits.as_str()));

    let me = Req::get("//evil.example/x");
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    assert_eq!(header(&resp, "location"), Some("/"));
}

#[test]
fn verify_failures() {
    let p = policy(CHALLENGED);
    let me = Req::get("/page");
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let body = |data: &str, nonce: &str| json!({"data": data, "nonce": nonce}).to_string();
    let fails = |(resp, outcome): (Response, VerifyOutcome), label: &str| {
        assert_eq!(resp.status, 403, "{label}: {}", resp.body);
        let v = body_json(&resp);
        assert_eq!(v["error"], label);
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(header(&resp, "set-cookie").is_none());
        assert!(matches!(outcome, VerifyOutcome::Failed(e) if e.label() == label));
    };

    fails(
        verify_json(&p, &me, &body(&data, &wrong_nonce(&data, 12)), NOW),
        "wrong_solution",
    );
    fails(verify_json(&p, &me, &body(&data, "12a"), NOW), "bad_nonce");
    let mut tampered = data.clone().into_bytes();
    tampered[8] = if tampered[8] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    fails(
        verify_json(&p, &me, &body(&tampered, &nonce), NOW),
        "ticket_invalid",
    );
    // ticket_ttl is 2 minutes.
    fails(
        verify_json(&p, &me, &body(&data, &nonce), NOW + 120 * SECOND),
        "ticket_expired",
    );
    fails(
        verify_json(
            &p,
            &me.clone().ip("198.51.100.1"),
            &body(&data, &nonce),
            NOW,
        ),
        "ticket_other_client",
    );
    fails(
        verify_json(&p, &me.clone().ua(HEADLESS), &body(&data, &nonce), NOW),
        "ticket_other_client",
    );
    // A pass token is not a ticket.
    let token = p.issue_token(me.ip, CHROME, Passed::pow(5), NOW_S);
    fails(
        verify_json(&p, &me, &body(&token, "1"), NOW),
        "ticket_invalid",
    );
    // A ticket from another deployment's keys.
    let other = policy(&format!(
        "tokens: {{keys: [\"1:a-different-secret-0123456789\"]}}\n{CHALLENGED}"
    ));
    let foreign = ticket(&other, &me);
    let solved = challenge::solve(&foreign, 12);
    fails(
        verify_json(&p, &me, &body(&foreign, &solved), NOW),
        "ticket_invalid",
    );
    // Still valid just before expiry.
    assert_eq!(
        verify_json(&p, &me, &body(&data, &nonce), NOW + 119 * SECOND)
            .0
            .status,
        200
    );
}

#[test]
fn verify_endpoint_rejects_bad_requests() {
    let p = policy(CHALLENGED);
    let me = Req::get("/");
    let mut put = me.clone().method("PUT");
    put.path = p.verify_path().to_string();
    let (resp, outcome) = p.handle_own(&put.request(), b"", NOW);
    assert_eq!((resp.status, outcome), (405, VerifyOutcome::BadRequest));
    assert_eq!(header(&resp, "allow"), Some("GET, POST"));
    assert_eq!(body_json(&resp)["error"], "method_not_allowed");
    for query in ["", "data=x", "nonce=1"] {
        let (resp, outcome) = verify_query(&p, &me, query, NOW);
        assert_eq!(
            (resp.status, outcome),
            (400, VerifyOutcome::BadRequest),
            "{query}"
        );
    }

    let big = "x".repeat(MAX_VERIFY_BODY + 1);
    let (resp, outcome) = verify_json(&p, &me, &big, NOW);
    assert_eq!((resp.status, outcome), (413, VerifyOutcome::BadRequest));
    assert_eq!(body_json(&resp)["error"], "too_large");

    for body in [
        "",
        "not json",
        "{\"data\": \"x\"}",
        "{\"data\": 1, \"nonce\": \"1\"}",
        "{\"data\": \"x\", \"nonce\": -1}",
    ] {
        let (resp, outcome) = verify_json(&p, &me, body, NOW);
        assert_eq!(
            (resp.status, outcome),
            (400, VerifyOutcome::BadRequest),
            "{body}"
        );
        assert_eq!(body_json(&resp)["error"], "bad_request");
    }
    let (resp, _) = verify_form(&p, &me, "data=x", NOW);
    assert_eq!(resp.status, 400);

    let mut other = me.clone().method("POST");
    other.path = "/.palisade/other".into();
    let (resp, outcome) = p.handle_own(&other.request(), b"{}", NOW);
    assert_eq!((resp.status, outcome), (404, VerifyOutcome::BadRequest));
}

#[test]
fn cookie_attributes_follow_the_config() {
    let p = policy(&format!(
        r#"
tokens:
  keys: ["{KEY}"]
  ttl: 10m
  cookie: {{name: pal_pass, path: /app, domain: example.com, secure: true, http_only: false, same_site: Strict}}
{CHALLENGED}"#
    ));
    let me = Req::get("/app/x");
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    let cookie = header(&resp, "set-cookie").unwrap();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("pal_pass=")
        .unwrap();
    assert_eq!(
        cookie,
        format!(
            "pal_pass={token}; Path=/app; Max-Age=600; Domain=example.com; Secure; SameSite=Strict"
        )
    );
    // The configured cookie name is the one read back.
    let r = me.clone().header("Cookie", &format!("pal_pass={token}"));
    assert_eq!(decide(&p, &r).action, Action::Allow);
    let r = me.clone().header("Cookie", &format!("palisade={token}"));
    assert_eq!(decide(&p, &r).action, Action::Challenge);

    // SameSite=None needs Secure, so it is always added.
    let p = policy(&format!(
        "tokens:\n  keys: [\"{KEY}\"]\n  cookie: {{same_site: None}}\n{CHALLENGED}"
    ));
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let (resp, _) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    assert!(header(&resp, "set-cookie")
        .unwrap()
        .ends_with("; HttpOnly; Secure; SameSite=None"));
}

// ---------------------------------------------------------------------------
// Configuration errors: the exact path of each

#[test]
fn unknown_fields_are_errors_everywhere() {
    for (body, path) in [
        ("tokenz: {}\n", "tokenz"),
        ("client: {sourc: connection}\n", "client.sourc"),
        (
            "tokens: {keys: [\"1:policy-test-secret-0123456789\"], cookie: {nam: x}}\n",
            "tokens.cookie.nam",
        ),
        ("thresholds: {challange: 70}\n", "thresholds.challange"),
        ("challenge: {dificulty: 2}\n", "challenge.dificulty"),
        ("block: {stauts: 403}\n", "block.stauts"),
        ("annotate: {headers: true}\n", "annotate.headers"),
        ("rate_limiting: {bucket: 10}\n", "rate_limiting.bucket"),
        ("lists: {a: {cidr: [10.0.0.0/8]}}\n", "lists.a.cidr"),
        ("crawlers: {extras: []}\n", "crawlers.extras"),
        (
            "crawlers: {extra: [{name: x, class: tool, pattern: x, network: a}]}\n",
            "crawlers.extra[0].network",
        ),
        ("routes: [{match: {pathh: /a}}]\n", "routes[0].match.pathh"),
        (
            "routes: [{match: {path: /a}, actoin: block}]\n",
            "routes[0].actoin",
        ),
        (
            "routes: [{match: {headers: [{name: a, equal: b}]}}]\n",
            "routes[0].match.headers[0].equal",
        ),
        (
            "routes: [{match: {path: /a}, challenge: {level: 2}}]\n",
            "routes[0].challenge.level",
        ),
        (
            "routes: [{match: {path: /a}, rate_limit: {rate: 1/s, brust: 2}}]\n",
            "routes[0].rate_limit.brust",
        ),
        (
            "routes: [{match: {path: /a}, block: {code: 403}}]\n",
            "routes[0].block.code",
        ),
        (
            "default_route: {rate_limits: {}}\n",
            "default_route.rate_limits",
        ),
        (
            "rules: [{name: a, when: {path: /a}, weigth: 1}]\n",
            "rules[0].weigth",
        ),
        (
            "rules: [{name: a, when: {paths: /a}, weight: 1}]\n",
            "rules[0].when.paths",
        ),
        (
            "rules: [{name: a, when: {any: [{not: {user_agnet: x}}]}, weight: 1}]\n",
            "rules[0].when.any[0].not.user_agnet",
        ),
    ] {
        let field = path.rsplit('.').next().unwrap();
        let field = field.rsplit(']').next().unwrap_or(field);
        assert_error(body, path, &["unknown field", &format!("`{field}`")]);
    }
}

#[test]
fn value_errors_from_parsing() {
    assert_error(
        "routes: [{match: {path: /a}, rate_limit: {rate: 10/fortnight}}]\n",
        "routes[0].rate_limit.rate",
        &["invalid rate", "fortnight"],
    );
    assert_error(
        "rules: [{name: a, when: {path: /a}, rate_limit: {rate: lots}}]\n",
        "rules[0].rate_limit.rate",
        &["invalid rate", "lots"],
    );
    assert_error(
        "default_route: {rate_limit: {rate: 0/second}}\n",
        "default_route.rate_limit.rate",
        &["invalid rate"],
    );
    assert_error(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\"], ttl: 5y}\n",
        "tokens.ttl",
        &["unknown unit `y`"],
    );
    assert_error(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\"], max_age: soon}\n",
        "tokens.max_age",
        &["not a duration"],
    );
    assert_error(
        "challenge: {ticket_ttl: -5}\n",
        "challenge.ticket_ttl",
        &["negative"],
    );
    assert_error(
        "routes: [{match: {path: /a}, action: deny}]\n",
        "routes[0].action",
        &["unknown variant `deny`"],
    );
    assert_error(
        "client: {source: proxy}\n",
        "client.source",
        &["unknown variant `proxy`"],
    );
    assert_error(
        "rules: [{name: a, when: {client_class: [robot]}, weight: 1}]\n",
        "rules[0].when.client_class[0]",
        &["unknown variant `robot`"],
    );
    assert_error(
        "rules: [{name: a, when: {crawler: [maybe]}, weight: 1}]\n",
        "rules[0].when.crawler[0]",
        &["unknown variant `maybe`"],
    );
    assert_error(
        "challenge: {kind: captcha}\n",
        "challenge.kind",
        &["unknown variant `captcha`"],
    );
    assert_error(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\"], cookie: {same_site: medium}}\n",
        "tokens.cookie.same_site",
        &["unknown variant `medium`"],
    );
    assert_error(
        "thresholds: {monitor: 300}\n",
        "thresholds.monitor",
        &["300"],
    );
    assert_error(
        "routes: [{match: {path: 3}}]\n",
        "routes[0].match.path",
        &["a string or a list of strings"],
    );
    assert_error(
        "rules: [{name: a, weight: 1}]\n",
        "rules[0]",
        &["missing field `when`"],
    );
    assert_error("routes: [\n", "", &["line"]);
}

#[test]
fn regex_errors_name_the_pattern_and_offset() {
    let three = "  - {match: {path: /a}}\n  - {match: {path: /b}}\n  - {match: {path: /c}}\n";
    assert_error(
        &format!("routes:\n{three}  - {{match: {{path_regex: '/(a'}}}}\n"),
        "routes[3].match.path_regex",
        &["unclosed group", "offset 1"],
    );
    assert_error(
        "routes: [{match: {path_regex: ['/a', 'x[']}}]\n",
        "routes[0].match.path_regex[1]",
        &["unclosed character class", "offset 1"],
    );
    // An anchored pattern: the offset is still the one of the problem.
    assert_error(
        "routes: [{match: {path_regex: '^/search(/|$'}}]\n",
        "routes[0].match.path_regex",
        &["unclosed group", "offset 8"],
    );
    assert_error(
        "rules: [{name: a, when: {path_regex: '^/x\\q'}, weight: 1}]\n",
        "rules[0].when.path_regex",
        &["unrecognized escape", "offset 3"],
    );
    // A multi-line (verbose) pattern: the offset counts from its start.
    assert_error(
        "routes:\n  - match:\n      path_regex: |-\n        (?x)\n        ^/a\n          (b\n",
        "routes[0].match.path_regex",
        &["unclosed group", "offset 11"],
    );
    assert_error(
        "rules: [{name: a, when: {user_agent: '(abc'}, weight: 1}]\n",
        "rules[0].when.user_agent",
        &["unclosed group", "offset 0"],
    );
    assert_error(
        "rules: [{name: a, when: {all: [{path: /a}, {headers: [{name: x, regex: 'a{2,1}'}]}]}, weight: 1}]\n",
        "rules[0].when.all[1].headers[0].regex",
        &["invalid repetition"],
    );
    assert_error(
        "routes: [{match: {query: [{name: q, regex: '('}]}}]\n",
        "routes[0].match.query[0].regex",
        &["unclosed group"],
    );
    assert_error(
        "crawlers: {extra: [{name: a, class: tool, pattern: ok}, {name: b, class: tool, pattern: 'x)'}]}\n",
        "crawlers.extra[1].pattern",
        &["unopened group"],
    );
    // Valid Unicode regex, but crawler patterns are ASCII-only byte regexes.
    assert_error(
        "crawlers: {extra: [{name: a, class: tool, pattern: '\\p{L}'}]}\n",
        "crawlers.extra[0].pattern",
        &["Unicode not allowed"],
    );
    assert_error(
        "crawlers: {extra: [{name: a, class: tool, pattern: ''}]}\n",
        "crawlers.extra[0].pattern",
        &["empty pattern"],
    );
}

#[test]
fn glob_and_method_errors() {
    assert_error(
        "routes: [{match: {path: ''}}]\n",
        "routes[0].match.path",
        &["empty glob"],
    );
    assert_error(
        "routes: [{match: {path: [/a, '']}}]\n",
        "routes[0].match.path[1]",
        &["empty glob"],
    );
    assert_error(
        "routes: [{match: {host: ''}}]\n",
        "routes[0].match.host",
        &["empty glob"],
    );
    assert_error(
        "routes: [{match: {host: [a.test, '']}}]\n",
        "routes[0].match.host[1]",
        &["empty glob"],
    );
    assert_error(
        "routes: [{match: {path: /a, except: ['']}}]\n",
        "routes[0].match.except",
        &["empty glob"],
    );
    assert_error(
        "rules: [{name: a, when: {any: [{path: /a}, {not: {path: ['/b', '']}}]}, weight: 1}]\n",
        "rules[0].when.any[1].not.path[1]",
        &["empty glob"],
    );
    assert_error(
        "routes: [{match: {methods: [GET, 'PO ST']}}]\n",
        "routes[0].match.methods[1]",
        &["`PO ST` is not an HTTP method"],
    );
    assert_error(
        "rules: [{name: a, when: {methods: ['']}, weight: 1}]\n",
        "rules[0].when.methods[0]",
        &["is not an HTTP method"],
    );
}

#[test]
fn field_condition_errors() {
    let exactly_one = "give exactly one of `equals`, `regex`, `present` or `absent`";
    assert_error(
        "routes: [{match: {headers: [{name: x}]}}]\n",
        "routes[0].match.headers[0]",
        &[exactly_one],
    );
    assert_error(
        "routes: [{match: {headers: [{name: x, present: true}, {name: y, equals: a, regex: b}]}}]\n",
        "routes[0].match.headers[1]",
        &[exactly_one],
    );
    assert_error(
        "rules: [{name: a, when: {query: [{name: q, present: true, absent: true}]}, weight: 1}]\n",
        "rules[0].when.query[0]",
        &[exactly_one],
    );
    assert_error(
        "rules: [{name: a, when: {headers: [{name: '', present: true}]}, weight: 1}]\n",
        "rules[0].when.headers[0].name",
        &["must not be empty"],
    );
    assert_error(
        "routes: [{match: {query: [{name: '', absent: true}]}}]\n",
        "routes[0].match.query[0].name",
        &["must not be empty"],
    );
}

#[test]
fn list_errors() {
    assert_error(
        "lists: {a: {cidrs: [10.0.0.0/8, 1.2.3.4/33]}}\n",
        "lists.a.cidrs[1]",
        &["1.2.3.4/33", "33"],
    );
    assert_error(
        "lists: {a: {cidrs: [\"2001:db8::/129\"]}}\n",
        "lists.a.cidrs[0]",
        &["129"],
    );
    assert_error(
        "lists: {a: {cidrs: [not-an-address]}}\n",
        "lists.a.cidrs[0]",
        &["not-an-address"],
    );
    assert_error(
        "lists: {a: {builtin: [aws, google-crawler]}}\n",
        "lists.a.builtin[1]",
        &[
            "no built-in network list `google-crawler`",
            "google-crawlers",
        ],
    );
    assert_error("lists: {a: {}}\n", "lists.a", &["the list is empty"]);
    assert_error(
        "lists: {a: {cidrs: []}}\n",
        "lists.a",
        &["the list is empty"],
    );
    assert_error(
        "lists: {a: {files: [/missing.txt]}}\n",
        "lists.a.files[0]",
        &["cannot read `/missing.txt`"],
    );
    let env = FakeEnv::default()
        .with_file("/ok.txt", "10.0.0.0/8\n")
        .with_file("/bad.txt", "# header\n10.0.0.0/8\n\n10.0.0.0/99 # oops\n")
        .with_file("/empty.txt", "# nothing here\n");
    assert_error_in(
        "lists: {a: {files: [/ok.txt, /bad.txt]}}\n",
        &env,
        "lists.a.files[1]",
        &["line 4", "99"],
    );
    assert_error_in(
        "lists: {a: {files: [/empty.txt]}}\n",
        &env,
        "lists.a",
        &["the list is empty"],
    );
    assert_error(
        "rules: [{name: a, when: {ip_in: office}, weight: 1}]\n",
        "rules[0].when.ip_in",
        &["no list named `office`", "no `lists` are defined"],
    );
    assert_error(
        "lists: {office: {cidrs: [10.0.0.0/8]}, deny: {cidrs: [10.0.0.0/8]}}\nrules: [{name: a, when: {not: {ip_in: [office, offise]}}, weight: 1}]\n",
        "rules[0].when.not.ip_in",
        &["no list named `offise`", "deny, office"],
    );
    assert_error(
        "crawlers: {extra: [{name: a, class: seo, pattern: a, networks: nope}]}\n",
        "crawlers.extra[0].networks",
        &["no list named `nope`"],
    );
}

#[test]
fn token_errors() {
    assert_error("routes: []\ntokens: {}\n", "tokens.keys", &["no keys"]);
    assert_error("tokens: {keys: []}\n", "tokens.keys", &["no keys"]);
    assert_error(
        "tokens: {keys: [\"1:short\"]}\n",
        "tokens.keys[0]",
        &["at least 16 bytes"],
    );
    assert_error(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\", nocolon]}\n",
        "tokens.keys[1]",
        &["no ':'"],
    );
    assert_error(
        "tokens: {keys: [\"300:policy-test-secret-0123456789\"]}\n",
        "tokens.keys[0]",
        &["0-255"],
    );
    assert_error(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\", \"1:another-secret-0123456789\"]}\n",
        "tokens.keys",
        &["key id 1 appears more than once"],
    );
    assert_error(
        "tokens: {keys_env: PALISADE_UNSET}\n",
        "tokens.keys_env",
        &["`PALISADE_UNSET` is not set"],
    );
    let env = FakeEnv::default()
        .with_var("BAD", "2:good-secret-0123456789,3:short")
        .with_var("EMPTY", " , ")
        .with_var(
            "DUP",
            "1:another-secret-0123456789,1:yet-another-secret-012345",
        );
    let e = error_in("tokens: {keys_env: BAD}\n", &env);
    assert_eq!(e.path, "tokens.keys_env");
    assert!(e.reason.contains("environment variable `BAD`"), "{e}");
    assert!(e.reason.contains("key 3"), "{e}");
    assert!(
        !e.reason.contains("good-secret"),
        "secrets never appear: {e}"
    );
    assert_error_in(
        "tokens: {keys_env: EMPTY}\n",
        &env,
        "tokens.keys_env",
        &["holds no keys"],
    );
    assert_error_in(
        "tokens: {keys_env: DUP}\n",
        &env,
        "tokens.keys",
        &["more than once"],
    );
    let k = "keys: [\"1:policy-test-secret-0123456789\"]";
    assert_error(
        &format!("tokens: {{{k}, ttl: 0}}\n"),
        "tokens.ttl",
        &["longer than 0s"],
    );
    assert_error(
        &format!("tokens: {{{k}, max_age: 0s}}\n"),
        "tokens.max_age",
        &["longer than 0s"],
    );
    assert_error(
        &format!("tokens: {{{k}, cookie: {{name: ''}}}}\n"),
        "tokens.cookie.name",
        &["cookie name"],
    );
    assert_error(
        &format!("tokens: {{{k}, cookie: {{name: 'a b'}}}}\n"),
        "tokens.cookie.name",
        &["cookie name"],
    );
    assert_error(
        &format!("tokens: {{{k}, header: 'x token'}}\n"),
        "tokens.header",
        &["header name"],
    );
    // No secret ever appears in an error.
    let e = error_in(
        "tokens: {keys: [\"1:policy-test-secret-0123456789\", \"1:policy-test-secret-0123456789\"]}\n",
        &FakeEnv::default(),
    );
    assert!(!e.to_string().contains("policy-test-secret"), "{e}");
}

#[test]
fn a_provider_kind_needs_its_block_in_companion_providers() {
    let needs = |kind: &str| {
        format!("`{kind}` is a provider kind and needs its settings in companion.providers.{kind}")
    };
    for (yaml, path, kind) in [
        ("challenge: {kind: turnstile}\n", "challenge.kind", "turnstile"),
        (
            "routes:\n  - {match: {path: /a}}\n  - {match: {path: /b}}\n  - {match: {path: /c}}\n  - {match: {path: /d}, challenge: {kind: hcaptcha}}\n",
            "routes[3].challenge.kind",
            "hcaptcha",
        ),
        (
            "rules: [{name: a, when: {path: /a}, challenge: {kind: altcha}}]\n",
            "rules[0].challenge.kind",
            "altcha",
        ),
        (
            "default_route: {challenge: {kind: recaptcha_v3}}\n",
            "default_route.challenge.kind",
            "recaptcha_v3",
        ),
        (
            "scoring: {interaction: {escalate_to: {kind: friendly_captcha}}}\n",
            "scoring.interaction.escalate_to.kind",
            "friendly_captcha",
        ),
        // Another provider's block does not do.
        (
            "companion: {providers: {hcaptcha: {site_key: k, secret_env: S}}}\nroutes: [{match: {path: /a}, challenge: {kind: turnstile}}]\n",
            "routes[0].challenge.kind",
            "turnstile",
        ),
    ] {
        assert_error(yaml, path, &[&needs(kind)]);
    }
    // With their blocks they compile; secrets are read by the companion
    // and check-config, not here.
    let p = policy(
        "challenge: {kind: altcha}\ncompanion: {providers: {altcha: {}, turnstile: {site_key: k, secret_env: PALISADE_UNSET}}}\nroutes: [{match: {path: /a}, challenge: {kind: turnstile}}]\nrules: [{name: a, when: {path: /b}, challenge: {kind: altcha}}]\n",
    );
    assert_eq!(p.challenge_config().kind, ChallengeKind::Altcha);
}

#[test]
fn challenge_block_client_and_threshold_errors() {
    assert_error(
        "challenge: {difficulty: 0}\n",
        "challenge.difficulty",
        &["difficulty 0 is out of range 1-5"],
    );
    assert_error(
        "challenge: {difficulty: 6}\n",
        "challenge.difficulty",
        &["out of range 1-5"],
    );
    assert_error(
        "routes: [{match: {path: /a}, challenge: {difficulty: 9}}]\n",
        "routes[0].challenge.difficulty",
        &["out of range"],
    );
    assert_error(
        "rules: [{name: a, when: {path: /a}, challenge: {difficulty: 0}}]\n",
        "rules[0].challenge.difficulty",
        &["out of range"],
    );
    let kinds = "expected one of `pow`, `text`, `one_click`, `grid`, `audio`";
    assert_error("challenge: {kind: image}\n", "challenge.kind", &[kinds]);
    assert_error(
        "routes: [{match: {path: /a}, challenge: {kind: captcha}}]\n",
        "routes[0].challenge.kind",
        &[kinds],
    );
    for (yaml, path, reason) in [
        (
            "companion: {public: localhost}\n",
            "companion.public",
            "not a listen address",
        ),
        (
            "companion: {internal: 127.0.0.1:8181}\n",
            "companion.internal",
            "must differ",
        ),
        ("companion: {ttl: 0s}\n", "companion.ttl", "longer than 0s"),
        (
            "companion: {lockout: 0}\n",
            "companion.lockout",
            "longer than 0s",
        ),
        (
            "companion: {health_interval: 0s}\n",
            "companion.health_interval",
            "longer than 0s",
        ),
        (
            "companion: {retries: 0}\n",
            "companion.retries",
            "at least 1",
        ),
        (
            "companion: {typo_tolerance: 4}\n",
            "companion.typo_tolerance",
            "0 to 3",
        ),
        (
            "companion: {redis_url: 'localhost:6379'}\n",
            "companion.redis_url",
            "not a Redis URL",
        ),
        (
            "companion: {cluster: ''}\n",
            "companion.cluster",
            "Envoy cluster",
        ),
        (
            "companion: {failure_mode: open}\n",
            "companion.failure_mode",
            "`fail_open`",
        ),
        (
            "companion: {store_unavailable: ignore}\n",
            "companion.store_unavailable",
            "`pow`",
        ),
        (
            "companion: {pubic: 127.0.0.1:1}\n",
            "companion.pubic",
            "unknown field",
        ),
    ] {
        assert_error(yaml, path, &[reason]);
    }
    // Every kind compiles on routes, rules and the default.
    for kind in ["pow", "text", "one_click", "grid", "audio"] {
        let p = policy(&format!(
            "challenge: {{kind: {kind}}}\nroutes: [{{match: {{path: /a}}, challenge: {{kind: {kind}}}}}]\n"
        ));
        assert_eq!(p.challenge_config().kind.as_str(), kind);
    }
    for status in [0, 99, 101, 199, 600] {
        assert_error(
            &format!("challenge: {{status: {status}}}\n"),
            "challenge.status",
            &["200-599"],
        );
    }
    for status in [0, 99, 101, 199, 600] {
        assert_error(
            &format!("block: {{status: {status}}}\n"),
            "block.status",
            &[&status.to_string(), "200-599"],
        );
        assert_error(
            &format!("routes: [{{match: {{path: /a}}, block: {{status: {status}}}}}]\n"),
            "routes[0].block.status",
            &["200-599"],
        );
    }
    for prefix in [
        "palisade/",
        "/palisade",
        "/pal isade/",
        "/a\"b/",
        "/a<b/",
        "/",
        "//",
    ] {
        assert_error(
            &format!("challenge: {{path_prefix: '{prefix}'}}\n"),
            "challenge.path_prefix",
            &["starting and ending with `/`"],
        );
    }
    assert_error(
        "challenge: {ticket_ttl: 0}\n",
        "challenge.ticket_ttl",
        &["longer than 0s"],
    );
    assert_error(
        "routes: [{match: {host: 'example.com:8080'}}]\n",
        "routes[0].match.host",
        &["without its port"],
    );
    assert_error(
        "rate_limiting: {buckets: 0}\n",
        "rate_limiting.buckets",
        &["at least 1"],
    );
    assert_error(
        "client: {ipv4_prefix: 0}\n",
        "client.ipv4_prefix",
        &["1-32"],
    );
    assert_error(
        "client: {ipv4_prefix: 33}\n",
        "client.ipv4_prefix",
        &["1-32"],
    );
    assert_error(
        "client: {ipv6_prefix: 129}\n",
        "client.ipv6_prefix",
        &["1-128"],
    );
    assert_error(
        "client: {source: x_forwarded_for, trusted_hops: 0}\n",
        "client.trusted_hops",
        &["at least 1"],
    );
    assert_error("thresholds: {block: 102}\n", "thresholds.block", &["0-100"]);
    assert_error(
        "thresholds: {monitor: 80, challenge: 70}\n",
        "thresholds",
        &["must rise", "monitor (80) <= challenge (70) <= block (90)"],
    );
    assert_error(
        "thresholds: {challenge: 95}\n",
        "thresholds",
        &["must rise"],
    );
}

#[test]
fn route_and_rule_structure_errors() {
    assert_error(
        "routes: [{name: a, match: {path: /a}}, {name: b, match: {path: /b}}, {name: a, match: {path: /c}}]\n",
        "routes[2].name",
        &["route name `a` is used twice"],
    );
    assert_error(
        "routes: [{name: default, match: {path: /a}}]\n",
        "routes[0].name",
        &["`default`"],
    );
    assert_error(
        "default_route: {match: {path: /a}}\n",
        "default_route",
        &["no `name` or `match`"],
    );
    assert_error(
        "default_route: {name: fallback}\n",
        "default_route",
        &["no `name` or `match`"],
    );
    assert_error(
        "default_route: {match: {methods: [GET]}}\n",
        "default_route",
        &["no `name` or `match`"],
    );
    assert_error(
        "rules: [{name: a, when: {path: /a}, weight: 1}, {name: a, when: {path: /b}, weight: 1}]\n",
        "rules[1].name",
        &["rule name `a` is used twice"],
    );
    assert_error(
        "rules: [{name: '', when: {path: /a}, weight: 1}]\n",
        "rules[0].name",
        &["needs a name"],
    );
    assert_error(
        "rules: [{name: a, when: {}, weight: 1}]\n",
        "rules[0].when",
        &["empty condition"],
    );
    assert_error(
        "rules: [{name: a, when: {any: [{path: /a}, {not: {}}]}, weight: 1}]\n",
        "rules[0].when.any[1].not",
        &["empty condition"],
    );
    assert_error(
        "rules: [{name: a, when: {all: [{}]}, weight: 1}]\n",
        "rules[0].when.all[0]",
        &["empty condition"],
    );
    assert_error(
        "rules: [{name: ok, when: {path: /a}, weight: 1}, {name: a, when: {path: /a}}]\n",
        "rules[1]",
        &["no effect"],
    );
    assert_error(
        "rules: [{name: a, when: {path: /a}, weight: 0}]\n",
        "rules[0]",
        &["no effect"],
    );
}

#[test]
fn compiling_is_all_or_nothing() {
    // Everything valid but the last rule: no policy at all, the error names it.
    let body = r#"
lists:
  office: {cidrs: [192.0.2.0/24]}
routes:
  - {name: api, match: {path: /api/*}, action: block}
rules:
  - {name: good, when: {ip_in: office}, action: allow}
  - {name: bad, when: {user_agent: '('}, weight: 1}
"#;
    let e = compile_in(body, &FakeEnv::default()).unwrap_err();
    assert_eq!(e.path, "rules[1].when.user_agent");
    // The same config without the bad rule compiles, and behaves the same
    // compiled twice (no state leaks between compilations).
    let fixed = body.replace("  - {name: bad, when: {user_agent: '('}, weight: 1}\n", "");
    let a = policy(&fixed);
    let b = policy(&fixed);
    for p in [&a, &b] {
        assert_eq!(decide(p, &Req::get("/api/x")).action, Action::Block);
        assert_eq!(
            decide(p, &Req::get("/api/x").ip("192.0.2.1")).action,
            Action::Allow
        );
        assert_eq!(p.rule_names().collect::<Vec<_>>(), ["good"]);
    }
}

// ---------------------------------------------------------------------------
// Request parsing edge cases

#[test]
fn odd_hosts_never_panic() {
    let p = policy(
        "routes: [{name: v6, match: {host: \"[::1]\"}}, {name: br, match: {host: \"[*\"}}]\n",
    );
    for (host, route) in [
        ("[::1", "br"),
        ("[", "br"),
        ("[::1]:80", "v6"),
        ("[::1]", "v6"),
        ("]", "default"),
        ("", "default"),
        (":", "default"),
    ] {
        assert_eq!(route_of(&p, &Req::get("/").host(host)), route, "{host:?}");
    }
}

#[test]
fn percent_decoding_needs_two_hex_digits() {
    use palisade::policy::percent_decode;
    assert_eq!(percent_decode("a%20b+c"), "a b c");
    assert_eq!(percent_decode("%2f%2F"), "//");
    // `+` is still a space after a `%` that is not an escape.
    assert_eq!(percent_decode("%+1%-1%+f"), "% 1%-1% f");
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("%C3%A9"), "é");
    let p = policy("routes: [{name: q, match: {query: [{name: x, equals: \"%-1\"}]}}]\n");
    assert_eq!(route_of(&p, &Req::get("/?x=%-1")), "q");
    assert_eq!(route_of(&p, &Req::get("/?x=%01")), "default");
    let p = policy("routes: [{name: q, match: {query: [{name: x, equals: \"% 1\"}]}}]\n");
    assert_eq!(route_of(&p, &Req::get("/?x=%+1")), "q");
}

// ---------------------------------------------------------------------------
// Details the configuration reference states

#[test]
fn defaults_written_out_equal_the_empty_policy() {
    let written = format!(
        r#"
client: {{source: connection, trusted_hops: 1, ipv4_prefix: 32, ipv6_prefix: 64}}
tokens:
  keys: ["{KEY}"]
  keys_env: null
  ttl: 1h
  max_age: 1h
  bind_ip: true
  bind_user_agent: true
  cookie: {{name: palisade, path: /, domain: null, secure: false, http_only: true, same_site: Lax}}
  header: x-palisade-token
thresholds: {{monitor: 50, challenge: 70, block: 90}}
challenge: {{kind: pow, difficulty: 2, status: 403, path_prefix: /.palisade/, ticket_ttl: 5m}}
block: {{status: 403, body: Access denied.}}
annotate: {{upstream_headers: true}}
rate_limiting: {{buckets: 16384}}
lists: {{}}
crawlers: {{builtin: true, extra: []}}
routes: []
default_route: {{}}
rules: []
"#
    );
    let minimal = policy("");
    let full = policy(&written);
    for p in [&minimal, &full] {
        assert_eq!(p.route_names().collect::<Vec<_>>(), ["default"]);
        assert_eq!(p.rate_limit_buckets(), 16384);
        assert!(p.annotate_upstream());
        assert_eq!(p.verify_path(), "/.palisade/verify");
        let t = p.thresholds();
        assert_eq!((t.monitor, t.challenge, t.block), (50, 70, 90));
        let c = p.challenge_config();
        assert_eq!(
            (c.kind, c.difficulty, c.status, c.ticket_ttl.0),
            (ChallengeKind::Pow, 2, 403, 300)
        );
        let tk = p.tokens();
        assert_eq!(
            (tk.ttl_s, tk.max_age_s, tk.bind_ip, tk.bind_user_agent),
            (3600, 3600, true, true)
        );
        assert_eq!(
            (tk.cookie.name.as_str(), tk.header.as_str()),
            ("palisade", "x-palisade-token")
        );
        for r in [Req::get("/"), Req::get("/admin").ua(CURL).method("DELETE")] {
            let d = decide(p, &r);
            assert_eq!(
                (d.action, d.route, d.rate_limit.is_none()),
                (Action::Allow, "default", true)
            );
        }
    }
}

#[test]
fn routes_and_rules_match_the_canonical_path() {
    let p = policy(
        "routes: [{name: admin, match: {path: /admin/*}, action: block}]\n\
         rules: [{name: probe, when: {path: /wp-login.php}, weight: 40}]\n",
    );
    for path in [
        "/admin/x",
        "/%61dmin/x",
        "//admin/x",
        "/admin;a=b/x",
        "/x/..;/admin/x",
        "/admin%2fx",
        "/admin%252fx",
        "/admin./x",
    ] {
        assert_eq!(route_of(&p, &Req::get(path)), "admin", "{path}");
    }
    // Case counts unless the policy says otherwise.
    assert_eq!(route_of(&p, &Req::get("/Admin/x")), "default");
    let d = decide(&p, &Req::get("/x/../wp-login.php;x"));
    assert_eq!(fired(&d), ["probe"]);
}

#[test]
fn case_insensitive_paths_fold_patterns_and_paths() {
    let p = policy(
        "paths: {case_insensitive: true}\n\
         routes:\n\
         \x20 - {name: admin, match: {path: /Admin/*, except: /admin/PUBLIC/*}, action: block}\n\
         \x20 - {name: api, match: {path_regex: '^/API/v[0-9]+/'}, action: monitor}\n\
         rules: [{name: probe, when: {path: /WP-login.php}, weight: 40}]\n",
    );
    for path in ["/admin/x", "/ADMIN/x", "/aDmIn;x/y", "/%41dmin/x"] {
        assert_eq!(route_of(&p, &Req::get(path)), "admin", "{path}");
    }
    assert_eq!(route_of(&p, &Req::get("/Admin/Public/x")), "default");
    assert_eq!(route_of(&p, &Req::get("/api/V2/x")), "api");
    assert_eq!(fired(&decide(&p, &Req::get("/wp-LOGIN.php"))), ["probe"]);
}

#[test]
fn a_route_can_fold_case_on_its_own() {
    let p = policy(
        "routes:\n\
         \x20 - {name: sensitive, match: {path: /Docs/*}, action: monitor}\n\
         \x20 - {name: admin, match: {path: /Admin/*, except: /admin/public/*, case_insensitive: true}, action: block}\n\
         \x20 - {name: after, match: {path: /admin*}, action: allow}\n",
    );
    for path in ["/admin/x", "/ADMIN/x", "/%41dmin/x"] {
        assert_eq!(route_of(&p, &Req::get(path)), "admin", "{path}");
    }
    // Its except folds too, and falls through to the next route.
    assert_eq!(route_of(&p, &Req::get("/admin/PUBLIC/x")), "after");
    // Other routes keep their case.
    assert_eq!(route_of(&p, &Req::get("/Docs/a")), "sensitive");
    assert_eq!(route_of(&p, &Req::get("/docs/a")), "default");
}

#[test]
fn paths_without_a_canonical_form_are_refused_with_400() {
    let p = policy("routes: [{name: open, match: {path: /*}, action: allow}]\n");
    for path in [
        "/a\\b",
        "/a\"b",
        "/a<b>",
        "/a`b",
        "/a{b}",
        "/a%00b",
        "/a%0d%0aSet-Cookie:x",
        "/%c0%afetc",
        "/a%2525252fb",
        "/über",
        "/a\u{fffd}",
    ] {
        let d = decide(&p, &Req::get(path));
        assert_eq!(
            (d.action, d.block.map(|(status, _)| status)),
            (Action::Block, Some(400)),
            "{path}"
        );
        assert!(matches!(d.reason, Reason::BadPath(_)), "{path}");
        assert_eq!(d.rate_limit, None);
    }
    // What is merely unusual is not refused.
    for path in ["/a|b^c", "/100%", "/caf%C3%A9", "/a%20b"] {
        assert_eq!(decide(&p, &Req::get(path)).action, Action::Allow, "{path}");
    }
}

#[test]
fn the_cookie_hides_the_header() {
    let p = tokens_policy("");
    let good = p.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(3), NOW_S);
    let r = with_cookie(Req::get("/all/"), "stale").header("X-Palisade-Token", &good);
    let d = decide(&p, &r);
    assert_eq!(d.token, TokenState::Rejected(TokenError::Malformed));
    assert_eq!(d.action, Action::Challenge);
}

#[test]
fn rate_limits_apply_to_allow_listed_challenged_and_monitored_requests() {
    let p = policy(
        r#"
lists:
  office: {cidrs: ["203.0.113.0/24"]}
routes:
  - {name: admin, match: {path: /admin/*}, action: block, rate_limit: {rate: 1/minute}}
  - {name: login, match: {path: /login}, action: challenge_all, rate_limit: {rate: 1/minute}}
  - {name: watch, match: {path: /watch/*}, action: monitor, rate_limit: {rate: 1/minute}}
rules:
  - {name: office, when: {all: [{ip_in: office}, {path: /admin/*}]}, action: allow}
  - {name: stop, when: {query: [{name: stop, present: true}]}, action: block}
"#,
    );
    let mut store = MemoryStore::new(64);
    let mut act = |r: Req| p.decide(&r.request(), &mut store, NOW).action;
    assert_eq!(act(Req::get("/admin/x")), Action::Allow);
    assert_eq!(act(Req::get("/admin/x")), Action::RateLimited);
    assert_eq!(act(Req::get("/login")), Action::Challenge);
    assert_eq!(act(Req::get("/login")), Action::RateLimited);
    // A monitor route is no dry run for rule actions and limits.
    assert_eq!(act(Req::get("/watch/x?stop")), Action::Block);
    assert_eq!(act(Req::get("/watch/x")), Action::Monitor);
    assert_eq!(act(Req::get("/watch/x")), Action::RateLimited);
    // A pass token does not bypass the limit either.
    let p = policy(
        "challenge: {difficulty: 1}\nroutes: [{name: login, match: {path: /login}, action: challenge_all, rate_limit: {rate: 1/minute}}]\n",
    );
    let token = p.issue_token(Some(ip(CLIENT_IP)), CHROME, Passed::pow(1), NOW_S);
    let mut store = MemoryStore::new(64);
    let r = with_cookie(Req::get("/login"), &token);
    assert_eq!(
        p.decide(&r.request(), &mut store, NOW).action,
        Action::Allow
    );
    assert_eq!(
        p.decide(&r.request(), &mut store, NOW).action,
        Action::RateLimited
    );
}

#[test]
fn verify_failure_messages() {
    let p = policy(CHALLENGED);
    let me = Req::get("/");
    let data = ticket(&p, &me);
    let nonce = challenge::solve(&data, 12);
    let body = json!({"data": data, "nonce": nonce}).to_string();
    let (resp, _) = verify_json(&p, &me.clone().ua(CURL), &body, NOW);
    assert_eq!(
        body_json(&resp),
        json!({"error": "ticket_other_client",
               "message": "the ticket is not valid: bound to another user agent"})
    );
}

#[test]
fn oversized_regexes_are_errors_at_their_path() {
    assert_error(
        "routes: [{match: {path: /a}}, {match: {path_regex: '\\w{5000}'}}]\n",
        "routes[1].match.path_regex",
        &["exceeds size limit"],
    );
    assert_error(
        "rules: [{name: a, when: {user_agent: '\\w{5000}'}, weight: 1}]\n",
        "rules[0].when.user_agent",
        &["exceeds size limit"],
    );
}

#[test]
fn a_rule_difficulty_only_raises_the_route_difficulty() {
    let p = policy(
        r#"
routes:
  - {name: login, match: {path: /login}, action: challenge_all, challenge: {difficulty: 5}}
  - {name: other, match: {path: /other}, action: challenge_all, challenge: {difficulty: 1}}
rules:
  - {name: flagged, when: {headers: [{name: x-flag, present: true}]}, challenge: {difficulty: 3}}
"#,
    );
    let flagged = |path: &str| {
        decide(&p, &Req::get(path).header("x-flag", "1"))
            .challenge
            .map(|c| c.difficulty)
    };
    assert_eq!(flagged("/login"), Some(5), "never easier than the route's");
    assert_eq!(flagged("/other"), Some(3), "harder than the route's");
}

#[test]
fn user_agent_patterns_are_ascii_only() {
    assert_error(
        "rules: [{name: a, when: {user_agent: '\\p{Greek}'}, weight: 1}]\n",
        "rules[0].when.user_agent",
        &["ASCII-only"],
    );
    // ASCII classes and case-insensitivity work as usual.
    let p = policy("rules: [{name: a, when: {user_agent: '^curl/\\d'}, weight: 60}]\n");
    let d = decide(&p, &Req::get("/").ua("CURL/8.5.0"));
    assert_eq!(d.score, 60);
}

// ---------------------------------------------------------------------------
// Client classes: browser tokens and header consistency

#[test]
fn a_policy_can_add_browser_tokens() {
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 AcmeBrowser/2.0";
    let plain = policy("");
    assert_eq!(
        decide(&plain, &Req::get("/").ua(ua)).client.class,
        ClientClass::Bot
    );
    let p = policy("crawlers: {browser_tokens: [AcmeBrowser]}");
    assert_eq!(
        decide(&p, &Req::get("/").ua(ua)).client.class,
        ClientClass::Browser
    );
    assert_error(
        "crawlers: {browser_tokens: ['Acme Browser']}",
        "crawlers.browser_tokens[0]",
        &["one name"],
    );
    assert_error(
        "crawlers: {builtin: false, browser_tokens: [Acme]}",
        "crawlers.browser_tokens",
        &["crawlers.builtin: true"],
    );
}

const CONSISTENCY: &str = r#"
client: {source: x_forwarded_for, trusted_hops: 1}
rules:
  - name: inconsistent
    when: {header_anomalies: [no_client_hints, no_fetch_metadata]}
    weight: 60
  - name: no-accept
    when: {header_anomalies: [no_accept]}
    weight: 1
"#;

/// Chrome's headers on a navigation, as Chromium sends them to https.
fn chrome_navigation(r: Req) -> Req {
    r.header("Accept", "text/html")
        .header("Sec-Fetch-Site", "none")
        .header("Sec-Fetch-Mode", "navigate")
        .header(
            "sec-ch-ua",
            r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
        )
}

#[test]
fn header_anomalies_fire_only_on_secure_requests() {
    let p = policy(CONSISTENCY);
    // Plain http to a public host: browsers send neither, nothing is missing.
    assert_eq!(
        fired(&decide(&p, &Req::get("/").header("Accept", "*/*"))),
        Vec::<String>::new()
    );
    // https from `:scheme`, from the trusted proxy's X-Forwarded-Proto, or a
    // loopback host: the bare Chrome user agent is inconsistent.
    for r in [
        Req::get("/")
            .header(":scheme", "https")
            .header("Accept", "*/*"),
        Req::get("/")
            .header("X-Forwarded-Proto", "https")
            .header("Accept", "*/*"),
        Req::get("/").host("127.0.0.1:8080").header("Accept", "*/*"),
        Req::get("/").host("localhost").header("Accept", "*/*"),
    ] {
        let d = decide(&p, &r);
        assert_eq!(fired(&d), ["inconsistent"], "{:?}", r.headers);
        assert_eq!(d.score, 60);
    }
    // With Chrome's own headers: consistent.
    let full = chrome_navigation(Req::get("/").header(":scheme", "https"));
    assert!(fired(&decide(&p, &full)).is_empty());
    // The client's own "https, " is left of the trusted proxy's "http".
    let spoofed = Req::get("/")
        .header("X-Forwarded-Proto", "https, http")
        .header("Accept", "*/*");
    assert!(fired(&decide(&p, &spoofed)).is_empty());
    // Without Accept, on any scheme.
    assert_eq!(
        fired(&decide(&p, &Req::get("/").without("Accept"))),
        ["no-accept"]
    );
    // Not a browser: header anomalies never apply.
    let curl = Req::get("/").ua(CURL).header(":scheme", "https");
    assert!(fired(&decide(&p, &curl)).is_empty());
}

#[test]
fn unknown_header_anomalies_are_config_errors() {
    assert_error(
        "rules: [{name: x, when: {header_anomalies: [no_cookies]}}]",
        "rules[0].when.header_anomalies[0]",
        &["unknown variant `no_cookies`", "no_client_hints"],
    );
}

// ---------------------------------------------------------------------------
// The companion: hand-off, failure modes, own paths, the health record

/// A policy whose every request is challenged with `kind` at difficulty 3,
/// the companion probed every 5 s and `failure_mode: mode`.
fn companion_policy(kind: ChallengeKind, mode: &str) -> Policy {
    // A provider kind needs its block (any settings do here).
    let providers = match kind {
        ChallengeKind::Altcha => ", providers: {altcha: {}}".to_string(),
        k if k.is_provider() => format!(
            ", providers: {{{}: {{site_key: k, secret_env: S}}}}",
            k.as_str()
        ),
        _ => String::new(),
    };
    policy(&format!(
        "challenge: {{kind: {}, difficulty: 3, status: 429}}\n\
         companion: {{failure_mode: {mode}, health_interval: 5s{providers}}}\n\
         default_route: {{action: challenge_all}}\n",
        kind.as_str()
    ))
}

const MODES: [&str; 3] = ["pow", "fail_open", "fail_closed"];

/// The companion's kinds (every kind but pow).
fn companion_kinds() -> impl Iterator<Item = ChallengeKind> {
    ChallengeKind::ALL
        .into_iter()
        .filter(|k| k.needs_companion())
}

fn reply(p: &Policy, r: &Req, health: CompanionHealth) -> Reply {
    let d = decide(p, r);
    assert_eq!(d.action, Action::Challenge, "{}", r.path);
    p.respond(&d, &r.request(), || health, NOW)
}

fn own(p: &Policy, r: &Req, health: CompanionHealth) -> OwnReply {
    p.route_own(&r.request(), health, NOW)
}

fn own_response(p: &Policy, r: &Req) -> (Response, CompanionUse) {
    match own(p, r, CompanionHealth::Down) {
        OwnReply::Reply(Reply {
            response: Some(response),
            companion,
        }) => (response, companion),
        other => panic!("{} {}: {other:?}", r.method, r.path),
    }
}

fn json_req(r: Req) -> Req {
    r.header("Accept", "application/json")
}

/// The return path a companion URL carries, decoded.
fn return_of(url: &str) -> String {
    let h: Vec<(String, String)> = Vec::new();
    let r = Request::new("GET", url, "", &h, None);
    assert_eq!(r.path, "/.palisade/challenge", "{url}");
    r.query_param("return").expect("a return parameter")
}

#[test]
fn companion_kinds_hand_off_while_up() {
    for kind in companion_kinds() {
        let p = companion_policy(kind, "pow");
        let url = format!(
            "/.palisade/challenge?kind={}&difficulty=3&return=/page%3Fx%3D1",
            kind.as_str()
        );
        assert_eq!(
            p.companion_challenge_url(
                palisade::policy::ChallengeSpec {
                    kind,
                    difficulty: 3
                },
                "/page?x=1"
            ),
            url
        );
        // GET and HEAD: a redirect that no cache keeps.
        for method in ["GET", "HEAD", "get"] {
            let r = reply(
                &p,
                &Req::get("/page?x=1").method(method),
                CompanionHealth::Up,
            );
            assert_eq!(r.companion, CompanionUse::HandedOff);
            let resp = r.response.unwrap();
            assert_eq!(resp.status, 303, "{method}");
            assert_eq!(header(&resp, "location"), Some(url.as_str()));
            assert_eq!(header(&resp, "cache-control"), Some("no-store"));
            assert_eq!(resp.body, "");
        }
        // Programs get the URL in JSON, whatever the method.
        for method in ["GET", "POST"] {
            let r = reply(
                &p,
                &json_req(Req::get("/page?x=1").method(method)),
                CompanionHealth::Up,
            );
            assert_eq!(r.companion, CompanionUse::HandedOff);
            let resp = r.response.unwrap();
            assert_eq!(resp.status, 429);
            assert_eq!(header(&resp, "cache-control"), Some("no-store"));
            assert_eq!(
                body_json(&resp),
                json!({"action": "challenge",
                       "challenge": {"kind": kind.as_str(), "difficulty": 3, "url": url}})
            );
        }
        // Other methods: a page linking to the challenge (a redirect would
        // lose the body), returning to the same path.
        for method in ["POST", "PUT", "DELETE"] {
            let r = reply(
                &p,
                &Req::get("/page?x=1").method(method),
                CompanionHealth::Up,
            );
            assert_eq!(r.companion, CompanionUse::HandedOff);
            let resp = r.response.unwrap();
            assert_eq!(resp.status, 429, "{method}");
            assert_eq!(header(&resp, "location"), None);
            assert_eq!(
                header(&resp, "content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(header(&resp, "cache-control"), Some("no-store"));
            assert!(resp.body.starts_with("<!doctype html><html lang=\"en\">"));
            assert!(
                resp.body.contains(&format!(
                    "<a href=\"/.palisade/challenge?kind={}&amp;difficulty=3&amp;return=/page%3Fx%3D1\">Continue to the check</a>",
                    kind.as_str()
                )),
                "{}",
                resp.body
            );
            assert!(resp.body.contains("<code>/page?x=1</code>"));
            assert!(resp.body.contains("<main>") && resp.body.contains("<h1>"));
        }
    }
}

#[test]
fn the_redirect_carries_odd_return_paths_exactly() {
    let p = companion_policy(ChallengeKind::Text, "pow");
    for path in [
        "/caf%C3%A9/a+b?q=1&r=%26x&s=a%20b",
        "/plain",
        "/x?next=/y?z=1&w=#frag",
        // A raw `/über` is refused (400) like any raw byte past ASCII in
        // a path; Envoy refuses it itself.
        "/%C3%BCber?ä=ö",
        "/a;b,c'd%22e%3Cf%3E",
        "/%zz%",
    ] {
        let r = reply(&p, &Req::get(path), CompanionHealth::Up);
        let resp = r.response.unwrap();
        let location = header(&resp, "location").unwrap();
        assert_eq!(return_of(location), path, "{location}");
        // Only the URL's own parameters are separated; nothing to break out of.
        assert_eq!(location.matches('&').count(), 2, "{location}");
        assert!(
            location
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<'),
            "{location}"
        );
    }
    // A return path that could leave the site returns to `/`.
    for path in ["//evil.example/x", "///evil.example/x"] {
        let r = reply(&p, &Req::get(path), CompanionHealth::Up);
        let resp = r.response.unwrap();
        assert_eq!(return_of(header(&resp, "location").unwrap()), "/", "{path}");
    }
    let long = format!("/{}", "a".repeat(2048));
    let resp = reply(&p, &Req::get(&long), CompanionHealth::Up)
        .response
        .unwrap();
    assert_eq!(return_of(header(&resp, "location").unwrap()), "/");
    // Another prefix moves the page.
    let p = policy(
        "challenge: {kind: grid, path_prefix: /_guard/}\ndefault_route: {action: challenge_all}\n",
    );
    let resp = reply(&p, &Req::get("/"), CompanionHealth::Up)
        .response
        .unwrap();
    assert_eq!(
        header(&resp, "location"),
        Some("/_guard/challenge?kind=grid&difficulty=2&return=/")
    );
}

#[test]
fn pow_challenges_are_the_filters_whatever_the_health() {
    let p = companion_policy(ChallengeKind::Pow, "fail_closed");
    for method in ["GET", "POST"] {
        let r = Req::get("/page").method(method);
        let d = decide(&p, &r);
        // `respond` (the harness) fails if the health is read at all.
        let page = respond(&p, &d, &r).unwrap();
        assert_eq!(page.status, 429);
        assert!(page.body.contains("action=\"/.palisade/verify\""));
        let reply = p.respond(&d, &r.request(), || CompanionHealth::Down, NOW);
        assert_eq!(reply.companion, CompanionUse::NotInvolved);
    }
    let v = challenge_json(&p, &Req::get("/page"));
    assert_eq!(v["challenge"]["kind"], "pow");
    assert_eq!(v["challenge"]["difficulty"], 16);
}

#[test]
fn the_health_is_read_only_for_the_companions_kinds() {
    let p = policy(
        "routes:\n\
         - {match: {path: /text}, action: challenge_all, challenge: {kind: text}}\n\
         - {match: {path: /pow}, action: challenge_all}\n\
         - {match: {path: /blocked}, action: block}\n\
         - {match: {path: /open}, action: allow}\n",
    );
    for (path, reads) in [("/text", 1), ("/pow", 0), ("/blocked", 0), ("/open", 0)] {
        let r = Req::get(path);
        let d = decide(&p, &r);
        let count = std::cell::Cell::new(0);
        p.respond(
            &d,
            &r.request(),
            || {
                count.set(count.get() + 1);
                CompanionHealth::Up
            },
            NOW,
        );
        assert_eq!(count.get(), reads, "{path}");
    }
}

#[test]
fn a_down_companion_falls_back_to_pow_at_the_same_difficulty() {
    for kind in companion_kinds() {
        let p = companion_policy(kind, "pow");
        for method in ["GET", "POST"] {
            let me = Req::get("/page?x=1").method(method);
            let r = reply(&p, &me, CompanionHealth::Down);
            assert_eq!(r.companion, CompanionUse::Fallback(FailureMode::Pow));
            let page = r.response.unwrap();
            assert_eq!(page.status, 429);
            assert!(page.body.contains("action=\"/.palisade/verify\""));
            assert!(page.body.contains("data-bits=\"16\""), "difficulty 3");
        }
        // JSON: the pow challenge, solvable here, passing at difficulty 3.
        let me = Req::get("/page?x=1");
        let r = reply(&p, &json_req(me.clone()), CompanionHealth::Down);
        assert_eq!(r.companion, CompanionUse::Fallback(FailureMode::Pow));
        let v = body_json(&r.response.unwrap());
        assert_eq!(v["challenge"]["kind"], "pow");
        assert_eq!(v["challenge"]["difficulty"], 16);
        assert_eq!(v["verify"], "/.palisade/verify");
        let data = v["challenge"]["data"].as_str().unwrap();
        let nonce = challenge::solve(data, 16);
        let (resp, outcome) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
        assert_eq!(outcome, VerifyOutcome::Passed);
        assert_eq!(header(&resp, "location"), Some("/page?x=1"));
        let cookie = header(&resp, "set-cookie").unwrap();
        let token = cookie
            .strip_prefix("palisade=")
            .and_then(|c| c.split(';').next())
            .unwrap();
        let claims = p.verify_token(token, me.ip, CHROME, NOW_S).unwrap();
        assert_eq!(Passed::from_level_byte(claims.level), Some(Passed::pow(3)));
        let d = decide(&p, &with_cookie(me.clone(), token));
        assert_eq!((d.action, d.reason), (Action::Allow, Reason::PassToken));
    }
}

#[test]
fn a_down_companion_fails_open_and_says_so() {
    for kind in companion_kinds() {
        let p = companion_policy(kind, "fail_open");
        for r in [
            Req::get("/page"),
            Req::get("/page").method("POST"),
            json_req(Req::get("/page")),
        ] {
            let got = reply(&p, &r, CompanionHealth::Down);
            assert_eq!(
                got,
                Reply {
                    response: None,
                    companion: CompanionUse::Fallback(FailureMode::FailOpen)
                },
                "{} {:?}",
                r.method,
                r.headers
            );
        }
        // Up, fail_open changes nothing.
        let up = reply(&p, &Req::get("/page"), CompanionHealth::Up);
        assert_eq!(up.response.unwrap().status, 303);
    }
}

#[test]
fn a_down_companion_fails_closed_with_retry_after() {
    for kind in companion_kinds() {
        let p = companion_policy(kind, "fail_closed");
        for method in ["GET", "POST"] {
            let r = reply(&p, &Req::get("/page").method(method), CompanionHealth::Down);
            assert_eq!(r.companion, CompanionUse::Fallback(FailureMode::FailClosed));
            let resp = r.response.unwrap();
            assert_eq!(resp.status, 503);
            assert_eq!(header(&resp, "retry-after"), Some("5"));
            assert_eq!(
                header(&resp, "content-type"),
                Some("text/html; charset=utf-8")
            );
            assert!(resp.body.contains("try again in 5 seconds"));
        }
        let r = reply(&p, &json_req(Req::get("/page")), CompanionHealth::Down);
        let resp = r.response.unwrap();
        assert_eq!(resp.status, 503);
        assert_eq!(header(&resp, "retry-after"), Some("5"));
        assert_eq!(
            body_json(&resp),
            json!({"error": "companion_unavailable", "retry_after": 5})
        );
    }
    // The shortest interval still asks for a second.
    let p = policy(
        "challenge: {kind: audio}\ncompanion: {failure_mode: fail_closed}\ndefault_route: {action: challenge_all}\n",
    );
    let resp = reply(&p, &Req::get("/"), CompanionHealth::Down)
        .response
        .unwrap();
    assert_eq!(header(&resp, "retry-after"), Some("1"));
    assert!(
        resp.body.contains("try again in 1 second."),
        "{}",
        resp.body
    );
}

#[test]
fn own_paths_go_to_the_companion_while_it_is_up() {
    for mode in MODES {
        let p = companion_policy(ChallengeKind::Text, mode);
        for (method, path) in [
            ("POST", "/.palisade/verify"),
            ("GET", "/.palisade/challenge?kind=text"),
            ("POST", "/.palisade/challenge/abc/verify"),
            ("GET", "/.palisade/challenge/abc/image.png"),
        ] {
            let r = Req::get(path).method(method);
            assert_eq!(
                own(&p, &r, CompanionHealth::Up),
                OwnReply::Companion,
                "{path}"
            );
        }
    }
}

#[test]
fn own_paths_while_the_companion_is_down() {
    for mode in MODES {
        let p = companion_policy(ChallengeKind::Text, mode);
        // The pow verify stays in the filter, whatever the method (the
        // verify endpoint answers a GET with 405).
        for method in ["POST", "GET"] {
            let r = Req::get("/.palisade/verify").method(method);
            assert_eq!(own(&p, &r, CompanionHealth::Down), OwnReply::Verify);
        }
        // The companion's other resources: 503 JSON, in every mode.
        for (method, path) in [
            ("POST", "/.palisade/challenge/abc/verify"),
            ("GET", "/.palisade/challenge/abc/audio.wav"),
            ("GET", "/.palisade/challenge/"),
            ("GET", "/.palisade/"),
        ] {
            let (resp, used) = own_response(&p, &Req::get(path).method(method));
            assert_eq!(used, CompanionUse::NotInvolved);
            assert_eq!(resp.status, 503, "{mode} {path}");
            assert_eq!(header(&resp, "retry-after"), Some("5"));
            assert_eq!(
                body_json(&resp),
                json!({"error": "companion_unavailable", "retry_after": 5})
            );
        }
        // Bad challenge URLs.
        for query in [
            "kind=captcha",
            "difficulty=0",
            "difficulty=6",
            "difficulty=x",
        ] {
            let (resp, _) = own_response(&p, &Req::get(&format!("/.palisade/challenge?{query}")));
            assert_eq!(resp.status, 400, "{query}");
            assert_eq!(body_json(&resp)["error"], "bad_request");
        }
        let (resp, _) = own_response(&p, &Req::get("/.palisade/challenge").method("POST"));
        assert_eq!(resp.status, 405);
        assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
        // A pow challenge URL is served in every mode (it needs no companion).
        let (page, used) = own_response(
            &p,
            &Req::get("/.palisade/challenge?kind=pow&difficulty=1&return=/a"),
        );
        assert_eq!(used, CompanionUse::NotInvolved);
        assert_eq!(
            (page.status, page.body.contains("data-bits=\"12\"")),
            (200, true)
        );
    }
}

#[test]
fn a_challenge_url_while_down_follows_the_failure_mode() {
    let url = "/.palisade/challenge?kind=grid&difficulty=4&return=/shop%3Fitem%3D7%26x%3D%2B";
    // pow: the proof of work for that return path and difficulty.
    let p = companion_policy(ChallengeKind::Grid, "pow");
    let me = Req::get(url);
    let (page, used) = own_response(&p, &me);
    assert_eq!(used, CompanionUse::Fallback(FailureMode::Pow));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-bits=\"18\""));
    let (resp, _) = own_response(&p, &json_req(me.clone()));
    let v = body_json(&resp);
    assert_eq!(resp.status, 200);
    let data = v["challenge"]["data"].as_str().unwrap();
    let nonce = challenge::solve(data, 18);
    let (resp, outcome) = verify_form(&p, &me, &format!("data={data}&nonce={nonce}"), NOW);
    assert_eq!(outcome, VerifyOutcome::Passed);
    assert_eq!(header(&resp, "location"), Some("/shop?item=7&x=+"));
    // Defaults: the challenge section's difficulty, back to `/`.
    let (resp, _) = own_response(&p, &json_req(Req::get("/.palisade/challenge")));
    assert_eq!(body_json(&resp)["challenge"]["difficulty"], 16);

    // fail_closed: 503.
    let p = companion_policy(ChallengeKind::Grid, "fail_closed");
    let (resp, used) = own_response(&p, &Req::get(url));
    assert_eq!(used, CompanionUse::Fallback(FailureMode::FailClosed));
    assert_eq!(
        (resp.status, header(&resp, "retry-after")),
        (503, Some("5"))
    );

    // fail_open: back to the page, if it is on this site.
    let p = companion_policy(ChallengeKind::Grid, "fail_open");
    let (resp, used) = own_response(&p, &Req::get(url));
    assert_eq!(used, CompanionUse::Fallback(FailureMode::FailOpen));
    assert_eq!(resp.status, 303);
    assert_eq!(header(&resp, "location"), Some("/shop?item=7&x=+"));
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/%5Cevil.example",
        "",
    ] {
        let r = Req::get(&format!("/.palisade/challenge?kind=grid&return={evil}"));
        let (resp, _) = own_response(&p, &r);
        assert_eq!(header(&resp, "location"), Some("/"), "{evil}");
    }
}

fn record(up: bool, failures: u8, checked_s: u64) -> HealthRecord {
    HealthRecord {
        up,
        failures,
        checked_ns: checked_s * SECOND,
        claimed_ns: checked_s * SECOND,
    }
}

#[test]
fn the_health_record_round_trips_and_refuses_garbage() {
    let r = HealthRecord {
        up: true,
        failures: 1,
        checked_ns: NOW,
        claimed_ns: NOW + 7,
    };
    let text = r.encode();
    assert_eq!(
        String::from_utf8(text.clone()).unwrap(),
        format!("up 1 {NOW} {}", NOW + 7)
    );
    assert_eq!(HealthRecord::decode(&text), Some(r));
    assert_eq!(HEALTH_KEY, "palisade.companion.health");
    for bad in [
        &b""[..],
        b"up",
        b"maybe 0 1 2",
        b"up 0 1",
        b"up 0 1 2 3",
        b"up -1 1 2",
        b"up 0 x 2",
        b"\xff 0 1 2",
    ] {
        assert_eq!(HealthRecord::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn health_is_down_before_the_first_probe_and_when_stale() {
    let interval = 2 * SECOND;
    assert_eq!(
        HealthRecord::default().health(NOW, interval),
        CompanionHealth::Down
    );
    let up = record(true, 0, NOW_S);
    assert_eq!(up.health(NOW, interval), CompanionHealth::Up);
    // Nobody probed for more than STALE_AFTER intervals: down.
    let edge = NOW + STALE_AFTER * interval;
    assert_eq!(up.health(edge, interval), CompanionHealth::Up);
    assert_eq!(up.health(edge + 1, interval), CompanionHealth::Down);
    assert_eq!(
        record(false, 2, NOW_S).health(NOW, interval),
        CompanionHealth::Down
    );
}

#[test]
fn down_after_two_failed_probes_up_after_one_success() {
    let interval = SECOND;
    let mut r = HealthRecord::default();
    let mut at = NOW;
    let mut step = |r: HealthRecord, ok: bool| {
        at += interval;
        let next = r.after_probe(ok, at, interval);
        assert_eq!(next.checked_ns, at);
        (next, next.health(at, interval))
    };
    let health;
    (r, health) = step(r, true);
    assert_eq!(health, CompanionHealth::Up, "one success");
    let (r1, h1) = step(r, false);
    assert_eq!(
        (h1, r1.failures),
        (CompanionHealth::Up, 1),
        "one failure is not enough"
    );
    let (r1, h1) = step(r1, true);
    assert_eq!(
        (h1, r1.failures),
        (CompanionHealth::Up, 0),
        "a success resets the count"
    );
    let (r2, _) = step(r1, false);
    let (r2, h2) = step(r2, false);
    assert_eq!(
        (h2, r2.failures),
        (CompanionHealth::Down, DOWN_AFTER),
        "two in a row"
    );
    let (r3, h3) = step(r2, false);
    assert_eq!((h3, r3.failures), (CompanionHealth::Down, 3));
    let (_, h4) = step(r3, true);
    assert_eq!(h4, CompanionHealth::Up, "back after one success");
    // Failing from a never-written or stale record stays down at once.
    let (_, h) = step(HealthRecord::default(), false);
    assert_eq!(h, CompanionHealth::Down);
    let stale = record(true, 0, NOW_S - 60);
    assert_eq!(
        stale
            .after_probe(false, NOW, interval)
            .health(NOW, interval),
        CompanionHealth::Down
    );
}

#[test]
fn one_probe_is_claimed_per_interval() {
    let interval = 4 * SECOND;
    assert!(HealthRecord::default().should_probe(NOW, interval));
    let claimed = HealthRecord::default().claimed(NOW);
    assert_eq!(claimed.claimed_ns, NOW);
    assert_eq!(claimed.checked_ns, 0, "claiming is not a result");
    // Other workers ticking within three quarters of an interval leave it.
    assert!(!claimed.should_probe(NOW + 2 * SECOND, interval));
    assert!(!claimed.should_probe(NOW + 3 * SECOND - 1, interval));
    assert!(claimed.should_probe(NOW + 3 * SECOND, interval));
    // A probe's result keeps the claim.
    let done = claimed.after_probe(true, NOW + SECOND / 10, interval);
    assert_eq!(done.claimed_ns, NOW);
    assert!(!done.should_probe(NOW + SECOND, interval));
}

#[test]
fn the_companion_cluster_settings_are_checked() {
    let p = policy("companion: {cluster: c1, health_cluster: c2, failure_mode: fail_open, health_interval: 3s}\n");
    let c = p.companion();
    assert_eq!(
        (c.cluster.as_str(), c.health_cluster.as_str()),
        ("c1", "c2")
    );
    assert_eq!(
        (c.failure_mode, c.health_interval.0),
        (FailureMode::FailOpen, 3)
    );
    assert_error(
        "companion: {health_cluster: ''}\n",
        "companion.health_cluster",
        &["must name an Envoy cluster"],
    );
    assert_error(
        "companion: {health_interval: 0}\n",
        "companion.health_interval",
        &["longer than 0s"],
    );
    assert_error(
        "companion: {failure_mode: maybe}\n",
        "companion.failure_mode",
        &["unknown variant `maybe`", "fail_closed"],
    );
}

#[test]
fn the_companion_limit_settings_are_checked() {
    let defaults = policy("companion: {}\n");
    let c = defaults.companion();
    assert_eq!(
        (c.limits, c.limits_unavailable),
        (LimitsStore::Memory, LimitsUnavailable::Local)
    );
    for (mode, expected) in [
        ("local", LimitsUnavailable::Local),
        ("allow", LimitsUnavailable::Allow),
        ("deny", LimitsUnavailable::Deny),
    ] {
        let p = policy(&format!(
            "companion: {{limits: redis, redis_url: 'redis://127.0.0.1:6379/0', limits_unavailable: {mode}}}\n"
        ));
        let c = p.companion();
        assert_eq!(
            (c.limits, c.limits_unavailable),
            (LimitsStore::Redis, expected)
        );
        assert_eq!(expected.as_str(), mode);
    }
    // Memory limits need no server, with or without one for the store.
    let p = policy("companion: {limits: memory, redis_url: 'redis://127.0.0.1:6379/0'}\n");
    assert_eq!(p.companion().limits, LimitsStore::Memory);
    assert_error(
        "companion: {limits: redis}\n",
        "companion.limits",
        &["`redis` needs `companion.redis_url`"],
    );
    assert_error(
        "companion: {limits: redis, limits_unavailable: deny}\n",
        "companion.limits",
        &["needs `companion.redis_url`"],
    );
    assert_error(
        "companion: {limits: sqlite}\n",
        "companion.limits",
        &["unknown variant `sqlite`", "`memory`", "`redis`"],
    );
    assert_error(
        "companion: {limits_unavailable: fail_open}\n",
        "companion.limits_unavailable",
        &[
            "unknown variant `fail_open`",
            "`local`",
            "`allow`",
            "`deny`",
        ],
    );
}

// --- Learned scores -----------------------------------------------------

fn decide_scored<'p>(p: &'p Policy, r: &Req, points: u8) -> Decision<'p> {
    let mut store = MemoryStore::new(64);
    let scored = Scored {
        points,
        top: TopFeatures::of(["timing_cv", "asset_share"]),
    };
    p.decide_scored(&r.request(), &mut store, NOW, Some(scored))
}

const SCORED: &str = "scoring:\n  enabled: true\nrules:\n  - name: suspicious\n    when: {user_agent: curl}\n    weight: 30\n  - name: trusted\n    when: {ip_in: [office]}\n    weight: -40\nlists:\n  office: {cidrs: [198.51.100.0/24]}\nroutes:\n  - name: static\n    match: {path: /static/**}\n    score: off\n  - name: login\n    match: {path: /login}\n    score: blocking\n    login: true\n";

#[test]
fn a_learned_score_stands_in_for_the_rules_when_higher_and_trust_still_counts() {
    let p = policy(SCORED);
    let d = decide_scored(&p, &Req::get("/"), 75);
    assert_eq!(
        (d.score, d.rule_score, d.action),
        (75, 0, Action::Challenge)
    );
    assert!(d.model.unwrap().enforced);
    // The higher of the rules' 30 and the model's 20 counts.
    let d = decide_scored(&p, &Req::get("/").ua("curl/8"), 20);
    assert_eq!((d.score, d.rule_score), (30, 30));
    // Trust from a negative weight lowers a learned 75 to 35.
    let d = decide_scored(&p, &Req::get("/").ip("198.51.100.7"), 75);
    assert_eq!((d.score, d.action), (35, Action::Allow));
    // Rules only without a score.
    let d = decide(&p, &Req::get("/"));
    assert_eq!((d.score, d.model), (0, None));
}

#[test]
fn routes_choose_how_the_score_is_used_and_shadow_mode_never_enforces() {
    let p = policy(SCORED);
    let d = decide_scored(&p, &Req::get("/static/app.css"), 95);
    assert_eq!((d.score, d.model, d.action), (0, None, Action::Allow));
    assert_eq!(
        p.score_use(&Req::get("/static/a.css").request()),
        ScoreUse::Off
    );
    assert_eq!(
        p.score_use(&Req::get("/login").request()),
        ScoreUse::Blocking
    );
    assert_eq!(p.score_use(&Req::get("/x").request()), ScoreUse::Cached);
    assert!(decide(&p, &Req::get("/login")).login);
    assert!(!decide(&p, &Req::get("/x")).login);

    let shadow = policy(&SCORED.replace("enabled: true", "enabled: true\n  shadow: true"));
    let d = decide_scored(&shadow, &Req::get("/"), 95);
    assert_eq!((d.score, d.action), (0, Action::Allow));
    assert!(!d.model.unwrap().enforced);
    let headers = shadow.upstream_headers(&d);
    let score = headers
        .iter()
        .find(|(n, _)| *n == "x-palisade-score")
        .unwrap();
    assert_eq!(
        score.1,
        "0; rules=0; model=95 shadow; top=timing_cv,asset_share"
    );
    // Without scoring the route ignores it, and the header is the number.
    let off = policy("routes: []");
    assert_eq!(off.score_use(&Req::get("/").request()), ScoreUse::Off);
    let d = decide_scored(&off, &Req::get("/"), 95);
    let headers = off.upstream_headers(&d);
    assert!(headers.contains(&("x-palisade-score", "0".to_string())));
}

#[test]
fn scoring_settings_out_of_range_or_without_scoring_are_errors() {
    let env = FakeEnv::default();
    assert_error_in(
        "routes:\n  - match: {path: /login}\n    score: blocking\n",
        &env,
        "routes[0].score",
        &["scoring.enabled"],
    );
    assert_error_in(
        "scoring:\n  enabled: true\n  slots: 4\n",
        &env,
        "scoring.slots",
        &["16", "not 4"],
    );
    assert_error_in(
        "scoring:\n  report_interval_ms: 5\n",
        &env,
        "scoring.report_interval_ms",
        &["100"],
    );
    assert_error_in(
        "scoring:\n  enabled: true\n  modle: x\n",
        &env,
        "scoring.modle",
        &["unknown field"],
    );
}

#[test]
fn routes_may_opt_in_to_the_score_one_by_one() {
    let p = policy(
        "scoring:\n  enabled: true\n  routes_default: off\nroutes:\n  - match: {path: /protected/*}\n    score: cached\n",
    );
    assert_eq!(
        p.score_use(&Req::get("/protected/a").request()),
        ScoreUse::Cached
    );
    assert_eq!(p.score_use(&Req::get("/other").request()), ScoreUse::Off);
    assert_eq!(decide_scored(&p, &Req::get("/other"), 95).score, 0);
    assert_eq!(decide_scored(&p, &Req::get("/protected/a"), 95).score, 95);
}

#[test]
fn crawler_hints_go_to_verified_crawlers_and_link_previews_only() {
    let off = policy("rules: []\n");
    assert!(off.crawler_hints().is_none(), "no upstream, no hints");
    let p = policy("crawlers:\n  hints: {upstream: 'http://127.0.0.1:8080/'}\n");
    assert_eq!(p.crawler_hints().unwrap().upstream, "http://127.0.0.1:8080");
    let gets = |r: Req| p.gets_crawler_hints(&r.request(), r.ip);
    assert!(gets(Req::get("/a").ua(GOOGLEBOT).ip(GOOGLE_IP)));
    assert!(
        !gets(Req::get("/a").ua(GOOGLEBOT).ip("203.0.113.9")),
        "spoofed"
    );
    let preview = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)";
    assert!(gets(Req::get("/a").ua(preview).ip("203.0.113.9")));
    assert!(!gets(Req::get("/a").ip("203.0.113.9")), "a person");
    assert!(!gets(Req::get("/a").ua(CURL).ip("203.0.113.9")));
    let disabled = policy("crawlers:\n  hints: {enabled: false, upstream: 'http://h'}\n");
    assert!(disabled.crawler_hints().is_none());
}

#[test]
fn crawler_hint_settings_are_checked_with_their_path() {
    assert_error(
        "crawlers:\n  hints: {upstream: 'http://h/pages'}\n",
        "crawlers.hints.upstream",
        &["origin"],
    );
    assert_error(
        "crawlers:\n  hints: {upstream: 'http://h', previews: [twitterbot, nosuchbot]}\n",
        "crawlers.hints.previews[1]",
        &["nosuchbot"],
    );
    assert_error(
        "crawlers:\n  hints: {upstream: 'http://h', timeout_ms: 0}\n",
        "crawlers.hints.timeout_ms",
        &["from 1 to 10000"],
    );
    assert_error(
        "crawlers:\n  hints: {upstream: 'http://h', typo: 1}\n",
        "crawlers.hints.typo",
        &["unknown field"],
    );
}

#[test]
fn policies_past_the_parsers_nesting_limits_are_refused_with_their_reasons() {
    // The deepest policy the JSON and regex parsers take, and one step
    // past each.
    let compile = |body: String| {
        Policy::from_json(
            &format!(r#"{{"tokens": {{"keys": ["{KEY}"]}}, {body}}}"#),
            &FakeEnv::default(),
        )
    };
    let nots = |n: usize| {
        let mut when = r#"{"path": ["/deep/*"]}"#.to_string();
        for _ in 0..n {
            when = format!(r#"{{"not": {when}}}"#);
        }
        compile(format!(
            r#""rules": [{{"name": "deep", "when": {when}, "action": "block"}}]"#
        ))
    };
    assert!(nots(122).is_ok());
    let e = nots(124).unwrap_err().to_string();
    assert!(e.contains("recursion limit exceeded"), "{e}");
    let groups = |n: usize| {
        compile(format!(
            r#""routes": [{{"name": "r", "action": "block", "match": {{"path_regex": "^/{}x{}$"}}}}]"#,
            "(".repeat(n),
            ")".repeat(n)
        ))
    };
    assert!(groups(249).is_ok());
    let e = groups(251).unwrap_err().to_string();
    assert!(
        e.starts_with("routes[0].match.path_regex: ") && e.contains("nested"),
        "{e}"
    );
}
