//! Rule conditions on where a client comes from (country, continent, ASN,
//! AS organisation, hosting) and the built-in reputation lists, through
//! the policy's public API on the shipped data.

use palisade::config::ConfigError;
use palisade::policy::{CompileEnv, Decision, Policy, Request};
use palisade::ratelimit::MemoryStore;
use std::net::IpAddr;

const KEY: &str = "1:geo-test-secret-0123456789abcdef";

/// No variables but the key, no files.
struct NoEnv;

impl CompileEnv for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        Err(format!("cannot read `{path}`: no files here"))
    }
}

fn compile(rules: &str) -> Result<Policy, ConfigError> {
    Policy::from_yaml(
        &format!("tokens:\n  keys: [\"{KEY}\"]\nrules:\n{rules}"),
        &NoEnv,
    )
}

fn policy(rules: &str) -> Policy {
    compile(rules).unwrap_or_else(|e| panic!("does not compile: {e}\n{rules}"))
}

fn fired(p: &Policy, ip: &str) -> Vec<String> {
    let headers = vec![
        ("user-agent".to_string(), "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".to_string()),
        ("accept".to_string(), "text/html".to_string()),
        ("accept-language".to_string(), "en".to_string()),
    ];
    let ip: IpAddr = ip.parse().unwrap();
    let request = Request::new("GET", "/", "example.com", &headers, Some(ip));
    let decision: Decision = p.decide(
        &request,
        &mut MemoryStore::new(8),
        1_800_000_000_000_000_000,
    );
    decision.rules.iter().map(|r| r.name.to_string()).collect()
}

fn error(rules: &str) -> ConfigError {
    match compile(rules) {
        Ok(_) => panic!("compiled, expected an error:\n{rules}"),
        Err(e) => e,
    }
}

