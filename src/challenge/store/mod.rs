//! The companion's single-use challenge state, behind one trait.
//!
//! A challenge's context (answer, kind, client binding, ...) is stored under
//! its random id; answering claims the id once; wrong answers are counted per
//! client and enough of them lock the client out. [`sqlite`] keeps this in a
//! file for a single companion; [`redis`] keeps it in a Redis server that
//! several replicas share. Each submodule documents its layout (table and key
//! names), which the end-to-end tests read directly and so must stay stable.
//!
//! The trait is synchronous: the HTTP layer calls it from
//! `tokio::task::spawn_blocking`. Times are unix seconds and are passed in
//! (`now`, `expires_at`, `until`) so tests can drive them; Redis expires keys
//! by its own clock, so the values given to the Redis store must be real
//! times. Every store keeps an expired challenge and its claim for
//! [`RETAIN_AFTER_EXPIRY_S`] past its expiry, so the caller can tell an
//! expired challenge (or a replay of one) from an unknown id.

pub mod redis;
pub mod sqlite;

pub use self::redis::RedisStore;
pub use self::sqlite::SqliteStore;

use crate::config::CompanionConfig;
use std::path::Path;

/// How long past its expiry a challenge and its claim are kept.
pub const RETAIN_AFTER_EXPIRY_S: u64 = 600;

/// The file name of the SQLite store under `companion.data_dir`.
pub const SQLITE_FILE: &str = "challenges.sqlite3";

/// Challenge state shared by the companion's request handlers (and, with
/// Redis, by its replicas).
pub trait Store: Send + Sync {
    /// "sqlite" or "redis" (for metrics and logs).
    fn name(&self) -> &'static str;

    /// Stores a new challenge's context (opaque bytes, under 1 KiB) under
    /// `id` until `expires_at` plus [`RETAIN_AFTER_EXPIRY_S`]. An id that is
    /// already stored is an error: ids are random, so a clash means a bug.
    fn put(&self, id: &str, context: &[u8], expires_at: u64) -> Result<(), StoreError>;

    /// The stored context, if present. Expired entries are still returned
    /// until swept (at least [`RETAIN_AFTER_EXPIRY_S`] past expiry): the
    /// caller checks expiry itself, to tell "expired" from "unknown".
    fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Atomically claims `id` as used: `Ok(true)` if this call claimed it,
    /// `Ok(false)` if it was already claimed (by any replica). The claim is
    /// kept until at least `expires_at` plus [`RETAIN_AFTER_EXPIRY_S`].
    fn claim(&self, id: &str, expires_at: u64) -> Result<bool, StoreError>;

    /// Counts a failed answer for `client` (an opaque key) and returns the
    /// count including this one. The count starts at the first failure and
    /// is forgotten `window_s` after it. Atomic across replicas.
    fn add_failure(&self, client: &str, now: u64, window_s: u64) -> Result<u32, StoreError>;

    /// Locks `client` out until `until` and resets its failure count.
    fn lock_out(&self, client: &str, until: u64) -> Result<(), StoreError>;

    /// When the client's lockout ends, if it is locked out at `now`.
    fn locked_until(&self, client: &str, now: u64) -> Result<Option<u64>, StoreError>;

    /// Deletes what is past retention at `now` and returns how many rows or
    /// keys it removed (Redis expires its keys itself: always 0).
    fn sweep(&self, now: u64) -> Result<u64, StoreError>;

    /// A cheap liveness check (SQLite: a trivial query; Redis: PING).
    fn ping(&self) -> Result<(), StoreError>;
}

/// Why a store call failed: which store, where (file path, or Redis URL
/// without its password) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or opened (now): a missing or unwritable
    /// file, a file that is not ours, Redis down or timing out, a bad URL.
    #[error("{store} store {location} is unavailable: {reason}")]
    Unavailable {
        store: &'static str,
        location: String,
        reason: String,
    },
    /// The store answered, but the operation failed (a duplicate id, an
    /// unexpected reply, a value out of range).
    #[error("{store} store {location}: {reason}")]
    Failed {
        store: &'static str,
        location: String,
        reason: String,
    },
}

impl StoreError {
    /// `Unavailable` when `unavailable`, else `Failed`: how each store sorts
    /// its driver's errors.
    fn classified(
        unavailable: bool,
        store: &'static str,
        location: String,
        reason: String,
    ) -> StoreError {
        if unavailable {
            StoreError::Unavailable {
                store,
                location,
                reason,
            }
        } else {
            StoreError::Failed {
                store,
                location,
                reason,
            }
        }
    }
}

/// Opens the store the config asks for: Redis when `redis_url` is set, else
/// SQLite at `<data_dir>/challenges.sqlite3` (creating `data_dir`). Redis is
/// not contacted here, so the companion starts while Redis is down and
/// answers as `store_unavailable` says until it is back.
pub fn open(config: &CompanionConfig) -> Result<Box<dyn Store>, StoreError> {
    match &config.redis_url {
        Some(url) => Ok(Box::new(RedisStore::open(url)?)),
        None => Ok(Box::new(SqliteStore::open_in(Path::new(&config.data_dir))?)),
    }
}
