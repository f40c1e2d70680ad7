//! The bucket layout: [`WAYS`] `(tag, TAT)` entries in 64 plain bytes, so
//! any host (process memory, proxy-wasm shared data) can store it.

use super::{Limit, Outcome};

/// Entries per bucket.
pub const WAYS: usize = 4;

/// Size of a serialized [`Bucket`]: `WAYS × (tag: u64, tat: u64)`.
pub const BUCKET_BYTES: usize = 16 * WAYS;

/// One key's state in a bucket. `tag == 0` marks an empty entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Entry {
    pub tag: u64,
    /// Theoretical arrival time, nanoseconds; ≤ now means idle.
    pub tat: u64,
}

/// [`WAYS`] entries: the keys of one table slot. All zero = empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bucket {
    pub entries: [Entry; WAYS],
}

impl Bucket {
    pub const EMPTY: Bucket = Bucket {
        entries: [Entry { tag: 0, tat: 0 }; WAYS],
    };

    /// Counts one request for the key with `tag` (see [`tag`]) against
    /// `limit` at `now_ns`. Uses the entry with that tag; otherwise an idle
    /// entry (TAT ≤ now, or empty); otherwise evicts the entry with the
    /// smallest TAT. A denied request leaves the bucket unchanged (a new
    /// key that is denied takes no entry). Tag `0` is reserved for empty
    /// entries and is treated as `1`.
    pub fn apply(&mut self, tag: u64, limit: &Limit, now_ns: u64) -> Outcome {
        let tag = tag.max(1);
        let slot = self
            .position(|e| e.tag == tag)
            .or_else(|| self.position(|e| e.tag == 0 || e.tat <= now_ns))
            .unwrap_or_else(|| self.closest_to_idle());
        let Some(entry) = self.entries.get_mut(slot) else {
            // Unreachable: every slot above is an index into `entries`.
            return limit.apply(&mut 0, now_ns);
        };
        let mut tat = if entry.tag == tag { entry.tat } else { 0 };
        let outcome = limit.apply(&mut tat, now_ns);
        if outcome.allowed {
            *entry = Entry { tag, tat };
        }
        outcome
    }

    /// [`Bucket::apply`] for a client key: `apply(tag(key), ..)`.
    pub fn apply_key(&mut self, key: u64, limit: &Limit, now_ns: u64) -> Outcome {
        self.apply(tag(key), limit, now_ns)
    }

    /// Entries still holding state at `now_ns` (TAT > now).
    pub fn active(&self, now_ns: u64) -> usize {
        self.entries
            .iter()
            .filter(|e| e.tag != 0 && e.tat > now_ns)
            .count()
    }

    fn position(&self, pred: impl Fn(&Entry) -> bool) -> Option<usize> {
        self.entries.iter().position(pred)
    }

    fn closest_to_idle(&self) -> usize {
        self.entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.tat)
            .map_or(0, |(i, _)| i)
    }

    /// Little-endian `(tag, tat)` pairs, entry by entry.
    pub fn to_bytes(&self) -> [u8; BUCKET_BYTES] {
        let mut out = [0u8; BUCKET_BYTES];
        for (chunk, entry) in out.chunks_exact_mut(16).zip(&self.entries) {
            let (tag, tat) = chunk.split_at_mut(8);
            tag.copy_from_slice(&entry.tag.to_le_bytes());
            tat.copy_from_slice(&entry.tat.to_le_bytes());
        }
        out
    }

    /// Reads [`Bucket::to_bytes`] output; `None` unless exactly
    /// [`BUCKET_BYTES`] long. Normalizes foreign data: an empty entry's TAT
    /// is cleared, and duplicate tags are merged keeping the largest TAT
    /// (the stricter state).
    pub fn from_bytes(bytes: &[u8]) -> Option<Bucket> {
        if bytes.len() != BUCKET_BYTES {
            return None;
        }
        let mut bucket = Bucket::EMPTY;
        for (chunk, entry) in bytes.chunks_exact(16).zip(bucket.entries.iter_mut()) {
            let (tag, tat) = chunk.split_at(8);
            entry.tag = u64::from_le_bytes(tag.try_into().ok()?);
            entry.tat = u64::from_le_bytes(tat.try_into().ok()?);
            if entry.tag == 0 {
                entry.tat = 0;
            }
        }
        for i in 1..WAYS {
            let (earlier, rest) = bucket.entries.split_at_mut(i);
            let Some(entry) = rest.first_mut() else {
                continue;
            };
            if entry.tag == 0 {
                continue;
            }
            if let Some(first) = earlier.iter_mut().find(|e| e.tag == entry.tag) {
                first.tat = first.tat.max(entry.tat);
                *entry = Entry::default();
            }
        }
        Some(bucket)
    }
}

