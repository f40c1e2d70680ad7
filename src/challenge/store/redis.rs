//! The shared store: a Redis server (6.2 or later) that companion replicas
//! share, so an id issued by one is answered at another, used once, and
//! counted against one failure budget.
//!
//! The key layout (stable: the end-to-end tests `GET` a challenge's context).
//! Times are unix seconds; Redis expires every key itself, so nothing needs
//! sweeping.
//!
//! | key                           | value                   | expires (`EXAT`)                  |
//! |-------------------------------|-------------------------|-----------------------------------|
//! | `palisade:challenge:<id>`     | the context bytes       | `expires_at` + retention          |
//! | `palisade:used:<id>`          | `1`                     | `expires_at` + retention          |
//! | `palisade:failures:<client>`  | the count (`INCR`)      | the first failure's `now` + `window_s` |
//! | `palisade:lockout:<client>`   | `until`                 | `until`                           |
//!
//! Retention is [`RETAIN_AFTER_EXPIRY_S`]. A challenge is stored with
//! `SET NX` and claimed with `SET NX`, so of any number of replicas exactly
//! one stores or claims an id. (A key whose `EXAT` has passed is not kept,
//! so claiming an id past its retention records nothing; its challenge is
//! gone by then too, so the caller finds it unknown and never claims it.) a failure is counted by a Lua script (`INCR`,
//! then `EXPIREAT` if the key has no expiry yet), which Redis runs atomically.
//!
//! Connections are [`RedisPool`]'s: calls to an unreachable server fail
//! within its timeouts with [`StoreError::Unavailable`] rather than hang.

use super::{Store, StoreError, RETAIN_AFTER_EXPIRY_S};
use crate::redis_pool::{PoolError, RedisPool};
use redis::{Connection, RedisResult};

const NAME: &str = "redis";
const PREFIX: &str = "palisade:";

/// Counts a failure: `KEYS[1]` the counter, `ARGV[1]` when the window ends.
const ADD_FAILURE: &str = "
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
    redis.call('EXPIREAT', KEYS[1], ARGV[1])
end
return count
";

/// The challenge state in a Redis server.
pub struct RedisStore {
    pool: RedisPool,
}

impl RedisStore {
    /// Checks the URL (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://`, `redis+unix://`); the server is contacted on first use.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let pool = RedisPool::open(url)?;
        Ok(RedisStore { pool })
    }

    fn run<T>(
        &self,
        doing: &str,
        command: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        Ok(self.pool.run(doing, command)?)
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> StoreError {
        let (unavailable, location, reason) = match e {
            PoolError::Unavailable { location, reason } => (true, location, reason),
            PoolError::Failed { location, reason } => (false, location, reason),
        };
        StoreError::classified(unavailable, NAME, location, reason)
    }
}

fn challenge_key(id: &str) -> String {
    format!("{PREFIX}challenge:{id}")
}

fn used_key(id: &str) -> String {
    format!("{PREFIX}used:{id}")
}

fn failures_key(client: &str) -> String {
    format!("{PREFIX}failures:{client}")
}

fn lockout_key(client: &str) -> String {
    format!("{PREFIX}lockout:{client}")
}

/// `SET key value NX EXAT at`: whether the key was set (it did not exist).
fn set_new(connection: &mut Connection, key: &str, value: &[u8], at: u64) -> RedisResult<bool> {
    let reply: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("NX")
        .arg("EXAT")
        .arg(at)
        .query(connection)?;
    Ok(reply.is_some())
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn put(&self, id: &str, context: &[u8], expires_at: u64) -> Result<(), StoreError> {
        let key = challenge_key(id);
        let retained_until = expires_at.saturating_add(RETAIN_AFTER_EXPIRY_S);
        let stored = self.run("storing a challenge", |c| {
            set_new(c, &key, context, retained_until)
        })?;
        if stored {
            Ok(())
        } else {
            Err(StoreError::Failed {
                store: NAME,
                location: self.pool.location().to_string(),
                reason: format!("challenge id {id} is already stored"),
            })
        }
    }

    fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = challenge_key(id);
        self.run("reading a challenge", |c| {
            redis::cmd("GET").arg(&key).query(c)
        })
    }

    fn claim(&self, id: &str, expires_at: u64) -> Result<bool, StoreError> {
        let key = used_key(id);
        let retained_until = expires_at.saturating_add(RETAIN_AFTER_EXPIRY_S);
        self.run("claiming a challenge", |c| {
            set_new(c, &key, b"1", retained_until)
        })
    }

    fn add_failure(&self, client: &str, now: u64, window_s: u64) -> Result<u32, StoreError> {
        let key = failures_key(client);
        let window_ends = now.saturating_add(window_s);
        self.run("counting a failure", |c| {
            redis::cmd("EVAL")
                .arg(ADD_FAILURE)
                .arg(1)
                .arg(&key)
                .arg(window_ends)
                .query(c)
        })
    }

    fn lock_out(&self, client: &str, until: u64) -> Result<(), StoreError> {
        let lockout = lockout_key(client);
        let failures = failures_key(client);
        self.run("locking a client out", |c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&lockout)
                .arg(until)
                .arg("EXAT")
                .arg(until)
                .ignore()
                .cmd("DEL")
                .arg(&failures)
                .ignore()
                .query(c)
        })
    }

    fn locked_until(&self, client: &str, now: u64) -> Result<Option<u64>, StoreError> {
        let key = lockout_key(client);
        let until: Option<u64> = self.run("reading a lockout", |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?;
        Ok(until.filter(|&until| until > now))
    }

    fn sweep(&self, _now: u64) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run("pinging", |c| redis::cmd("PING").query(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_unavailable_and_named_without_its_password() {
        let Err(e) = RedisStore::open("http://app:s3cret@cache:6379") else {
            panic!("an http URL was accepted");
        };
        let message = e.to_string();
        assert!(matches!(e, StoreError::Unavailable { .. }), "{message}");
        assert!(message.contains("http://app:***@cache:6379"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
