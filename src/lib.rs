//! Palisade: a bot and abuse defence that lives in the proxy.
//!
//! The library is the policy engine shared by every host: the Envoy filter
//! (compiled to `wasm32-wasip1`), the `palisade` CLI and the companion
//! service. The engine makes no host calls: a [`policy::Request`] goes in,
//! a [`policy::Decision`] comes out.
//!
//! Module map:
//! - [`config`]: the configuration schema (JSON or YAML) and its errors.
//! - [`policy`]: compiling a configuration and deciding a request.
//! - [`glob`]: path and host globs, translated to regexes at compile time.
//! - [`net`]: CIDRs, the compiled IP range table, and client identity.
//! - [`crawlers`]: user-agent classes and verified-crawler checks (datasets).
//! - [`ratelimit`]: rate syntax, GCRA and the bounded slot table.
//! - [`scoring`]: behaviour features, interaction signals and bot-score models.
//! - [`token`]: HMAC-sealed pass tokens and challenge tickets.
//! - [`challenge`]: proof of work, and the companion's kinds, state and pages.
//! - `companion` (native only): `palisade serve`, the companion's HTTP glue.
//! - `redis_pool` (native only): the companion's connections to Redis.
//! - `sqlite_file` (native only): telling Palisade's SQLite files from others.
//! - `filter` (wasm only): the proxy-wasm glue for Envoy.

pub mod challenge;
pub mod config;
pub mod crawlers;
pub mod geo;
pub mod glob;
pub mod net;
pub mod policy;
pub mod ratelimit;
pub mod reputation;
pub mod scoring;
pub mod token;

#[cfg(not(target_arch = "wasm32"))]
pub mod companion;
#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(not(target_arch = "wasm32"))]
pub mod redis_pool;
#[cfg(not(target_arch = "wasm32"))]
mod sqlite_file;
