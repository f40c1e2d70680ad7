//! Learned scores on the request path (only with `scoring.enabled`; with
//! scoring off the filter makes none of these host calls).
//!
//! Per request: one read of the client's slot before the decision (its
//! cached score goes into [`Policy::decide_scored`]) and one
//! compare-and-swap write after it (the request counted in the client's
//! behaviour, maybe a report queued). A 4xx answer costs one more
//! read-modify-write on the response; other answers none. Nothing here
//! waits for the companion, except on `score: blocking` routes for a
//! client without a fresh score ([`Scorer::ask`]).

use super::health;
use super::metrics::{Fallback, Metrics};
use super::reports;
use super::slots::{self, Fetched, Updated};
use crate::config::ScoreUse;
use crate::net::Cidr;
use crate::policy::{CompanionHealth, Decision, Policy, Request};
use crate::scoring::cache::SlotKey;
use crate::scoring::report::Report;
use crate::scoring::{Observation, Scored, Vector, REQUEST};
use std::time::Duration;

/// What every HTTP context of a VM shares for scoring.
pub struct Scorer {
    /// The report queue; `None` if the host refused it (no reports then).
    queue: Option<u32>,
    slots: usize,
}

/// A request's client, as scoring knows it before the decision.
#[derive(Debug, Clone, Copy)]
pub struct Looked {
    pub key: SlotKey,
    prefix: Cidr,
    /// The slot as read; `None` if the host refused.
    fetched: Option<Fetched>,
    /// The cached score, if it still applies.
    pub fresh: Option<Scored>,
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
        })
    }

    /// Reads the client's slot; `None` for a request without a client
    /// address (nothing to key it on: rules only).
    pub fn look_up(&self, policy: &Policy, req: &Request, now: u64) -> Option<Looked> {
        let prefix = policy.client_prefix(policy.client_ip(req)?);
        let key = SlotKey::of(&prefix, self.slots);
        let fetched = slots::fetch(key.index);
        let fresh = fetched
            .and_then(|f| f.stored)
            .filter(|s| s.state.tag == key.tag)
            .and_then(|s| s.fresh_score(now));
        Some(Looked {
            key,
            prefix,
            fetched,
            fresh,
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
        looked: &Looked,
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

    /// The read-modify-write of a request: observes it, and when a report
    /// is wanted (always, when [`Counting::Asking`]) marks the slot
    /// reported and returns the report to send.
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
        let observation = Observation::of(req, login);
        let (ttl, interval) = (reports::ttl_ns(policy), reports::interval_ns(policy));
        let mut reported = false;
        let written = slots::update(looked.key, looked.fetched, true, |slot| {
            slot.state.observe(&observation, now);
            reported = force || slot.wants_report(now, ttl, interval);
            if reported {
                slot.reported_ns = now;
            }
            true
        });
        let slot = match written {
            Updated::Written(slot) => slot,
            Updated::Skipped => return Counted::default(),
            Updated::Degraded => {
                metrics.slot_degraded();
                return Counted::default();
            }
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

    /// Counts a challenge outcome from the in-filter verify endpoint.
    pub fn record_challenge(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        req: &Request,
        passed: bool,
        now: u64,
    ) {
        let Some(looked) = self.look_up(policy, req, now) else {
            return;
        };
        let updated = slots::update(looked.key, looked.fetched, true, |slot| {
            slot.state.observe_challenge(passed);
            true
        });
        if matches!(updated, Updated::Degraded) {
            metrics.slot_degraded();
        }
    }

    pub fn queue(&self) -> Option<u32> {
        self.queue
    }

    /// On the response (when the request's counting said to read its
    /// status): counts a 4xx in the client's slot (other statuses change
    /// nothing, so cost nothing beyond reading the status).
    pub fn record_response(&self, metrics: &Metrics, key: SlotKey, status: u16, login: bool) {
        if !(400..500).contains(&status) {
            return;
        }
        let updated = slots::update(key, None, false, |slot| {
            slot.state.observe_response(status, login)
        });
        if matches!(updated, Updated::Degraded) {
            metrics.slot_degraded();
        }
    }
}
