//! The companion's health as hosts share it: one small record that probes
//! write and requests read.
//!
//! The Envoy filter keeps it in proxy-wasm shared data under [`HEALTH_KEY`],
//! so every worker sees one state. Each worker's root context ticks every
//! `companion.health_interval`; a tick probes only if no worker has claimed
//! a probe in the last three quarters of an interval, so the workers
//! together probe about once per interval, and another worker takes over
//! when one stops. Requests read the record only when they need the health
//! (a challenge that needs the companion, a request under the challenge
//! prefix), never on ordinary requests.
//!
//! Rules: down after [`DOWN_AFTER`] consecutive failed probes, up after one
//! success; a record older than [`STALE_AFTER`] intervals (nobody probing)
//! or no record at all (before the first probe) counts as down. Down is the
//! safe assumption: with the default `failure_mode: pow` the filter then
//! serves its own proof of work, which needs nothing from the companion.
//!
//! The record is ASCII, `STATE FAILURES CHECKED_NS CLAIMED_NS`, e.g.
//! `up 0 1800000000000000000 1800000000000000000`: the state (`up` or
//! `down`), consecutive failed probes, when the last probe result was
//! written and when a probe was last claimed, in nanoseconds since the
//! Unix epoch.

/// The shared-data key of the record.
pub const HEALTH_KEY: &str = "palisade.companion.health";

/// Consecutive failed probes that make an up companion down.
pub const DOWN_AFTER: u8 = 2;

/// A record not written for this many intervals counts as down.
pub const STALE_AFTER: u64 = 3;

/// The companion's health, as the host last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanionHealth {
    Up,
    Down,
}

impl CompanionHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            CompanionHealth::Up => "up",
            CompanionHealth::Down => "down",
        }
    }
}

/// The shared health record (see the module docs for its text form).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthRecord {
    /// The state the last probe left; read it through [`HealthRecord::health`],
    /// which also accounts for staleness.
    pub up: bool,
    /// Consecutive failed probes.
    pub failures: u8,
    /// When the last probe result was written; 0 when none was.
    pub checked_ns: u64,
    /// When a worker last claimed a probe; 0 when none did.
    pub claimed_ns: u64,
}

impl HealthRecord {
    /// The record's text form.
    pub fn encode(&self) -> Vec<u8> {
        let state = if self.up { "up" } else { "down" };
        format!(
            "{state} {} {} {}",
            self.failures, self.checked_ns, self.claimed_ns
        )
        .into_bytes()
    }

    /// Reads a record's text form; `None` if it is not one (which counts
    /// as no record: down).
    pub fn decode(bytes: &[u8]) -> Option<HealthRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        let up = match fields.next()? {
            "up" => true,
            "down" => false,
            _ => return None,
        };
        let record = HealthRecord {
            up,
            failures: fields.next()?.parse().ok()?,
            checked_ns: fields.next()?.parse().ok()?,
            claimed_ns: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(record)
    }

    /// The health at `now_ns`, probing every `interval_ns`: the last
    /// probe's state, unless the record is stale (or was never written).
    pub fn health(&self, now_ns: u64, interval_ns: u64) -> CompanionHealth {
        let stale_ns = interval_ns.saturating_mul(STALE_AFTER);
        let fresh = self.checked_ns != 0 && now_ns.saturating_sub(self.checked_ns) <= stale_ns;
        if self.up && fresh {
            CompanionHealth::Up
        } else {
            CompanionHealth::Down
        }
    }

    /// Whether a worker ticking at `now_ns` should claim the next probe:
    /// nobody claimed one in the last three quarters of an interval (so
    /// the worker whose tick comes first after that probes, about once per
    /// interval whatever the number of workers).
    pub fn should_probe(&self, now_ns: u64, interval_ns: u64) -> bool {
        let claim_after = interval_ns / 4 * 3;
        self.claimed_ns == 0 || now_ns.saturating_sub(self.claimed_ns) >= claim_after
    }

    /// The record with a probe claimed at `now_ns`.
    pub fn claimed(self, now_ns: u64) -> HealthRecord {
        HealthRecord {
            claimed_ns: now_ns,
            ..self
        }
    }

    /// The record after a probe that succeeded (`ok`) or failed, at `now_ns`.
    pub fn after_probe(self, ok: bool, now_ns: u64, interval_ns: u64) -> HealthRecord {
        let was_up = self.health(now_ns, interval_ns) == CompanionHealth::Up;
        let failures = if ok {
            0
        } else {
            self.failures.saturating_add(1)
        };
        HealthRecord {
            up: ok || (was_up && failures < DOWN_AFTER),
            failures,
            checked_ns: now_ns,
            claimed_ns: self.claimed_ns,
        }
    }
}
