//! One worker's write-behind copies of client slots: what lets most
//! requests of a busy client be scored and counted with no host call.
//!
//! The Envoy filter keeps each client's [`Slot`] in shared data, where
//! reading it and writing it back cost a host call each (a microsecond or
//! more apiece in V8). A client seen by this worker a moment ago is served
//! from this worker's copy instead: the request is decided with the copy's
//! score and counted in the copy, and the count is also kept as a pending
//! [`Event`]. A **sync** (the filter's read-modify-write of the shared slot,
//! compare-and-swap as ever) folds the pending events into the shared slot
//! in the order they happened and makes the result the new copy. The
//! filter syncs:
//! - when a request finds the copy [`MAX_AGE_NS`] old, or holding
//!   [`MAX_PENDING`] events (the request is then counted in the sync),
//!   or finds no copy (its first request on this worker, which so reads
//!   what other workers stored, a score among it);
//! - on the root context's tick, every copy with pending events;
//! - whenever it writes the slot for another reason (a report due, a score
//!   arriving, a login route, a challenge outcome): that write carries the
//!   pending events too, so nothing is ever written past them.
//!
//! **Bounds.** At most [`CAPACITY`] copies per worker, each with at most
//! [`MAX_PENDING`] events: about 90 KiB per VM, whatever the traffic. A
//! client that finds the table full is served from the shared slot on
//! every request, as if there were no table. The tick drops copies that
//! are too old to use and have nothing pending.
//!
//! **Staleness.** A copy is the shared slot as of its last sync, less than
//! [`MAX_AGE_NS`] ago, plus this worker's own events since. What other
//! workers counted meanwhile reaches it at the next sync: their events
//! wait at most one tick, or [`MAX_PENDING`] requests, to be folded in.
//! The same holds for a score another worker stored.
//!
//! Plain data, no host calls (the filter's glue is `src/filter/scoring.rs`).

use super::cache::{Slot, SlotKey};
use super::state::{ClientState, Sighting};

/// Copies kept per worker.
pub const CAPACITY: usize = 128;
/// Events a copy holds before the next request syncs it.
pub const MAX_PENDING: usize = 32;
/// How long a copy serves requests after its sync: 100 ms.
pub const MAX_AGE_NS: u64 = 100_000_000;

/// Something counted in a client's state, kept until the next sync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A request ([`ClientState::count`]).
    Request { at_ns: u64, sighting: Sighting },
    /// A 4xx answer ([`ClientState::observe_response`]; other answers
    /// change nothing, so are never kept).
    Answer { status: u16, login: bool },
    /// A challenge outcome ([`ClientState::observe_challenge`]).
    Challenge { passed: bool },
}

impl Event {
    pub fn apply(&self, state: &mut ClientState) {
        match *self {
            Event::Request { at_ns, sighting } => state.count(sighting, at_ns),
            Event::Answer { status, login } => {
                state.observe_response(status, login);
            }
            Event::Challenge { passed } => state.observe_challenge(passed),
        }
    }
}

/// A copy's events since its last sync, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    events: [Event; MAX_PENDING],
    len: usize,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending {
            events: [Event::Challenge { passed: false }; MAX_PENDING],
            len: 0,
        }
    }
}

impl Pending {
    pub fn events(&self) -> &[Event] {
        self.events.get(..self.len).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a request is among the events: a sync then takes the slot
    /// over from another client, as the request itself would have.
    pub fn has_request(&self) -> bool {
        self.events()
            .iter()
            .any(|e| matches!(e, Event::Request { .. }))
    }

    /// Folds the events into `state`, in the order they happened.
    pub fn apply(&self, state: &mut ClientState) {
        for event in self.events() {
            event.apply(state);
        }
    }

    fn push(&mut self, event: Event) -> bool {
        let Some(free) = self.events.get_mut(self.len) else {
            return false;
        };
        *free = event;
        self.len += 1;
        true
    }
}

/// One client's copy.
struct Entry {
    /// The shared slot as of the last sync, with `pending` applied.
    view: Slot,
    synced_ns: u64,
    pending: Pending,
}

impl Entry {
    fn synced(view: Slot, synced_ns: u64) -> Entry {
        Entry {
            view,
            synced_ns,
            pending: Pending::default(),
        }
    }

