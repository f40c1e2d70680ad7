//! Scoring state that companion replicas share through Redis
//! (`companion.redis_url`, with `scoring.enabled`): each client's behaviour
//! and cached score, the label caps, the labels, reputation, and the
//! promoted checkpoint. What stays each replica's own is in
//! `docs/scoring.md` ("Replicas").
//!
//! The key layout (`<tag>` is the client's [`super::clients::tag_of`] in 16
//! hex digits, `<prefix>` its prefix as text, `<base>` the served model
//! file's hash):
//!
//! | key | type | holds | expires |
//! |-----|------|-------|---------|
//! | `palisade:score:client:<tag>` | string | the client's behaviour and cached score ([`encode`]) | [`CLIENT_TTL_MS`] after the last write |
//! | `palisade:score:last:<tag>` | string | the client's last feature vector ([`encode_vector`]) | the same |
//! | `palisade:score:caps:<window_s>:<n>:source:<name>` | counter | labels from a source in window `n` | 60 s after the window ends |
//! | `palisade:score:caps:<window_s>:<n>:client:<prefix>` | counter | labels about a client in window `n` | the same |
//! | `palisade:score:labels` | stream | one entry per label, field `label`: the [`Label`] as JSON | about `records.shared_labels` entries kept (`XADD MAXLEN ~`); older than `labels_retention` trimmed by the sweep; the key `labels_retention` after the last label |
//! | `palisade:score:reputation:<prefix>` | hash | `first_seen`, `last_seen` and the counters of the SQLite `reputation` row | `labels_retention` after the last event |
//! | `palisade:score:reputation` | sorted set | prefix → last seen, for counts | members past `labels_retention` removed by the sweep |
//! | `palisade:score:blocked` | sorted set | prefix → last block, for counts | the same |
//! | `palisade:score:promoted:<base>` | string | the model file (JSON) of the checkpoint last promoted against `<base>` | `labels_retention` after the promotion |
//!
//! A client's behaviour is read, changed in Rust and written back with a
//! compare-and-set (one Lua script: write only if the value is still the
//! one the change started from, else hand back the current one), retried
//! up to [`CAS_ATTEMPTS`] times. The first attempt starts from the copy in
//! this replica's table, so a client that keeps to one replica costs one
//! round trip. The caps are one script too (check both counters, then
//! count in both), so replicas racing on the last label of a window admit
//! one. Times in values are the writer's clock: replicas' clocks must
//! agree (NTP), as for the shared rate limits.
//!
//! Calls are blocking ([`RedisPool`]): the companion makes them where
//! blocking is allowed. A failed call is the caller's to fall back from;
//! after Redis could not be reached, the caller is told to keep to its own
//! state for [`BACKOFF_MS`] ([`SharedScoring::backing_off`]) rather than
//! wait on Redis's timeouts at every step of every check.

