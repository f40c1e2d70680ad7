//! Membership in many IP sets with one search.
//!
//! Rules test a client against several named lists; with large lists each
//! test is a binary search over hundreds of thousands of ranges. A
//! [`LabelTable`] merges up to 64 sets at configuration time into one table
//! of boundaries, each carrying the bitmask of sets that cover the addresses
//! from it up to the next boundary. One search then answers for every set.

use super::{canonical, index, IpSet};
use std::net::IpAddr;

/// The most sets one table can label (one bit each).
pub const MAX_LABELS: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct LabelTable {
    v4: Segments<u32>,
    v6: Segments<u128>,
    /// Where each IPv4 bucket starts in `v4.starts` (large tables only; see [`index`]).
    v4_index: Vec<u32>,
}

/// Boundaries and the mask from each one up to the next, as two columns:
/// a vector of `(start, mask)` pairs would pad every IPv4 entry from 12 to
/// 16 bytes.
#[derive(Debug, Clone, Default)]
struct Segments<T> {
    starts: Vec<T>,
    masks: Vec<u64>,
}

impl<T: Ord + Copy + num::Step> Segments<T> {
    /// Sized exactly (one counting sweep, then the filling one): the table
    /// lives as long as the policy, and growing it by doubling would leave
    /// a peak of up to twice its size behind in a wasm VM's memory.
    fn new(sets: &[&[(T, T)]]) -> Segments<T> {
        let n = Sweep::new(sets).count();
        let mut segments = Segments {
            starts: Vec::with_capacity(n),
            masks: Vec::with_capacity(n),
        };
        for (start, mask) in Sweep::new(sets) {
            segments.starts.push(start);
            segments.masks.push(mask);
        }
        segments
    }

    /// The mask of the segment holding an address that `after` starts are
    /// at or below: the last segment starting at or before it.
    fn mask_of(&self, after: usize) -> u64 {
        after
            .checked_sub(1)
            .and_then(|i| self.masks.get(i))
            .copied()
            .unwrap_or(0)
    }
}

impl LabelTable {
    /// Labels addresses with the index of each set containing them. Sets
    /// beyond [`MAX_LABELS`] are ignored; callers test those directly.
    pub fn new(sets: &[&IpSet]) -> LabelTable {
        let sets = &sets[..sets.len().min(MAX_LABELS)];
        let v4 = Segments::new(&sets.iter().map(|s| s.v4_ranges()).collect::<Vec<_>>());
        let v6 = Segments::new(&sets.iter().map(|s| s.v6_ranges()).collect::<Vec<_>>());
        LabelTable {
            v4_index: index::build(&v4.starts),
            v4,
            v6,
        }
    }

    /// The bitmask of sets containing `ip`.
    pub fn labels(&self, ip: IpAddr) -> u64 {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let starts = &self.v4.starts;
                let x = u32::from(v4);
                self.v4.mask_of(index::count_at_or_below(
                    &self.v4_index,
                    |i| starts[i],
                    starts.len(),
                    x,
                ))
            }
            IpAddr::V6(v6) => {
                let starts = &self.v6.starts;
                let x = u128::from(v6);
                self.v6
                    .mask_of(index::count_in(0, starts.len(), |i| starts[i], x))
            }
        }
    }
}

/// Sweeps the sets' ranges, in address order, into boundary segments: each
/// address where some set's membership changes, with the mask of the sets
/// holding the addresses from there up to the next boundary.
///
/// Each set's ranges are sorted and never touch (the [`IpSet`]
/// invariant), so a set is off until its current range's start and on up
/// to just past its end; the next boundary is the nearest of those points
/// over the sets. That is a merge of the sorted sets, without a sorted
/// copy of every event.
struct Sweep<'a, T> {
    sets: &'a [&'a [(T, T)]],
    /// Each set's current range.
    next: Vec<usize>,
    mask: u64,
}

impl<'a, T: Ord + Copy + num::Step> Sweep<'a, T> {
    fn new(sets: &'a [&'a [(T, T)]]) -> Sweep<'a, T> {
        Sweep {
            sets,
            next: vec![0; sets.len()],
            mask: 0,
        }
    }

    /// Where set `bit` changes next: its current range's start while off,
    /// the address past its end while on (none at the top of the space).
    fn change(&self, bit: usize) -> Option<T> {
        let &(start, end) = self.sets.get(bit)?.get(*self.next.get(bit)?)?;
        if self.mask & (1 << bit) == 0 {
            Some(start)
        } else {
            end.next()
        }
    }
}

impl<T: Ord + Copy + num::Step> Iterator for Sweep<'_, T> {
    type Item = (T, u64);

    fn next(&mut self) -> Option<(T, u64)> {
        let at = (0..self.sets.len())
            .filter_map(|bit| self.change(bit))
            .min()?;
        for bit in 0..self.sets.len() {
            if self.change(bit) != Some(at) {
                continue;
            }
            if self.mask & (1 << bit) == 0 {
                self.mask |= 1 << bit;
            } else {
                // Past this range's end; the set's next range starts later
                // (ranges never touch), so it stays off at `at`.
                self.mask &= !(1 << bit);
                if let Some(n) = self.next.get_mut(bit) {
                    *n += 1;
                }
            }
        }
        Some((at, self.mask))
    }
}

/// The one operation the sweep needs from an address type.
mod num {
    pub trait Step: Sized {
        /// The next value, or `None` at the top of the address space.
        fn next(self) -> Option<Self>;
    }
    impl Step for u32 {
        fn next(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Step for u128 {
        fn next(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Cidr;

    fn set(cidrs: &[&str]) -> IpSet {
        IpSet::from_cidrs(cidrs.iter().map(|c| c.parse::<Cidr>().unwrap()))
    }

    #[test]
    fn labels_equal_each_sets_own_answer() {
        let sets = [
            set(&["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]),
            set(&["10.1.0.0/16", "0.0.0.0/0"]),
            set(&["255.255.255.255/32", "10.0.0.0/9", "::/0"]),
            set(&[]),
        ];
        let table = LabelTable::new(&sets.iter().collect::<Vec<_>>());
        for ip in [
            "10.0.0.0",
            "10.1.2.3",
            "10.127.255.255",
            "10.128.0.0",
            "9.255.255.255",
            "192.0.2.255",
            "192.0.3.0",
            "255.255.255.255",
            "0.0.0.0",
            "2001:db8::1",
            "2001:db9::",
            "::",
            "::ffff:10.1.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let want =
                sets.iter().enumerate().fold(
                    0u64,
                    |m, (i, s)| if s.contains(ip) { m | 1 << i } else { m },
                );
            assert_eq!(table.labels(ip), want, "{ip}");
        }
    }
}
