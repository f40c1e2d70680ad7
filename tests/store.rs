//! The challenge stores against the real thing: SQLite files on disk and a
//! `redis-server` started per test on a free 127.0.0.1 port.
//!
//! One suite runs against both stores (the `both_stores!` tests); then what
//! only one of them does: SQLite's sweep, schema and file errors; Redis's
//! key layout and its behaviour while the server is down.

use common::{free_port, RedisServer, TempDir};
use palisade::challenge::store::{
    self, RedisStore, SqliteStore, Store, StoreError, RETAIN_AFTER_EXPIRY_S, SQLITE_FILE,
};
use palisade::config::CompanionConfig;
use std::net::TcpListener;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

// ---------------------------------------------------------------- helpers

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A random 32-character id, as the companion makes them.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Sleeps until the clock reads at least `at`.
fn sleep_until(at: u64) {
    while unix_now() < at {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Something that opens stores on one shared state (a file, a server).
trait Backend {
    fn open(&self) -> Box<dyn Store>;
}

struct SqliteBackend(TempDir);

impl SqliteBackend {
    fn new() -> SqliteBackend {
        SqliteBackend(TempDir::new("sqlite"))
    }
}

impl Backend for SqliteBackend {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open_in(self.0.path()).unwrap())
    }
}

impl Backend for RedisServer {
    fn open(&self) -> Box<dyn Store> {
        Box::new(RedisStore::open(&self.url()).unwrap())
    }
}

// ------------------------------------------------- the suite, both stores

mod suite {
    use super::*;

    pub fn put_get_round_trip(backend: &dyn Backend) {
        let store = backend.open();
        let id = new_id();
        // Not UTF-8, with a NUL: contexts are opaque bytes.
        let context: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        store.put(&id, &context, unix_now() + 180).unwrap();
        assert_eq!(store.get(&id).unwrap(), Some(context));
        assert_eq!(store.get(&new_id()).unwrap(), None);
    }