use super::caps::{Caps, Over, Refused};
use super::clients::ClientSlot;
use super::records::{Event, Label};
use crate::config::FeedbackConfig;
use crate::redis_pool::{PoolError, RedisPool};
use crate::scoring::state::STATE_BYTES;
use crate::scoring::{ClientState, Scored, TopFeatures, Vector};
use redis::{Pipeline, Script, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// How long a client's behaviour is kept after its last request: six time
/// constants of the long window (5 min), after which its counters have
/// decayed to a quarter of a percent.
pub const CLIENT_TTL_MS: u64 = 30 * 60 * 1000;
/// Compare-and-set attempts on one client before the change is counted in
/// this replica's table instead.
pub const CAS_ATTEMPTS: usize = 8;
/// How long a replica keeps to its own state after Redis could not be
/// reached, before it asks Redis again.
pub const BACKOFF_MS: u64 = 1_000;
/// How long a caps counter outlives its window.
const CAPS_KEPT_S: u64 = 60;
/// Labels read per round trip.
const LABELS_PAGE: usize = 2_000;
/// The version byte that starts a client record.
const RECORD_VERSION: u8 = 1;
/// A client record: version, state, cached flag, points, top features,
/// expiry (ns, little-endian).
pub const RECORD_BYTES: usize = 1 + STATE_BYTES + 1 + 1 + 3 + 8;

const LABELS: &str = "palisade:score:labels";
const REPUTATION: &str = "palisade:score:reputation";
const BLOCKED: &str = "palisade:score:blocked";

/// Writes `ARGV[3]` to `KEYS[1]` (and `ARGV[5]`, if not empty, to
/// `KEYS[2]`), both expiring in `ARGV[4]` ms, if `KEYS[1]` still holds
/// `ARGV[2]` (`ARGV[1]` = `1`) or nothing (`ARGV[1]` = `0`). Returns
/// `{1}`, or `{0, current value}`.
const COMPARE_AND_SET: &str = "
local current = redis.call('GET', KEYS[1])
local expected = false
if ARGV[1] == '1' then expected = ARGV[2] end
if current ~= expected then
    return {0, current}
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
if ARGV[5] ~= '' then
    redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
end
return {1}
";

/// Counts a label in `KEYS[1]` (the source's counter) and `KEYS[2]` (the
/// client's), expiring in `ARGV[3]` s, unless the source has `ARGV[1]`
/// already (returns 1) or the client `ARGV[2]` (returns 2); 0 when counted.
const ADMIT: &str = "
local from_source = tonumber(redis.call('GET', KEYS[1]) or '0')
if from_source >= tonumber(ARGV[1]) then return 1 end
local about_client = tonumber(redis.call('GET', KEYS[2]) or '0')
if about_client >= tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 0
";

/// What is shared, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Clients,
    Caps,
    Labels,
    Reputation,
    Checkpoints,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Clients => "clients",
            Part::Caps => "caps",
            Part::Labels => "labels",
            Part::Reputation => "reputation",
            Part::Checkpoints => "checkpoints",
        }
    }
}

/// Why shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error(transparent)]
    Redis(#[from] PoolError),
    #[error("redis {location}: client {tag:016x} changed on another replica at each of {attempts} attempts")]
    Contended {
        location: String,
        tag: u64,
        attempts: usize,
    },
    #[error("redis {location}: {doing}: {reason}")]
    Invalid {
        location: String,
        doing: &'static str,
        reason: String,
    },
}

/// Totals for `/stats`, from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedCounts {
    pub labels: u64,
    pub clients: u64,
    pub blocked_clients: u64,
}

/// What [`SharedScoring::sweep`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedSwept {
    pub labels: u64,
    pub clients: u64,
}

/// The scoring state in one Redis server (see the module doc).
pub struct SharedScoring {
    pool: RedisPool,
    url: String,
    compare_and_set: Script,
    admit: Script,
    /// Whether the last call failed, so each change is logged once.
    failing: AtomicBool,
    opened: Instant,
    /// Milliseconds after `opened` before which Redis is not asked again.
    retry_at_ms: AtomicU64,
}

impl SharedScoring {
    /// Checks the URL; the server is contacted on first use.
    pub fn open(url: &str) -> Result<SharedScoring, PoolError> {
        Ok(SharedScoring {
            pool: RedisPool::open(url)?,
            url: url.to_string(),
            compare_and_set: Script::new(COMPARE_AND_SET),
            admit: Script::new(ADMIT),
            failing: AtomicBool::new(false),
            opened: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether Redis could not be reached less than [`BACKOFF_MS`] ago:
    /// the caller keeps to its own state without asking.
    pub fn backing_off(&self) -> bool {
        self.elapsed_ms() < self.retry_at_ms.load(Ordering::Relaxed)
    }

    /// The URL it was opened with (to keep it across reloads).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn invalid(&self, doing: &'static str, reason: impl std::fmt::Display) -> SharedError {
        SharedError::Invalid {
            location: self.pool.location().to_string(),
            doing,
            reason: reason.to_string(),
        }
    }

    /// A call answered: logged once after failures.
    pub fn succeeded(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                event = "scoring_redis_back",
                redis = self.pool.location(),
                "scoring state is shared through Redis again"
            );
        }
    }

