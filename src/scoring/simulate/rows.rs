//! Feature rows from a simulation: one row per request, after the
//! client's state was updated with it, for the request schema (what the
//! filter sees, with the demo policy's rules score beside it) and for the
//! access-log schema (what a replay of the logs sees).

use super::logs::{self, Format};
use super::{Actor, Simulation};
use crate::crawlers::{ClientClass, Crawlers};
use crate::policy::{Action, Policy, Request};
use crate::ratelimit::MemoryStore;
use crate::scoring::features::{RequestFacts, Vector, REQUEST};
use crate::scoring::replay::{self, LogLine};
use crate::scoring::rows::Row;
use crate::scoring::state::{looks_like_login, ClientState, Observation};

/// The share of requests the site challenges whatever the rules say: what
/// a score-driven or `challenge_all` route does. Without it only clients
/// the rules already suspect would ever meet a challenge, and a model could
/// not learn what a failed one says about a browser-like client.
const SPOT_CHECKS: f64 = 0.02;

/// How often (seconds) a client that keeps failing challenges is counted
/// as failing again: a challenged client is answered with the same
/// challenge until it solves it, and one refusal per page is the signal.
const CHALLENGE_EVERY_S: f64 = 30.0;

/// The share of challenges an actor solves: people nearly always, headless
/// browsers often (the proof of work runs in any browser engine), scripts
/// that run no JavaScript almost never.
fn solves(actor: Actor) -> f64 {
    match actor {
        Actor::Person => 0.97,
        Actor::HeadlessBrowser => 0.6,
        Actor::SearchCrawler => 0.0,
        _ => 0.03,
    }
}

/// Per-client bookkeeping during the request pass.
struct Client {
    state: ClientState,
    /// The last user agent classified, and its class.
    agent: Option<(String, ClientClass)>,
    passed: bool,
    last_challenge: f64,
}

fn row(
    sim: &Simulation,
    client: usize,
    t_ns: u64,
    features: Vec<f32>,
    rules_score: Option<f32>,
) -> Row {
    let c = &sim.clients[client];
    Row {
        client: c.id.clone(),
        actor: c.actor.as_str().to_string(),
        label: u8::from(c.actor.is_bot()),
        t: t_ns.saturating_sub(super::start_ns()) as f64 / 1e9,
        features,
        rules_score,
    }
}

/// Request-schema rows: each request decided by `policy` (its rules score
/// is `rules_score`; its challenges, and [`SPOT_CHECKS`], are solved or
/// failed per actor), and
/// the client's state and header facts turned into a [`REQUEST`] vector.
/// Login routes are those [`looks_like_login`] names.
pub fn request_rows(sim: &Simulation, policy: &Policy) -> Vec<Row> {
    let mut store = MemoryStore::new(policy.rate_limit_buckets());
    let mut clients: Vec<Client> = (0..sim.clients.len())
        .map(|i| Client {
            state: ClientState::new(i as u64 + 1),
            agent: None,
            passed: false,
            last_challenge: f64::NEG_INFINITY,
        })
        .collect();
    let mut rng = super::rng::Rng::new(sim.options.seed ^ 0x6368_616c);
    let mut out = Vec::with_capacity(sim.requests.len());
    for r in &sim.requests {
        let sc = &sim.clients[r.client];
        let mut headers = r.hit.headers.clone();
        headers.push((":scheme".into(), "https".into()));
        headers.push(("x-forwarded-for".into(), sc.id.clone()));
        let request = Request::new(r.hit.method, &r.hit.path, "www.example.com", &headers, None);
        let decision = policy.decide(&request, &mut store, r.t_ns);
        let c = &mut clients[r.client];
        let ua = r.user_agent();
        let class = match &c.agent {
            Some((agent, class)) if agent == ua => *class,
            _ => {
                let class = policy.crawlers().classify(ua, Some(sc.ip)).class;
                c.agent = Some((ua.to_string(), class));
                class
            }
        };
        let anomalies = policy.header_anomalies(&request, class).iter().count() as u8;
        let login = looks_like_login(&r.hit.path);
        c.state.observe(
            &Observation {
                method: r.hit.method,
                path: &r.hit.path,
                has_referrer: r.hit.referrer.is_some(),
                login,
            },
            r.t_ns,
        );
        c.state.observe_response(r.hit.status, login);
        let t = r.t_ns as f64 / 1e9;
        let challenged = decision.action == Action::Challenge || rng.chance(SPOT_CHECKS);
        if challenged && !c.passed && t - c.last_challenge >= CHALLENGE_EVERY_S {
            c.last_challenge = t;
            c.passed = rng.chance(solves(sc.actor));
            c.state.observe_challenge(c.passed);
        }
        let facts = RequestFacts { class, anomalies };
        let v = Vector::of(&REQUEST, &c.state, &facts, r.t_ns);
        out.push(row(
            sim,
            r.client,
            r.t_ns,
            v.as_slice().to_vec(),
            Some(f32::from(decision.score)),
        ));
    }
    out
}

/// Each client's lines as its log (see [`Format::of_client`]) shows them,
/// in replay order.
pub fn logged_lines(sim: &Simulation) -> Vec<Vec<LogLine>> {
    let mut lines: Vec<Vec<LogLine>> = vec![Vec::new(); sim.clients.len()];
    for r in &sim.requests {
        lines[r.client].push(logs::line_as_logged(sim, r, Format::of_client(r.client)));
    }
    for (i, client) in lines.iter_mut().enumerate() {
        replay::order(client, Format::of_client(i).resolution());
    }
    lines
}

/// Access-log rows: each client's log lines replayed (see
/// [`replay::replay`]), grouped by client. `rules` holds the rules score
/// of each of `sim.requests` (from [`request_rows`]), carried over to the
/// row of the same request for comparison.
pub fn log_rows(sim: &Simulation, crawlers: &Crawlers, rules: &[Option<f32>]) -> Vec<Row> {
    // A client's k-th line is its k-th request: [`replay::order`] sorts
    // stably, and truncating times keeps them in order.
    let mut requests: Vec<Vec<usize>> = vec![Vec::new(); sim.clients.len()];
    for (n, r) in sim.requests.iter().enumerate() {
        requests[r.client].push(n);
    }
    let mut out = Vec::with_capacity(sim.requests.len());
    for (i, lines) in logged_lines(sim).iter().enumerate() {
        let mut k = 0;
        replay::replay(lines, crawlers, |line, v| {
            let rules_score = requests[i]
                .get(k)
                .and_then(|&n| rules.get(n).copied().flatten());
            k += 1;
            out.push(row(
                sim,
                i,
                line.time_ns,
                v.as_slice().to_vec(),
                rules_score,
            ));
        });
    }
    out
}
