//! Connections to one Redis server, shared by the companion's challenge
//! store ([`crate::challenge::store::RedisStore`]), its rate limiter
//! ([`crate::ratelimit::RedisLimiter`]) and its shared scoring state
//! ([`crate::companion::scoring::shared::SharedScoring`]), so all fail the
//! same way.
//!
//! A few idle connections are kept for reuse; one is opened with a 500 ms
//! timeout when none is idle, and every command has a 1 s read and write
//! timeout, so an unreachable server makes calls fail quickly with
//! [`PoolError::Unavailable`] rather than hang. A connection that failed is
//! dropped (with the idle ones: a restarted server closed them all) and the
//! next call connects anew.
//!
//! Calls are blocking: the companion makes them from
//! `tokio::task::spawn_blocking`.

use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept; calls beyond this many at once connect and close.
const IDLE_CONNECTIONS: usize = 8;

/// Why a call failed: where (the URL without its password) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The server cannot be reached or cannot serve now: refused, timing
    /// out, loading, a read-only replica, a failover; or a bad URL.
    #[error("redis {location} is unavailable: {reason}")]
    Unavailable { location: String, reason: String },
    /// The server answered, but the command failed (an unexpected reply, a
    /// value out of range, a script error).
    #[error("redis {location}: {reason}")]
    Failed { location: String, reason: String },
}

/// Connections to the server at one URL.
pub struct RedisPool {
    client: Client,
    /// The URL without its password, for errors.
    location: String,
    idle: Mutex<Vec<Connection>>,
}

impl RedisPool {
    /// Checks the URL (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://`, `redis+unix://`); the server is contacted on first use.
    pub fn open(url: &str) -> Result<RedisPool, PoolError> {
        let location = without_password(url);
        let client = Client::open(url).map_err(|e| PoolError::Unavailable {
            location: location.clone(),
            reason: format!("invalid URL: {e}"),
        })?;
        Ok(RedisPool {
            client,
            location,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The list is only pushed and popped, so a panic elsewhere cannot
        // leave it half-changed.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `command` on an idle connection, or a new one; `doing` says
    /// what it was for in the error. An idle connection the server has
    /// closed (a restart, an idle timeout) fails before the command reaches
    /// the server, so that case alone is retried once on a new connection.
    pub fn run<T>(
        &self,
        doing: &str,
        command: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, PoolError> {
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

    fn connect(&self) -> Result<Connection, PoolError> {
        let connection = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|connection| {
                connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
                connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
                Ok(connection)
            });
        connection.map_err(|e| PoolError::Unavailable {
            location: self.location.clone(),
            reason: format!("cannot connect: {e}"),
        })
    }

    /// The error for a failed command: the connection failing, or a server
    /// that cannot serve now (loading, read-only replica, failover), means
    /// unavailable; any other reply is this command's failure.
    fn error(&self, doing: &str, e: RedisError) -> PoolError {
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
        if unavailable {
            PoolError::Unavailable { location, reason }
        } else {
            PoolError::Failed { location, reason }
        }
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
}
