//! A client's slot in a host's fixed table: its behaviour ([`ClientState`]),
//! the score the companion last sent back for it, and when its features
//! were last reported. The Envoy filter keeps one slot per shared-data
//! entry (`palisade.sc.<index>`), read and written whole: once per request,
//! or for a busy client once per sync of a worker's copy ([`super::local`]).
//!
//! The table has a fixed number of slots and a client maps to exactly one
//! ([`SlotKey::of`]): memory never grows with the number of clients.
//! A client that finds its slot owned by another client takes it over
//! ([`Slot::claim`]), dropping the other's history and cached score. That
//! loses least where it matters: a client that keeps coming back keeps its
//! slot (it keeps rewriting it), and the cost of losing it is a
//! fresh history and a report, not a wrong score, because a score is only
//! ever read by the client whose tag it was stored under.

use super::state::{ClientState, STATE_BYTES};
use super::{Scored, TopFeatures};
use crate::net::Cidr;
use crate::ratelimit::{bucket_index, tag};

/// Size of a serialized [`Slot`]: the state, the score's points and top
/// features, its expiry and the last report time.
pub const SLOT_BYTES: usize = STATE_BYTES + 1 + 3 + 8 + 8;

// `scoring.slots` is documented as `slots × 128` bytes of memory.
const _: () = assert!(SLOT_BYTES <= 128);

/// `points` of a slot without a score.
const NO_SCORE: u8 = u8::MAX;

/// Which slot a client uses and the tag that says the slot is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotKey {
    pub index: usize,
    /// Never 0 (0 marks an empty [`ClientState`]).
    pub tag: u64,
}

impl SlotKey {
    /// The slot of the client grouped under `prefix` in a table of `slots`.
    /// The same bijective mix as the rate limiter's buckets (index from the
    /// high bits, tag the whole mixed key), so clients sharing a slot
    /// always differ in tag.
    pub fn of(prefix: &Cidr, slots: usize) -> SlotKey {
        let key = super::state::fnv1a(&prefix.to_bytes());
        SlotKey {
            index: bucket_index(key, slots),
            tag: tag(key),
        }
    }
}

/// A score the companion sent back, and until when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedScore {
    pub scored: Scored,
    /// Nanoseconds since the Unix epoch.
    pub expires_ns: u64,
}

/// One client's slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub state: ClientState,
    pub score: Option<CachedScore>,
    /// When this client's features were last queued for `/score` (0: never).
    pub reported_ns: u64,
}

impl Slot {
    /// An empty slot owned by `tag`.
    pub fn new(tag: u64) -> Slot {
        Slot {
            state: ClientState::new(tag),
            score: None,
            reported_ns: 0,
        }
    }

    /// The slot as the client `tag` finds it: its own, or a fresh one when
    /// the stored slot (as [`Slot::from_bytes`] read it) is another
    /// client's, empty or unreadable (the takeover the module doc describes).
    pub fn claim(stored: Option<Slot>, tag: u64) -> Slot {
        stored
            .filter(|slot| slot.state.tag == tag)
            .unwrap_or_else(|| Slot::new(tag))
    }

    /// The cached score, while it applies.
    pub fn fresh_score(&self, now_ns: u64) -> Option<Scored> {
        self.score
            .filter(|s| s.expires_ns > now_ns)
            .map(|s| s.scored)
    }

    /// Whether to queue this client's features now: its score is missing
    /// or past half its `ttl_ns` (so a client that keeps coming is scored
    /// again before its score lapses), and it was not queued in the last
    /// `interval_ns` (one report per client per interval, whatever its
    /// request rate; a report lost on the way is retried after that).
    pub fn wants_report(&self, now_ns: u64, ttl_ns: u64, interval_ns: u64) -> bool {
        let stale = match self.score {
            None => true,
            Some(s) => s.expires_ns.saturating_sub(now_ns) < ttl_ns / 2,
        };
        stale && now_ns.saturating_sub(self.reported_ns) >= interval_ns
    }

    /// Stores a score from the companion, applying until `now_ns + ttl_ns`.
    pub fn store_score(&mut self, scored: Scored, now_ns: u64, ttl_ns: u64) {
        self.score = Some(CachedScore {
            scored,
            expires_ns: now_ns.saturating_add(ttl_ns),
        });
    }

