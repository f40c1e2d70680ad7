//! The `palisade` binary: exit codes, output formats and error messages.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_palisade");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/demo-policy.yaml");
const KEY: &str = "1:cli-test-secret-0123456789";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// Inside 66.249.64.0/27 of datasets/networks/google-crawlers.txt.
const GOOGLE_IP: &str = "66.249.64.1";

/// A file under the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "palisade-cli-test-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A command for the binary with a clean environment for keys.
fn palisade(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("PALISADE_KEYS");
    c
}

fn run(args: &[&str]) -> Output {
    palisade(args).output().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = palisade(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn builtin_patterns() -> usize {
    palisade::crawlers::builtin_specs().unwrap().len()
}

// ---------------------------------------------------------------------------
// check-config

#[test]
fn check_config_prints_a_one_line_summary() {
    let o = run(&["check-config", DEMO]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{DEMO}: ok: 14 routes, 13 rules, 2 lists (denylist=1 office=2 ranges), {} crawler patterns, 1 keys\n",
            builtin_patterns() + 1
        )
    );
    assert_eq!(stderr(&o), "");

    // Keys from the environment variable the policy names replace inline ones.
    let o = palisade(&["check-config", DEMO])
        .env(
            "PALISADE_KEYS",
            "2:cli-env-secret-0123456789, 3:cli-env-secret-9876543210",
        )
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).ends_with(", 2 keys\n"), "{}", stdout(&o));

    let minimal = TempFile::new(
        "minimal.yaml",
        &format!("tokens: {{keys: [\"{KEY}\"]}}\ncrawlers: {{builtin: false}}\n"),
    );
    let o = run(&["check-config", minimal.path()]);
    assert_eq!(code(&o), Some(0));
    assert_eq!(
        stdout(&o),
        format!(
            "{}: ok: 0 routes, 0 rules, 0 lists (none), 0 crawler patterns, 1 keys\n",
            minimal.path()
        )
    );
}

