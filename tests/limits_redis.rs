//! The Redis rate limiter against a real `redis-server` (one per test, on a
//! free 127.0.0.1 port): atomic across replicas, the same outcomes as
//! `Limit::apply`, keys that expire, and the companion's check limits
//! (`CheckLimits`) while the server is down and after it is back.

use common::RedisServer;
use palisade::companion::{CheckLimits, Metrics};
use palisade::config::{CompanionConfig, LimitsStore, LimitsUnavailable};
use palisade::policy::{Policy, ProcessEnv, Request};
use palisade::ratelimit::{Limit, MemoryStore, Outcome, Rate, RateLimitStore, RedisLimiter};
use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

const US: u64 = 1_000;
const MS: u64 = 1_000 * US;
const SECOND: u64 = 1_000 * MS;
const MINUTE: u64 = 60 * SECOND;

fn limit(count: u32, period_ns: u64, burst: u32) -> Limit {
    Limit::new(Rate::new(count, period_ns), burst)
}

fn now_ns() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_nanos()).unwrap()
}

/// A key no other test uses.
fn new_key() -> u64 {
    rand::random()
}

fn redis_key(key: u64) -> String {
    format!("palisade:limit:{key:016x}")
}

fn redis_int(value: redis::Value) -> i64 {
    redis::from_redis_value(&value).unwrap()
}

/// The check limits of a companion with `limits: redis` on `server`.
fn check_limits(server: &RedisServer, unavailable: LimitsUnavailable) -> CheckLimits {
    let config = CompanionConfig {
        redis_url: Some(server.url()),
        limits: LimitsStore::Redis,
        limits_unavailable: unavailable,
        ..CompanionConfig::default()
    };
    CheckLimits::new(&config, 64, None).unwrap()
}

fn acquire(limits: &CheckLimits, metrics: &Metrics, key: u64, limit: &Limit, now: u64) -> Outcome {
    limits.with_store(metrics, |store| store.acquire(key, limit, now))
}

/// `palisade_companion_limit_fallbacks_total{mode="MODE"}`, 0 if absent.
fn fallbacks(metrics: &Metrics, mode: &str) -> u64 {
    let line = format!("palisade_companion_limit_fallbacks_total{{mode=\"{mode}\"}} ");
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.parse().unwrap())
}

/// Eight threads on two limiters ("replicas") race at each of `count`
/// instants one `T` apart within one period (3/second: 333,334 µs): at the first, exactly `burst
/// + 1` are admitted, at each later one exactly one more, so exactly `count
/// + burst` in the period. A lost update between replicas would admit more.
#[test]
fn racing_replicas_admit_exactly_count_plus_burst() {
    let server = RedisServer::start();
    let replicas = [
        RedisLimiter::open(&server.url()).unwrap(),
        RedisLimiter::open(&server.url()).unwrap(),
    ];
    for l in [limit(10, MINUTE, 5), limit(3, SECOND, 0)] {
        let key = new_key();
        // `T` as the limiter counts it: in whole microseconds.
        let interval = in_whole_microseconds(&l).emission_interval_ns();
        let start = now_ns() / US * US;
        let instants: Vec<u64> = (0..u64::from(l.rate.count))
            .map(|i| start + i * interval)
            .collect();
        assert!(instants[instants.len() - 1] < start + l.rate.period_ns);
        let barrier = Barrier::new(8);
        let per_thread: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let (limiter, barrier, instants) = (&replicas[i % 2], &barrier, &instants);
                    scope.spawn(move || {
                        instants
                            .iter()
                            .map(|&now| {
                                barrier.wait();
                                (0..10)
                                    .filter(|_| limiter.acquire(key, &l, now).unwrap().allowed)
                                    .count()
                            })
                            .collect()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let per_instant: Vec<usize> = (0..instants.len())
            .map(|i| per_thread.iter().map(|counts| counts[i]).sum())
            .collect();
        let mut expected = vec![1; instants.len()];
        expected[0] = l.burst as usize + 1;
        assert_eq!(per_instant, expected, "{l:?}");
        assert_eq!(per_instant.iter().sum::<usize>() as u64, l.max_per_period());
    }
}

/// Arrival gaps, in units of `T`, that push a limiter hard: bursts at one
/// instant, gaps just under and over `T`, idle stretches.
fn gaps(interval: u64, steps: usize) -> Vec<u64> {
    let choices = [
        0,
        0,
        0,
        US,
        interval / 3,
        interval - US,
        interval,
        interval + US,
        2 * interval + 7,
        5 * interval,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..steps)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            choices[(state >> 33) as usize % choices.len()]
        })
        .collect()
}

/// The limit that `Limit::apply` runs when its interval is rounded up to a
/// whole microsecond: what the Redis limiter promises to match exactly, at
/// times truncated to the microsecond.
fn in_whole_microseconds(l: &Limit) -> Limit {
    let interval = l.emission_interval_ns().div_ceil(US) * US;
    limit(l.rate.count, interval * u64::from(l.rate.count), l.burst)
}