    /// A call failed: logged once until one answers again. Redis out of
    /// reach is not asked again for [`BACKOFF_MS`].
    pub fn failed(&self, part: Part, e: &SharedError) {
        if matches!(e, SharedError::Redis(PoolError::Unavailable { .. })) {
            let retry_at = self.elapsed_ms().saturating_add(BACKOFF_MS);
            self.retry_at_ms.store(retry_at, Ordering::Relaxed);
        }
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                event = "scoring_redis_failing",
                part = part.as_str(),
                error = %e,
                "scoring state cannot be shared through Redis; each replica keeps its own until it answers"
            );
        }
    }

    /// Runs `update` on the client's shared slot with a compare-and-set
    /// (see the module doc), starting from `guess` (this replica's copy).
    /// `update` may run more than once, each time on a fresh copy. The
    /// slot's `last` is `guess`'s; one `update` sets is shared too. Gives
    /// the slot as written and what `update` returned.
    pub fn update_client<R>(
        &self,
        tag: u64,
        guess: Option<&ClientSlot>,
        mut update: impl FnMut(&mut ClientSlot) -> R,
    ) -> Result<(ClientSlot, R), SharedError> {
        let key = client_key(tag);
        let last_key = last_key(tag);
        let known_last = guess.and_then(|g| g.last);
        let mut expected: Option<Vec<u8>> = guess.map(encode);
        for _ in 0..CAS_ATTEMPTS {
            let mut slot = expected
                .as_deref()
                .and_then(|bytes| decode(bytes, tag))
                .unwrap_or_else(|| ClientSlot::new(tag));
            slot.last = known_last;
            let result = update(&mut slot);
            let new = encode(&slot);
            let last = match slot.last {
                Some(v) if slot.last != known_last => encode_vector(&v),
                _ => Vec::new(),
            };
            let reply: Value = self.pool.run("updating a client's behaviour", |c| {
                self.compare_and_set
                    .key(&key)
                    .key(&last_key)
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.as_deref().unwrap_or_default())
                    .arg(&new)
                    .arg(CLIENT_TTL_MS)
                    .arg(&last)
                    .invoke(c)
            })?;
            match compare_and_set_reply(reply)
                .map_err(|e| self.invalid("updating a client's behaviour", e))?
            {
                None => return Ok((slot, result)),
                Some(current) => expected = current,
            }
        }
        Err(SharedError::Contended {
            location: self.pool.location().to_string(),
            tag,
            attempts: CAS_ATTEMPTS,
        })
    }

    /// The client's last feature vector, if Redis has one.
    pub fn last(&self, tag: u64) -> Result<Option<Vector>, SharedError> {
        let key = last_key(tag);
        let bytes: Option<Vec<u8>> = self.pool.run("reading a client's features", |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?;
        Ok(bytes.as_deref().and_then(decode_vector))
    }

    /// Keeps the vectors the filter reported as their clients' last, in
    /// one round trip.
    pub fn report(&self, reports: &[(u64, Vector)]) -> Result<(), SharedError> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (tag, vector) in reports {
            pipe.cmd("SET")
                .arg(last_key(*tag))
                .arg(encode_vector(vector))
                .arg("PX")
                .arg(CLIENT_TTL_MS)
                .ignore();
        }
        Ok(self
            .pool
            .run("keeping reported features", |c| pipe.query(c))?)
    }

    /// Counts a label from `source` about `client` against the shared
    /// caps; `Ok(Err(_))` when it is over one (and nothing is counted).
    pub fn admit(
        &self,
        config: &FeedbackConfig,
        source: &str,
        client: &str,
        now_s: u64,
    ) -> Result<Result<(), Refused>, SharedError> {
        let caps = match Caps::of(config, source, now_s) {
            Ok(c) => c,
            Err(refused) => return Ok(Err(refused)),
        };
        let window = format!("palisade:score:caps:{}:{}", caps.window_s, caps.window);
        let source_key = format!("{window}:source:{source}");
        let client_key = format!("{window}:client:{client}");
        let ttl_s = caps.left_s(now_s).saturating_add(CAPS_KEPT_S);
        let code: i64 = self.pool.run("counting a label against the caps", |c| {
            self.admit
                .key(&source_key)
                .key(&client_key)
                .arg(caps.source)
                .arg(caps.client)
                .arg(ttl_s)
                .invoke(c)
        })?;
        match code {
            0 => Ok(Ok(())),
            1 => Ok(Err(caps.refused(Over::Source, source, client))),
            2 => Ok(Err(caps.refused(Over::Client, source, client))),
            other => Err(self.invalid(
                "counting a label against the caps",
                format!("the script answered {other}"),
            )),
        }
    }

    /// Adds a label to the shared labels (at most about `max_labels`
    /// kept) and counts it in the client's reputation, in one transaction.
    pub fn add_label(
        &self,
        label: &Label,
        max_labels: u32,
        retention_s: u64,
    ) -> Result<(), SharedError> {
        let json = serde_json::to_string(label).map_err(|e| self.invalid("encoding a label", e))?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(LABELS)
            .arg("MAXLEN")
            .arg("~")
            .arg(max_labels)
            .arg("*")
            .arg("label")
            .arg(json)
            .ignore()
            .cmd("EXPIRE")
            .arg(LABELS)
            .arg(retention_s.max(1))
            .ignore();
        bump(
            &mut pipe,
            &label.client,
            label.at,
            label.column(),
            retention_s,
        );
        Ok(self.pool.run("adding a label", |c| pipe.query(c))?)
    }

    /// Counts `event` in the client's shared reputation.
    pub fn reputation(
        &self,
        client: &str,
        at: u64,
        event: Event,
        retention_s: u64,
    ) -> Result<(), SharedError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        bump(&mut pipe, client, at, event.column(), retention_s);
        if event == Event::Blocked {
            pipe.cmd("ZADD")
                .arg(BLOCKED)
                .arg("GT")
                .arg(at)
                .arg(client)
                .ignore();
        }
        Ok(self
            .pool
            .run("counting a client's reputation", |c| pipe.query(c))?)
    }

    /// The shared labels from `since` on, newest first.
    pub fn labels_since(&self, since: u64) -> Result<Vec<Label>, SharedError> {
        let mut labels = Vec::new();
        let mut end = "+".to_string();
        let mut unreadable = 0usize;
        loop {
            let page: Vec<(String, Vec<String>)> = self.pool.run("reading labels", |c| {
                redis::cmd("XREVRANGE")
                    .arg(LABELS)
                    .arg(&end)
                    .arg("-")
                    .arg("COUNT")
                    .arg(LABELS_PAGE)
                    .query(c)
            })?;
            for (_, fields) in &page {
                match entry_label(fields) {
                    Some(label) if label.at >= since => labels.push(label),
                    Some(_) => {}
                    None => unreadable += 1,
                }
            }
            match page.last() {
                Some((id, _)) if page.len() == LABELS_PAGE => end = format!("({id}"),
                _ => break,
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                redis = self.pool.location(),
                "shared labels that are not labels were left out"
            );
        }
        // Replicas' clocks may disagree a little with Redis's order.
        labels.sort_by_key(|l| std::cmp::Reverse(l.at));
        Ok(labels)
    }

    /// Row counts for `/stats`.
    pub fn counts(&self) -> Result<SharedCounts, SharedError> {
        let (labels, clients, blocked_clients): (u64, u64, u64) =
            self.pool.run("counting shared records", |c| {
                redis::pipe()
                    .cmd("XLEN")
                    .arg(LABELS)
                    .cmd("ZCARD")
                    .arg(REPUTATION)
                    .cmd("ZCARD")
                    .arg(BLOCKED)
                    .query(c)
            })?;
        Ok(SharedCounts {
            labels,
            clients,
            blocked_clients,
        })
    }

    /// Removes labels and reputation index entries older than
    /// `labels_retention_s` (the reputation hashes expire by themselves).
    pub fn sweep(&self, now_s: u64, labels_retention_s: u64) -> Result<SharedSwept, SharedError> {
        let before = now_s.saturating_sub(labels_retention_s);
        let (labels, clients, _blocked): (u64, u64, u64) =
            self.pool.run("sweeping shared records", |c| {
                redis::pipe()
                    .cmd("XTRIM")
                    .arg(LABELS)
                    .arg("MINID")
                    .arg(before.saturating_mul(1000))
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(REPUTATION)
                    .arg("-inf")
                    .arg(format!("({before}"))
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(BLOCKED)
                    .arg("-inf")
                    .arg(format!("({before}"))
                    .query(c)
            })?;
        Ok(SharedSwept { labels, clients })
    }

    /// Publishes `model` (a model file's JSON) as the checkpoint promoted
    /// against the model file hashed `base`.
    pub fn publish(&self, base: &str, model: &str, retention_s: u64) -> Result<(), SharedError> {
        let key = promoted_key(base);
        Ok(self.pool.run("publishing a promoted checkpoint", |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(model)
                .arg("EX")
                .arg(retention_s.max(1))
                .query(c)
        })?)
    }

    /// The model file last promoted against `base` on any replica.
    pub fn promoted(&self, base: &str) -> Result<Option<String>, SharedError> {
        let key = promoted_key(base);
        Ok(self.pool.run("reading the promoted checkpoint", |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?)
    }
}

