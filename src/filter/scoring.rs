//! Learned scores on the request path (only with `scoring.enabled`; with
//! scoring off the filter makes none of these host calls).
//!
//! A client's behaviour and cached score live in its shared-data slot
//! ([`slots`]), and each worker keeps write-behind copies of the slots it
//! used a moment ago ([`LocalSlots`]; the rules, bounds and staleness are
//! in [`crate::scoring::local`]). Per request:
//! - a client this worker synced within the last 100 ms is served from
//!   the copy with no host call: its cached score goes into
//!   [`Policy::decide_scored`] and the request is counted in the copy, to
//!   be folded into the slot at the next sync;
//! - any other request reads the slot before the decision and writes it
//!   back after (compare-and-swap, with this worker's pending events for
//!   the client folded in, maybe a report queued). So does every request
//!   on a `login` route and every request whose report is due, so that
//!   failed logins and the one-report-per-interval rule stay exact across
//!   workers.
//!
//! A 4xx answer is counted in the copy, or with one read-modify-write
//! where there is none and always on a `login` route; other answers cost
//! nothing beyond reading the status. Nothing here waits for the
//! companion, except on `score: blocking` routes for a client without a
//! fresh score ([`Scorer::step`]), which first re-reads the slot: a score
//! another worker stored is used, never waited for again.

use super::health;
use super::metrics::{Fallback, Metrics};
use super::now_ns;
use super::reports;
use super::slots::{self, Fetched, Updated};
use crate::config::ScoreUse;
use crate::net::Cidr;
use crate::policy::{CompanionHealth, Decision, Policy, Request};
use crate::scoring::cache::{Slot, SlotKey};
use crate::scoring::local::{Event, LocalSlots};
use crate::scoring::report::Report;
use crate::scoring::{Observation, Scored, Sighting, Vector, REQUEST};
use std::cell::RefCell;
use std::time::Duration;

/// What every HTTP context of a VM shares for scoring.
pub struct Scorer {
    /// The report queue; `None` if the host refused it (no reports then).
    queue: Option<u32>,
    slots: usize,
    /// This worker's copies of the slots it used a moment ago. Borrowed
    /// only between host calls, never across one.
    local: RefCell<LocalSlots>,
}

/// A request's client, as scoring knows it before the decision.
#[derive(Debug, Clone, Copy)]
pub struct Looked {
    pub key: SlotKey,
    prefix: Cidr,
    source: Source,
    /// The cached score, if it still applies.
    pub fresh: Option<Scored>,
}

/// Where a request's view of its client came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// This worker's copy: no host call made.
    Local,
    /// The shared slot, as read (`None`: the host refused).
    Shared(Option<Fetched>),
}

impl Looked {
    /// Reads the client's shared slot.
    fn read(key: SlotKey, prefix: Cidr, now: u64) -> Looked {
        let fetched = slots::fetch(key.index);
        let fresh = fetched
            .and_then(|f| f.stored)
            .filter(|s| s.state.tag == key.tag)
            .and_then(|s| s.fresh_score(now));
        Looked {
            key,
            prefix,
            source: Source::Shared(fetched),
            fresh,
        }
    }

    /// The read made, if any, which a write can start from.
    fn fetched(&self) -> Option<Fetched> {
        match self.source {
            Source::Local => None,
            Source::Shared(fetched) => fetched,
        }
    }
}

/// How a request is counted in its client's slot.
#[derive(Clone, Copy)]
enum Counting<'d, 'p> {
    /// After its decision (the ordinary path): a report if one is due.
    Decided(&'d Decision<'p>),
    /// Before it, to ask for a blocking score: always a report, and the
    /// client class is not known yet.
    Asking { login: bool },
}

/// What counting a request in its client's slot left to do.
#[derive(Default)]
struct Counted {
    /// The client's features, to send.
    report: Option<Report>,
    /// Whether to read the answer's status.
    watch_status: bool,
}

/// Where a request goes once its client's slot is read.
pub enum Step {
    /// Decide now, with this score (or on rules only).
    Decide(Option<Scored>),
    /// Wait for the companion's answer to this report (blocking routes).
    Wait(u32, Report),
}

