//! A first-level index over sorted IPv4 starts: where each bucket of the
//! address space (each /16 at most) begins.
//!
//! A binary search over a million ranges touches ~20 cache lines that are
//! rarely cached. Indexing where each bucket's starts begin narrows the
//! search to the few ranges starting inside the address's bucket, which
//! keeps lookups near 50 ns on such tables. Buckets are about as many as
//! starts (a power of two, /16 at most: 65,537 `u32`s, 256 KiB), so a
//! table of 15,000 ranges gets a 32 KiB index rather than one larger than
//! itself. Small tables skip the index: they fit in cache anyway.

/// Below this many ranges a table is searched directly.
pub const MIN_INDEXED: usize = 4096;

/// The finest buckets: /16.
const MAX_BITS: u32 = 16;

/// For each bucket `h` of the `2^bits` (0..=2^bits, `bits` picked from the
/// number of starts), how many starts lie below its first address. Empty
/// when `starts` is short. The index's length, `2^bits + 1`, tells
/// lookups its `bits`.
pub fn build(starts: &[u32]) -> Vec<u32> {
    if starts.len() < MIN_INDEXED {
        return Vec::new();
    }
    let bits = starts.len().ilog2().min(MAX_BITS);
    let shift = 32 - bits;
    let mut index = Vec::with_capacity((1 << bits) + 1);
    let mut i = 0usize;
    for h in 0..=(1u64 << bits) {
        while i < starts.len() && u64::from(starts[i]) < h << shift {
            i += 1;
        }
        index.push(i as u32);
    }
    index
}

/// The positions `[lo, hi)` of the starts inside `x`'s bucket: every start
/// before `lo` is below `x`, every one from `hi` above it. `None` without
/// an index.
fn bucket(index: &[u32], x: u32) -> Option<(usize, usize)> {
    let bits = index.len().checked_sub(1)?.trailing_zeros();
    let h = x.checked_shr(32u32.checked_sub(bits)?)? as usize;
    Some((*index.get(h)? as usize, *index.get(h + 1)? as usize))
}

/// How many of the sorted `starts` are `<= x`, found through the index.
pub fn count_at_or_below(
    index: &[u32],
    starts: impl Fn(usize) -> u32,
    len: usize,
    x: u32,
) -> usize {
    let (lo, hi) = bucket(index, x).unwrap_or((0, len));
    count_in(lo, hi, starts, x)
}

/// How many of the sorted keys in `[lo, hi)` are `<= x`, plus `lo`: a
/// binary search over keys read through `key`, so tables kept in other
/// layouts (packed bytes, split columns) search the same way.
pub fn count_in<T: Ord>(lo: usize, hi: usize, key: impl Fn(usize) -> T, x: T) -> usize {
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a) / 2;
        if key(mid) <= x {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    a
}

/// The last entry of `table` (sorted by start) starting at or before `x`:
/// the only one whose range can hold `x`.
pub fn predecessor<'a, V>(index: &[u32], table: &'a [(u32, V)], x: u32) -> Option<&'a (u32, V)> {
    count_at_or_below(index, |i| table[i].0, table.len(), x)
        .checked_sub(1)
        .and_then(|i| table.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_count_equals_a_plain_count() {
        let starts: Vec<u32> = (0..20_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) & !0xff)
            .collect();
        let mut starts = starts;
        starts.sort_unstable();
        starts.dedup();
        let index = build(&starts);
        // ~20,000 starts: /14 buckets.
        assert_eq!(index.len(), (1 << 14) + 1);
        for x in [
            0,
            1,
            255,
            256,
            65535,
            65536,
            u32::MAX,
            0x8000_0000,
            0x1234_5678,
        ]
        .into_iter()
        .chain(
            starts
                .iter()
                .flat_map(|&s| [s.wrapping_sub(1), s, s.wrapping_add(1)])
                .take(3000),
        ) {
            let want = starts.partition_point(|&s| s <= x);
            assert_eq!(
                count_at_or_below(&index, |i| starts[i], starts.len(), x),
                want,
                "{x}"
            );
        }
    }

    #[test]
    fn short_tables_have_no_index() {
        assert!(build(&[1, 2, 3]).is_empty());
        assert_eq!(count_at_or_below(&[], |i| [1u32, 2, 3][i], 3, 2), 2);
    }
}
