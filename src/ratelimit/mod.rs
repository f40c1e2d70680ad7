//! Rate limits: the human syntax (`10/second`, `5 per hour`), the GCRA
//! arithmetic, and a bounded table of buckets that any host can store.
//!
//! # Syntax
//!
//! A [`Rate`] is written the way people write rates: `10/second`,
//! `100/minute`, `5 per hour`, `1000/day`, with short units (`10/s`,
//! `10/sec`, `10/min`, `10/m`, `10/h`, `10/hr`, `10/d`), plurals, and an
//! optional period length (`20 per 10 seconds`, `20/10s`). Parsing is
//! case-insensitive and ignores surrounding whitespace. `Display` prints a
//! canonical form (`10/minute`, `20 per 10 seconds`) that parses back to
//! the same value, and `Rate` deserializes from that string form.
//!
//! # Algorithm: GCRA
//!
//! A [`Limit`] is a rate plus a burst. It is enforced with the generic cell
//! rate algorithm on `u64` nanoseconds:
//!
//! - emission interval `T = ceil(period / count)`: one request per `T` is
//!   the sustained rate. Rounding *up* means `count × T ≥ period`, so the
//!   rounding can only make the limit stricter, never looser;
//! - tolerance `τ = T × burst`;
//! - the whole state of a key is one `u64`, its TAT (theoretical arrival
//!   time). `0` (or any TAT ≤ now) means idle: full allowance.
//!
//! A request at `now` is admitted iff `max(TAT, now) − now ≤ τ`; then
//! `TAT ← max(TAT, now) + T`. A denied request changes nothing. An idle
//! key therefore admits `burst + 1` requests at once, then one per `T`.
//!
//! Guarantee: in every half-open window `[t, t + period)` at most
//! `count + burst` requests are admitted. Proof sketch: every admission
//! raises TAT by exactly `T`, so after the first admission in the window
//! (at `a₁`) and `k` admissions in all, `TAT ≥ a₁ + k·T`; admitting one more
//! at `a < a₁ + period` needs `TAT − a ≤ τ`, so `k·T < period + τ ≤
//! (count + burst)·T`, i.e. `k < count + burst`. Where `TAT + T` would
//! overflow `u64` (huge periods, clocks near `u64::MAX`) the request is
//! denied rather than saturated, so the proof still holds.
//!
//! # Storage: a fixed table of small buckets
//!
//! Limiter state lives in a table of [`Bucket`]s, each [`WAYS`] entries of
//! `(tag, TAT)`: 64 bytes, plain little-endian bytes ([`Bucket::to_bytes`])
//! so any host can keep them — the in-process [`MemoryStore`], or the Envoy
//! filter's proxy-wasm *shared data* (a byte-string KV with
//! compare-and-swap, no TTL, no eviction), where all workers read a bucket,
//! [`Bucket::apply`] it, and write it back with CAS, retrying on mismatch.
//!
//! A client key (a `u64`, normally already a hash of the client identity)
//! is mixed with a fixed bijective 64-bit mixer to `h`. [`bucket_index`]
//! takes the bucket from the high bits of `h` (multiply-shift range
//! reduction); [`tag`] is `h` itself, with `0` reserved for "empty" (the one
//! key whose `h` is 0 shares tag 1). Because the mixer is a bijection,
//! keys that land in the same bucket always differ in tag.
//!
//! [`Bucket::apply`] looks for the entry with the key's tag; otherwise it
//! takes an idle entry (TAT ≤ now: it carries no information, so reusing it
//! loses nothing); otherwise it evicts the entry with the smallest TAT, the
//! one closest to idle.
//!
//! **Memory is bounded by configuration, not by client count**: the table
//! has `buckets × 64` bytes, fixed when it is created, and nothing is ever
//! allocated per client. No TTL or sweeping is needed: an entry expires by
//! itself when its TAT passes. A million distinct clients (say, a botnet
//! rotating addresses) do not grow the table; they only raise the chance
//! that more than [`WAYS`] clients are active in one bucket at once.
//!
//! # Error under collisions
//!
//! Two different keys never share state unless their 64-bit keys collide
//! on both index and tag (with the bijective mixer: only the reserved
//! tag-0/tag-1 pair). An entry only ever holds its own key's history, so
//! no client is limited by another client's traffic: collisions never
//! *over*-limit.
//!
//! A key is only ever *under*-limited, and only when [`WAYS`] other keys
//! that are active at the same time (TAT > now) map to its bucket and it is
//! the one evicted. It then loses at most its pending debt (`TAT − now ≤
//! τ + T`) and starts again as idle: each such eviction can give it up to
//! `count + burst` extra requests in the period around it (`2 × (count +
//! burst)` in that window for a single eviction). The evicted entry is
//! always the one closest to idle, so the smallest debt is lost. With `n`
//! clients active at once spread over `B` buckets (Poisson load `n / B`),
//! about 0.4% of buckets ever hold more than four active clients when
//! `n = B`, and under 0.02% when `n = B / 2`; size the table accordingly.
//!
//! # Shared state: Redis
//!
//! Companion replicas behind nginx share one allowance per client through
//! [`RedisLimiter`] (native builds only): the same rule, run atomically in
//! Redis by a Lua script, one key per client that expires by itself.
//!
//! Invalid limits that the parser never produces are handled without
//! panicking: `count == 0` admits nothing (`retry_after_ns == u64::MAX`),
//! `period_ns == 0` is treated as 1 ns.

mod bucket;
mod gcra;
mod memory;
mod rate;
#[cfg(not(target_arch = "wasm32"))]
mod redis;

#[cfg(not(target_arch = "wasm32"))]
pub use self::redis::RedisLimiter;
pub use bucket::{bucket_index, tag, Bucket, Entry, BUCKET_BYTES, WAYS};
pub use gcra::{Limit, Outcome};
pub use memory::{MemoryStore, MAX_BUCKETS};
pub use rate::{Rate, RateError};

/// Where limiter state lives. Implementations: [`MemoryStore`] (one
/// process), the Envoy filter's shared-data store (all workers), and the
/// companion's check limits (memory, or [`RedisLimiter`] with a fallback).
pub trait RateLimitStore {
    /// Counts one request for `key` against `limit` at `now_ns`.
    fn acquire(&mut self, key: u64, limit: &Limit, now_ns: u64) -> Outcome;
}
