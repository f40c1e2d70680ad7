//! A first-level index over sorted IPv4 starts: where each /16 begins.
//!
//! A binary search over a million ranges touches ~20 cache lines that are
//! rarely cached. Indexing the position of every /16 first (65,537 `u32`s,
//! 256 KiB) narrows the search to the few ranges starting inside the
//! address's /16, which keeps lookups near 50 ns on such tables. Small
//! tables skip the index: they fit in cache anyway.

/// Below this many ranges a table is searched directly.
pub const MIN_INDEXED: usize = 4096;

/// For each /16 `h` (0..=65536), how many starts lie below `h << 16`.
/// Empty when `starts` is short.
pub fn build(starts: &[u32]) -> Vec<u32> {
    if starts.len() < MIN_INDEXED {
        return Vec::new();
    }
    let mut index = Vec::with_capacity(65537);
    let mut i = 0usize;
    for h in 0..=65536u64 {
        while i < starts.len() && u64::from(starts[i]) < h << 16 {
            i += 1;
        }
        index.push(i as u32);
    }
    index
}

/// How many of the sorted `starts` are `<= x`, found through the index.
pub fn count_at_or_below(
    index: &[u32],
    starts: impl Fn(usize) -> u32,
    len: usize,
    x: u32,
) -> usize {
    let h = (x >> 16) as usize;
    let (lo, hi) = match (index.get(h), index.get(h + 1)) {
        (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
        _ => (0, len),
    };
    // Every start before lo is below x's /16, every one from hi above it.
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
        assert_eq!(index.len(), 65537);
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