#[test]
fn outcomes_are_those_of_limit_apply() {
    let server = RedisServer::start();
    let limiter = RedisLimiter::open(&server.url()).unwrap();
    let whole = [
        limit(10, SECOND, 3),
        limit(1, MINUTE, 0),
        limit(4, SECOND, 2),
        limit(100, SECOND, 0),
    ];
    // 333_333_334 ns and 142_857_143 ns: rounded up to 333_334 µs and
    // 142_858 µs.
    let uneven = [limit(3, SECOND, 2), limit(7, SECOND, 0)];
    for l in whole {
        assert_eq!(in_whole_microseconds(&l), l, "T is a whole µs already");
    }
    for l in whole.into_iter().chain(uneven) {
        let reference = in_whole_microseconds(&l);
        let key = new_key();
        // The test's clock runs ahead of the real one, and lags it only by
        // the milliseconds a few calls take at one instant: well within the
        // second a key is kept past its TAT. (17 ns: times are truncated
        // to the microsecond.)
        let mut now = now_ns() + 17;
        let mut tat = 0;
        for (step, gap) in gaps(reference.emission_interval_ns(), 60)
            .into_iter()
            .enumerate()
        {
            now += gap;
            let got = limiter.acquire(key, &l, now).unwrap();
            let expected = reference.apply(&mut tat, now / US * US);
            assert_eq!(got, expected, "{l:?}, step {step}");
        }
        // The key holds the TAT, in µs.
        let stored = redis_int(server.command(&["GET", &redis_key(key)]));
        assert_eq!(stored as u64, tat / US, "{l:?}");
    }
}

#[test]
fn a_zero_count_admits_nothing_without_asking_the_server() {
    let mut server = RedisServer::start();
    let limiter = RedisLimiter::open(&server.url()).unwrap();
    server.kill();
    let o = limiter
        .acquire(new_key(), &limit(0, SECOND, 5), now_ns())
        .unwrap();
    assert!(!o.allowed);
    assert_eq!(o.retry_after_ns, u64::MAX);
}

#[test]
fn keys_expire_after_their_tat() {
    let server = RedisServer::start();
    let limiter = RedisLimiter::open(&server.url()).unwrap();
    let (key, l) = (new_key(), limit(10, SECOND, 4));
    let now = now_ns();
    for _ in 0..3 {
        assert!(limiter.acquire(key, &l, now).unwrap().allowed);
    }
    // Debt 300 ms: kept until about a second past the TAT.
    let ttl = redis_int(server.command(&["PTTL", &redis_key(key)]));
    assert!((1_200..=1_300).contains(&ttl), "PTTL {ttl}");
    let stored = redis_int(server.command(&["GET", &redis_key(key)]));
    assert_eq!(stored as u64, now / US + 300_000);
    std::thread::sleep(Duration::from_millis(ttl as u64 + 50));
    assert_eq!(redis_int(server.command(&["EXISTS", &redis_key(key)])), 0);
    // Gone means idle: the full allowance again.
    let o = limiter.acquire(key, &l, now_ns()).unwrap();
    assert_eq!((o.allowed, o.remaining), (true, 4));
}

#[test]
fn distinct_keys_do_not_affect_each_other() {
    let server = RedisServer::start();
    let limiter = RedisLimiter::open(&server.url()).unwrap();
    let l = limit(2, MINUTE, 1);
    let keys: Vec<u64> = (0..5).map(|_| new_key()).collect();
    let now = now_ns();
    // Interleaved: each key gets its own two-plus-one.
    for round in 0..4 {
        for &key in &keys {
            let o = limiter.acquire(key, &l, now).unwrap();
            assert_eq!(o.allowed, round < 2, "key {key:x}, round {round}");
        }
    }
    let fresh = limiter.acquire(new_key(), &l, now).unwrap();
    assert_eq!((fresh.allowed, fresh.remaining), (true, 1));
}

/// One mode of `limits_unavailable`: Redis counts while it is up; while it
/// is down `check` sees what the mode does (each acquire one fallback);
/// after a restart Redis counts again.
fn while_redis_is_down(
    mode: LimitsUnavailable,
    check: impl Fn(&dyn Fn(u64, &Limit) -> Outcome),
) -> Metrics {
    let mut server = RedisServer::start();
    let limits = check_limits(&server, mode);
    assert_eq!(limits.name(), "redis");
    let metrics = Metrics::new();
    let (key, l) = (new_key(), limit(2, MINUTE, 0));
    assert!(acquire(&limits, &metrics, key, &l, now_ns()).allowed);
    assert_eq!(redis_int(server.command(&["EXISTS", &redis_key(key)])), 1);

    server.kill();
    check(&|key, l| acquire(&limits, &metrics, key, l, now_ns()));

    server.restart();
    let before = fallbacks(&metrics, mode.as_str());
    let back = new_key();
    assert!(acquire(&limits, &metrics, back, &l, now_ns()).allowed);
    assert!(!acquire(&limits, &metrics, back, &l, now_ns()).allowed);
    assert_eq!(redis_int(server.command(&["EXISTS", &redis_key(back)])), 1);
    assert_eq!(fallbacks(&metrics, mode.as_str()), before, "Redis again");
    metrics
}