    pub fn put_of_an_existing_id_errors(backend: &dyn Backend) {
        let store = backend.open();
        let id = new_id();
        store.put(&id, b"first", unix_now() + 180).unwrap();
        let e = store.put(&id, b"second", unix_now() + 180).unwrap_err();
        assert!(matches!(e, StoreError::Failed { .. }), "{e}");
        let message = e.to_string();
        assert!(
            message.contains(store.name()) && message.contains(&id),
            "{message}"
        );
        assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"first"[..]));
    }

    pub fn expired_challenges_are_kept_for_retention(backend: &dyn Backend) {
        let store = backend.open();
        let id = new_id();
        let expired = unix_now() - 10;
        store.put(&id, b"late", expired).unwrap();
        assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"late"[..]));
        assert!(store.claim(&id, expired).unwrap());
        assert!(!store.claim(&id, expired).unwrap(), "a replay after expiry");
    }

    pub fn a_claim_is_single_use(backend: &dyn Backend) {
        let store = backend.open();
        let (id, other) = (new_id(), new_id());
        let expires_at = unix_now() + 180;
        assert!(store.claim(&id, expires_at).unwrap());
        assert!(!store.claim(&id, expires_at).unwrap());
        assert!(store.claim(&other, expires_at).unwrap());
    }

    /// Threads split over two stores on the same state, as replicas are.
    fn on_two_stores<T: Send>(
        backend: &dyn Backend,
        threads: usize,
        work: impl Fn(&dyn Store) -> T + Sync,
    ) -> Vec<T> {
        let stores = [backend.open(), backend.open()];
        let barrier = Barrier::new(threads);
        std::thread::scope(|scope| {
            let running: Vec<_> = (0..threads)
                .map(|i| {
                    let (store, barrier, work) = (stores[i % 2].as_ref(), &barrier, &work);
                    scope.spawn(move || {
                        barrier.wait();
                        work(store)
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    pub fn concurrent_claims_yield_exactly_one_winner(backend: &dyn Backend) {
        let ids: Vec<String> = (0..20).map(|_| new_id()).collect();
        let expires_at = unix_now() + 180;
        let won = on_two_stores(backend, 12, |store| {
            ids.iter()
                .map(|id| store.claim(id, expires_at).unwrap())
                .collect::<Vec<bool>>()
        });
        for (i, id) in ids.iter().enumerate() {
            let winners = won.iter().filter(|claims| claims[i]).count();
            assert_eq!(winners, 1, "id {id} was claimed {winners} times");
        }
    }

    pub fn concurrent_failures_are_each_counted_once(backend: &dyn Backend) {
        let client = new_id();
        let now = unix_now();
        let mut counts: Vec<u32> = on_two_stores(backend, 8, |store| {
            (0..10)
                .map(|_| store.add_failure(&client, now, 600).unwrap())
                .collect::<Vec<u32>>()
        })
        .concat();
        counts.sort_unstable();
        assert_eq!(counts, (1..=80).collect::<Vec<u32>>());
    }

    /// Real time with a one-second window: Redis expires the count by its
    /// own clock.
    pub fn failures_count_up_and_expire_after_the_window(backend: &dyn Backend) {
        let store = backend.open();
        let (client, other) = (new_id(), new_id());
        let now = unix_now();
        assert_eq!(store.add_failure(&client, now, 1).unwrap(), 1);
        assert_eq!(store.add_failure(&client, now, 1).unwrap(), 2);
        assert_eq!(store.add_failure(&client, now, 1).unwrap(), 3);
        assert_eq!(store.add_failure(&other, now, 1).unwrap(), 1);
        sleep_until(now + 2);
        assert_eq!(store.add_failure(&client, unix_now(), 1).unwrap(), 1);
    }

    pub fn a_lockout_holds_until_it_ends_and_resets_the_count(backend: &dyn Backend) {
        let store = backend.open();
        let (client, other) = (new_id(), new_id());
        let now = unix_now();
        assert_eq!(store.locked_until(&client, now).unwrap(), None);
        store.add_failure(&client, now, 600).unwrap();
        store.add_failure(&client, now, 600).unwrap();
        store.lock_out(&client, now + 60).unwrap();
        assert_eq!(store.locked_until(&client, now).unwrap(), Some(now + 60));
        assert_eq!(
            store.locked_until(&client, now + 59).unwrap(),
            Some(now + 60)
        );
        assert_eq!(store.locked_until(&client, now + 60).unwrap(), None);
        assert_eq!(store.locked_until(&other, now).unwrap(), None);
        assert_eq!(
            store.add_failure(&client, now, 600).unwrap(),
            1,
            "count reset"
        );
        // A later lockout replaces the earlier one.
        store.lock_out(&client, now + 120).unwrap();
        assert_eq!(store.locked_until(&client, now).unwrap(), Some(now + 120));
    }

    /// What replicas rely on: a second store on the same file or server
    /// sees the first one's challenges, claims, failures and lockouts.
    pub fn a_second_store_shares_the_state(backend: &dyn Backend) {
        let (first, second) = (backend.open(), backend.open());
        let (id, client) = (new_id(), new_id());
        let now = unix_now();
        first.put(&id, b"shared", now + 180).unwrap();
        assert_eq!(second.get(&id).unwrap().as_deref(), Some(&b"shared"[..]));
        assert!(second.put(&id, b"again", now + 180).is_err());
        assert!(first.claim(&id, now + 180).unwrap());
        assert!(!second.claim(&id, now + 180).unwrap());
        assert_eq!(first.add_failure(&client, now, 600).unwrap(), 1);
        assert_eq!(second.add_failure(&client, now, 600).unwrap(), 2);
        first.lock_out(&client, now + 60).unwrap();
        assert_eq!(second.locked_until(&client, now).unwrap(), Some(now + 60));
    }

    pub fn an_absurd_expiry_is_an_error_not_a_panic(backend: &dyn Backend) {
        let store = backend.open();
        let e = store.put(&new_id(), b"x", u64::MAX).unwrap_err();
        assert!(matches!(e, StoreError::Failed { .. }), "{e}");
    }

    pub fn ping_answers(backend: &dyn Backend) {
        backend.open().ping().unwrap();
    }
}

macro_rules! both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite_suite {
            use super::*;
            $(#[test] fn $test() { suite::$test(&SqliteBackend::new()) })*
        }
        mod redis_suite {
            use super::*;
            $(#[test] fn $test() { suite::$test(&RedisServer::start()) })*
        }
    };
}

both_stores!(
    put_get_round_trip,
    put_of_an_existing_id_errors,
    expired_challenges_are_kept_for_retention,
    a_claim_is_single_use,
    concurrent_claims_yield_exactly_one_winner,
    concurrent_failures_are_each_counted_once,
    failures_count_up_and_expire_after_the_window,
    a_lockout_holds_until_it_ends_and_resets_the_count,
    a_second_store_shares_the_state,
    an_absurd_expiry_is_an_error_not_a_panic,
    ping_answers,
);

// ------------------------------------------------------------ open(config)

#[test]
fn open_picks_sqlite_under_data_dir_creating_it() {
    let dir = TempDir::new("config");
    let data_dir = dir.path().join("nested/data");
    let config = CompanionConfig {
        data_dir: data_dir.to_str().unwrap().to_string(),
        ..CompanionConfig::default()
    };
    let store = store::open(&config).unwrap();
    assert_eq!(store.name(), "sqlite");
    assert!(data_dir.join(SQLITE_FILE).is_file());
}

#[test]
fn open_picks_redis_when_a_url_is_set_without_contacting_it() {
    let dir = TempDir::new("config");
    let url = format!("redis://127.0.0.1:{}", free_port());
    let config = CompanionConfig {
        data_dir: dir.path().join("unused").to_str().unwrap().to_string(),
        redis_url: Some(url.clone()),
        ..CompanionConfig::default()
    };
    let store = store::open(&config).unwrap();
    assert_eq!(store.name(), "redis");
    assert!(!dir.path().join("unused").exists());
    let e = store.ping().unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
}

// ------------------------------------------------------------- SQLite only

#[test]
fn sqlite_failures_follow_the_given_clock() {
    let backend = SqliteBackend::new();
    let store = backend.open();
    assert_eq!(store.add_failure("c", 1000, 60).unwrap(), 1);
    assert_eq!(store.add_failure("c", 1030, 60).unwrap(), 2);
    assert_eq!(store.add_failure("c", 1059, 60).unwrap(), 3);
    // The window is 60 s from the first failure, not from the last.
    assert_eq!(store.add_failure("c", 1060, 60).unwrap(), 1);
    assert_eq!(store.add_failure("c", 1119, 60).unwrap(), 2);
    assert_eq!(store.add_failure("c", 1120, 60).unwrap(), 1);
}

#[test]
fn sqlite_sweep_removes_what_is_past_retention_and_nothing_live() {
    let backend = SqliteBackend::new();
    let store = backend.open();
    let (old, live) = (new_id(), new_id());
    store.put(&old, b"old", 1000).unwrap();
    store.put(&live, b"live", 2000).unwrap();
    assert!(store.claim(&old, 1000).unwrap());
    assert!(store.claim(&live, 2000).unwrap());
    // (A lockout resets the client's count, so separate clients.)
    store.add_failure("failed-long-ago", 1000, 100).unwrap();
    store.add_failure("failing", 1500, 300).unwrap();
    store.lock_out("locked-long-ago", 1200).unwrap();
    store.lock_out("locked", 1700).unwrap();

    let now = 1000 + RETAIN_AFTER_EXPIRY_S;
    assert_eq!(
        store.sweep(now - 1).unwrap(),
        2,
        "the old failure count and lockout"
    );
    assert_eq!(store.get(&old).unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(
        store.sweep(now).unwrap(),
        2,
        "the old challenge and its claim"
    );
    assert_eq!(store.get(&old).unwrap(), None);
    assert_eq!(store.get(&live).unwrap().as_deref(), Some(&b"live"[..]));
    assert!(!store.claim(&live, 2000).unwrap(), "the live claim is kept");
    assert_eq!(store.add_failure("failing", 1700, 300).unwrap(), 2);
    assert_eq!(store.locked_until("locked", 1600).unwrap(), Some(1700));
    assert_eq!(store.sweep(now).unwrap(), 0);
}

#[test]
fn sqlite_file_is_readable_by_other_programs_as_documented() {
    let backend = SqliteBackend::new();
    let store = backend.open();
    let id = new_id();
    store.put(&id, b"\x00answer\xff", 1234).unwrap();
    // What the end-to-end tests do, while the store stays open.
    let reader = rusqlite::Connection::open(backend.0.path().join(SQLITE_FILE)).unwrap();
    let (context, expires_at): (Vec<u8>, u64) = reader
        .query_row(
            "SELECT context, expires_at FROM challenges WHERE id = ?",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (context.as_slice(), expires_at),
        (&b"\x00answer\xff"[..], 1234)
    );
    let mode: String = reader
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_state_survives_reopening_the_file() {
    let backend = SqliteBackend::new();
    let id = new_id();
    {
        let store = backend.open();
        store.put(&id, b"kept", unix_now() + 180).unwrap();
        assert!(store.claim(&id, unix_now() + 180).unwrap());
    }
    let store = backend.open();
    assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"kept"[..]));
    assert!(!store.claim(&id, unix_now() + 180).unwrap());
}

fn unavailable_message(result: Result<SqliteStore, StoreError>) -> String {
    match result {
        Err(e @ StoreError::Unavailable { .. }) => e.to_string(),
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("the store opened"),
    }
}

#[test]
fn sqlite_refuses_a_file_that_is_not_sqlite_and_names_it() {
    let dir = TempDir::new("not-sqlite");
    let path = dir.path().join(SQLITE_FILE);
    std::fs::write(&path, "this is a text file, not a database\n".repeat(50)).unwrap();
    let message = unavailable_message(SqliteStore::open_in(dir.path()));
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("not an SQLite database"), "{message}");
}

#[test]
fn sqlite_refuses_another_programs_database_without_changing_it() {
    let dir = TempDir::new("foreign");
    let path = dir.path().join(SQLITE_FILE);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');")
        .unwrap();
    let message = unavailable_message(SqliteStore::open(&path));
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(
        message.contains("not a Palisade challenge store"),
        "{message}"
    );
    assert!(message.contains("users"), "{message}");

    let foreign = rusqlite::Connection::open(&path).unwrap();
    let mode: String = foreign
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the refused file was switched to WAL");
    let tables: u32 = foreign
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 1);

    foreign.pragma_update(None, "application_id", 42).unwrap();
    let message = unavailable_message(SqliteStore::open(&path));
    assert!(message.contains("application_id 0x2a"), "{message}");
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let backend = SqliteBackend::new();
    drop(backend.open());
    let path = backend.0.path().join(SQLITE_FILE);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let message = unavailable_message(SqliteStore::open(&path));
    assert!(message.contains("schema version 2 is newer"), "{message}");
}

#[test]
fn sqlite_names_a_data_dir_it_cannot_create() {
    let dir = TempDir::new("unwritable");
    // Under a regular file: no directory can be made there, even by root.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let data_dir = file.join("data");
    let message = unavailable_message(SqliteStore::open_in(&data_dir));
    assert!(message.contains(data_dir.to_str().unwrap()), "{message}");
    assert!(
        message.contains("cannot create the data directory"),
        "{message}"
    );
}

#[test]
fn sqlite_names_a_store_file_it_cannot_open() {
    let dir = TempDir::new("directory-in-the-way");
    let path = dir.path().join(SQLITE_FILE);
    std::fs::create_dir(&path).unwrap();
    let message = unavailable_message(SqliteStore::open_in(dir.path()));
    assert!(message.contains(path.to_str().unwrap()), "{message}");
}

// -------------------------------------------------------------- Redis only

fn redis_int(value: redis::Value) -> i64 {
    redis::from_redis_value(&value).unwrap()
}

#[test]
fn redis_keys_are_laid_out_as_documented() {
    let server = RedisServer::start();
    let store = server.open();
    let (id, client) = (new_id(), new_id());
    let now = unix_now();
    store.put(&id, b"\x00answer\xff", now + 180).unwrap();
    store.claim(&id, now + 180).unwrap();
    store.add_failure(&client, now, 300).unwrap();

    // What the end-to-end tests do.
    let context: Vec<u8> =
        redis::from_redis_value(&server.command(&["GET", &format!("palisade:challenge:{id}")]))
            .unwrap();
    assert_eq!(context, b"\x00answer\xff");
    let retained = (now + 180 + RETAIN_AFTER_EXPIRY_S) as i64;
    for key in [
        format!("palisade:challenge:{id}"),
        format!("palisade:used:{id}"),
    ] {
        assert_eq!(
            redis_int(server.command(&["EXPIRETIME", &key])),
            retained,
            "{key}"
        );
    }
    let failures = format!("palisade:failures:{client}");
    assert_eq!(redis_int(server.command(&["GET", &failures])), 1);
    assert_eq!(
        redis_int(server.command(&["EXPIRETIME", &failures])),
        (now + 300) as i64
    );

    store.lock_out(&client, now + 60).unwrap();
    let lockout = format!("palisade:lockout:{client}");
    assert_eq!(
        redis_int(server.command(&["GET", &lockout])),
        (now + 60) as i64
    );
    assert_eq!(
        redis_int(server.command(&["EXPIRETIME", &lockout])),
        (now + 60) as i64
    );
    assert_eq!(redis_int(server.command(&["EXISTS", &failures])), 0);
    assert_eq!(store.sweep(now + 10_000).unwrap(), 0);
}

/// One store call, its result reduced to success or the error.
type Call<'a> = Box<dyn Fn() -> Result<(), StoreError> + 'a>;

/// Every call while the server is down: `Unavailable`, quickly, naming the
/// server.
fn assert_unavailable(store: &dyn Store, url: &str) {
    let id = new_id();
    let now = unix_now();
    let calls: [(&str, Call); 7] = [
        ("put", Box::new(|| store.put(&id, b"x", now + 180))),
        ("get", Box::new(|| store.get(&id).map(drop))),
        ("claim", Box::new(|| store.claim(&id, now + 180).map(drop))),
        (
            "add_failure",
            Box::new(|| store.add_failure(&id, now, 60).map(drop)),
        ),
        ("lock_out", Box::new(|| store.lock_out(&id, now + 60))),
        (
            "locked_until",
            Box::new(|| store.locked_until(&id, now).map(drop)),
        ),
        ("ping", Box::new(|| store.ping())),
    ];
    for (name, call) in calls {
        let started = Instant::now();
        let result = call();
        let took = started.elapsed();
        match result {
            Err(e @ StoreError::Unavailable { .. }) => {
                assert!(e.to_string().contains(url), "{name}: {e}")
            }
            other => panic!("{name} with the server down: {other:?}"),
        }
        assert!(took < Duration::from_millis(1500), "{name} took {took:?}");
    }
}

#[test]
fn redis_down_is_unavailable_quickly_and_a_restarted_server_is_used_again() {
    let mut server = RedisServer::start();
    let url = server.url();
    let store = server.open();
    let first = new_id();
    store.put(&first, b"before", unix_now() + 180).unwrap();

    // A restart between calls: the idle connection is stale, and the next
    // call still succeeds (on a new connection).
    server.kill();
    server.restart();
    assert_eq!(store.get(&first).unwrap(), None, "the new server is empty");

    // Calls while it is down fail fast; after it is back they work again.
    server.kill();
    assert_unavailable(store.as_ref(), &url);
    server.restart();
    let second = new_id();
    store.put(&second, b"after", unix_now() + 180).unwrap();
    assert_eq!(store.get(&second).unwrap().as_deref(), Some(&b"after"[..]));
    assert!(store.claim(&second, unix_now() + 180).unwrap());
}

#[test]
fn redis_that_never_answers_is_unavailable_within_the_timeouts() {
    // A listener that accepts (the kernel does) but never replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let store = RedisStore::open(&url).unwrap();
    let started = Instant::now();
    let e = store.ping().unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
