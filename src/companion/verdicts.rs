//! The check's recent verdicts, by nginx's `$request_id`.
//!
//! nginx asks the check more than once for one client request: again after
//! each internal redirect (`index`, `try_files`), with the same
//! `$request_id`, and the `error_page` of a refused request then fetches
//! the response to send (`/auth/reply`). Keeping the verdict per request id
//! makes the repeats free and exact: a repeated check returns the first
//! answer without counting the request against its rate limits again, and
//! the reply is the very response the filter would have sent for that
//! decision, rendered when the decision was made.
//!
//! Bounded by count and by bytes, oldest first out; an entry lives
//! [`VERDICT_TTL_NS`] at most. A verdict answers only the request it was
//! made for: method, URI and client must match as well as the id, so a
//! forged or reused id cannot fetch another request's verdict.

use crate::policy::{AuthAnswer, Response};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// How long a verdict is kept: internal redirects and the reply follow the
/// check within milliseconds, an `X-Accel-Redirect` after the upstream's
/// answer.
pub const VERDICT_TTL_NS: u64 = 30 * 1_000_000_000;
/// The most verdicts kept at once.
pub const MAX_VERDICTS: usize = 16_384;
/// The most bytes of rendered responses kept at once.
pub const MAX_VERDICT_BYTES: usize = 16 << 20;

/// What a request id must come with to find its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asked {
    pub method: String,
    pub uri: String,
    pub client: Option<IpAddr>,
}

/// One verdict: the check's answer and, for a refused request, the response
/// the `error_page` sends.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub answer: AuthAnswer,
    pub response: Option<Response>,
}

impl Verdict {
    fn bytes(&self) -> usize {
        self.response.as_ref().map_or(0, |r| {
            r.body.len()
                + r.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
        })
    }
}

struct Entry {
    asked: Asked,
    verdict: Verdict,
    at_ns: u64,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Entry>,
    /// Ids in insertion order, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

/// The verdict table (see the module docs).
#[derive(Default)]
pub struct Verdicts {
    table: Mutex<Table>,
}

/// Whether `id` looks like a request id worth keeping: nginx's are 32 hex
/// digits; anything printable up to 64 bytes is accepted.
pub fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Verdicts {
    /// The verdict for `id`, if it was made for `asked` in the last
    /// [`VERDICT_TTL_NS`].
    pub fn get(&self, id: &str, asked: &Asked, now_ns: u64) -> Option<Verdict> {
        let table = self.lock();
        let entry = table.by_id.get(id)?;
        (entry.asked == *asked && now_ns.saturating_sub(entry.at_ns) < VERDICT_TTL_NS)
            .then(|| entry.verdict.clone())
    }

    /// Keeps `verdict` for `id`, evicting the oldest entries past the bounds.
    pub fn insert(&self, id: &str, asked: Asked, verdict: Verdict, now_ns: u64) {
        let mut table = self.lock();
        let bytes = verdict.bytes();
        if bytes > MAX_VERDICT_BYTES {
            return;
        }
        if let Some(old) = table.by_id.remove(id) {
            table.bytes -= old.verdict.bytes();
            table.order.retain(|k| k != id);
        }
        while let Some(oldest) = table.order.front() {
            let stale = table
                .by_id
                .get(oldest)
                .is_none_or(|e| now_ns.saturating_sub(e.at_ns) >= VERDICT_TTL_NS);
            let full = table.by_id.len() >= MAX_VERDICTS || table.bytes + bytes > MAX_VERDICT_BYTES;
            if !(stale || full) {
                break;
            }
            if let Some(key) = table.order.pop_front() {
                if let Some(e) = table.by_id.remove(&key) {
                    table.bytes -= e.verdict.bytes();
                }
            }
        }
        table.bytes += bytes;
        table.order.push_back(id.to_string());
        table.by_id.insert(
            id.to_string(),
            Entry {
                asked,
                verdict,
                at_ns: now_ns,
            },
        );
    }

    /// Verdicts held now (for `/stats`).
    pub fn held(&self) -> usize {
        self.lock().by_id.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(uri: &str) -> Asked {
        Asked {
            method: "GET".into(),
            uri: uri.into(),
            client: "203.0.113.7".parse().ok(),
        }
    }

    fn verdict(status: u16, body: usize) -> Verdict {
        Verdict {
            answer: AuthAnswer {
                status,
                action: "block",
                headers: vec![],
            },
            response: (body > 0).then(|| Response {
                status,
                headers: vec![],
                body: "x".repeat(body),
            }),
        }
    }

    #[test]
    fn a_verdict_answers_only_its_own_request_and_only_for_a_while() {
        let v = Verdicts::default();
        v.insert("a", asked("/x"), verdict(401, 10), 0);
        assert_eq!(v.get("a", &asked("/x"), 1).unwrap().answer.status, 401);
        assert!(v.get("a", &asked("/y"), 1).is_none(), "another URI");
        assert!(v.get("b", &asked("/x"), 1).is_none(), "another id");
        assert!(
            v.get("a", &asked("/x"), VERDICT_TTL_NS).is_none(),
            "expired"
        );
    }

    #[test]
    fn the_table_is_bounded_by_count_and_bytes() {
        let v = Verdicts::default();
        for i in 0..MAX_VERDICTS + 10 {
            v.insert(&i.to_string(), asked("/"), verdict(204, 0), 1);
        }
        assert_eq!(v.held(), MAX_VERDICTS);
        assert!(
            v.get("0", &asked("/"), 2).is_none(),
            "the oldest went first"
        );
        let big = MAX_VERDICT_BYTES / 4;
        for i in 0..8 {
            v.insert(&format!("big{i}"), asked("/"), verdict(403, big), 1);
        }
        assert!(v.lock().bytes <= MAX_VERDICT_BYTES);
        assert!(v.get("big7", &asked("/"), 2).is_some());
        assert!(v.get("big0", &asked("/"), 2).is_none());
    }

    #[test]
    fn request_ids_are_short_and_printable() {
        assert!(is_request_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_request_id(""));
        assert!(!is_request_id(&"a".repeat(65)));
        assert!(!is_request_id("a b"));
    }
}