    /// Little-endian: the state, points (255: none), the three top-feature
    /// indices, the expiry, the last report time.
    pub fn to_bytes(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        let (state, rest) = out.split_at_mut(STATE_BYTES);
        state.copy_from_slice(&self.state.to_bytes());
        let (score, rest) = rest.split_at_mut(4);
        let (expires, reported) = rest.split_at_mut(8);
        let (points, top, expires_ns) = match self.score {
            Some(s) => (s.scored.points, s.scored.top.0, s.expires_ns),
            None => (NO_SCORE, TopFeatures::default().0, 0),
        };
        score.copy_from_slice(&[points, top[0], top[1], top[2]]);
        expires.copy_from_slice(&expires_ns.to_le_bytes());
        reported.copy_from_slice(&self.reported_ns.to_le_bytes());
        out
    }

    /// The inverse of [`Slot::to_bytes`]; `None` for another size or a
    /// state that does not read back.
    pub fn from_bytes(bytes: &[u8]) -> Option<Slot> {
        if bytes.len() != SLOT_BYTES {
            return None;
        }
        let (state, rest) = bytes.split_at_checked(STATE_BYTES)?;
        let (score, rest) = rest.split_at_checked(4)?;
        let (expires, reported) = rest.split_at_checked(8)?;
        let [points, a, b, c]: [u8; 4] = score.try_into().ok()?;
        let expires_ns = u64::from_le_bytes(expires.try_into().ok()?);
        Some(Slot {
            state: ClientState::from_bytes(state)?,
            score: (points <= 100).then_some(CachedScore {
                scored: Scored {
                    points,
                    top: TopFeatures([a, b, c]),
                },
                expires_ns,
            }),
            reported_ns: u64::from_le_bytes(reported.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Observation;

    const S: u64 = 1_000_000_000;

    fn scored(points: u8) -> Scored {
        Scored {
            points,
            top: TopFeatures::of(["timing_cv", "rate_short"]),
        }
    }

    #[test]
    fn slots_round_trip_with_and_without_a_score() {
        let mut slot = Slot::new(42);
        slot.state.observe(
            &Observation {
                method: "GET",
                path: "/a",
                has_referrer: true,
                login: false,
            },
            5 * S,
        );
        assert_eq!(Slot::from_bytes(&slot.to_bytes()), Some(slot));
        slot.store_score(scored(95), 6 * S, 60 * S);
        slot.reported_ns = 5 * S;
        assert_eq!(Slot::from_bytes(&slot.to_bytes()), Some(slot));
        assert_eq!(Slot::from_bytes(&slot.to_bytes()[1..]), None);
    }

    #[test]
    fn another_clients_or_a_broken_slot_is_taken_over() {
        let mut theirs = Slot::new(7);
        theirs.store_score(scored(90), 0, 60 * S);
        let stored = Slot::from_bytes(&theirs.to_bytes());
        assert_eq!(Slot::claim(stored, 7), theirs);
        let mine = Slot::claim(stored, 8);
        assert_eq!(mine, Slot::new(8));
        assert_eq!(mine.fresh_score(S), None);
        assert_eq!(Slot::from_bytes(b"garbage"), None);
        assert_eq!(Slot::claim(None, 8), Slot::new(8));
    }

    #[test]
    fn a_score_applies_until_it_expires() {
        let mut slot = Slot::new(1);
        slot.store_score(scored(95), 10 * S, 60 * S);
        assert_eq!(slot.fresh_score(11 * S), Some(scored(95)));
        assert_eq!(slot.fresh_score(70 * S), None);
    }

    #[test]
    fn reports_are_wanted_for_missing_or_half_stale_scores_once_per_interval() {
        let (ttl, interval) = (60 * S, S);
        let mut slot = Slot::new(1);
        assert!(slot.wants_report(100 * S, ttl, interval), "never scored");
        slot.reported_ns = 100 * S;
        assert!(
            !slot.wants_report(100 * S + S / 2, ttl, interval),
            "queued this interval"
        );
        assert!(
            slot.wants_report(101 * S, ttl, interval),
            "still unscored an interval later"
        );
        slot.store_score(scored(10), 101 * S, ttl);
        assert!(!slot.wants_report(102 * S, ttl, interval), "fresh");
        assert!(
            !slot.wants_report(130 * S, ttl, interval),
            "exactly half the TTL left"
        );
        assert!(
            slot.wants_report(131 * S + 1, ttl, interval),
            "past half the TTL"
        );
    }

    #[test]
    fn clients_map_to_slots_in_range_with_nonzero_tags() {
        for i in 0..200u8 {
            let prefix: Cidr = format!("10.0.{i}.1/32").parse().unwrap();
            let key = SlotKey::of(&prefix, 16);
            assert!(key.index < 16);
            assert_ne!(key.tag, 0);
            assert_eq!(key, SlotKey::of(&prefix, 16));
        }
    }
}