impl Scorer {
    /// The scorer of a VM whose policy enables scoring; creates the slots.
    pub fn new(policy: &Policy) -> Option<Scorer> {
        if !policy.scoring().enabled {
            return None;
        }
        let slots = usize::try_from(policy.scoring().slots).unwrap_or(0);
        slots::prepare(slots);
        Some(Scorer {
            queue: reports::register(),
            slots,
            local: RefCell::new(LocalSlots::default()),
        })
    }

    /// The client's slot: this worker's copy if it is recent, else the
    /// shared slot as read now; `None` for a request without a client
    /// address (nothing to key it on: rules only).
    pub fn look_up(&self, policy: &Policy, req: &Request, now: u64) -> Option<Looked> {
        let prefix = policy.client_prefix(policy.client_ip(req)?);
        let key = SlotKey::of(&prefix, self.slots);
        let copy = self
            .local
            .borrow()
            .usable(key, now)
            .map(|view| view.fresh_score(now));
        Some(match copy {
            Some(fresh) => Looked {
                key,
                prefix,
                source: Source::Local,
                fresh,
            },
            None => Looked::read(key, prefix, now),
        })
    }

    /// Before the decision: the cached score, or on a blocking route
    /// without one, a `/score` call to wait for. Counts the request in the
    /// client's slot itself when it waits (the report must include it).
    pub fn step(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        req: &Request,
        looked: &mut Looked,
        now: u64,
    ) -> Step {
        if looked.fresh.is_some() {
            return Step::Decide(looked.fresh);
        }
        let (score_use, login) = policy.score_route(req);
        if score_use == ScoreUse::Off {
            return Step::Decide(None);
        }
        if health::read(policy) == CompanionHealth::Down {
            metrics.score_fallback(Fallback::CompanionDown);
            return Step::Decide(None);
        }
        if score_use != ScoreUse::Blocking {
            return Step::Decide(None);
        }
        // Wait only for a score nobody has: another worker may have stored
        // one since this worker's copy was synced.
        if matches!(looked.source, Source::Local) {
            *looked = Looked::read(looked.key, looked.prefix, now);
            if looked.fresh.is_some() {
                return Step::Decide(looked.fresh);
            }
        }
        let asking = Counting::Asking { login };
        let Some(report) = self.count(policy, metrics, req, looked, asking, now).report else {
            return Step::Decide(None);
        };
        let timeout = Duration::from_millis(policy.scoring().blocking_timeout_ms);
        match reports::dispatch(policy, std::slice::from_ref(&report), timeout) {
            Ok(token) => Step::Wait(token, report),
            Err(_) => {
                metrics.score_fallback(Fallback::Error);
                Step::Decide(None)
            }
        }
    }

    /// After the decision: counts the request in the client's slot and
    /// queues a report if the client's score is missing or half stale.
    /// Says whether to read the answer's status
    /// ([`ClientState::watches_status`](crate::scoring::ClientState::watches_status)).
    pub fn record(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        req: &Request,
        looked: &Looked,
        decision: &Decision,
        now: u64,
    ) -> bool {
        let decided = Counting::Decided(decision);
        let counted = self.count(policy, metrics, req, looked, decided, now);
        if let (Some(report), Some(queue)) = (counted.report, self.queue) {
            let _ = reports::enqueue(queue, &report);
        }
        counted.watch_status
    }

    /// Counts a request in its client's slot: in this worker's copy if the
    /// request was served from it, is off `login` routes and finds no
    /// report possibly due; otherwise (always when [`Counting::Asking`])
    /// by a sync, which marks the slot reported and returns the report
    /// when one is due.
    fn count(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        req: &Request,
        looked: &Looked,
        counting: Counting,
        now: u64,
    ) -> Counted {
        let (login, class, force) = match counting {
            Counting::Decided(d) => (d.login, Some(d.client.class), false),
            Counting::Asking { login } => (login, None, true),
        };
        let request = Event::Request {
            at_ns: now,
            sighting: Sighting::of(&Observation::of(req, login)),
        };
        let (ttl, interval) = (reports::ttl_ns(policy), reports::interval_ns(policy));
        if matches!(looked.source, Source::Local) && !login && !force {
            let mut local = self.local.borrow_mut();
            // Whether a report is due only the shared slot can say (another
            // worker may have sent it): the copy says when to ask.
            let report_due = local
                .usable(looked.key, now)
                .is_none_or(|view| view.wants_report(now, ttl, interval));
            if !report_due {
                if let Some(view) = local.buffer(looked.key, request, now) {
                    return Counted {
                        report: None,
                        watch_status: view.state.watches_status(false),
                    };
                }
            }
        }
        let mut reported = false;
        let written = self.sync(metrics, looked.key, looked.fetched(), true, now, |slot| {
            request.apply(&mut slot.state);
            reported = force || slot.wants_report(now, ttl, interval);
            if reported {
                slot.reported_ns = now;
            }
            true
        });
        let Some(slot) = written else {
            return Counted::default();
        };
        let report = reported.then(|| Report {
            key: looked.key,
            client: looked.prefix.to_string(),
            features: Vector::of(&REQUEST, &slot.state, &policy.score_facts(req, class), now),
        });
        Counted {
            report,
            watch_status: slot.state.watches_status(login),
        }
    }