#[test]
fn redis_down_local_counts_in_memory() {
    let metrics = while_redis_is_down(LimitsUnavailable::Local, |acquire| {
        let (key, l) = (new_key(), limit(2, MINUTE, 1));
        assert!(acquire(key, &l).allowed);
        assert!(acquire(key, &l).allowed);
        let denied = acquire(key, &l);
        assert!(!denied.allowed, "the limit holds in memory");
        assert!(denied.retry_after_ns > 29 * SECOND, "{denied:?}");
        // Another key has its own allowance there too.
        assert!(acquire(new_key(), &l).allowed);
    });
    assert_eq!(fallbacks(&metrics, "local"), 4);
    assert_eq!(fallbacks(&metrics, "allow"), 0);
}

#[test]
fn redis_down_allow_admits_everything() {
    let metrics = while_redis_is_down(LimitsUnavailable::Allow, |acquire| {
        let (key, l) = (new_key(), limit(1, MINUTE, 2));
        for _ in 0..10 {
            let o = acquire(key, &l);
            assert_eq!((o.allowed, o.remaining, o.retry_after_ns), (true, 2, 0));
        }
    });
    assert_eq!(fallbacks(&metrics, "allow"), 10);
}

#[test]
fn redis_down_deny_refuses_with_a_retry() {
    let metrics = while_redis_is_down(LimitsUnavailable::Deny, |acquire| {
        for _ in 0..3 {
            let o = acquire(new_key(), &limit(100, SECOND, 50));
            assert!(!o.allowed);
            assert_eq!((o.remaining, o.retry_after_ns), (0, SECOND));
        }
    });
    assert_eq!(fallbacks(&metrics, "deny"), 3);
}

/// The whole check as `/auth` runs it: the policy's limit, counted through
/// `with_store`, answered 403 with `retry-after: 1` while Redis is down
/// under `deny`.
#[test]
fn the_check_answers_rate_limited_while_redis_is_down_under_deny() {
    let mut server = RedisServer::start();
    let yaml = format!(
        "tokens: {{keys: ['1:limits-test-secret-0123456789']}}\n\
         companion: {{redis_url: '{}', limits: redis, limits_unavailable: deny}}\n\
         routes: [{{match: {{path: /api/*}}, rate_limit: {{rate: 1/minute}}}}]\n",
        server.url()
    );
    let policy = Policy::from_yaml(&yaml, &ProcessEnv).unwrap();
    let limits = CheckLimits::new(policy.companion(), policy.rate_limit_buckets(), None).unwrap();
    let metrics = Metrics::new();
    let headers = vec![("user-agent".to_string(), "curl/8.5.0".to_string())];
    let ip = Some("192.0.2.7".parse().unwrap());
    let check = || {
        let request = Request::new("GET", "/api/x", "example.com", &headers, ip);
        let decision =
            limits.with_store(&metrics, |store| policy.decide(&request, store, now_ns()));
        policy.auth_answer(&decision, &request)
    };
    assert_eq!(check().status, 204);
    let limited = check();
    assert_eq!(limited.status, 403);
    server.kill();
    let refused = check();
    assert_eq!(refused.status, 403);
    assert!(
        refused.headers.contains(&("retry-after", "1".to_string())),
        "{refused:?}"
    );
    assert!(limited
        .headers
        .iter()
        .any(|(n, v)| *n == "retry-after" && v != "1"));
    assert_eq!(fallbacks(&metrics, "deny"), 1);
}

#[test]
fn memory_limits_never_ask_redis() {
    let mut server = RedisServer::start();
    let config = CompanionConfig {
        redis_url: Some(server.url()),
        ..CompanionConfig::default()
    };
    let limits = CheckLimits::new(&config, 64, None).unwrap();
    assert_eq!(limits.name(), "memory");
    server.kill();
    let metrics = Metrics::new();
    let (key, l) = (new_key(), limit(1, MINUTE, 0));
    let now = now_ns();
    // What a bare table of the same size gives.
    let mut table = MemoryStore::new(64);
    for _ in 0..3 {
        assert_eq!(
            acquire(&limits, &metrics, key, &l, now),
            table.acquire(key, &l, now)
        );
    }
    assert!(!metrics.encode().contains("limit_fallbacks_total{"));
}
