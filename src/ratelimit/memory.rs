//! The in-process store: a fixed `Vec` of buckets.

use super::{bucket_index, tag, Bucket, Limit, Outcome, RateLimitStore, BUCKET_BYTES, WAYS};
use std::fmt;

/// The largest table [`MemoryStore::new`] builds: 2²⁴ buckets, 1 GiB.
pub const MAX_BUCKETS: usize = 1 << 24;

/// In-process store with memory fixed at construction:
/// `buckets × 64` bytes, whatever the number of clients.
#[derive(Clone, PartialEq, Eq)]
pub struct MemoryStore {
    buckets: Vec<Bucket>,
}

impl MemoryStore {
    /// A store of `buckets` buckets (each holds a few clients), clamped to
    /// `1..=MAX_BUCKETS`.
    pub fn new(buckets: usize) -> MemoryStore {
        MemoryStore {
            buckets: vec![Bucket::EMPTY; clamped(buckets)],
        }
    }

    /// Number of buckets (after clamping).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Clients the table can track at once without eviction, at best.
    pub fn capacity(&self) -> usize {
        self.buckets.len().saturating_mul(WAYS)
    }

    /// Bytes of limiter state: `buckets × 64`, fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len().saturating_mul(BUCKET_BYTES)
    }

    /// The bucket `key` maps to.
    pub fn bucket_of(&self, key: u64) -> &Bucket {
        let index = bucket_index(key, self.buckets.len());
        self.buckets.get(index).unwrap_or(&Bucket::EMPTY)
    }
}

fn clamped(buckets: usize) -> usize {
    buckets.clamp(1, MAX_BUCKETS)
}

impl RateLimitStore for MemoryStore {
    fn acquire(&mut self, key: u64, limit: &Limit, now_ns: u64) -> Outcome {
        let index = bucket_index(key, self.buckets.len());
        match self.buckets.get_mut(index) {
            Some(bucket) => bucket.apply(tag(key), limit, now_ns),
            // Unreachable: `bucket_index` is below the (non-zero) length.
            None => limit.apply(&mut 0, now_ns),
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("buckets", &self.buckets.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Rate;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn size_is_clamped_and_fixed() {
        assert_eq!(MemoryStore::new(0).buckets(), 1);
        assert_eq!(MemoryStore::new(16384).memory_bytes(), 16384 * 64);
        // Not allocated here: the largest table is 1 GiB.
        assert_eq!(clamped(usize::MAX), MAX_BUCKETS);
        assert_eq!(clamped(MAX_BUCKETS + 1), MAX_BUCKETS);
        assert_eq!(clamped(5), 5);
        assert_eq!(std::mem::size_of::<Bucket>(), BUCKET_BYTES);
        assert_eq!(MemoryStore::new(3).capacity(), 12);
    }

    #[test]
    fn memory_does_not_grow_with_clients() {
        let mut store = MemoryStore::new(8);
        let before = store.memory_bytes();
        let limit = Limit::new(Rate::new(1, SECOND), 0);
        for key in 0..100_000u64 {
            assert!(store.acquire(key, &limit, key).allowed);
        }
        assert_eq!(store.memory_bytes(), before);
        assert_eq!(store.buckets(), 8);
    }

    #[test]
    fn keys_are_limited_independently() {
        let mut store = MemoryStore::new(1);
        let limit = Limit::new(Rate::new(2, SECOND), 1);
        for key in [10u64, 20, 30, 40] {
            for _ in 0..2 {
                assert!(store.acquire(key, &limit, 0).allowed, "key {key}");
            }
            assert!(!store.acquire(key, &limit, 0).allowed, "key {key}");
        }
        assert_eq!(store.bucket_of(10).active(0), 4);
        let o = store.acquire(10, &limit, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, SECOND / 2);
    }

    #[test]
    fn debug_is_short() {
        let text = format!("{:?}", MemoryStore::new(1000));
        assert_eq!(text, "MemoryStore { buckets: 1000, memory_bytes: 64000 }");
    }
}
