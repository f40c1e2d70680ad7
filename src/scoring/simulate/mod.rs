//! `palisade simulate`: labelled traffic from documented actor models.
//!
//! Each client is one actor (a person, or one of six kinds of bot) with
//! its own parameters, drawn from wide ranges so that a model trained on
//! it has seen many ways of being each kind. The holdout variant draws
//! from *other* ranges (faster and slower people, stealthier bots, …), so
//! evaluating on it measures how a model copes with traffic it was not
//! trained on, not only with other seeds. `docs/scoring.md` has the table.
//!
//! - [`rng`]: the seeded generator (the same traffic on every platform).
//! - [`agents`]: user agents and header sets.
//! - [`site`]: the simulated site and its origin's answers.
//! - [`actors`]: the actor models.
//! - [`rows`]: feature rows (request and access-log schemas) and rules scores.
//! - [`logs`]: the traffic as Envoy and combined access logs.
//! - [`interaction`]: challenge-page interaction records.

pub mod actors;
pub mod agents;
pub mod interaction;
pub mod logs;
pub mod rng;
pub mod rows;
pub mod site;

pub use actors::{Actor, Hit, Input};

use actors::Window;
use rng::Rng;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which parameter ranges the actors draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Train,
    /// Other ranges, for evaluation (see the module doc).
    Holdout,
}

impl Variant {
    /// The train or the holdout value of a parameter.
    pub fn pick<T>(self, train: T, holdout: T) -> T {
        match self {
            Variant::Train => train,
            Variant::Holdout => holdout,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.pick("train", "holdout")
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub seed: u64,
    pub variant: Variant,
    pub clients: usize,
    /// Seconds of traffic; clients start in the first 70% of it.
    pub duration_s: f64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            seed: 1,
            variant: Variant::Train,
            clients: 400,
            duration_s: 1800.0,
        }
    }
}

/// One simulated client.
#[derive(Debug, Clone, PartialEq)]
pub struct SimClient {
    /// Its address as text: what the logs and the feature rows key on.
    pub id: String,
    pub ip: IpAddr,
    pub actor: Actor,
    /// How a person uses a challenge page; `None` for bots.
    pub input: Option<Input>,
}

/// One request of one client.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRequest {
    /// Index into [`Simulation::clients`].
    pub client: usize,
    /// Nanoseconds since the Unix epoch.
    pub t_ns: u64,
    pub hit: Hit,
}