    /// Whether a request at `now_ns` may use the copy (a clock that went
    /// back makes it unusable, rather than usable for longer).
    fn usable(&self, now_ns: u64) -> bool {
        now_ns
            .checked_sub(self.synced_ns)
            .is_some_and(|age| age < MAX_AGE_NS)
            && self.pending.len < MAX_PENDING
    }
}

/// A worker's copies (see the module doc).
pub struct LocalSlots {
    /// `keys[i]` is the client of `entries[i]`; apart, so that a look-up
    /// scans 16 bytes per copy rather than a whole entry.
    keys: Vec<SlotKey>,
    entries: Vec<Entry>,
}

impl Default for LocalSlots {
    fn default() -> LocalSlots {
        LocalSlots {
            keys: Vec::with_capacity(CAPACITY),
            entries: Vec::with_capacity(CAPACITY),
        }
    }
}

impl LocalSlots {
    fn find(&self, key: SlotKey) -> Option<usize> {
        self.keys.iter().position(|k| *k == key)
    }

    fn entry(&self, key: SlotKey) -> Option<&Entry> {
        self.entries.get(self.find(key)?)
    }

    /// The client's copy, if a request at `now_ns` may be served from it.
    pub fn usable(&self, key: SlotKey, now_ns: u64) -> Option<&Slot> {
        self.entry(key)
            .filter(|e| e.usable(now_ns))
            .map(|e| &e.view)
    }

    /// Counts `event` in the client's copy if the copy is usable at
    /// `now_ns`, returning the copy as it now stands; `None` when the
    /// caller must sync instead.
    pub fn buffer(&mut self, key: SlotKey, event: Event, now_ns: u64) -> Option<&Slot> {
        let at = self.find(key)?;
        let entry = self.entries.get_mut(at).filter(|e| e.usable(now_ns))?;
        if !entry.pending.push(event) {
            return None;
        }
        event.apply(&mut entry.view.state);
        Some(&entry.view)
    }

    /// The events a sync of the client must fold in (none without a copy).
    pub fn pending(&self, key: SlotKey) -> Pending {
        self.entry(key).map(|e| e.pending).unwrap_or_default()
    }

    /// After a sync stored `slot` (with the pending events folded in): it
    /// is the client's copy from now on, if it has one.
    pub fn synced(&mut self, key: SlotKey, slot: Slot, now_ns: u64) {
        if let Some(entry) = self.find(key).and_then(|at| self.entries.get_mut(at)) {
            *entry = Entry::synced(slot, now_ns);
        }
    }

    /// As [`LocalSlots::synced`], and a client without a copy gets one if
    /// there is room: for syncs the client's own requests caused, so that
    /// the table holds the clients this worker serves.
    pub fn adopt(&mut self, key: SlotKey, slot: Slot, now_ns: u64) {
        if self.find(key).is_none() && self.keys.len() < CAPACITY {
            self.keys.push(key);
            self.entries.push(Entry::synced(slot, now_ns));
        } else {
            self.synced(key, slot, now_ns);
        }
    }

    /// Drops the client's copy: a sync failed, and its pending events are
    /// lost with it (as an update given up always was), or the slot is
    /// another client's now.
    pub fn forget(&mut self, key: SlotKey) {
        if let Some(at) = self.find(key) {
            self.keys.swap_remove(at);
            self.entries.swap_remove(at);
        }
    }

