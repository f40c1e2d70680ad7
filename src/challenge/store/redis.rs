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
//! Connections: a few idle ones are kept for reuse; one is opened with a
//! 500 ms timeout when none is idle, and every command has a 1 s read and
//! write timeout, so an unreachable server makes calls fail quickly with
//! [`StoreError::Unavailable`] rather than hang. A connection that failed is
//! dropped (with the idle ones: a restarted server closed them all) and the
//! next call connects anew.

use super::{Store, StoreError, RETAIN_AFTER_EXPIRY_S};
use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const NAME: &str = "redis";
const PREFIX: &str = "palisade:";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept; calls beyond this many at once connect and close.
const IDLE_CONNECTIONS: usize = 8;

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
    client: Client,
    /// The URL without its password, for errors.
    location: String,
    idle: Mutex<Vec<Connection>>,
}

impl RedisStore {
    /// Checks the URL (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://`, `redis+unix://`); the server is contacted on first use.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let location = without_password(url);
        let client = Client::open(url).map_err(|e| StoreError::Unavailable {
            store: NAME,
            location: location.clone(),
            reason: format!("invalid URL: {e}"),
        })?;
        Ok(RedisStore {
            client,
            location,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The list is only pushed and popped, so a panic elsewhere cannot
        // leave it half-changed.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `command` on an idle connection, or a new one. An idle
    /// connection the server has closed (a restart, an idle timeout) fails
    /// before the command reaches the server, so that case alone is retried
    /// once on a new connection.
    fn run<T>(
        &self,
        doing: &str,
        command: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let reused = self.idle().pop();
        if let Some(connection) = reused {
            match self.run_on(connection, &command) {
                Err(e) if e.is_connection_dropped() => {}
                done => return done.map_err(|e| self.error(doing, e)),
            }
        }
        let connection = self.connect()?;
        self.run_on(connection, &command)
            .map_err(|e| self.error(doing, e))
    }

    /// Runs `command` and keeps the connection for reuse unless it failed.
    fn run_on<T>(
        &self,
        mut connection: Connection,
        command: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let result = command(&mut connection);
        match &result {
            Err(e) if e.is_io_error() || e.is_unrecoverable_error() => self.idle().clear(),
            _ => {
                let mut idle = self.idle();
                if idle.len() < IDLE_CONNECTIONS {
                    idle.push(connection);
                }
            }
        }
        result
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let connection = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|connection| {
                connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
                connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
                Ok(connection)
            });
        connection.map_err(|e| StoreError::Unavailable {
            store: NAME,
            location: self.location.clone(),
            reason: format!("cannot connect: {e}"),
        })
    }

    /// The error for a failed command: the connection failing, or a server
    /// that cannot serve now (loading, read-only replica, failover), means
    /// unavailable; any other reply is this command's failure.
    fn error(&self, doing: &str, e: RedisError) -> StoreError {
        let location = self.location.clone();
        let reason = format!("{doing}: {e}");
        let unavailable = matches!(
            e.kind(),
            ErrorKind::IoError
                | ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
        );
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
                location: self.location.clone(),
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

/// The URL as errors show it: the password replaced by `***` and the query
/// (where `redis+unix` URLs may carry `pass=`) left out.
fn without_password(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(before, _)| before);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_errors_lose_their_password() {
        assert_eq!(
            without_password("redis://127.0.0.1:6379/2"),
            "redis://127.0.0.1:6379/2"
        );
        assert_eq!(
            without_password("redis://app:s3cret@cache:6379/0"),
            "redis://app:***@cache:6379/0"
        );
        assert_eq!(
            without_password("rediss://:s3cret@cache"),
            "rediss://:***@cache"
        );
        // A user-info without a colon may be a bare password: hidden too.
        assert_eq!(
            without_password("redis://s3cret@cache"),
            "redis://:***@cache"
        );
        assert_eq!(
            without_password("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock"
        );
    }

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