const RULES: &str = "
  - {name: us, when: {country: [US]}, weight: 1}
  - {name: europe, when: {continent: eu}, weight: 1}
  - {name: google-as, when: {asn: [15169, \"AS396982\"]}, weight: 1}
  - {name: cloudflare-org, when: {as_org: \"cloudflare*\"}, weight: 1}
  - {name: hosting, when: {hosting: true}, weight: 1}
  - {name: not-hosting, when: {hosting: false}, weight: 1}
  - {name: us-google, when: {country: US, asn: [15169]}, action: monitor}
";

#[test]
fn country_asn_and_hosting_decide_known_addresses() {
    let p = policy(RULES);
    // Google Public DNS: US, AS15169, not a hosting provider's range.
    assert_eq!(
        fired(&p, "8.8.8.8"),
        ["us", "google-as", "not-hosting", "us-google"]
    );
    assert_eq!(
        fired(&p, "2001:4860:4860::8888"),
        ["us", "google-as", "not-hosting", "us-google"]
    );
    // Cloudflare's resolver: AS13335, its organisation matched by glob.
    assert!(fired(&p, "1.1.1.1").contains(&"cloudflare-org".to_string()));
    // An AWS address (aws.txt) is hosting, as is DigitalOcean's AS14061.
    assert!(fired(&p, "3.5.140.1").contains(&"hosting".to_string()));
    // Hetzner in Germany: hosting, and Europe.
    let hetzner = fired(&p, "88.198.1.1");
    assert!(hetzner.contains(&"hosting".to_string()), "{hetzner:?}");
    assert!(hetzner.contains(&"europe".to_string()), "{hetzner:?}");
    // Private space is nowhere, and not hosting.
    assert_eq!(fired(&p, "192.168.1.1"), ["not-hosting"]);
    assert_eq!(fired(&p, "::ffff:8.8.8.8"), fired(&p, "8.8.8.8"));
}

#[test]
fn without_an_address_no_geo_rule_fires() {
    let p = policy(RULES);
    let headers = vec![("user-agent".to_string(), "curl/8".to_string())];
    let request = Request::new("GET", "/", "h", &headers, None);
    let d = p.decide(&request, &mut MemoryStore::new(8), 0);
    let names: Vec<&str> = d.rules.iter().map(|r| r.name).collect();
    assert_eq!(names, ["not-hosting"]);
}

#[test]
fn a_policy_without_geo_conditions_loads_no_table() {
    let p = policy("  - {name: any, when: {methods: [GET]}, weight: 1}\n");
    // Reports still answer (loading the table on demand).
    let place = p.place("8.8.8.8".parse().unwrap()).unwrap();
    assert_eq!(place.country_str(), Some("US"));
    assert_eq!(place.asn, Some(15169));
    assert_eq!(p.is_hosting("8.8.8.8".parse().unwrap()), Some(false));
}

/// `RULES` as `palisade policy-json` prints it: with `resolved_ranges`.
fn resolved_document() -> serde_json::Value {
    let p = policy(RULES);
    let mut doc =
        palisade::config::yaml_to_json(&format!("tokens:\n  keys: [\"{KEY}\"]\nrules:\n{RULES}"))
            .unwrap();
    doc["resolved_ranges"] = serde_json::to_value(p.resolved_ranges()).unwrap();
    doc
}

#[test]
fn resolved_ranges_decide_as_the_table_does() {
    let doc = resolved_document();
    let keys: Vec<&String> = doc["resolved_ranges"].as_object().unwrap().keys().collect();
    // One set per distinct test: `country: [US]` and `country: US` share.
    assert_eq!(
        keys,
        [
            "as_org=[\"cloudflare*\"]",
            "asn=15169",
            "asn=15169,396982",
            "continent=EU",
            "country=US",
            "hosting"
        ]
    );
    let from_table = policy(RULES);
    let from_ranges = Policy::from_json(&doc.to_string(), &NoEnv).unwrap();
    for ip in [
        "8.8.8.8",
        "2001:4860:4860::8888",
        "1.1.1.1",
        "3.5.140.1",
        "88.198.1.1",
        "192.168.1.1",
        "80.130.1.1",
    ] {
        assert_eq!(fired(&from_ranges, ip), fired(&from_table, ip), "{ip}");
    }
    // The sets are not lists the policy names.
    assert!(from_ranges.summary().lists.is_empty());
}

#[test]
fn given_ranges_are_used_and_stale_ones_refused() {
    // The ranges in the document win: that is all the filter has.
    let mut doc = resolved_document();
    let test_net = Policy::from_yaml(
        &format!("tokens:\n  keys: [\"{KEY}\"]\nrules:\n  - {{name: r, when: {{country: [US]}}, weight: 1}}\n"),
        &NoEnv,
    )
    .unwrap();
    let us = test_net.resolved_ranges()["country=US"].clone();
    doc["resolved_ranges"]["continent=EU"] = serde_json::to_value(us).unwrap();
    let swapped = Policy::from_json(&doc.to_string(), &NoEnv).unwrap();
    assert!(fired(&swapped, "8.8.8.8").contains(&"europe".to_string()));

    // An entry no condition asks for is refused, naming it.
    let mut doc = resolved_document();
    doc["resolved_ranges"]["country=DE"] = doc["resolved_ranges"]["country=US"].clone();
    let e = Policy::from_json(&doc.to_string(), &NoEnv).unwrap_err();
    assert_eq!(e.path, "resolved_ranges.\"country=DE\"");
    assert!(e.reason.contains("stale"), "{e}");

    // Damaged ranges name the entry and the family.
    let mut doc = resolved_document();
    doc["resolved_ranges"]["hosting"]["v6"] = "!!".into();
    let e = Policy::from_json(&doc.to_string(), &NoEnv).unwrap_err();
    assert_eq!(e.path, "resolved_ranges.\"hosting\"");
    assert!(e.reason.starts_with("v6: not base64"), "{e}");
}

#[test]
fn bad_codes_and_numbers_name_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "{country: [US, ZZ]}",
            "rules[0].when.country[1]",
            "`ZZ` is not a country code",
        ),
        (
            "{country: USA}",
            "rules[0].when.country",
            "`USA` is not a country code",
        ),
        (
            "{continent: [XX]}",
            "rules[0].when.continent",
            "not a continent code",
        ),
        ("{asn: [0]}", "rules[0].when.asn", "`0` is not an AS number"),
        (
            "{asn: [1, 4294967296]}",
            "rules[0].when.asn[1]",
            "not an AS number",
        ),
        (
            "{asn: [\"ASX1\"]}",
            "rules[0].when.asn",
            "`ASX1` is not an AS number",
        ),
        (
            "{asn: [-5]}",
            "rules[0].when.asn",
            "`-5` is not an AS number",
        ),
        ("{as_org: [\"\"]}", "rules[0].when.as_org", "empty glob"),
        (
            "{any: [{country: [us]}, {country: [xx]}]}",
            "rules[0].when.any[1].country",
            "`XX`",
        ),
    ];
    for (when, path, reason) in cases {
        let e = error(&format!("  - {{name: r, when: {when}, weight: 1}}\n"));
        assert_eq!(e.path, *path, "{when}: {e}");
        assert!(e.reason.contains(reason), "{when}: {e}");
    }
    // Lower case is accepted.
    policy("  - {name: r, when: {country: [de], continent: [eu]}, weight: 1}\n");
}

/// Serves one file, as a refreshed reputation list on disk.
struct OneFile(&'static str, String);

impl CompileEnv for OneFile {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        if path == self.0 {
            Ok(self.1.clone())
        } else {
            Err(format!("cannot read `{path}`"))
        }
    }
}

fn with_key(rest: &str) -> String {
    format!("tokens:\n  keys: [\"{KEY}\"]\n{rest}")
}

#[test]
fn reputation_lists_are_named_lists() {
    let rules = "rules:\n  - {name: tor, when: {ip_in: [tor]}, weight: 10}\n";
    // Shipped without entries here: refused, naming the list and the fix.
    let e = Policy::from_yaml(&with_key(rules), &NoEnv).unwrap_err();
    assert_eq!(e.path, "lists.tor.builtin[0]");
    assert!(e.reason.contains("palisade datasets refresh tor"), "{e}");

    // A refreshed copy in `<companion.datasets>/networks/` is used: a rule
    // names `tor` without defining it under `lists`.
    let refreshed = OneFile(
        "datasets/networks/tor.txt",
        "# tor\n185.220.101.1\n2001:db8::1\n".to_string(),
    );
    let p = Policy::from_yaml(&with_key(rules), &refreshed).unwrap();
    assert_eq!(p.summary().lists, [("tor".to_string(), 2)]);
    assert_eq!(fired(&p, "185.220.101.1"), ["tor"]);
    assert!(fired(&p, "185.220.101.2").is_empty());
    // ... from wherever the companion's datasets are.
    let elsewhere = OneFile(
        "/srv/palisade/networks/tor.txt",
        "185.220.101.1\n".to_string(),
    );
    let moved = with_key(&format!("companion: {{datasets: /srv/palisade}}\n{rules}"));
    assert!(Policy::from_yaml(&moved, &elsewhere).is_ok());
    // A damaged copy is an error naming the file and line.
    let broken = OneFile(
        "datasets/networks/tor.txt",
        "185.220.101.1\nnot-an-ip\n".to_string(),
    );
    let e = Policy::from_yaml(&with_key(rules), &broken).unwrap_err();
    assert_eq!(e.path, "lists.tor.builtin[0]");
    assert!(
        e.reason.contains("datasets/networks/tor.txt: line 2"),
        "{e}"
    );

    // A list the policy defines itself wins over the built-in one.
    let own = Policy::from_yaml(
        &with_key(&format!(
            "lists:\n  tor: {{cidrs: [192.0.2.0/24]}}\n{rules}"
        )),
        &NoEnv,
    )
    .unwrap();
    assert_eq!(own.summary().lists, [("tor".to_string(), 1)]);
    assert_eq!(fired(&own, "192.0.2.9"), ["tor"]);
    // `vpn` ships with the VPN operators' own networks (Mullvad's
    // AS39351, Proton's AS62371), not a home connection.
    let vpn = policy("  - {name: vpn, when: {ip_in: [vpn]}, weight: 1}\n");
    assert_eq!(fired(&vpn, "45.83.220.7"), ["vpn"]);
    assert_eq!(fired(&vpn, "79.135.106.1"), ["vpn"]);
    assert!(fired(&vpn, "80.130.1.1").is_empty());
    // Resolved like geo tests: the set travels in the policy, and a
    // document's copy is what decides (as in the filter, which has none).
    let ranges = vpn.resolved_ranges();
    assert_eq!(ranges.keys().collect::<Vec<_>>(), ["builtin=vpn"]);
    let mut doc = palisade::config::yaml_to_json(&with_key(
        "rules:\n  - {name: vpn, when: {ip_in: [vpn]}, weight: 1}\n",
    ))
    .unwrap();
    let other = policy("  - {name: g, when: {asn: [15169]}, weight: 1}\n");
    doc["resolved_ranges"] =
        serde_json::json!({"builtin=vpn": other.resolved_ranges()["asn=15169"].clone()});
    let carried = Policy::from_json(&doc.to_string(), &NoEnv).unwrap();
    assert_eq!(fired(&carried, "8.8.8.8"), ["vpn"]);
    assert!(fired(&carried, "45.83.220.7").is_empty());
    // Built-in cloud lists are named lists too.
    let aws = policy("  - {name: aws, when: {ip_in: [aws]}, weight: 1}\n");
    assert_eq!(fired(&aws, "3.5.140.1"), ["aws"]);
    // An unknown name is still an error naming its path.
    let e = error("  - {name: r, when: {ip_in: [no-such-list]}, weight: 1}\n");
    assert_eq!(e.path, "rules[0].when.ip_in");
}