impl SimRequest {
    pub fn user_agent(&self) -> &str {
        self.hit
            .headers
            .iter()
            .find(|(n, _)| n == "user-agent")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A simulation's clients and their requests, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    pub options: SimOptions,
    pub clients: Vec<SimClient>,
    pub requests: Vec<SimRequest>,
}

/// When simulated time starts: 2026-11-21T10:00:00Z.
pub fn start_ns() -> u64 {
    (super::clock::days_from_civil(2026, 11, 21) * 86_400 + 10 * 3600) as u64 * 1_000_000_000
}

/// Runs the actor models.
pub fn simulate(options: &SimOptions) -> Simulation {
    let salt = options
        .variant
        .pick(0x7472_6169_6e00, 0x0068_6f6c_646f_7574);
    let root = Rng::new(options.seed ^ salt);
    let duration = options.duration_s.max(1.0);
    let mut taken = HashSet::new();
    let mut clients = Vec::with_capacity(options.clients);
    let mut requests = Vec::new();
    for index in 0..options.clients {
        let mut rng = root.fork(index as u64);
        let actor = Actor::of_client(&mut rng);
        let window = Window {
            start: rng.range((0.0, 0.7 * duration)),
            end: duration,
        };
        let generated = actors::generate(actor, &mut rng, options.variant, window);
        let ip = address(&mut rng, actor, &generated.hits, &mut taken);
        let mut limits = site::OriginLimits::default();
        for mut hit in generated.hits {
            if !limits.allows(&hit.path, hit.t) {
                hit.status = 429;
            }
            requests.push(SimRequest {
                client: index,
                t_ns: start_ns() + (hit.t * 1e9) as u64,
                hit,
            });
        }
        clients.push(SimClient {
            id: ip.to_string(),
            ip,
            actor,
            input: generated.input,
        });
    }
    requests.sort_by_key(|r| (r.t_ns, r.client));
    Simulation {
        options: options.clone(),
        clients,
        requests,
    }
}

/// A distinct address for a client: a search crawler's from its
/// operator's published range when it has one (so it verifies), anyone
/// else's a random public IPv4 or (for some people) IPv6 address.
fn address(rng: &mut Rng, actor: Actor, hits: &[Hit], taken: &mut HashSet<IpAddr>) -> IpAddr {
    let crawler_net = (actor == Actor::SearchCrawler)
        .then(|| hits.first())
        .flatten()
        .and_then(|h| h.headers.iter().find(|(n, _)| n == "user-agent"))
        .and_then(|(_, ua)| agents::CRAWLERS.iter().find(|c| c.user_agent == ua))
        .and_then(|c| c.network);
    for attempt in 0..64 {
        let ip = match crawler_net {
            // Googlebot's range here is a /27: stay inside it.
            Some([a, b, c]) if attempt < 16 => {
                IpAddr::V4(Ipv4Addr::new(a, b, c, rng.int(1, 30) as u8))
            }
            _ if actor == Actor::Person && rng.chance(0.15) => IpAddr::V6(Ipv6Addr::new(
                0x2a02,
                rng.int(0x100, 0xfff) as u16,
                rng.int(0, 0xffff) as u16,
                rng.int(0, 0xffff) as u16,
                0,
                0,
                0,
                rng.int(1, 0xffff) as u16,
            )),
            _ => IpAddr::V4(actors::random_ip(rng).into()),
        };
        if taken.insert(ip) {
            return ip;
        }
    }
    // 64 collisions in a 2^32 space do not happen; a repeat is still valid.
    IpAddr::V4(actors::random_ip(rng).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(variant: Variant) -> Simulation {
        simulate(&SimOptions {
            seed: 3,
            variant,
            clients: 60,
            duration_s: 600.0,
        })
    }

    #[test]
    fn a_seed_gives_the_same_traffic_and_variants_differ() {
        let a = small(Variant::Train);
        assert_eq!(a, small(Variant::Train));
        assert_ne!(a.requests, small(Variant::Holdout).requests);
        assert!(a.requests.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
        let ids: HashSet<&str> = a.clients.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), a.clients.len());
    }

    #[test]
    fn every_actor_appears_and_people_fetch_assets_and_scrapers_do_not() {
        let sim = simulate(&SimOptions {
            clients: 200,
            ..SimOptions::default()
        });
        for actor in Actor::ALL {
            assert!(sim.clients.iter().any(|c| c.actor == actor), "{actor:?}");
        }
        let share = |actor: Actor| {
            let hits: Vec<&SimRequest> = sim
                .requests
                .iter()
                .filter(|r| sim.clients[r.client].actor == actor)
                .collect();
            let assets = hits
                .iter()
                .filter(|r| crate::scoring::state::is_asset(&r.hit.path))
                .count();
            assets as f64 / hits.len().max(1) as f64
        };
        assert!(share(Actor::Person) > 0.4);
        assert!(share(Actor::HeadlessBrowser) > 0.4);
        assert_eq!(share(Actor::AggressiveScraper), 0.0);
        let stuffer_401s = sim
            .requests
            .iter()
            .filter(|r| {
                sim.clients[r.client].actor == Actor::CredentialStuffer && r.hit.status == 401
            })
            .count();
        assert!(stuffer_401s > 20);
        let api_429s = sim
            .requests
            .iter()
            .filter(|r| sim.clients[r.client].actor == Actor::ApiClient && r.hit.status == 429)
            .count();
        assert!(api_429s > 0);
    }
}