/// splitmix64's finalizer with its increment: a bijection on `u64` that
/// spreads every input bit over the whole output, so structured keys (raw
/// addresses, small integers) still use every bucket.
fn mix(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bucket of `key` in a table of `buckets` buckets (`0` if `buckets`
/// is 0 or 1), from the high bits of the mixed key.
pub fn bucket_index(key: u64, buckets: usize) -> usize {
    if buckets <= 1 {
        return 0;
    }
    let scaled = (u128::from(mix(key)) * buckets as u128) >> 64;
    usize::try_from(scaled).unwrap_or(0)
}

/// The tag of `key` inside its bucket: the whole mixed key, never `0`.
/// The mixer is a bijection, so distinct keys get distinct tags (except
/// the single key mixing to 0, which shares tag 1).
pub fn tag(key: u64) -> u64 {
    mix(key).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Rate;

    const SECOND: u64 = 1_000_000_000;

    fn per_second(count: u32, burst: u32) -> Limit {
        Limit::new(Rate::new(count, SECOND), burst)
    }

    fn tags(b: &Bucket) -> Vec<u64> {
        b.entries.iter().map(|e| e.tag).collect()
    }

    #[test]
    fn layout_constants() {
        assert_eq!(BUCKET_BYTES, 64);
        assert_eq!(Bucket::EMPTY.to_bytes(), [0u8; 64]);
        assert_eq!(Bucket::default(), Bucket::EMPTY);
    }

    #[test]
    fn same_tag_shares_state_different_tags_do_not() {
        let l = per_second(1, 0);
        let mut b = Bucket::EMPTY;
        assert!(b.apply(7, &l, 100).allowed);
        assert!(!b.apply(7, &l, 100).allowed);
        assert!(b.apply(8, &l, 100).allowed);
        assert!(!b.apply(8, &l, 200).allowed);
        assert_eq!(tags(&b), [7, 8, 0, 0]);
        assert_eq!(b.active(100), 2);
        assert_eq!(b.active(SECOND + 100), 0);
    }

    #[test]
    fn tag_zero_is_tag_one() {
        let l = per_second(1, 0);
        let mut b = Bucket::EMPTY;
        assert!(b.apply(0, &l, 5).allowed);
        assert_eq!(
            b.entries[0],
            Entry {
                tag: 1,
                tat: 5 + SECOND
            }
        );
        assert!(!b.apply(1, &l, 5).allowed);
    }

    #[test]
    fn idle_entries_are_reused_before_anything_is_evicted() {
        let l = per_second(1, 0);
        let mut b = Bucket::EMPTY;
        for (i, tag) in [1u64, 2, 3, 4].iter().enumerate() {
            assert!(b.apply(*tag, &l, i as u64 * 100).allowed);
        }
        // At SECOND + 150, tags 1 and 2 are idle (TAT 1s and 1.1s).
        let now = SECOND + 150;
        assert!(b.apply(5, &l, now).allowed);
        assert_eq!(tags(&b), [5, 2, 3, 4]);
        assert!(b.apply(6, &l, now).allowed);
        assert_eq!(tags(&b), [5, 6, 3, 4]);
        // Tags 3 and 4 kept their state.
        assert!(!b.apply(3, &l, now).allowed);
        assert!(!b.apply(4, &l, now).allowed);
    }

    #[test]
    fn full_bucket_evicts_smallest_tat() {
        let l = per_second(1, 0);
        let mut b = Bucket::EMPTY;
        // TATs: 1s+300, 1s+100, 1s+200, 1s+400.
        for (tag, now) in [(1u64, 300u64), (2, 100), (3, 200), (4, 400)] {
            assert!(b.apply(tag, &l, now).allowed);
        }
        let o = b.apply(5, &l, 500);
        assert!(o.allowed, "a new key starts idle");
        assert_eq!(tags(&b), [1, 5, 3, 4]);
        // The evicted key lost its debt: it is admitted again (under-limit).
        assert!(b.apply(2, &l, 600).allowed);
        assert_eq!(tags(&b), [1, 5, 2, 4], "then tag 3 (TAT 1s+200) went");
        // Keys never evicted are still limited.
        assert!(!b.apply(1, &l, 700).allowed);
        assert!(!b.apply(4, &l, 700).allowed);
    }

    #[test]
    fn denied_new_key_takes_no_entry() {
        let mut b = Bucket::EMPTY;
        assert!(b.apply(3, &per_second(1, 0), 0).allowed);
        let before = b;
        let o = b.apply(9, &per_second(0, 0), 0);
        assert!(!o.allowed);
        assert_eq!(b, before);
        let o = b.apply(3, &per_second(1, 0), 10);
        assert!(!o.allowed);
        assert_eq!(b, before);
    }

    #[test]
    fn bytes_round_trip() {
        let b = Bucket {
            entries: [
                Entry { tag: 1, tat: 2 },
                Entry {
                    tag: u64::MAX,
                    tat: u64::MAX - 1,
                },
                Entry::default(),
                Entry {
                    tag: 0x0102_0304_0506_0708,
                    tat: 0x1112_1314_1516_1718,
                },
            ],
        };
        let bytes = b.to_bytes();
        assert_eq!(&bytes[..8], &1u64.to_le_bytes());
        assert_eq!(&bytes[8..16], &2u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Bucket::from_bytes(&bytes), Some(b));
        assert_eq!(Bucket::from_bytes(&[0u8; 64]), Some(Bucket::EMPTY));
    }

    #[test]
    fn from_bytes_rejects_wrong_length() {
        for len in [0usize, 1, 16, 63, 65, 128] {
            assert_eq!(Bucket::from_bytes(&vec![0u8; len]), None, "{len}");
        }
    }

    #[test]
    fn from_bytes_normalizes_foreign_data() {
        let mut bytes = [0u8; 64];
        // Entry 0: tag 0 with a stray TAT. Entries 1 and 3: same tag.
        bytes[8..16].copy_from_slice(&99u64.to_le_bytes());
        bytes[16..24].copy_from_slice(&5u64.to_le_bytes());
        bytes[24..32].copy_from_slice(&10u64.to_le_bytes());
        bytes[48..56].copy_from_slice(&5u64.to_le_bytes());
        bytes[56..64].copy_from_slice(&20u64.to_le_bytes());
        let b = Bucket::from_bytes(&bytes);
        let expected = Bucket {
            entries: [
                Entry::default(),
                Entry { tag: 5, tat: 20 },
                Entry::default(),
                Entry::default(),
            ],
        };
        assert_eq!(b, Some(expected));
    }

    #[test]
    fn index_is_in_range_and_tag_never_zero() {
        for buckets in [0usize, 1, 2, 3, 7, 1024, usize::MAX] {
            for key in [0u64, 1, 2, 42, u64::MAX, 0x61C8_8646_80B5_83EB] {
                let i = bucket_index(key, buckets);
                assert!(i < buckets.max(1), "{key} in {buckets}");
            }
        }
        // The one key that mixes to 0.
        let zero_key = 0u64.wrapping_sub(0x9E37_79B9_7F4A_7C15);
        assert_eq!(mix(zero_key), 0);
        assert_eq!(tag(zero_key), 1);
        for key in 0..10_000u64 {
            assert_ne!(tag(key), 0);
        }
    }

    #[test]
    fn sequential_keys_spread_and_differ_in_tag() {
        let buckets = 64;
        let mut per_bucket = vec![Vec::new(); buckets];
        for key in 0..6_400u64 {
            per_bucket[bucket_index(key, buckets)].push(tag(key));
        }
        for tags in &mut per_bucket {
            // Roughly uniform: 100 expected per bucket.
            assert!((50..=150).contains(&tags.len()), "{}", tags.len());
            let n = tags.len();
            tags.sort_unstable();
            tags.dedup();
            assert_eq!(tags.len(), n, "keys sharing a bucket share a tag");
        }
    }
}
