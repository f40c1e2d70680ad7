//! Bounded fuzzing of Palisade's parsers: `make fuzz` (`FUZZ_SECONDS` per
//! target; `make test` runs it briefly).
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines do
//! not have, so this harness drives the same targets itself: each input is
//! a corpus entry (`fuzz/corpus/TARGET/`, kept in the repository) put
//! through a few random mutations (bit flips, random and "interesting"
//! bytes, insertions, deletions, duplicated ranges, splices with another
//! entry, tokens from the target's dictionary). It is blind to coverage,
//! so it finds shallow bugs fast and deep ones slowly; the corpus is what
//! steers it.
//!
//! A target fails on a panic (the input is written to `fuzz/crashes/`), on
//! one input taking longer than `--hang-ms` (5 s), or when the process's resident
//! memory grows by more than `--max-growth-mib` between the end of the
//! warm-up and the end of the run. Each run prints the executions it made.
//!
//! ```text
//! cargo run --release --example fuzz -- [--seconds N] [--seed S] [TARGET...]
//! ```

use palisade::challenge;
use palisade::companion::scoring::api::{self, CheckRequest};
use palisade::companion::{parse_answer, parse_challenge_query};
use palisade::policy::{CompileEnv, Policy, Request};
use palisade::token::{self, Binding, Key, Keyring, Purpose};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[allow(dead_code)] // the CLI's other uses of the module
#[path = "../src/cli/access_log.rs"]
mod access_log;

/// One thing under test: a name, and a function that must not panic on
/// any input.
struct Target {
    name: &'static str,
    run: fn(&Fixtures, &[u8]),
    /// Fragments worth splicing into this target's inputs.
    dictionary: &'static [&'static str],
    /// Valid inputs made with the fixtures' key, added to the corpus (a
    /// stored token would be signed with a key the harness must not ship).
    seeds: fn(&Fixtures) -> Vec<Vec<u8>>,
}

fn no_seeds(_: &Fixtures) -> Vec<Vec<u8>> {
    Vec::new()
}

fn token_seeds(f: &Fixtures) -> Vec<Vec<u8>> {
    let t = token::issue(&f.keys, NOW_S, 3600, 3, f.binding);
    vec![
        t.clone().into_bytes(),
        format!("a=1; palisade={t}; b=2").into_bytes(),
    ]
}

fn ticket_seeds(f: &Fixtures) -> Vec<Vec<u8>> {
    let data = challenge::issue_ticket(&f.keys, NOW_S, 300, 1, f.binding, "/login?next=%2F");
    let nonce = challenge::solve(&data, challenge::difficulty_bits(1));
    vec![format!("{data}\n{nonce}").into_bytes()]
}

fn verify_seeds(f: &Fixtures) -> Vec<Vec<u8>> {
    let data = challenge::issue_ticket(&f.keys, NOW_S, 300, 1, f.binding, "/");
    let nonce = challenge::solve(&data, challenge::difficulty_bits(1));
    vec![
        format!("application/x-www-form-urlencoded\ndata={data}&nonce={nonce}").into_bytes(),
        format!("application/json\n{{\"data\":\"{data}\",\"nonce\":{nonce}}}").into_bytes(),
    ]
}