    /// A read-modify-write of client `key`'s shared slot ([`slots::update`],
    /// from `first` if a read was made) that folds in this worker's pending
    /// events for the client before `change`, and makes the result the
    /// worker's copy. `by_client`: the change is the client's own doing (a
    /// request, a challenge outcome), so it takes the slot over from
    /// another client, and its result becomes a copy even where there was
    /// none. The slot as written, or `None` (the slot is another client's,
    /// or the update was given up, which is counted: the pending events
    /// are lost with it).
    fn sync(
        &self,
        metrics: &Metrics,
        key: SlotKey,
        first: Option<Fetched>,
        by_client: bool,
        now: u64,
        mut change: impl FnMut(&mut Slot) -> bool,
    ) -> Option<Slot> {
        // A copy: the table is not borrowed during the host calls.
        let pending = self.local.borrow().pending(key);
        let take_over = by_client || pending.has_request();
        let updated = slots::update(key, first, take_over, |slot| {
            pending.apply(&mut slot.state);
            change(slot) || !pending.is_empty()
        });
        let mut local = self.local.borrow_mut();
        match updated {
            Updated::Written(slot) => {
                if by_client {
                    local.adopt(key, slot, now);
                } else {
                    local.synced(key, slot, now);
                }
                Some(slot)
            }
            Updated::Skipped => {
                local.forget(key);
                None
            }
            Updated::Degraded => {
                metrics.slot_degraded();
                local.forget(key);
                None
            }
        }
    }

    /// On the root context's tick: folds every copy's pending events into
    /// the shared slots, so that other workers see them within a tick.
    pub fn flush(&self, metrics: &Metrics, now: u64) {
        let due = self.local.borrow_mut().due(now);
        for key in due {
            self.sync(metrics, key, None, false, now, |_| false);
        }
    }

    /// Stores a score from the companion in its client's slot (unless
    /// another client has taken the slot since), and in this worker's copy.
    pub fn store_score(&self, metrics: &Metrics, key: SlotKey, scored: Scored, now: u64, ttl: u64) {
        self.sync(metrics, key, None, false, now, |slot| {
            slot.store_score(scored, now, ttl);
            true
        });
    }

    /// Counts a challenge outcome from the in-filter verify endpoint.
    pub fn record_challenge(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        req: &Request,
        passed: bool,
        now: u64,
    ) {
        let Some(ip) = policy.client_ip(req) else {
            return;
        };
        let key = SlotKey::of(&policy.client_prefix(ip), self.slots);
        self.sync(metrics, key, None, true, now, |slot| {
            slot.state.observe_challenge(passed);
            true
        });
    }

    pub fn queue(&self) -> Option<u32> {
        self.queue
    }

    /// On the response (when the request's counting said to read its
    /// status): counts a 4xx in the client's copy, or in its slot where
    /// there is no copy to use and on a `login` route (other statuses
    /// change nothing, so cost nothing beyond reading the status).
    pub fn record_response(&self, metrics: &Metrics, key: SlotKey, status: u16, login: bool) {
        if !(400..500).contains(&status) {
            return;
        }
        let now = now_ns();
        let answer = Event::Answer { status, login };
        if !login && self.local.borrow_mut().buffer(key, answer, now).is_some() {
            return;
        }
        self.sync(metrics, key, None, false, now, |slot| {
            slot.state.observe_response(status, login)
        });
    }
}
