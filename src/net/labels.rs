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
    v4: Vec<(u32, u64)>,
    v6: Vec<(u128, u64)>,
    /// Where each IPv4 /16 starts in `v4` (large tables only).
    v4_index: Vec<u32>,
}

impl LabelTable {
    /// Labels addresses with the index of each set containing them. Sets
    /// beyond [`MAX_LABELS`] are ignored; callers test those directly.
    pub fn new(sets: &[&IpSet]) -> LabelTable {
        let sets = &sets[..sets.len().min(MAX_LABELS)];
        let v4 = segments(
            sets.iter()
                .enumerate()
                .flat_map(|(bit, s)| s.v4_ranges().iter().map(move |&(lo, hi)| (lo, hi, bit))),
        );
        let starts: Vec<u32> = v4.iter().map(|&(start, _)| start).collect();
        LabelTable {
            v4_index: index::build(&starts),
            v4,
            v6: segments(
                sets.iter()
                    .enumerate()
                    .flat_map(|(bit, s)| s.v6_ranges().iter().map(move |&(lo, hi)| (lo, hi, bit))),
            ),
        }
    }

    /// The bitmask of sets containing `ip`.
    pub fn labels(&self, ip: IpAddr) -> u64 {
        match canonical(ip) {
            IpAddr::V4(v4) => index::predecessor(&self.v4_index, &self.v4, u32::from(v4))
                .map_or(0, |&(_, mask)| mask),
            IpAddr::V6(v6) => lookup(&self.v6, u128::from(v6)),
        }
    }
}

fn lookup<T: Ord + Copy>(table: &[(T, u64)], x: T) -> u64 {
    let i = table.partition_point(|&(start, _)| start <= x);
    i.checked_sub(1)
        .and_then(|i| table.get(i))
        .map_or(0, |&(_, mask)| mask)
}

/// Sweeps inclusive ranges labelled with bits into boundary segments.
/// Ranges with the same bit never overlap (each set's ranges are merged),
/// so a bit is switched on at a range's start and off past its end.
fn segments<T>(ranges: impl Iterator<Item = (T, T, usize)>) -> Vec<(T, u64)>
where
    T: Ord + Copy + num::Step,
{
    let ranges = ranges.into_iter();
    let mut events: Vec<(T, bool, u64)> = Vec::with_capacity(ranges.size_hint().0 * 2);
    for (lo, hi, bit) in ranges {
        events.push((lo, true, 1 << bit));
        if let Some(past) = hi.next() {
            events.push((past, false, 1 << bit));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(T, u64)> = Vec::new();
    let mut mask = 0u64;
    for (at, on, bit) in events {
        if on {
            mask |= bit;
        } else {
            mask &= !bit;
        }
        match out.last_mut() {
            Some(last) if last.0 == at => last.1 = mask,
            _ => out.push((at, mask)),
        }
    }
    // The table lives as long as the policy: no spare capacity.
    out.shrink_to_fit();
    out
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