/// Adds one to a reputation counter (`column` is one of ours) in `pipe`.
fn bump(pipe: &mut Pipeline, client: &str, at: u64, column: &str, retention_s: u64) {
    let key = format!("{REPUTATION}:{client}");
    pipe.cmd("HSETNX")
        .arg(&key)
        .arg("first_seen")
        .arg(at)
        .ignore()
        .cmd("HSET")
        .arg(&key)
        .arg("last_seen")
        .arg(at)
        .ignore()
        .cmd("HINCRBY")
        .arg(&key)
        .arg(column)
        .arg(1)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(retention_s.max(1))
        .ignore()
        .cmd("ZADD")
        .arg(REPUTATION)
        .arg("GT")
        .arg(at)
        .arg(client)
        .ignore();
}

fn client_key(tag: u64) -> String {
    format!("palisade:score:client:{tag:016x}")
}

fn last_key(tag: u64) -> String {
    format!("palisade:score:last:{tag:016x}")
}

fn promoted_key(base: &str) -> String {
    format!("palisade:score:promoted:{base}")
}

/// The label in a stream entry's fields (`label`, JSON).
fn entry_label(fields: &[String]) -> Option<Label> {
    let mut pairs = fields.chunks_exact(2);
    let json = pairs.find(|pair| pair[0] == "label")?.get(1)?;
    serde_json::from_str(json).ok()
}

