//! Feature extraction on crafted request sequences, scored by the shipped
//! models (`datasets/models/`): behaviour that gives bots away must raise
//! the score, whatever else the client does the same.

use palisade::crawlers::{ClientClass, Crawlers};
use palisade::scoring::replay::{self, LogLine};
use palisade::scoring::state::{ClientState, Observation};
use palisade::scoring::{Model, RequestFacts, Vector, ACCESS_LOG, REQUEST};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn model(name: &str, schema: &'static palisade::scoring::Schema) -> Model {
    let path = format!("{}/datasets/models/{name}", env!("CARGO_MANIFEST_DIR"));
    Model::from_json(&std::fs::read_to_string(&path).unwrap(), schema).unwrap()
}

/// Irregular gaps a person might leave between pages, seconds.
const THINK: [f64; 12] = [
    4.0, 31.0, 9.5, 2.5, 58.0, 12.0, 6.0, 22.0, 3.5, 40.0, 7.0, 15.0,
];

struct Client {
    lines: Vec<LogLine>,
    t: f64,
}

impl Client {
    fn new() -> Client {
        Client {
            lines: Vec::new(),
            t: 1_800_000_000.0,
        }
    }

    fn get(&mut self, path: &str, referrer: bool, status: u16, method: &str) {
        self.lines.push(LogLine {
            client: "198.51.100.7".into(),
            ip: "198.51.100.7".parse().ok(),
            time_ns: (self.t * 1e9) as u64,
            method: method.into(),
            path: path.into(),
            status,
            has_referrer: referrer,
            user_agent: CHROME.into(),
        });
    }

    /// A page, and (with `assets`) its stylesheet, scripts and images.
    fn page(&mut self, n: usize, assets: bool) {
        self.get(&format!("/products/{}", 100 + n * 7), n > 0, 200, "GET");
        if assets {
            for (i, asset) in [
                "/app.css",
                "/app.js",
                "/vendor.js",
                "/a.webp",
                "/b.webp",
                "/c.webp",
            ]
            .iter()
            .enumerate()
            {
                self.t += 0.02 + 0.013 * i as f64;
                self.get(&format!("/static{asset}?p={n}"), true, 200, "GET");
            }
        }
    }

    fn score(&self, model: &Model) -> f32 {
        replay::score_client(&self.lines, &Crawlers::builtin().unwrap(), model)
            .unwrap()
            .score
    }
}

fn browse(assets: bool, gaps: &[f64]) -> Client {
    let mut c = Client::new();
    for (n, gap) in gaps.iter().cycle().take(24).enumerate() {
        c.page(n, assets);
        c.t += gap;
    }
    c
}

#[test]
fn asset_less_browsing_raises_the_log_score() {
    let log = model("log.json", &ACCESS_LOG);
    let with = browse(true, &THINK).score(&log);
    let without = browse(false, &THINK).score(&log);
    assert!(with < 50.0, "a person fetching assets scores {with}");
    assert!(
        without > with + 20.0,
        "without assets {without}, with {with}"
    );
}

#[test]
fn a_perfectly_regular_client_scores_higher_than_an_irregular_one() {
    let log = model("log.json", &ACCESS_LOG);
    let mean = THINK.iter().sum::<f64>() / THINK.len() as f64;
    let regular = browse(false, &[mean]).score(&log);
    let irregular = browse(false, &THINK).score(&log);
    assert!(
        regular > irregular,
        "regular {regular}, irregular {irregular}"
    );
}

#[test]
fn failed_logins_raise_the_log_score() {
    let log = model("log.json", &ACCESS_LOG);
    let mut person = browse(true, &THINK[..4]);
    person.get("/login", true, 401, "POST");
    person.t += 9.0;
    person.get("/login", true, 302, "POST");
    let mut stuffer = Client::new();
    for _ in 0..30 {
        stuffer.get("/login", false, 401, "POST");
        stuffer.t += 1.7;
    }
    let (p, s) = (person.score(&log), stuffer.score(&log));
    assert!(p < 50.0 && s > 90.0, "person {p}, stuffer {s}");
}

/// The request model: the same browsing with and without the headers a
/// browser sends, and with failed challenges.
#[test]
fn header_anomalies_and_failed_challenges_raise_the_request_score() {
    let request = model("request.json", &REQUEST);
    let run = |anomalies: u8, failed_challenges: usize| {
        let mut state = ClientState::new(1);
        let mut t = 1_800_000_000.0f64;
        let mut v = None;
        for (n, gap) in THINK.iter().enumerate() {
            // The stylesheet and script once (then cached), each page's images.
            let mut paths = vec![format!("/products/{n}")];
            if n == 0 {
                paths.extend(["/app.css".to_string(), "/app.js".to_string()]);
            }
            paths.extend((0..3).map(|i| format!("/img/{n}-{i}.webp")));
            for (i, path) in paths.iter().enumerate() {
                let obs = Observation {
                    method: "GET",
                    path,
                    has_referrer: n > 0 || i > 0,
                    login: false,
                };
                state.observe(&obs, (t * 1e9) as u64);
                state.observe_response(200, false);
                t += 0.03;
            }
            if n < failed_challenges {
                state.observe_challenge(false);
            }
            let facts = RequestFacts {
                class: ClientClass::Browser,
                anomalies,
            };
            v = Some(Vector::of(&REQUEST, &state, &facts, (t * 1e9) as u64));
            t += gap;
        }
        request.score(v.unwrap().as_slice())
    };
    let clean = run(0, 0);
    assert!(clean < 50.0, "{clean}");
    assert!(
        run(3, 0) > clean + 20.0,
        "anomalies {} vs {clean}",
        run(3, 0)
    );
    // Failed challenges push the same way, however human the rest looks
    // (with no anomalies, so human that the score stays near 0).
    for anomalies in [0, 1, 3] {
        let (passed, failed) = (run(anomalies, 0), run(anomalies, 4));
        assert!(
            failed > passed,
            "{anomalies} anomalies: failed {failed} vs {passed}"
        );
    }
}