const TARGETS: &[Target] = &[
    Target {
        name: "policy_yaml",
        run: policy_yaml,
        dictionary: &[
            ": ",
            "\n",
            "  ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            "*",
            "&a ",
            "*a",
            "!!",
            "~",
            "'",
            "\"",
            "routes:",
            "rules:",
            "match:",
            "path: /a*",
            "when:",
            "lists:",
            "cidrs:",
            "10.0.0.0/8",
            "::/0",
            "action: block",
            "weight: ",
            "rate: 10/minute",
            "1e309",
            "-1",
            "99999999999",
        ],
        seeds: no_seeds,
    },
    Target {
        name: "policy_json",
        run: policy_json,
        dictionary: &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "null",
            "true",
            "1e309",
            "-0",
            "\"routes\"",
            "\"rules\"",
            "\"match\"",
            "\"path\"",
            "\"lists\"",
            "\"cidrs\"",
            "\"10.0.0.0/8\"",
            "\"resolved_ranges\"",
            "\"v4\"",
            "\"\\u0000\"",
        ],
        seeds: no_seeds,
    },
    Target {
        name: "token",
        run: token_and_cookie,
        dictionary: &["=", ";", " ", "\"", "-", "_", "AAAA", "palisade=", "%"],
        seeds: token_seeds,
    },
    Target {
        name: "ticket",
        run: ticket,
        dictionary: &["\n", "0", "9", "-", "_", "AAAA", "18446744073709551616"],
        seeds: ticket_seeds,
    },
    Target {
        name: "companion_verify",
        run: companion_verify,
        dictionary: &[
            "\n",
            "application/json",
            "application/x-www-form-urlencoded",
            "{\"answer\":",
            "answer=",
            "tile=",
            "&",
            "=",
            "%",
            "+",
            "[",
            "]",
            "kind=",
            "difficulty=",
            "return=",
            "lang=",
            "data=",
            "nonce=",
            "\"response\"",
        ],
        seeds: verify_seeds,
    },
    Target {
        name: "companion_check",
        run: companion_check,
        dictionary: &[
            "{",
            "}",
            "\"ip\"",
            "\"path\"",
            "\"method\"",
            "\"headers\"",
            "\"user_agent\"",
            "\"scheme\"",
            "\"host\"",
            "\"192.0.2.1\"",
            "\"::1\"",
            "\"/a\"",
            ":",
            ",",
        ],
        seeds: no_seeds,
    },
    Target {
        name: "access_log",
        run: access_logs,
        dictionary: &[
            "[",
            "]",
            "\"",
            " - - ",
            "GET ",
            " HTTP/1.1",
            " 200 ",
            "-",
            "/",
            ":",
            "+0000",
            "10/Oct/2025:13:55:36",
            "2025-10-10T13:55:36.000Z",
            ", ",
        ],
        seeds: no_seeds,
    },
];

/// What the targets share: keys, a compiled policy, a valid token and ticket.
struct Fixtures {
    keys: Keyring,
    policy: Policy,
    binding: Binding,
}

/// A compile environment whose every variable holds a key, and no files.
struct FuzzEnv;

impl CompileEnv for FuzzEnv {
    fn var(&self, _name: &str) -> Option<String> {
        Some("5:fuzz-harness-secret-0123456789".to_string())
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        Err(format!("no files while fuzzing ({path})"))
    }
}

const NOW_S: u64 = 1_800_000_000;

fn policy_yaml(_: &Fixtures, input: &[u8]) {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = Policy::from_yaml(text, &FuzzEnv);
    }
}

fn policy_json(_: &Fixtures, input: &[u8]) {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = Policy::from_json(text, &FuzzEnv);
    }
}

fn token_and_cookie(f: &Fixtures, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let _ = token::verify(&f.keys, &text, NOW_S, 3600, &f.binding);
    for purpose in [
        Purpose::PassToken,
        Purpose::PowTicket,
        Purpose::ChallengeContext,
    ] {
        let _ = token::open(&f.keys, purpose, &text);
    }
    // The same text as a Cookie header and a token header, through a
    // decision (cookie parsing, then verification).
    let headers = vec![
        ("cookie".to_string(), text.to_string()),
        ("x-palisade-token".to_string(), text.to_string()),
    ];
    let request = Request::new("GET", "/", "example.com", &headers, None);
    let _ = request.cookie("palisade");
    let mut store = palisade::ratelimit::MemoryStore::new(8);
    let _ = f.policy.decide(&request, &mut store, NOW_S * 1_000_000_000);
}

fn ticket(f: &Fixtures, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (data, nonce) = text.split_once('\n').unwrap_or((&text, "1"));
    let _ = challenge::verify_solution(&f.keys, data, nonce, NOW_S, &f.binding);
}