#[test]
fn check_config_reports_file_path_and_reason() {
    for (name, text, expected) in [
        (
            "typo.yaml",
            format!("tokens: {{keys: [\"{KEY}\"]}}\nroutes:\n  - match: {{paht: /a}}\n"),
            "routes[0].match.paht: unknown field `paht`, expected one of `path`, `path_regex`, `host`, `methods`, `headers`, `query`, `except`".to_string(),
        ),
        (
            "regex.yaml",
            format!(
                "tokens: {{keys: [\"{KEY}\"]}}\nroutes:\n  - {{match: {{path: /a}}}}\n  - match: {{path_regex: '^/search(/|$'}}\n"
            ),
            "routes[1].match.path_regex: unclosed group at offset 8".to_string(),
        ),
        (
            "nokeys.yaml",
            "routes: []\n".to_string(),
            "tokens.keys: no keys: challenges and pass tokens need at least one `ID:SECRET` key (set `tokens.keys`, or `tokens.keys_env` naming an environment variable)".to_string(),
        ),
        (
            "list.yaml",
            format!("tokens: {{keys: [\"{KEY}\"]}}\nrules: [{{name: a, when: {{ip_in: office}}, weight: 1}}]\n"),
            "rules[0].when.ip_in: no list named `office` (no `lists` are defined)".to_string(),
        ),
        (
            "rate.json",
            format!(r#"{{"tokens": {{"keys": ["{KEY}"]}}, "default_route": {{"rate_limit": {{"rate": "10/fortnight"}}}}}}"#),
            "default_route.rate_limit.rate: invalid rate \"10/fortnight\": unknown time unit \"fortnight\"".to_string(),
        ),
        (
            "chart.yaml",
            format!(
                "tokens: {{keys: [\"{KEY}\"]}}\nchallenge:\n  chart:\n    tables: {{cases: {{csv: datasets/charts/fruit.csv}}}}\n    templates:\n      - {{template: largest_bar, table: cases, label: fruit, value: crates_sold}}\n      - {{template: smallest_bar, table: cases, label: fruit, value: crates_sold}}\n      - {{template: largest_slice, table: cases, label: fruit, value: active}}\n"
            ),
            "challenge.chart.templates[2].value: table \"cases\" has no column \"active\"".to_string(),
        ),
        (
            "provider.yaml",
            format!(
                "tokens: {{keys: [\"{KEY}\"]}}\nroutes:\n  - {{match: {{path: /a}}}}\n  - {{match: {{path: /b}}}}\n  - {{match: {{path: /c}}}}\n  - {{match: {{path: /d}}, challenge: {{kind: turnstile}}}}\n"
            ),
            "routes[3].challenge.kind: `turnstile` is a provider kind and needs its settings in companion.providers.turnstile (docs/providers.md)".to_string(),
        ),
        (
            "secret.yaml",
            format!(
                "tokens: {{keys: [\"{KEY}\"]}}\ncompanion:\n  providers:\n    hcaptcha: {{site_key: k, secret_env: PALISADE_CLI_TEST_UNSET_SECRET}}\nroutes:\n  - {{match: {{path: /a}}, challenge: {{kind: hcaptcha}}}}\n"
            ),
            "companion.providers.hcaptcha.secret_env: the environment variable `PALISADE_CLI_TEST_UNSET_SECRET` is not set".to_string(),
        ),
    ] {
        let file = TempFile::new(name, &text);
        let o = run(&["check-config", file.path()]);
        assert_eq!(code(&o), Some(1), "{name}");
        assert_eq!(stdout(&o), "", "{name}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        let prefix = format!("palisade: {}: {expected}", file.path());
        assert!(err.starts_with(&prefix), "{name}:\n{err}\nexpected: {prefix}");
    }

    // A missing key variable names the variable.
    let env_file = TempFile::new("env.yaml", "tokens: {keys_env: PALISADE_CLI_TEST_UNSET}\n");
    let o = run(&["check-config", env_file.path()]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o)
        .contains(": tokens.keys_env: environment variable `PALISADE_CLI_TEST_UNSET` is not set"));

    // Not YAML at all: no field path, still the file.
    let broken = TempFile::new("broken.yaml", "routes: [\n");
    let o = run(&["check-config", broken.path()]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o).starts_with(&format!("palisade: {}: ", broken.path())));
    assert!(stderr(&o).contains("line"), "{}", stderr(&o));

    let missing = std::env::temp_dir().join("palisade-cli-test-does-not-exist.yaml");
    let missing = missing.to_str().unwrap();
    let o = run(&["check-config", missing]);
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("palisade: {missing}: ")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_config_without_secrets_names_the_variables_it_needs() {
    let policy = TempFile::new(
        "no-secrets.yaml",
        "tokens: {keys_env: PALISADE_CLI_TEST_KEYS}\ncompanion:\n  providers:\n    hcaptcha: {site_key: k, secret_env: PALISADE_CLI_TEST_SECRET}\nroutes:\n  - {match: {path: /a}, challenge: {kind: hcaptcha}}\n",
    );
    // Without the flag the unset key variable is an error (as before).
    let o = run(&["check-config", policy.path()]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));

    let o = run(&["check-config", "--no-secrets", policy.path()]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with(&format!("{}: ok: ", policy.path())));
    assert_eq!(
        lines[1],
        format!(
            "{}: needs at load time: PALISADE_CLI_TEST_KEYS (unset here: a stand-in was used), PALISADE_CLI_TEST_SECRET (unset here: a stand-in was used)",
            policy.path()
        )
    );

    // A variable that is set is still checked, and listed as set.
    let o = palisade(&["check-config", "--no-secrets", policy.path()])
        .env("PALISADE_CLI_TEST_KEYS", "k1:abc")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).contains("tokens.keys_env: environment variable `PALISADE_CLI_TEST_KEYS`: key id \"k1\" is not a number"),
        "{}",
        stderr(&o)
    );
    let o = palisade(&["check-config", "--no-secrets", policy.path()])
        .env("PALISADE_CLI_TEST_KEYS", KEY)
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert!(stdout(&o)
        .contains("needs at load time: PALISADE_CLI_TEST_KEYS, PALISADE_CLI_TEST_SECRET (unset"));

    // Everything else is still checked.
    let broken = TempFile::new(
        "no-secrets-broken.yaml",
        "tokens: {keys_env: PALISADE_CLI_TEST_KEYS}\nroutes: [{match: {paht: /a}}]\n",
    );
    let o = run(&["check-config", "--no-secrets", broken.path()]);
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).contains("routes[0].match.paht: unknown field"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------------------
// explain

#[test]
fn explain_shows_where_the_client_comes_from() {
    // The demo policy's monitor-only country/ASN rule (docs: "Done when").
    let o = run(&[
        "explain", "--config", DEMO, "--ip", "8.8.8.8", "--path", "/", "--json",
    ]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["client"]["country"], "US");
    assert_eq!(v["client"]["continent"], "NA");
    assert_eq!(v["client"]["asn"], 15169);
    assert_eq!(v["client"]["as_org"], "Google LLC");
    assert_eq!(v["client"]["hosting"], false);
    let rules: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(rules.contains(&"google-network-in-us"), "{rules:?}");

    let o = run(&[
        "explain", "--config", DEMO, "--ip", "8.8.8.8", "--path", "/",
    ]);
    assert!(
        stdout(&o).contains("origin     US (NA), AS15169 (Google LLC), not a hosting network\n"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "explain", "--config", DEMO, "--ip", "10.0.0.1", "--path", "/",
    ]);
    assert!(
        stdout(&o).contains("origin     unknown (unknown), no AS, not a hosting network\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn explain_narrates_each_step() {
    // The example in docs/configuration.md.
    let o = run(&[
        "explain",
        "--config",
        DEMO,
        "--path",
        "/protected/x",
        "-H",
        "User-Agent: curl/8.5.0",
    ]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "client     unknown (group none), class tool (curl)\n\
         headers    secure request, no anomalies\n\
         route      #4 protected, action challenge\n\
         rules      tool-or-no-accept-language weight +50\n\
         score      50 -> monitor (thresholds: monitor 50, challenge 70, block 90)\n\
         token      none\n\
         challenge  pow, difficulty 2\n\
         rate limit none\n\
         decision   challenge (answers 403): route action `challenge` with score 50\n"
    );

    let o = run(&[
        "explain",
        "--config",
        DEMO,
        "--method",
        "POST",
        "--path",
        "/search/x.php?q=1&debug=1",
        "--ip",
        "203.0.113.9",
        "-H",
        "User-Agent: python-requests/2.31",
    ]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for part in [
        "client     203.0.113.9 (group 203.0.113.9/32), class tool (python-requests)\n",
        "route      #5 search, action (none: the score decides)\n",
        "rules      tool-or-no-accept-language weight +50\n",
        "           probing-for-files        weight +40\n",
        "           debug-parameter          weight +30\n",
        "score      100 -> block (thresholds: monitor 50, challenge 70, block 90)\n",
        "rate limit none\n",
        "decision   block (answers 403): score 100 (route leaves it to the score)\n",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }

    // The rate-limit key; the demo reads the client from X-Forwarded-For.
    let o = run(&[
        "explain",
        "--config",
        DEMO,
        "--path",
        "/search?q=x",
        "--ip",
        "10.0.0.1",
        "-H",
        "X-Forwarded-For: 192.0.2.1, 2001:db8:5:6::7",
        "--host",
        "example.com",
        "-H",
        "Accept-Language: en",
        "-H",
        "Accept: text/html",
        "-H",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ]);
    let text = stdout(&o);
    // Plain http to a public host: no Sec-Fetch-* or client hints expected.
    assert!(
        text.contains("headers    plain-http request, no anomalies\n"),
        "{text}"
    );
    assert!(
        text.starts_with(
            "client     2001:db8:5:6::7 (group 2001:db8:5:6::/64), class browser (chrome)\n"
        ),
        "{text}"
    );
    assert!(text.contains("rules      none fired\n"), "{text}");
    assert!(
        text.contains("rate limit 30/minute burst 5 per client_route, key client 2001:db8:5:6::/64 on route search (routes[5].rate_limit): 5 remaining\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "decision   allow (forwarded upstream): score 0 (route leaves it to the score)\n"
        ),
        "{text}"
    );

    let o = run(&["explain", "--config", DEMO, "--path", "/", "-H", "no colon"]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o).contains("--header `no colon`: expected `Name: value`"));
}

#[test]
fn explain_json_fields() {
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", "--config", DEMO, "--json"];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(code(&o), Some(0), "{}", stderr(&o));
        let lines = json_lines(&o);
        assert_eq!(lines.len(), 1);
        lines.into_iter().next().unwrap()
    };
    let ua = format!("User-Agent: {GOOGLEBOT}");
    let v = explain(&[
        "--path",
        "/",
        "--ip",
        GOOGLE_IP,
        "-H",
        &ua,
        "-H",
        "Accept-Language: en",
    ]);
    assert_eq!(v["action"], "allow");
    assert_eq!(v["route"], "public");
    assert_eq!(v["route_index"], 6);
    assert_eq!(v["score"], 0);
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v["client"]["class"], "search_engine");
    assert_eq!(v["client"]["name"], "googlebot");
    assert_eq!(v["client"]["verified"], true);
    assert_eq!(v["client"]["ip"], GOOGLE_IP);
    assert_eq!(
        v["rules"],
        serde_json::json!([{"name": "verified-search-engine", "weight": -50, "action": null}])
    );

    // The same user agent from elsewhere is a spoofed crawler: blocked.
    let v = explain(&["--path", "/", "--ip", "203.0.113.9", "-H", &ua]);
    assert_eq!(v["action"], "block");
    assert_eq!(v["status"], 403);
    assert_eq!(v["client"]["verified"], false);
    assert_eq!(v["client"]["verification"], "spoofed");
    assert_eq!(v["reason"], "rule `spoofed-crawler` sets the action");
    let names: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["spoofed-crawler", "tool-or-no-accept-language"]);
    assert_eq!(v["score"], 100);

    // Browsers are not crawlers: verified is null. Challenges report their spec.
    let v = explain(&[
        "--path",
        "/login",
        "-H",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "-H",
        "Accept-Language: en",
    ]);
    assert_eq!(v["action"], "challenge");
    assert_eq!(v["route"], "login");
    assert_eq!(v["status"], 403);
    assert_eq!(v["client"]["class"], "browser");
    assert_eq!(v["client"]["verified"], Value::Null);
    assert_eq!(
        v["challenge"],
        serde_json::json!({"kind": "pow", "difficulty": 2})
    );
    assert_eq!(v["token"], serde_json::json!({"state": "absent"}));
}

