//! Limiter state in a Redis server that companion replicas share, so a
//! client's allowance is one allowance whichever replica it reaches.
//!
//! One key per limiter key, holding its TAT in whole microseconds since the
//! Unix epoch (decimal):
//!
//! | key                          | value          | expires (`PX`)                          |
//! |------------------------------|----------------|-----------------------------------------|
//! | `palisade:limit:<16 hex>`    | the TAT in µs  | ~1 s after the TAT, by the writer's clock |
//!
//! Every acquire is one Lua script (EVALSHA, EVAL when the server does not
//! know it yet), which Redis runs atomically: read the TAT, admit or not by
//! the rule of [`Limit::apply`], store the new TAT. So of any number of
//! requests racing on any number of replicas, exactly `count + burst` fit
//! in a period, as with one process.
//!
//! Lua numbers are doubles, exact for integers up to 2⁵³, so the script
//! works in whole microseconds (now is about 1.8 × 10¹⁵ µs), which changes
//! [`Limit::apply`]'s arithmetic in three ways, none of them looser: `T` is
//! rounded up to a whole microsecond, `now` is truncated to one, and the
//! clock ends at 2⁵³ − 1 µs (the year 2255; `τ` and `T` are capped at 2⁵³,
//! which changes no outcome). The [`Outcome`] is then computed in Rust from
//! the TAT the script read, by the same arithmetic as [`Limit::apply`], and
//! given back in nanoseconds.
//!
//! A key expires by itself a little after its TAT, when it is idle anyway:
//! Redis holds one key per client active in the last second or so, never
//! more. The expiry is relative (`PX`, from the writer's clock), so Redis's
//! own clock does not matter, and the extra second means a replica whose
//! clock is up to a second behind the writer's loses none of the key's debt.
//! Beyond that, replicas' clocks must agree (NTP): the TATs they share are
//! absolute times.

use super::gcra::Gcra;
use super::{Limit, Outcome};
use crate::redis_pool::{PoolError, RedisPool};
use redis::Script;

/// The last microsecond the script's clock can show: doubles hold every
/// integer up to 2⁵³ exactly, and sums up to 2⁵⁴ compare right against it.
const CLOCK_END_US: u64 = (1 << 53) - 1;

/// How long a key is kept past its TAT (by the writer's clock).
const KEPT_PAST_TAT_MS: u64 = 1_000;

/// One acquire: `KEYS[1]` the key's TAT; `ARGV` now, `T`, `τ` and the
/// clock's end in µs, and [`KEPT_PAST_TAT_MS`]. Mirrors [`Gcra::apply`] and
/// returns the TAT it read (nil for a new key). Redis writes the numbers
/// given to a command with 17 significant digits: these integers exactly.
const ACQUIRE: &str = "
local stored = redis.call('GET', KEYS[1])
local tat = tonumber(stored) or 0
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local clock_end = tonumber(ARGV[4])
local start = math.max(tat, now)
local new_tat = start + interval
if start - now <= tolerance and new_tat <= clock_end then
    local ttl_ms = math.floor((new_tat - now) / 1000) + tonumber(ARGV[5])
    redis.call('SET', KEYS[1], new_tat, 'PX', ttl_ms)
end
return stored
";

/// Rate-limit state in Redis. Every call is a network round trip, made
/// from a blocking context.
pub struct RedisLimiter {
    pool: RedisPool,
    script: Script,
}

impl RedisLimiter {
    /// Checks the URL; the server is contacted on first use.
    pub fn open(url: &str) -> Result<RedisLimiter, PoolError> {
        Ok(RedisLimiter {
            pool: RedisPool::open(url)?,
            script: Script::new(ACQUIRE),
        })
    }

    /// The server's URL without its password.
    pub fn location(&self) -> &str {
        self.pool.location()
    }

    /// Counts one request for `key` against `limit` at `now_ns`, as
    /// [`super::RateLimitStore::acquire`] does, or says why Redis could not.
    /// A limit of count 0 admits nothing and needs no server.
    pub fn acquire(&self, key: u64, limit: &Limit, now_ns: u64) -> Result<Outcome, PoolError> {
        if limit.rate.count == 0 {
            return Ok(limit.apply(&mut 0, now_ns));
        }
        let gcra = in_micros(limit);
        let now = now_ns / 1_000;
        let name = key_name(key);
        let stored: Option<u64> = self.pool.run("counting a request", |c| {
            self.script
                .key(&name)
                .arg(now)
                .arg(gcra.interval)
                .arg(gcra.tolerance)
                .arg(gcra.end)
                .arg(KEPT_PAST_TAT_MS)
                .invoke(c)
        })?;
        let outcome = gcra.apply(&mut stored.unwrap_or(0), now);
        Ok(in_nanos(outcome))
    }
}

/// The Redis key of a limiter key.
fn key_name(key: u64) -> String {
    format!("palisade:limit:{key:016x}")
}

/// `limit` in whole microseconds on the script's clock (count ≥ 1).
fn in_micros(limit: &Limit) -> Gcra {
    let cap = CLOCK_END_US + 1;
    let interval = limit.emission_interval_ns().div_ceil(1_000).min(cap);
    Gcra {
        interval,
        tolerance: interval.saturating_mul(u64::from(limit.burst)).min(cap),
        end: CLOCK_END_US,
    }
}

/// A microsecond outcome in nanoseconds (`u64::MAX`, never, stays so).
fn in_nanos(outcome: Outcome) -> Outcome {
    Outcome {
        retry_after_ns: outcome.retry_after_ns.saturating_mul(1_000),
        reset_ns: outcome.reset_ns.saturating_mul(1_000),
        ..outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Rate;

    const SECOND: u64 = 1_000_000_000;

    fn limit(count: u32, period_ns: u64, burst: u32) -> Limit {
        Limit::new(Rate::new(count, period_ns), burst)
    }

    #[test]
    fn the_interval_rounds_up_to_whole_microseconds() {
        assert_eq!(in_micros(&limit(10, SECOND, 3)).interval, 100_000);
        assert_eq!(in_micros(&limit(10, SECOND, 3)).tolerance, 300_000);
        // 333_333_334 ns.
        assert_eq!(in_micros(&limit(3, SECOND, 0)).interval, 333_334);
        assert_eq!(in_micros(&limit(5, 1, 0)).interval, 1);
    }

    #[test]
    fn huge_limits_are_capped_where_doubles_stay_exact() {
        let g = in_micros(&limit(1, u64::MAX, u32::MAX));
        assert_eq!((g.interval, g.tolerance), (1 << 53, 1 << 53));
        // A day with the largest burst: τ is capped, T is not.
        let day = 86_400 * SECOND;
        let g = in_micros(&limit(1, day, u32::MAX));
        assert_eq!((g.interval, g.tolerance), (86_400_000_000, 1 << 53));
        // At the clock's end nothing more is admitted, as at u64::MAX ns.
        let mut tat = 0;
        assert!(!g.apply(&mut tat, CLOCK_END_US).allowed);
        assert_eq!(tat, 0);
    }

    #[test]
    fn outcomes_come_back_in_nanoseconds() {
        let o = Outcome {
            allowed: false,
            remaining: 0,
            retry_after_ns: 250,
            reset_ns: u64::MAX,
        };
        let n = in_nanos(o);
        assert_eq!((n.retry_after_ns, n.reset_ns), (250_000, u64::MAX));
    }

    #[test]
    fn keys_are_named_by_16_hex_digits() {
        assert_eq!(key_name(0xab), "palisade:limit:00000000000000ab");
        assert_eq!(key_name(u64::MAX), "palisade:limit:ffffffffffffffff");
    }
}