    /// On the tick: drops the copies too old to use with nothing pending,
    /// and returns the clients whose copies have events to sync.
    pub fn due(&mut self, now_ns: u64) -> Vec<SlotKey> {
        let mut at = 0;
        while let (Some(key), Some(entry)) = (self.keys.get(at), self.entries.get(at)) {
            if entry.pending.is_empty() && !entry.usable(now_ns) {
                let key = *key;
                self.forget(key);
            } else {
                at += 1;
            }
        }
        self.keys
            .iter()
            .zip(&self.entries)
            .filter(|(_, e)| !e.pending.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Observation;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_000 * 1_000 * MS;

    fn key(n: u64) -> SlotKey {
        SlotKey {
            index: n as usize,
            tag: n + 1,
        }
    }

    fn request(at_ns: u64) -> Event {
        Event::Request {
            at_ns,
            sighting: Sighting::of(&Observation::get("/a")),
        }
    }

    /// A table holding a synced copy of client `key(1)` at `T0`.
    fn one_copy() -> LocalSlots {
        let mut local = LocalSlots::default();
        local.adopt(key(1), Slot::new(key(1).tag), T0);
        local
    }

    #[test]
    fn the_table_stays_within_its_documented_memory() {
        let per_copy = std::mem::size_of::<Entry>() + std::mem::size_of::<SlotKey>();
        assert!(CAPACITY * per_copy <= 90 * 1024, "{per_copy} bytes a copy");
    }

    #[test]
    fn without_a_copy_every_request_syncs() {
        let mut local = LocalSlots::default();
        assert!(local.usable(key(1), T0).is_none());
        assert!(local.buffer(key(1), request(T0), T0).is_none());
        assert!(local.pending(key(1)).is_empty());
    }

    #[test]
    fn a_copy_counts_requests_until_it_is_too_old() {
        let mut local = one_copy();
        let view = local.buffer(key(1), request(T0 + MS), T0 + MS).copied();
        assert_eq!(view.map(|v| v.state.seen()), Some(1));
        assert!(local.usable(key(1), T0 + MAX_AGE_NS - 1).is_some());
        assert!(local.usable(key(1), T0 + MAX_AGE_NS).is_none());
        assert!(local
            .buffer(key(1), request(T0 + MAX_AGE_NS), T0 + MAX_AGE_NS)
            .is_none());
        assert!(
            local.usable(key(1), T0 - 1).is_none(),
            "the clock went back"
        );
        assert_eq!(local.pending(key(1)).events(), &[request(T0 + MS)]);
    }

    #[test]
    fn a_copy_holds_at_most_max_pending_events() {
        let mut local = one_copy();
        for i in 0..MAX_PENDING as u64 {
            assert!(local.buffer(key(1), request(T0 + i), T0 + i).is_some());
        }
        assert!(local.usable(key(1), T0 + 40).is_none());
        assert!(local.buffer(key(1), request(T0 + 40), T0 + 40).is_none());
        assert_eq!(local.pending(key(1)).events().len(), MAX_PENDING);
    }

    #[test]
    fn a_sync_folds_the_pending_events_in_order_and_starts_afresh() {
        let mut local = one_copy();
        let answer = Event::Answer {
            status: 403,
            login: true,
        };
        for event in [request(T0 + MS), answer, request(T0 + 2 * MS)] {
            local.buffer(key(1), event, T0 + 2 * MS);
        }
        // What counting the events one by one, as they happened, gives.
        let counted = |other_worker: bool| {
            let mut state = ClientState::new(key(1).tag);
            let get = Observation::get("/a");
            if other_worker {
                state.observe(&get, T0 + MS / 2);
            }
            state.observe(&get, T0 + MS);
            state.observe_response(403, true);
            state.observe(&get, T0 + 2 * MS);
            state
        };
        let view = local.usable(key(1), T0 + 2 * MS).map(|v| v.state);
        assert_eq!(view, Some(counted(false)), "the copy counts at once");
        // The shared slot meanwhile counted another worker's request.
        let mut shared = Slot::new(key(1).tag);
        request(T0 + MS / 2).apply(&mut shared.state);
        let pending = local.pending(key(1));
        assert!(pending.has_request());
        pending.apply(&mut shared.state);
        assert_eq!(shared.state, counted(true));
        local.synced(key(1), shared, T0 + 3 * MS);
        assert!(local.pending(key(1)).is_empty());
        assert_eq!(local.usable(key(1), T0 + 3 * MS), Some(&shared));
        assert!(local.usable(key(1), T0 + 3 * MS + MAX_AGE_NS - 1).is_some());
    }

    #[test]
    fn the_table_is_bounded_and_a_client_beyond_it_goes_uncached() {
        let mut local = LocalSlots::default();
        for n in 0..CAPACITY as u64 + 10 {
            local.adopt(key(n), Slot::new(key(n).tag), T0);
        }
        assert_eq!(local.len(), CAPACITY);
        assert!(local.usable(key(CAPACITY as u64), T0).is_none());
        local.forget(key(0));
        assert_eq!(local.len(), CAPACITY - 1);
        local.synced(key(CAPACITY as u64), Slot::new(1), T0);
        assert!(
            local.usable(key(CAPACITY as u64), T0).is_none(),
            "a sync adds no copy"
        );
        local.adopt(key(CAPACITY as u64), Slot::new(1), T0);
        assert!(local.usable(key(CAPACITY as u64), T0).is_some());
    }

    #[test]
    fn the_tick_syncs_pending_events_and_drops_idle_old_copies() {
        let mut local = LocalSlots::default();
        for n in 0..3 {
            local.adopt(key(n), Slot::new(key(n).tag), T0);
        }
        local.buffer(key(1), request(T0 + MS), T0 + MS);
        assert_eq!(local.due(T0 + 2 * MS), vec![key(1)], "all still usable");
        assert_eq!(local.len(), 3);
        let later = T0 + MAX_AGE_NS;
        assert_eq!(local.due(later), vec![key(1)], "pending events are kept");
        assert_eq!(local.len(), 1, "idle old copies are dropped");
        local.forget(key(1));
        assert!(local.due(later).is_empty());
        assert_eq!(local.len(), 0);
    }
}