// ---------------------------------------------------------------------------
// token

#[test]
fn token_sign_and_verify() {
    let sign = run(&[
        "token",
        "sign",
        "--config",
        DEMO,
        "--level",
        "3",
        "--ip",
        "203.0.113.9",
        "--user-agent",
        "curl/8",
    ]);
    assert_eq!(code(&sign), Some(0), "{}", stderr(&sign));
    let token = stdout(&sign).trim().to_string();
    assert_eq!(token.len(), palisade::token::PASS_TOKEN_LEN);
    assert_eq!(stdout(&sign).lines().count(), 1);

    let verify = |token: &str, ip: &str, ua: &str| {
        run(&[
            "token",
            "verify",
            "--config",
            DEMO,
            "--ip",
            ip,
            "--user-agent",
            ua,
            token,
        ])
    };
    let o = verify(&token, "203.0.113.9", "curl/8");
    assert_eq!(code(&o), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("claims: key 1 kind pow level 3 issued_at "),
        "{text}"
    );
    assert!(text.contains(" ip_bound true ua_bound true\n"), "{text}");
    assert!(text.ends_with("valid\n"), "{text}");

    let o = verify(&token, "203.0.113.10", "curl/8");
    assert_eq!(code(&o), Some(1));
    assert!(
        stdout(&o).ends_with("rejected: bound to another client address\n"),
        "{}",
        stdout(&o)
    );
    let o = verify(&token, "203.0.113.9", "curl/9");
    assert_eq!(code(&o), Some(1));
    assert!(stdout(&o).ends_with("rejected: bound to another user agent\n"));

    let mut tampered = token.clone().into_bytes();
    tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let o = verify(&tampered, "203.0.113.9", "curl/8");
    assert_eq!(code(&o), Some(1));
    assert_eq!(
        stdout(&o),
        "claims: unreadable (bad signature)\nrejected: bad signature\n"
    );

    // Another policy's keys do not know it.
    let other = TempFile::new(
        "other-keys.yaml",
        "tokens: {keys: [\"7:cli-other-secret-0123456789\"]}\n",
    );
    let o = run(&[
        "token",
        "verify",
        "--config",
        other.path(),
        "--ip",
        "203.0.113.9",
        "--user-agent",
        "curl/8",
        &token,
    ]);
    assert_eq!(code(&o), Some(1));
    assert!(stdout(&o).ends_with("rejected: unknown key id\n"));

    let o = run(&["token", "sign", "--config", DEMO, "--level", "0"]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o).contains("--level 0: must be 1-5"));
}

