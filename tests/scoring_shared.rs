//! The companion's shared scoring state (`SharedScoring`) against a real
//! `redis-server` (one per test, on a free 127.0.0.1 port): replicas racing
//! on one client lose no request, racing on the last label of a window
//! admit it once, labels and reputation come back as written, and a
//! server that is gone fails fast with an error to fall back from, and is
//! used again once it is back.

use common::RedisServer;
use palisade::companion::scoring::caps::Refused;
use palisade::companion::scoring::clients::ClientSlot;
use palisade::companion::scoring::records::{Event, Label};
use palisade::companion::scoring::shared::{SharedError, SharedScoring, CLIENT_TTL_MS};
use palisade::config::{Duration, FeedbackConfig};
use palisade::scoring::{Observation, Vector};
use std::sync::Barrier;

mod common;

const REPLICAS: usize = 6;

fn seen(slot: &mut ClientSlot, now_ns: u64) -> Vector {
    slot.observe(&Observation::get("/a"), now_ns, |state| {
        Vector::from_values(&[state.seen() as f32]).unwrap()
    })
}

#[test]
fn replicas_racing_on_one_client_lose_no_request() {
    let server = RedisServer::start();
    let replicas: Vec<SharedScoring> = (0..REPLICAS)
        .map(|_| SharedScoring::open(&server.url()).unwrap())
        .collect();
    let start = Barrier::new(REPLICAS);
    let tag = 0x5eed;
    std::thread::scope(|s| {
        for replica in &replicas {
            let start = &start;
            s.spawn(move || {
                start.wait();
                // Each replica keeps its own copy as the next guess, as the
                // companion's table does.
                let mut copy: Option<ClientSlot> = None;
                for i in 0..25 {
                    let mut tries = 0;
                    loop {
                        match replica
                            .update_client(tag, copy.as_ref(), |slot| seen(slot, 1_000_000_000 + i))
                        {
                            Ok((slot, _)) => {
                                copy = Some(slot);
                                break;
                            }
                            // Six replicas hammering one key may lose eight
                            // races in a row; the companion would count that
                            // request locally. Here it is tried again.
                            Err(SharedError::Contended { .. }) if tries < 20 => tries += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let (slot, total) = replicas[0]
        .update_client(tag, None, |slot| slot.state.seen())
        .unwrap();
    assert_eq!(total, (REPLICAS * 25) as u32);
    assert_eq!(slot.state.tag, tag);
    // The last vector is kept beside the record, for any replica to label.
    let last = replicas[1].last(tag).unwrap().unwrap();
    assert!(last.as_slice()[0] >= 1.0);
    let ttl = server.command(&["PTTL", &format!("palisade:score:client:{tag:016x}")]);
    let ttl: i64 = redis::from_redis_value(&ttl).unwrap();
    assert!(ttl > 0 && ttl <= CLIENT_TTL_MS as i64, "{ttl}");
}

#[test]
fn a_cached_score_written_by_one_replica_is_handed_over_by_another() {
    let server = RedisServer::start();
    let (a, b) = (
        SharedScoring::open(&server.url()).unwrap(),
        SharedScoring::open(&server.url()).unwrap(),
    );
    let score = palisade::scoring::Scored {
        points: 77,
        top: palisade::scoring::TopFeatures::of(["timing_cv"]),
    };
    a.update_client(9, None, |slot| slot.exchange_score(Some(score), 10, 100))
        .unwrap();
    let (_, before) = b
        .update_client(9, None, |slot| slot.exchange_score(None, 50, 0))
        .unwrap();
    assert_eq!(before, Some(score));
}

fn caps() -> FeedbackConfig {
    FeedbackConfig {
        window: Duration(3600),
        per_client: 1_000,
        sources: [("operator".to_string(), 10)].into_iter().collect(),
        challenge_labels: true,
    }
}

#[test]
fn replicas_racing_on_the_caps_admit_exactly_the_cap() {
    let server = RedisServer::start();
    let replicas: Vec<SharedScoring> = (0..REPLICAS)
        .map(|_| SharedScoring::open(&server.url()).unwrap())
        .collect();
    let config = caps();
    let start = Barrier::new(REPLICAS);
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(r, replica)| {
                let (start, config) = (&start, &config);
                s.spawn(move || {
                    start.wait();
                    (0..5)
                        .filter(|i| {
                            let client = format!("10.0.{r}.{i}/32");
                            replica
                                .admit(config, "operator", &client, 7_200)
                                .unwrap()
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 10);
    let refused = replicas[0]
        .admit(&config, "operator", "10.9.9.9/32", 7_300)
        .unwrap();
    assert!(matches!(refused, Err(Refused::Source { cap: 10, .. })));
    // The next window starts afresh.
    assert!(replicas[0]
        .admit(&config, "operator", "10.9.9.9/32", 10_800)
        .unwrap()
        .is_ok());
    let unknown = replicas[0].admit(&config, "spam", "a", 0).unwrap();
    assert!(matches!(unknown, Err(Refused::UnknownSource { .. })));
}

fn label(at: u64, client: &str, bot: bool) -> Label {
    Label {
        at,
        client: client.to_string(),
        source: "operator".to_string(),
        bot,
        weight: 1.0,
        features: vec![0.25; 17],
    }
}

#[test]
fn labels_and_reputation_come_back_from_any_replica() {
    let server = RedisServer::start();
    let (a, b) = (
        SharedScoring::open(&server.url()).unwrap(),
        SharedScoring::open(&server.url()).unwrap(),
    );
    let now = 1_800_000_000;
    for i in 0..5 {
        a.add_label(
            &label(now - 100 + i, "192.0.2.0/24", i % 2 == 0),
            1_000,
            86_400,
        )
        .unwrap();
    }
    b.add_label(
        &label(now - 10 * 86_400, "198.51.100.0/24", true),
        1_000,
        86_400,
    )
    .unwrap();
    b.reputation("192.0.2.0/24", now, Event::Blocked, 86_400)
        .unwrap();
    let labels = b.labels_since(now - 86_400).unwrap();
    assert_eq!(labels.len(), 5);
    assert!(
        labels.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first"
    );
    assert_eq!(labels[0], label(now - 96, "192.0.2.0/24", true));
    let counts = a.counts().unwrap();
    assert_eq!(
        (counts.labels, counts.clients, counts.blocked_clients),
        (6, 2, 1)
    );
    let blocks = server.command(&["HGET", "palisade:score:reputation:192.0.2.0/24", "blocks"]);
    assert_eq!(redis::from_redis_value::<u64>(&blocks).unwrap(), 1);
    // The old client's reputation entry is swept with the retention.
    let swept = a.sweep(now, 86_400).unwrap();
    assert_eq!(swept.clients, 1);
    assert_eq!(a.counts().unwrap().clients, 1);
}

#[test]
fn a_promoted_checkpoint_is_read_back_for_its_base_only() {
    let server = RedisServer::start();
    let a = SharedScoring::open(&server.url()).unwrap();
    a.publish("base1", "{\"model\": 1}", 60).unwrap();
    assert_eq!(
        a.promoted("base1").unwrap().as_deref(),
        Some("{\"model\": 1}")
    );
    assert_eq!(a.promoted("base2").unwrap(), None);
}

#[test]
fn a_server_that_is_gone_fails_fast_and_says_so() {
    let mut server = RedisServer::start();
    let a = SharedScoring::open(&server.url()).unwrap();
    a.update_client(1, None, |slot| seen(slot, 1)).unwrap();
    server.kill();
    let started = std::time::Instant::now();
    let e = a.update_client(1, None, |slot| seen(slot, 2)).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        matches!(e, SharedError::Redis(ref p) if p.to_string().contains("unavailable")),
        "{e}"
    );
    assert!(a.labels_since(0).is_err() && a.counts().is_err());
    // Back (empty): the client starts afresh there.
    server.restart();
    let (slot, _) = a.update_client(1, None, |slot| seen(slot, 3)).unwrap();
    assert_eq!(slot.state.seen(), 1);
}
