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

#[derive(Clone, Copy, Default)]
struct Slot {
    state: ClientState,
    last: Option<Vector>,
    /// The score the client's last check gave, and until when it applies
    /// (nanoseconds): what the next check of the client uses, as a filter
    /// uses the score the companion sent back for its last report.
    cached: Option<(Scored, u64)>,
}

/// The table (see the module doc).
pub struct Clients {
    slots: Box<[Mutex<Slot>]>,
    /// Clients that took a slot (new, or back after eviction).
    arrivals: AtomicU64,
}

impl Clients {
    /// A table of `slots` slots (at least one).
    pub fn new(slots: usize) -> Clients {
        Clients {
            slots: (0..slots.max(1))
                .map(|_| Mutex::new(Slot::default()))
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

    /// Runs `update` on the slot of the client tagged `tag` (emptied first
    /// if it holds another client).
    fn with_slot<R>(&self, tag: u64, update: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let index = (tag % self.slots.len() as u64) as usize;
        let mut slot = self
            .slots
            .get(index)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if slot.state.tag != tag {
            *slot = Slot {
                state: ClientState::new(tag),
                ..Slot::default()
            };
            self.arrivals.fetch_add(1, Ordering::Relaxed);
        }
        Some(update(&mut slot))
    }

    /// Runs `update` on the client's state and returns the state after it.
    pub fn update(&self, tag: u64, update: impl FnOnce(&mut ClientState)) -> Option<ClientState> {
        self.with_slot(tag, |slot| {
            update(&mut slot.state);
            slot.state
        })
    }

    /// Counts a request, computes the client's features with it and keeps
    /// them as its last vector.
    pub fn observe(
        &self,
        tag: u64,
        request: &Observation,
        now_ns: u64,
        features: impl FnOnce(&ClientState) -> Vector,
    ) -> Option<Vector> {
        self.with_slot(tag, |slot| {
            slot.state.observe(request, now_ns);
            let v = features(&slot.state);
            slot.last = Some(v);
            v
        })
    }

    /// Keeps `score` as the client's cached score until `expires_ns`, and
    /// returns the one cached before, if it has not expired at `now_ns`.
    pub fn exchange_score(
        &self,
        tag: u64,
        score: Option<Scored>,
        now_ns: u64,
        expires_ns: u64,
    ) -> Option<Scored> {
        self.with_slot(tag, |slot| {
            let before = slot.cached.filter(|(_, until)| *until > now_ns);
            slot.cached = score.map(|s| (s, expires_ns));
            before.map(|(s, _)| s)
        })
        .flatten()
    }

    /// Keeps a vector the filter reported as the client's last.
    pub fn report(&self, tag: u64, vector: Vector) {
        self.with_slot(tag, |slot| slot.last = Some(vector));
    }

    /// The client's last feature vector, if its slot still holds it.
    pub fn last(&self, tag: u64) -> Option<Vector> {
        let index = (tag % self.slots.len() as u64) as usize;
        let slot = *self
            .slots
            .get(index)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (slot.state.tag == tag).then_some(slot.last).flatten()
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

    fn get(path: &str) -> Observation<'_> {
        Observation {
            method: "GET",
            path,
            has_referrer: false,
            login: false,
        }
    }

    fn seen(state: &ClientState) -> Vector {
        Vector::from_values(&[state.seen() as f32]).unwrap()
    }

    #[test]
    fn a_client_keeps_its_state_until_another_takes_its_slot() {
        let clients = Clients::new(4);
        clients.observe(1, &get("/"), 0, seen);
        let v = clients.observe(1, &get("/a"), 1_000_000_000, seen).unwrap();
        assert_eq!(v.as_slice(), [2.0]);
        assert_eq!(clients.last(1).unwrap().as_slice(), [2.0]);
        // Tag 5 maps to the same slot as tag 1 in a table of 4.
        let v = clients.observe(5, &get("/"), 2, seen).unwrap();
        assert_eq!(v.as_slice(), [1.0]);
        assert_eq!(clients.last(1), None);
        assert_eq!(clients.arrivals(), 2);
        assert_eq!(clients.tracked(), 1);
        clients.report(9, Vector::from_values(&[0.5]).unwrap());
        assert_eq!(clients.last(9).unwrap().as_slice(), [0.5]);
        assert_eq!(
            clients
                .update(9, |s| s.observe_challenge(true))
                .unwrap()
                .seen(),
            0
        );
    }

    #[test]
    fn tags_are_never_zero_and_differ_by_prefix() {
        let a: Cidr = "203.0.113.7/32".parse().unwrap();
        let b: Cidr = "203.0.113.8/32".parse().unwrap();
        assert_ne!(tag_of(&a), 0);
        assert_ne!(tag_of(&a), tag_of(&b));
    }
}