fn companion_verify(f: &Fixtures, input: &[u8]) {
    let split = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    let (head, body) = input.split_at(split);
    let content_type = String::from_utf8_lossy(head);
    let body = body.get(1..).unwrap_or_default();
    let _ = parse_answer(&content_type, body);
    let _ = parse_challenge_query(&content_type);
    // The proof-of-work verify endpoint: a GET with the input as its query,
    // a POST with it as the body.
    let headers = vec![("content-type".to_string(), content_type.to_string())];
    let path = format!("/.palisade/verify?{}", String::from_utf8_lossy(body));
    let get = Request::new("GET", &path, "example.com", &headers, None);
    let _ = f.policy.handle_own(&get, b"", NOW_S * 1_000_000_000);
    let post = Request::new("POST", "/.palisade/verify", "example.com", &headers, None);
    let _ = f.policy.handle_own(&post, body, NOW_S * 1_000_000_000);
}

fn companion_check(f: &Fixtures, input: &[u8]) {
    let Ok(check) = api::parse::<CheckRequest>(input).and_then(|c| c.validate().map(|()| c)) else {
        return;
    };
    let headers: Vec<(String, String)> = check.headers.into_iter().collect();
    let request = Request::new(
        &check.method,
        &check.path,
        check.host.as_deref().unwrap_or(""),
        &headers,
        Some(check.ip),
    );
    let mut store = palisade::ratelimit::MemoryStore::new(8);
    let _ = f.policy.decide(&request, &mut store, NOW_S * 1_000_000_000);
}

fn access_logs(_: &Fixtures, input: &[u8]) {
    let line = String::from_utf8_lossy(input);
    for format in [
        access_log::LogFormat::Envoy,
        access_log::LogFormat::Combined,
    ] {
        let _ = access_log::parse(&line, format);
        let _ = access_log::user_agent_and_ip(&line, format);
    }
}