/// The compare-and-set script's answer: `None` when written, else the
/// value the key holds (`Some(None)`: nothing).
fn compare_and_set_reply(reply: Value) -> Result<Option<Option<Vec<u8>>>, String> {
    let Value::Array(items) = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    match items.as_slice() {
        [Value::Int(1), ..] => Ok(None),
        [Value::Int(0)] | [Value::Int(0), Value::Nil] => Ok(Some(None)),
        [Value::Int(0), Value::BulkString(current)] => Ok(Some(Some(current.clone()))),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// A client record: version, the state's bytes, the cached score (flag,
/// points, three top features, expiry in ns). The last vector is kept
/// apart ([`encode_vector`]).
pub fn encode(slot: &ClientSlot) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_BYTES);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&slot.state.to_bytes());
    match slot.cached {
        Some((scored, until)) => {
            out.push(1);
            out.push(scored.points);
            out.extend_from_slice(&scored.top.0);
            out.extend_from_slice(&until.to_le_bytes());
        }
        None => out.extend_from_slice(&[0; 1 + 1 + 3 + 8]),
    }
    out
}

/// The inverse of [`encode`], with no last vector; `None` for another
/// version, size or client.
pub fn decode(bytes: &[u8], tag: u64) -> Option<ClientSlot> {
    let (&version, rest) = bytes.split_first()?;
    if version != RECORD_VERSION || bytes.len() != RECORD_BYTES {
        return None;
    }
    let (state, cached) = rest.split_at_checked(STATE_BYTES)?;
    let state = ClientState::from_bytes(state).filter(|s| s.tag == tag)?;
    let (&flag, cached) = cached.split_first()?;
    let (&points, cached) = cached.split_first()?;
    let (top, until) = cached.split_at_checked(3)?;
    let cached = (flag == 1).then(|| {
        let scored = Scored {
            points,
            top: TopFeatures(top.try_into().unwrap_or_default()),
        };
        (
            scored,
            u64::from_le_bytes(until.try_into().unwrap_or_default()),
        )
    });
    Some(ClientSlot {
        state,
        last: None,
        cached,
    })
}