// ---------------------------------------------------------------------------
// classify

fn classify(args: &[&str], input: &str) -> (Vec<Value>, String) {
    let mut all = vec!["classify"];
    all.extend_from_slice(args);
    let o = run_with_stdin(&all, input);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    (json_lines(&o), stderr(&o))
}

#[test]
fn classify_user_agents() {
    let input = format!(
        "curl/8.5.0\n\n{GOOGLEBOT}\nMozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36\nzzqx-agent/0\n   \n"
    );
    let (lines, _) = classify(&[], &input);
    let got: Vec<(Value, Value, Value)> = lines
        .iter()
        .map(|v| (v["class"].clone(), v["name"].clone(), v["verified"].clone()))
        .collect();
    use serde_json::json;
    assert_eq!(
        got,
        vec![
            (json!("tool"), json!("curl"), Value::Null),
            (json!("search_engine"), json!("googlebot"), json!(false)),
            (json!("automation"), json!("headlesschrome"), Value::Null),
            (json!("bot"), json!("not-a-browser"), Value::Null),
        ]
    );
    assert_eq!(lines[0]["user_agent"], "curl/8.5.0");
    assert_eq!(lines[1]["verification"], "unverifiable");
    assert_eq!(lines[1]["ip"], Value::Null);

    // `--json` is accepted (it is the only format); `--config` adds the policy's crawlers.
    let (lines, _) = classify(&["--json", "--config", DEMO], "AcmeUptime/3\n");
    assert_eq!(lines[0]["class"], "monitoring");
    assert_eq!(lines[0]["name"], "acme-uptime");
    let (lines, _) = classify(&[], "AcmeUptime/3\n");
    assert_eq!(lines[0]["class"], "bot");
    assert_eq!(lines[0]["name"], "not-a-browser");
}