struct Options {
    seconds: f64,
    seed: u64,
    hang: Duration,
    max_growth_mib: f64,
    targets: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 10.0,
        seed: 1,
        // Generous: a loaded machine can stall one input for a second.
        hang: Duration::from_millis(5000),
        max_growth_mib: 64.0,
        targets: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => {
                o.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--seed" => {
                o.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--hang-ms" => {
                o.hang = Duration::from_millis(
                    value("--hang-ms")?
                        .parse()
                        .map_err(|e| format!("--hang-ms: {e}"))?,
                )
            }
            "--max-growth-mib" => {
                o.max_growth_mib = value("--max-growth-mib")?
                    .parse()
                    .map_err(|e| format!("--max-growth-mib: {e}"))?
            }
            name if !name.starts_with('-') => o.targets.push(name.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fuzz: {e}");
            std::process::exit(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let fixtures = fixtures();
    // Panics are the findings: report them ourselves, not on stderr each.
    panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for target in TARGETS {
        if !o.targets.is_empty() && !o.targets.iter().any(|t| t == target.name) {
            continue;
        }
        match fuzz(target, &fixtures, &o, &root) {
            Ok(report) => println!("{report}"),
            Err(e) => {
                println!("fuzz {}: FAILED: {e}", target.name);
                failed = true;
            }
        }
    }
    if let Some(unknown) = o
        .targets
        .iter()
        .find(|t| !TARGETS.iter().any(|x| x.name == t.as_str()))
    {
        eprintln!("fuzz: no target `{unknown}`");
        failed = true;
    }
    std::process::exit(i32::from(failed));
}

fn fixtures() -> Fixtures {
    let keys = Keyring::new(vec![Key {
        id: 5,
        secret: b"fuzz-harness-secret-0123456789".to_vec(),
    }])
    .expect("a valid key");
    let policy = Policy::from_yaml(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/demo-policy.yaml"),
        )
        .expect("envoy/demo-policy.yaml"),
        &FuzzEnv,
    )
    .expect("the demo policy compiles");
    Fixtures {
        keys,
        policy,
        binding: Binding::new(None, Some("fuzz")),
    }
}

fn corpus(root: &Path, target: &str) -> Result<Vec<Vec<u8>>, String> {
    let dir = root.join("corpus").join(target);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let inputs: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    if inputs.is_empty() {
        return Err(format!("{}: no corpus entries", dir.display()));
    }
    Ok(inputs)
}

fn fuzz(target: &Target, f: &Fixtures, o: &Options, root: &Path) -> Result<String, String> {
    let mut corpus = corpus(root, target.name)?;
    corpus.extend((target.seeds)(f));
    let mut rng = SmallRng::seed_from_u64(o.seed ^ fxhash(target.name.as_bytes()));
    let budget = Duration::from_secs_f64(o.seconds);
    let warm_up = budget / 10;
    let start = Instant::now();
    let mut execs: u64 = 0;
    let mut slowest = Duration::ZERO;
    let mut rss_after_warm_up = None;
    // Every entry as it is first, then mutated ones.
    let mut pending: Vec<Vec<u8>> = corpus.clone();
    while start.elapsed() < budget || !pending.is_empty() {
        let input = pending
            .pop()
            .unwrap_or_else(|| mutate(&mut rng, &corpus, target.dictionary));
        let began = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(f, &input)));
        let took = began.elapsed();
        execs += 1;
        if outcome.is_err() {
            let saved = save_crash(root, target.name, &input);
            return Err(format!("panicked on an input, saved as {saved}"));
        }
        if took > o.hang {
            let saved = save_crash(root, target.name, &input);
            return Err(format!(
                "one input took {took:?} (limit {:?}), saved as {saved}",
                o.hang
            ));
        }
        slowest = slowest.max(took);
        if rss_after_warm_up.is_none() && start.elapsed() >= warm_up {
            rss_after_warm_up = resident_mib();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let growth = match (rss_after_warm_up, resident_mib()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    if growth > o.max_growth_mib {
        return Err(format!(
            "resident memory grew by {growth:.1} MiB over the run (limit {} MiB)",
            o.max_growth_mib
        ));
    }
    Ok(format!(
        "fuzz {}: {execs} executions in {elapsed:.1} s ({:.0}/s), {} corpus entries, slowest {:.2} ms, resident memory {growth:+.1} MiB after warm-up: no crash, no hang",
        target.name,
        execs as f64 / elapsed,
        corpus.len(),
        slowest.as_secs_f64() * 1e3,
    ))
}

/// One to four mutations of a random corpus entry.
fn mutate(rng: &mut SmallRng, corpus: &[Vec<u8>], dictionary: &[&str]) -> Vec<u8> {
    let mut data = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                const INTERESTING: &[u8] =
                    &[0, 0x7f, 0x80, 0xff, b'\n', b'\r', b'%', b'\\', b'"', b'/'];
                let i = rng.random_range(0..len);
                data[i] = if rng.random_bool(0.5) {
                    INTERESTING[rng.random_range(0..INTERESTING.len())]
                } else {
                    rng.random()
                };
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                data.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                let piece = data[a..b].to_vec();
                let at = rng.random_range(0..=data.len());
                data.splice(
                    at..at,
                    piece
                        .iter()
                        .cloned()
                        .cycle()
                        .take(piece.len() * rng.random_range(1..8)),
                );
            }
            5 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let at = rng.random_range(0..=data.len());
                    data.splice(at..at, other[a..].iter().cloned());
                }
            }
            _ if !dictionary.is_empty() => {
                let word = dictionary[rng.random_range(0..dictionary.len())].as_bytes();
                let at = rng.random_range(0..=data.len());
                data.splice(at..at, word.iter().cloned());
            }
            _ => {}
        }
    }
    data.truncate(64 * 1024);
    data
}

fn save_crash(root: &Path, target: &str, input: &[u8]) -> String {
    let dir = root.join("crashes");
    let path = dir.join(format!("{target}-{:016x}", fxhash(input)));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    path.display().to_string()
}

/// A small stable hash for file names and seeds (FNV-1a).
fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// This process's resident memory (Linux), in MiB.
fn resident_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}