/// A feature vector: its length, then each value (f32, little-endian).
pub fn encode_vector(vector: &Vector) -> Vec<u8> {
    let values = vector.as_slice();
    let mut out = Vec::with_capacity(1 + 4 * values.len());
    out.push(values.len() as u8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The inverse of [`encode_vector`]; `None` for a wrong size or a value
/// that is not finite.
pub fn decode_vector(bytes: &[u8]) -> Option<Vector> {
    let (&len, rest) = bytes.split_first()?;
    if rest.len() != 4 * usize::from(len) {
        return None;
    }
    let values: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    Vector::from_values(&values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Observation;

    fn slot(tag: u64) -> ClientSlot {
        let mut slot = ClientSlot::new(tag);
        let request = Observation {
            method: "GET",
            path: "/a",
            has_referrer: true,
            login: false,
        };
        slot.observe(&request, 1_000_000_000, |_| {
            Vector::from_values(&[0.25, 0.5]).unwrap_or_else(|| unreachable!())
        });
        slot
    }

    #[test]
    fn a_client_record_round_trips_without_its_last_vector() {
        let mut s = slot(7);
        let bytes = encode(&s);
        assert_eq!(bytes.len(), RECORD_BYTES);
        s.last = None;
        assert_eq!(decode(&bytes, 7), Some(s));
        s.cached = Some((
            Scored {
                points: 87,
                top: TopFeatures([3, 1, u8::MAX]),
            },
            u64::MAX - 1,
        ));
        assert_eq!(decode(&encode(&s), 7), Some(s));
    }

    #[test]
    fn records_of_another_client_version_or_size_are_refused() {
        let bytes = encode(&slot(7));
        assert_eq!(decode(&bytes, 8), None);
        assert_eq!(decode(&bytes[..RECORD_BYTES - 1], 7), None);
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(decode(&other, 7), None);
        assert_eq!(decode(&[], 7), None);
    }

    #[test]
    fn vectors_round_trip_and_refuse_bad_bytes() {
        let v = Vector::from_values(&[0.0, 0.125, 1.0]).unwrap_or_else(|| unreachable!());
        let bytes = encode_vector(&v);
        assert_eq!(bytes.len(), 13);
        assert_eq!(decode_vector(&bytes), Some(v));
        assert_eq!(decode_vector(&bytes[..12]), None);
        let mut nan = bytes.clone();
        nan[1..5].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(decode_vector(&nan), None);
    }

    #[test]
    fn compare_and_set_replies_are_read() {
        assert_eq!(
            compare_and_set_reply(Value::Array(vec![Value::Int(1)])),
            Ok(None)
        );
        assert_eq!(
            compare_and_set_reply(Value::Array(vec![Value::Int(0), Value::Nil])),
            Ok(Some(None))
        );
        assert_eq!(
            compare_and_set_reply(Value::Array(vec![Value::Int(0)])),
            Ok(Some(None))
        );
        assert_eq!(
            compare_and_set_reply(Value::Array(vec![
                Value::Int(0),
                Value::BulkString(b"x".to_vec())
            ])),
            Ok(Some(Some(b"x".to_vec())))
        );
        assert!(compare_and_set_reply(Value::Int(1)).is_err());
    }

    #[test]
    fn stream_entries_give_their_label() {
        let label = Label {
            at: 5,
            client: "192.0.2.0/24".into(),
            source: "operator".into(),
            bot: true,
            weight: 1.0,
            features: vec![0.5; 3],
        };
        let json = serde_json::to_string(&label).unwrap_or_default();
        assert_eq!(entry_label(&["label".into(), json]), Some(label));
        assert_eq!(entry_label(&["other".into(), "{}".into()]), None);
        assert_eq!(entry_label(&["label".into(), "not json".into()]), None);
    }

    #[test]
    fn keys_name_the_client_by_16_hex_digits() {
        assert_eq!(client_key(0xab), "palisade:score:client:00000000000000ab");
        assert_eq!(last_key(u64::MAX), "palisade:score:last:ffffffffffffffff");
        assert_eq!(promoted_key("0123"), "palisade:score:promoted:0123");
    }
}