#[test]
fn classify_access_logs() {
    let combined = format!(
        "{GOOGLE_IP} - - [21/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"{GOOGLEBOT}\"\n\
         not a log line\n\
         203.0.113.9 - - [21/Nov/2026:10:00:01 +0000] \"GET /x HTTP/1.1\" 200 5 \"https://example.com/\" \"{GOOGLEBOT}\"\n\
         2001:db8::1 - - [21/Nov/2026:10:00:02 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8.5.0\"\n"
    );
    let (lines, err) = classify(&["--log", "combined"], &combined);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (&lines[0]["ip"], &lines[0]["class"], &lines[0]["verified"]),
        (
            &Value::from(GOOGLE_IP),
            &Value::from("search_engine"),
            &Value::from(true)
        )
    );
    assert_eq!(lines[0]["user_agent"], GOOGLEBOT);
    assert_eq!(
        (&lines[1]["verified"], &lines[1]["verification"]),
        (&Value::from(false), &Value::from("spoofed"))
    );
    assert_eq!(
        (&lines[2]["ip"], &lines[2]["name"]),
        (&Value::from("2001:db8::1"), &Value::from("curl"))
    );
    assert_eq!(err, "palisade: line 2: not a combined log line, skipped\n");

    let envoy = format!(
        "[2026-11-21T10:00:00.000Z] \"GET /x HTTP/1.1\" 200 - 0 5 1 1 \"{GOOGLE_IP}\" \"{GOOGLEBOT}\" \"id\" \"example.com\" \"127.0.0.1:8080\"\n\
         [2026-11-21T10:00:01.000Z] \"GET /x HTTP/1.1\" 200 - 0 5 1 1 \"-\" \"-\" \"id\" \"example.com\" \"127.0.0.1:8080\"\n\
         [2026-11-21T10:00:02.000Z] \"GET /x HTTP/1.1\" 200 - 0 5 1 1 \"198.51.100.4\" \"python-requests/2.31\" \"id\" \"example.com\" \"127.0.0.1:8080\"\n\
         garbage\n"
    );
    let (lines, err) = classify(&["--log", "envoy"], &envoy);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (&lines[0]["class"], &lines[0]["name"], &lines[0]["verified"]),
        (
            &Value::from("search_engine"),
            &Value::from("googlebot"),
            &Value::from(true)
        )
    );
    // No user agent ("-"), no address ("-"): the `empty` rule.
    assert_eq!(
        (
            &lines[1]["user_agent"],
            &lines[1]["class"],
            &lines[1]["name"],
            &lines[1]["ip"]
        ),
        (
            &Value::from(""),
            &Value::from("bot"),
            &Value::from("empty"),
            &Value::Null
        )
    );
    assert_eq!(
        (&lines[2]["ip"], &lines[2]["name"]),
        (
            &Value::from("198.51.100.4"),
            &Value::from("python-requests")
        )
    );
    assert_eq!(err, "palisade: line 4: not a envoy log line, skipped\n");
}

// ---------------------------------------------------------------------------
// policy-json

