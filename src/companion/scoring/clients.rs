//! The companion's per-client behaviour table: one [`ClientState`] per
//! client prefix, in a fixed number of slots (`scoring.slots`), like the
//! rate limiter's table and the filter's shared-data slots. Memory is
//! fixed whatever the number of clients: a client whose slot another one
//! took starts afresh, which costs it nothing but history.
//!
//! Each slot also keeps the client's last feature vector: what `/feedback`
//! and challenge outcomes label when they give none. For clients the
//! filter tracks (Envoy), that is the vector it last reported to `/score`.
//!
//! Each slot has its own lock, held for one read-modify-write, so checks
//! of different clients never wait on each other.
//!
//! With `companion.redis_url`, a client's [`ClientSlot`] lives in Redis,
//! shared by every replica ([`super::shared`]); this table then keeps the
//! copy last seen, which is the guess the next compare-and-set starts
//! from, and what the checks count in while Redis cannot be reached.

use crate::net::Cidr;
use crate::scoring::state::fnv1a;
use crate::scoring::{ClientState, Observation, Scored, Vector};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The tag a client's state is filed under: FNV-1a of its prefix as text
/// (`203.0.113.7/32`), never 0 (an empty slot's tag).
pub fn tag_of(prefix: &Cidr) -> u64 {
    fnv1a(prefix.to_string().as_bytes()).max(1)
}

/// One client's entry: its behaviour, its last features and its cached score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientSlot {
    pub state: ClientState,
    pub last: Option<Vector>,
    /// The score the client's last check gave, and until when it applies
    /// (nanoseconds): what the next check of the client uses, as a filter
    /// uses the score the companion sent back for its last report.
    pub cached: Option<(Scored, u64)>,
}

impl ClientSlot {
    /// An empty entry for the client tagged `tag`.
    pub fn new(tag: u64) -> ClientSlot {
        ClientSlot {
            state: ClientState::new(tag),
            ..ClientSlot::default()
        }
    }

    /// Counts a request, computes the client's features with it and keeps
    /// them as its last vector.
    pub fn observe(
        &mut self,
        request: &Observation,
        now_ns: u64,
        features: impl FnOnce(&ClientState) -> Vector,
    ) -> Vector {
        self.state.observe(request, now_ns);
        let v = features(&self.state);
        self.last = Some(v);
        v
    }

    /// Keeps `score` as the client's cached score until `expires_ns`, and
    /// returns the one cached before, if it has not expired at `now_ns`.
    pub fn exchange_score(
        &mut self,
        score: Option<Scored>,
        now_ns: u64,
        expires_ns: u64,
    ) -> Option<Scored> {
        let before = self.cached.filter(|(_, until)| *until > now_ns);
        self.cached = score.map(|s| (s, expires_ns));
        before.map(|(s, _)| s)
    }
}

/// The table (see the module doc).
pub struct Clients {
    slots: Box<[Mutex<ClientSlot>]>,
    /// Clients that took a slot (new, or back after eviction).
    arrivals: AtomicU64,
}

impl Clients {
    /// A table of `slots` slots (at least one).
    pub fn new(slots: usize) -> Clients {
        Clients {
            slots: (0..slots.max(1))
                .map(|_| Mutex::new(ClientSlot::default()))
                .collect(),
            arrivals: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, tag: u64) -> Option<std::sync::MutexGuard<'_, ClientSlot>> {
        let index = (tag % self.slots.len() as u64) as usize;
        Some(
            self.slots
                .get(index)?
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Runs `update` on the slot of the client tagged `tag` (emptied first
    /// if it holds another client).
    pub fn update<R>(&self, tag: u64, update: impl FnOnce(&mut ClientSlot) -> R) -> Option<R> {
        let mut slot = self.slot(tag)?;
        if slot.state.tag != tag {
            *slot = ClientSlot::new(tag);
            self.arrivals.fetch_add(1, Ordering::Relaxed);
        }
        Some(update(&mut slot))
    }

    /// The client's slot, if the table still holds it.
    pub fn get(&self, tag: u64) -> Option<ClientSlot> {
        let slot = *self.slot(tag)?;
        (slot.state.tag == tag).then_some(slot)
    }

    /// Keeps `slot` as the client's (a copy of what Redis holds).
    pub fn put(&self, tag: u64, slot: ClientSlot) {
        self.update(tag, |s| *s = slot);
    }

    /// Keeps a vector the filter reported as the client's last.
    pub fn report(&self, tag: u64, vector: Vector) {
        self.update(tag, |slot| slot.last = Some(vector));
    }

    /// The client's last feature vector, if its slot still holds it.
    pub fn last(&self, tag: u64) -> Option<Vector> {
        self.get(tag)?.last
    }

    /// Clients that took a slot since start: new clients, and clients back
    /// after another took their slot.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// Slots holding a client now.
    pub fn tracked(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().is_ok_and(|s| s.state.tag != 0))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(state: &ClientState) -> Vector {
        Vector::from_values(&[state.seen() as f32]).unwrap()
    }

    fn observe(clients: &Clients, tag: u64, path: &str, now_ns: u64) -> Vector {
        clients
            .update(tag, |slot| {
                slot.observe(&Observation::get(path), now_ns, seen)
            })
            .unwrap()
    }

    #[test]
    fn a_client_keeps_its_state_until_another_takes_its_slot() {
        let clients = Clients::new(4);
        observe(&clients, 1, "/", 0);
        let v = observe(&clients, 1, "/a", 1_000_000_000);
        assert_eq!(v.as_slice(), [2.0]);
        assert_eq!(clients.last(1).unwrap().as_slice(), [2.0]);
        // Tag 5 maps to the same slot as tag 1 in a table of 4.
        let v = observe(&clients, 5, "/", 2);
        assert_eq!(v.as_slice(), [1.0]);
        assert_eq!(clients.last(1), None);
        assert_eq!(clients.get(1), None);
        assert_eq!(clients.arrivals(), 2);
        assert_eq!(clients.tracked(), 1);
        clients.report(9, Vector::from_values(&[0.5]).unwrap());
        assert_eq!(clients.last(9).unwrap().as_slice(), [0.5]);
        let seen_after = clients.update(9, |s| {
            s.state.observe_challenge(true);
            s.state.seen()
        });
        assert_eq!(seen_after, Some(0));
        let mut copy = clients.get(9).unwrap();
        copy.last = None;
        clients.put(9, copy);
        assert_eq!(clients.last(9), None);
    }

    #[test]
    fn a_cached_score_is_handed_over_until_it_expires() {
        let score = |points| Scored {
            points,
            top: crate::scoring::TopFeatures::default(),
        };
        let mut slot = ClientSlot::new(3);
        assert_eq!(slot.exchange_score(Some(score(40)), 10, 100), None);
        assert_eq!(
            slot.exchange_score(Some(score(60)), 99, 200),
            Some(score(40))
        );
        assert_eq!(slot.exchange_score(None, 200, 300), None);
        assert_eq!(slot.cached, None);
    }

    #[test]
    fn tags_are_never_zero_and_differ_by_prefix() {
        let a: Cidr = "203.0.113.7/32".parse().unwrap();
        let b: Cidr = "203.0.113.8/32".parse().unwrap();
        assert_ne!(tag_of(&a), 0);
        assert_ne!(tag_of(&a), tag_of(&b));
    }
}
