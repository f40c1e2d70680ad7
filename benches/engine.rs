//! Engine benchmarks (criterion): `cargo bench --bench engine`.
//!
//! The policy is generated in code from a fixed seed (`support/policy.rs`;
//! the Envoy benchmark runs the same document, see below): 1,000
//! routes, 100 rules, 10 IP lists totalling 200,000 CIDRs, three keys. It is
//! compiled once, untimed (the compile time is printed). Benchmarks:
//!
//! - `decide/allow_path`: a browser request matching route 990 (`bench-allow`),
//!   no rule firing;
//! - `decide/rules_fire`: a curl request from a listed address with a debug
//!   query parameter, firing several rules including an `ip_in` hit;
//! - `decide/valid_token`: a browser with a valid pass token on route 995
//!   (`bench-token`, challenge_all);
//! - `cidr_lookup/1M`: `IpSet::contains` on a set built from 1,000,000
//!   random prefixes (3/4 IPv4, 1/4 IPv6), cycling through 65,536
//!   precomputed random addresses of the same mix;
//! - `geo_lookup/country`, `geo_lookup/hosting`: what a request pays for a
//!   geo condition (in the filter as natively): one search of the set the
//!   condition compiles to, for `country: [US]` (the largest country) and
//!   `hosting: true`, cycling through the same kind of random addresses;
//!   `geo_lookup/place`: `GeoTable::lookup` (country, continent, ASN and
//!   organisation: what `explain` shows) on the shipped
//!   `datasets/geo/geo.bin`. The table's load time and size, and the sets'
//!   sizes, are printed;
//! - `token_verify`: `Policy::verify_token` of a bound pass token;
//! - `classify/mixed`: `Crawlers::classify` with the built-in datasets, one
//!   user agent per iteration, cycling through the corpora in `tests/data/`
//!   (browsers, in-app browsers and bots interleaved).
//!
//! A summary with each median (read back from criterion's
//! `estimates.json`) and its target is printed at the end.
//! `PALISADE_BENCH_DUMP_POLICY=FILE` writes the generated policy JSON and
//! exits without benchmarking: `scripts/bench-envoy.sh` loads it into Envoy.

#[path = "support/policy.rs"]
mod bench_policy;

use bench_policy::Rng;
use criterion::Criterion;
use palisade::crawlers::Crawlers;
use palisade::net::{Cidr, IpSet};
use palisade::policy::{Action, Policy, ProcessEnv, Reason, Request};
use palisade::ratelimit::MemoryStore;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A fixed clock (seconds since the epoch) so tokens verify whenever this runs.
const NOW_S: u64 = 1_750_000_000;
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const CLEAN_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const LISTED_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

const CIDR_PREFIXES: usize = 1_000_000;
const CIDR_PROBES: usize = 1 << 16;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn browser_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = headers(&[
        ("user-agent", BROWSER_UA),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
    ]);
    h.extend(headers(extra));
    h
}

struct Setup {
    policy: Policy,
    token: String,
}

fn compile_policy() -> Setup {
    let started = Instant::now();
    let doc = bench_policy::policy();
    let text = serde_json::to_string(&doc).expect("serialise policy");
    let generated = started.elapsed();
    let started = Instant::now();
    let policy = Policy::from_json(&text, &ProcessEnv).expect("benchmark policy compiles");
    let compiled = started.elapsed();
    let s = policy.summary();
    let ranges: usize = s.lists.iter().map(|(_, n)| n).sum();
    println!(
        "policy: {} routes, {} rules, {} lists ({} CIDRs -> {} merged ranges), {} keys, \
         {:.1} MiB JSON (generated in {:.0} ms)",
        s.routes,
        s.rules,
        s.lists.len(),
        bench_policy::LISTS * bench_policy::CIDRS_PER_LIST,
        ranges,
        s.keys,
        text.len() as f64 / 1048576.0,
        generated.as_secs_f64() * 1e3,
    );
    println!(
        "compile: Policy::from_json took {:.0} ms (once, not benchmarked)",
        compiled.as_secs_f64() * 1e3
    );
    let token = policy.issue_token(
        Some(CLEAN_IP),
        BROWSER_UA,
        palisade::challenge::Passed::pow(bench_policy::TOKEN_DIFFICULTY),
        NOW_S,
    );
    Setup { policy, token }
}