#[test]
fn policy_json_prints_the_document_as_json() {
    let o = run(&["policy-json", DEMO]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "compact: one line");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["client"]["source"], "x_forwarded_for");
    assert_eq!(v["routes"].as_array().unwrap().len(), 14);
    assert_eq!(v["routes"][2]["rate_limit"]["rate"], "10/minute");
    // The demo's geo rule comes with its ranges, for the filter; nothing
    // else is added.
    let geo: Vec<&String> = v["resolved_ranges"].as_object().unwrap().keys().collect();
    assert_eq!(geo, ["asn=15169", "country=US"]);
    // What Envoy gets compiles to the same policy.
    let yaml = std::fs::read_to_string(DEMO).unwrap();
    let from_yaml =
        palisade::policy::Policy::from_yaml(&yaml, &palisade::policy::ProcessEnv).unwrap();
    let from_json =
        palisade::policy::Policy::from_json(&text, &palisade::policy::ProcessEnv).unwrap();
    assert_eq!(from_yaml.summary(), from_json.summary());
    assert_eq!(
        from_yaml.route_names().collect::<Vec<_>>(),
        from_json.route_names().collect::<Vec<_>>()
    );

    // An invalid policy is not printed.
    let bad = TempFile::new("bad-policy.yaml", "routes: [{match: {path: /a}}]\n");
    let o = run(&["policy-json", bad.path()]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains(": tokens.keys: no keys"));
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // `palisade policy-json FILE | head -c 10`: the reader goes away.
    for args in [
        &["policy-json", DEMO][..],
        &["check-config", DEMO],
        &["explain", "--config", DEMO, "--path", "/"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = palisade(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        assert_ne!(code(&o), Some(101), "{args:?}");
    }
}

#[test]
fn temp_files_are_removed() {
    let path: PathBuf;
    {
        let f = TempFile::new("gone.yaml", "x");
        path = f.0.clone();
        assert!(Path::new(&path).exists());
    }
    assert!(!Path::new(&path).exists());
}

/// A logistic model over the request schema that weighs only `timing_cv`
/// (low = machine-regular = bot) and `user_agent`.
fn timing_model() -> String {
    use palisade::scoring::{ModelFile, REQUEST};
    let weights = REQUEST
        .names()
        .map(|n| match n {
            "timing_cv" => -12.0,
            "user_agent" => 4.0,
            _ => 0.0,
        })
        .collect();
    let mut file = ModelFile::logistic(&REQUEST, weights, 2.0);
    file.metadata
        .insert("version".into(), serde_json::json!("test-timing"));
    serde_json::to_string(&file).unwrap()
}

#[test]
fn explain_shows_the_learned_score_its_features_and_what_drove_it() {
    let model = TempFile::new("model.json", &timing_model());
    let base = [
        "explain",
        "--config",
        DEMO,
        "--path",
        "/",
        "--ip",
        "192.0.2.9",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--model", model.path()]);
        args.extend_from_slice(extra);
        run(&args)
    };
    // A clockwork client: timing_cv 0 -> logit 2 + 4 (curl) = 6 -> ~100.
    let o = with(&[
        "--features",
        "--feature",
        "timing_cv=0",
        "-H",
        "User-Agent: curl/8.5",
        "--json",
    ]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["learned"]["model"], "test-timing");
    assert!(v["learned"]["score"].as_u64().unwrap() >= 99, "{v}");
    assert_eq!(v["learned"]["features"]["timing_cv"], 0.0);
    assert_eq!(v["learned"]["top_features"][0]["feature"], "user_agent");
    // The demo policy's rules block curl anyway; the learned part shows.
    assert!(v["rule_score"].as_u64().is_some());
    // An irregular browser: timing_cv 1 -> logit -10 -> ~0.
    let o = with(&["--features", "--feature", "timing_cv=1"]);
    let text = stdout(&o);
    assert!(
        text.contains("learned    0 from model test-timing"),
        "{text}"
    );
    assert!(text.contains("  timing_cv            1.000"), "{text}");
    // Bad overrides and models are errors with the reason.
    let o = with(&["--feature", "speed=1"]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o).contains("no feature `speed`"), "{}", stderr(&o));
    let o = with(&["--feature", "timing_cv=7"]);
    assert!(stderr(&o).contains("from 0 to 1"), "{}", stderr(&o));
    let bad = TempFile::new("bad-model.json", "{\"format\": \"x\"}");
    let o = run(&[
        "explain",
        "--config",
        DEMO,
        "--path",
        "/",
        "--model",
        bad.path(),
    ]);
    assert_eq!(code(&o), Some(0));
    assert!(
        stdout(&o).contains("learned    absent, rules only"),
        "{}",
        stdout(&o)
    );
}
