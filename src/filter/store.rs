//! Rate-limit state in proxy-wasm shared data, shared by every worker.
//!
//! Each bucket of the [`crate::ratelimit`] table is one shared-data entry
//! (`palisade.rl.<index>`, 64 bytes). Updates are read–modify–write with
//! compare-and-swap, retried on conflict. Shared data has no TTL and no
//! eviction, so the number of entries is fixed by `rate_limiting.buckets`
//! and never grows with the number of clients.

use crate::ratelimit::{bucket_index, tag, Bucket, Limit, Outcome, RateLimitStore};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Conflicts are rare (two workers, same bucket, same instant); after this
/// many the request is admitted rather than stalled.
const MAX_ATTEMPTS: usize = 16;

/// The name of a shared-data entry, `PREFIX<index>`, built on the stack:
/// names are made on every request (a bucket here, a scoring slot in
/// [`super::slots`]), where `format!` would allocate each time.
pub struct EntryName {
    bytes: [u8; 32],
    len: usize,
}

impl EntryName {
    /// `prefix` (at most 12 bytes, ASCII) and `index` in decimal.
    pub fn new(prefix: &'static str, index: usize) -> EntryName {
        let mut digits = [0u8; 20];
        let mut count = 0;
        let mut rest = index;
        for d in digits.iter_mut() {
            *d = b'0' + (rest % 10) as u8;
            count += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut name = EntryName {
            bytes: [0u8; 32],
            len: 0,
        };
        let text = prefix
            .bytes()
            .chain(digits.iter().take(count).rev().copied());
        for (to, b) in name.bytes.iter_mut().zip(text) {
            *to = b;
            name.len += 1;
        }
        name
    }

    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

fn key(index: usize) -> EntryName {
    EntryName::new("palisade.rl.", index)
}

/// Creates every bucket up front. A bucket written for the first time is
/// stored unconditionally (shared data has no "create if absent"), so doing
/// it once here, empty, keeps later updates purely compare-and-swap.
pub fn prepare(buckets: usize) {
    let empty = Bucket::default().to_bytes();
    for index in 0..buckets {
        let name = key(index);
        if let Ok((None, _)) = hostcalls::get_shared_data(name.as_str()) {
            let _ = hostcalls::set_shared_data(name.as_str(), Some(&empty), None);
        }
    }
}

/// The store used by one request.
pub struct SharedStore {
    pub buckets: usize,
    /// Set when the store could not complete an update (admitted anyway).
    pub degraded: bool,
}

impl RateLimitStore for SharedStore {
    fn acquire(&mut self, key_hash: u64, limit: &Limit, now_ns: u64) -> Outcome {
        let name = key(bucket_index(key_hash, self.buckets));
        let name = name.as_str();
        let tag = tag(key_hash);
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            let Ok((bytes, cas)) = hostcalls::get_shared_data(name) else {
                break;
            };
            let mut bucket = bytes
                .as_deref()
                .and_then(Bucket::from_bytes)
                .unwrap_or_default();
            let outcome = bucket.apply(tag, limit, now_ns);
            if !outcome.allowed {
                return outcome; // a denial changes no state
            }
            last = Some(outcome);
            match hostcalls::set_shared_data(name, Some(&bucket.to_bytes()), cas) {
                Ok(()) => return outcome,
                Err(Status::CasMismatch) => continue,
                Err(_) => break,
            }
        }
        self.degraded = true;
        last.unwrap_or(Outcome {
            allowed: true,
            remaining: 0,
            retry_after_ns: 0,
            reset_ns: 0,
        })
    }
}