fn bench_decide(c: &mut Criterion, setup: &Setup) {
    let policy = &setup.policy;
    let mut store = MemoryStore::new(policy.rate_limit_buckets());
    let now_ns = NOW_S * 1_000_000_000;

    let allow_h = browser_headers(&[]);
    let allow = Request::new(
        "GET",
        "/svc990/items/42",
        "shop.example.com",
        &allow_h,
        Some(CLEAN_IP),
    );
    let fire_h = headers(&[("user-agent", "curl/8.5.0"), ("accept", "*/*")]);
    let fire = Request::new(
        "GET",
        "/svc990/items/42?debug8=1",
        "shop.example.com",
        &fire_h,
        Some(LISTED_IP),
    );
    let token_h = browser_headers(&[("x-palisade-token", &setup.token)]);
    let token = Request::new(
        "GET",
        "/svc995/account",
        "shop.example.com",
        &token_h,
        Some(CLEAN_IP),
    );

    // The scenarios must be what their names say; fail loudly otherwise.
    let d = policy.decide(&allow, &mut store, now_ns);
    assert_eq!(
        (d.action, d.route, d.rules.len()),
        (Action::Allow, "bench-allow", 0),
        "allow_path scenario"
    );
    let d = policy.decide(&fire, &mut store, now_ns);
    let names: Vec<&str> = d.rules.iter().map(|r| r.name).collect();
    assert!(
        d.route == "bench-allow" && names.len() >= 5 && names.contains(&"rule033"),
        "rules_fire scenario: route {} fired {names:?}",
        d.route
    );
    println!(
        "rules_fire: {} rules fire ({}), score {}, action {}",
        names.len(),
        names.join(" "),
        d.score,
        d.action.as_str()
    );
    let d = policy.decide(&token, &mut store, now_ns);
    assert_eq!(
        (d.action, d.reason, d.route),
        (Action::Allow, Reason::PassToken, "bench-token"),
        "valid_token scenario (token {:?})",
        d.token
    );

    let mut group = c.benchmark_group("decide");
    for (name, request) in [
        ("allow_path", &allow),
        ("rules_fire", &fire),
        ("valid_token", &token),
    ] {
        // Time moves on (1 µs per request) so rate limits see a live clock.
        let mut now = now_ns;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += 1_000;
                black_box(policy.decide(black_box(request), &mut store, now))
            })
        });
    }
    group.finish();
}

fn random_address(rng: &mut Rng) -> IpAddr {
    if rng.below(4) == 0 {
        let hi = ((0x2000 + rng.below(0x1000)) << 48) | rng.below(1 << 48);
        IpAddr::V6(Ipv6Addr::from(
            (u128::from(hi) << 64) | u128::from(rng.next_u64()),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32))
    }
}

fn bench_cidr(c: &mut Criterion) {
    let started = Instant::now();
    let mut rng = Rng::new(bench_policy::SEED ^ 4);
    let prefixes: Vec<Cidr> = (0..CIDR_PREFIXES)
        .map(|_| {
            let (addr, len) = bench_policy::random_prefix(&mut rng);
            Cidr::new(addr, len).expect("valid prefix")
        })
        .collect();
    let set = IpSet::from_cidrs(prefixes);
    let built = started.elapsed();
    let mut rng = Rng::new(bench_policy::SEED ^ 5);
    let probes: Vec<IpAddr> = (0..CIDR_PROBES).map(|_| random_address(&mut rng)).collect();
    let hits = probes.iter().filter(|&&ip| set.contains(ip)).count();
    println!(
        "cidr_lookup: {CIDR_PREFIXES} prefixes -> {} v4 + {} v6 merged ranges, built in {:.0} ms; \
         {CIDR_PROBES} probe addresses, {:.1}% inside",
        set.v4_ranges().len(),
        set.v6_ranges().len(),
        built.as_secs_f64() * 1e3,
        100.0 * hits as f64 / CIDR_PROBES as f64,
    );

    let mut group = c.benchmark_group("cidr_lookup");
    let mut i = 0usize;
    group.bench_function("1M", |b| {
        b.iter(|| {
            i = (i + 1) & (CIDR_PROBES - 1);
            black_box(set.contains(black_box(probes[i])))
        })
    });
    group.finish();
}

fn bench_geo(c: &mut Criterion) {
    let started = Instant::now();
    let table = palisade::geo::table().expect("native builds embed the geo table");
    let loaded = started.elapsed();
    let (v4, v6, records, asns, bytes) = table.stats();
    let started = Instant::now();
    let country = table.networks_where(|p| p.country == Some(*b"US"));
    let hosting = palisade::geo::hosting_set(table).expect("hosting set");
    let compiled = started.elapsed();
    let size = |s: &IpSet| {
        let bytes = s.v4_ranges().len() * 8 + s.v6_ranges().len() * 32;
        format!(
            "{} ranges, {:.2} MiB",
            s.range_count(),
            bytes as f64 / 1_048_576.0
        )
    };
    let mut rng = Rng::new(bench_policy::SEED ^ 6);
    let probes: Vec<IpAddr> = (0..CIDR_PROBES).map(|_| random_address(&mut rng)).collect();
    let known = probes
        .iter()
        .filter(|&&ip| table.lookup(ip).asn.is_some())
        .count();
    println!(
        "geo_lookup: {v4} v4 + {v6} v6 segments, {records} records, {asns} AS numbers, \
         {:.2} MiB read in place, loaded in {:.1} ms; sets compiled in {:.0} ms: \
         country US {}, hosting {}; {:.1}% of probe addresses have an AS",
        bytes as f64 / 1_048_576.0,
        loaded.as_secs_f64() * 1e3,
        compiled.as_secs_f64() * 1e3,
        size(&country),
        size(&hosting),
        100.0 * known as f64 / CIDR_PROBES as f64,
    );
    let mut group = c.benchmark_group("geo_lookup");
    let mut i = 0usize;
    for (name, set) in [("country", &country), ("hosting", &hosting)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & (CIDR_PROBES - 1);
                black_box(set.contains(black_box(probes[i])))
            })
        });
    }
    group.bench_function("place", |b| {
        b.iter(|| {
            i = (i + 1) & (CIDR_PROBES - 1);
            black_box(table.lookup(black_box(probes[i])))
        })
    });
    group.finish();
}

fn bench_token(c: &mut Criterion, setup: &Setup) {
    let policy = &setup.policy;
    assert!(policy
        .verify_token(&setup.token, Some(CLEAN_IP), BROWSER_UA, NOW_S)
        .is_ok());
    c.bench_function("token_verify", |b| {
        b.iter(|| {
            black_box(policy.verify_token(
                black_box(&setup.token),
                Some(CLEAN_IP),
                BROWSER_UA,
                NOW_S,
            ))
        })
    });
}

/// The corpora of `tests/data/user-agents/`, interleaved so that browsers
/// and bots alternate.
fn mixed_corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/user-agents");
    let read = |name: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join(name)).expect("tests/data corpus");
        text.lines()
            .map(|l| l.rsplit('\t').next().unwrap_or(l).to_string())
            .collect()
    };
    let files = [
        read("browsers-weighted.tsv"),
        read("browsers.txt"),
        read("browsers-inapp.txt"),
        read("bots-crawlerdetect.txt"),
        read("bots-crawler-user-agents.txt"),
    ];
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| files.iter().filter_map(move |f| f.get(i).cloned()))
        .collect()
}

fn bench_classify(c: &mut Criterion) {
    let crawlers = Crawlers::builtin().expect("built-in datasets");
    let corpus = mixed_corpus();
    println!("classify: {} user agents in the mixed corpus", corpus.len());
    let mut group = c.benchmark_group("classify");
    let mut next = 0usize;
    group.bench_function("mixed", |b| {
        b.iter(|| {
            let ua = &corpus[next % corpus.len()];
            next = next.wrapping_add(1);
            black_box(crawlers.classify(black_box(ua), Some(CLEAN_IP)).class)
        })
    });
    group.finish();
    // Criterion reports the mean of each sample; the target is the median
    // per user agent, so time each one too (Instant's own cost included).
    let mut times: Vec<u128> = Vec::with_capacity(corpus.len() * 5);
    for _ in 0..5 {
        for ua in &corpus {
            let started = Instant::now();
            black_box(crawlers.classify(black_box(ua), Some(CLEAN_IP)));
            times.push(started.elapsed().as_nanos());
        }
    }
    times.sort_unstable();
    let at = |q: usize| times[times.len() * q / 100];
    println!(
        "classify: per user agent over 5 passes of the corpus: median {} ns, p90 {} ns, p99 {} ns",
        at(50),
        at(90),
        at(99)
    );
}

/// Where criterion writes, resolved as criterion itself does (minus its
/// `cargo metadata` call) and then passed to it, so the summary reads the
/// same files.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The median of this run's measurement, in nanoseconds, if it ran.
fn median_ns(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let file = dir.join(id).join("new").join("estimates.json");
    let fresh = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn summary(dir: &Path, since: SystemTime) {
    let rows = [
        ("decide/allow_path", 2000.0),
        ("decide/rules_fire", 2000.0),
        ("decide/valid_token", 2000.0),
        ("cidr_lookup/1M", 100.0),
        ("geo_lookup/country", 100.0),
        ("geo_lookup/hosting", 100.0),
        ("geo_lookup/place", 100.0),
        ("token_verify", 2000.0),
        ("classify/mixed", 1000.0),
    ];
    println!();
    println!("summary (criterion medians, from {})", dir.display());
    println!(
        "  {:<22} {:>12} {:>11}  status",
        "benchmark", "median", "target"
    );
    for (id, target) in rows {
        match median_ns(dir, id, since) {
            Some(ns) => println!(
                "  {id:<22} {:>12} {:>11}  {}",
                human(ns),
                format!("<= {}", human(target)),
                if ns <= target { "ok" } else { "OVER TARGET" }
            ),
            None => println!(
                "  {id:<22} {:>12} {:>11}  not measured in this run",
                "-",
                format!("<= {}", human(target))
            ),
        }
    }
}

fn main() {
    if let Ok(path) = std::env::var("PALISADE_BENCH_DUMP_POLICY") {
        let text = bench_policy::policy().to_string();
        std::fs::write(&path, format!("{text}\n")).expect("write policy dump");
        println!("policy JSON written to {path}");
        return;
    }
    let started = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .output_directory(&dir)
        .configure_from_args();
    let setup = compile_policy();
    bench_decide(&mut c, &setup);
    bench_cidr(&mut c);
    bench_geo(&mut c);
    bench_token(&mut c, &setup);
    bench_classify(&mut c);
    c.final_summary();
    summary(&dir, started);
}
