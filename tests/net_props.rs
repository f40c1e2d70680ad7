//! Property tests for `palisade::net`: the compiled range table must agree
//! with a naive scan over the prefixes it was built from, and CIDRs must
//! survive a Display/parse round trip.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade::net::{client_ip, Cidr, IpSet, LabelTable};
use proptest::prelude::*;

// ---------- naive reference (independent of the library's mask code) ----------

fn naive_v4(prefixes: &[(u32, u8)], a: u32) -> bool {
    prefixes
        .iter()
        .any(|&(net, len)| len == 0 || (net ^ a) >> (32 - u32::from(len)) == 0)
}

fn naive_v6(prefixes: &[(u128, u8)], a: u128) -> bool {
    prefixes
        .iter()
        .any(|&(net, len)| len == 0 || (net ^ a) >> (128 - u32::from(len)) == 0)
}

/// First and last address of a prefix, the naive way.
fn bounds_v4(net: u32, len: u8) -> (u32, u32) {
    let host_bits = 32 - u32::from(len);
    let size_minus_one = if host_bits == 32 {
        u32::MAX
    } else {
        (1u32 << host_bits) - 1
    };
    let lo = net & !size_minus_one;
    (lo, lo | size_minus_one)
}

fn bounds_v6(net: u128, len: u8) -> (u128, u128) {
    let host_bits = 128 - u32::from(len);
    let size_minus_one = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = net & !size_minus_one;
    (lo, lo | size_minus_one)
}

// ---------- strategies ----------

/// Prefix lengths skewed towards long prefixes, so sets are not just `/0`.
fn v4_len() -> impl Strategy<Value = u8> {
    prop_oneof![1 => 0u8..=32, 3 => 16u8..=32, 3 => 24u8..=32]
}

fn v6_len() -> impl Strategy<Value = u8> {
    prop_oneof![1 => 0u8..=128, 2 => 32u8..=64, 3 => 100u8..=128]
}

/// Addresses either anywhere or packed into a small window, so prefixes
/// overlap, nest and touch.
fn v4_addr() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => any::<u32>(),
        3 => (0u32..0x1_0000).prop_map(|x| 0x0a00_0000 | x),
        1 => (0u32..0x100).prop_map(|x| u32::MAX - x),
        1 => 0u32..0x100,
    ]
}

fn v6_addr() -> impl Strategy<Value = u128> {
    const BASE: u128 = 0x2001_0db8_u128 << 96;
    prop_oneof![
        1 => any::<u128>(),
        3 => (0u128..0x1_0000).prop_map(|x| BASE | (x << 8)),
        2 => (0u128..0x1_0000).prop_map(|x| BASE | x),
        1 => (0u128..0x100).prop_map(|x| u128::MAX - x),
        1 => 0u128..0x100,
    ]
}

/// Probe addresses: every prefix boundary and its neighbours (where an
/// off-by-one in merging or searching would show), plus random extras.
fn v4_probes(prefixes: &[(u32, u8)], extra: &[u32]) -> Vec<u32> {
    let mut out = extra.to_vec();
    for &(net, len) in prefixes {
        let (lo, hi) = bounds_v4(net, len);
        out.extend([
            lo.wrapping_sub(1),
            lo,
            lo.wrapping_add(1),
            hi.wrapping_sub(1),
            hi,
            hi.wrapping_add(1),
        ]);
    }
    out.extend([0, u32::MAX]);
    out
}

fn v6_probes(prefixes: &[(u128, u8)], extra: &[u128]) -> Vec<u128> {
    let mut out = extra.to_vec();
    for &(net, len) in prefixes {
        let (lo, hi) = bounds_v6(net, len);
        out.extend([
            lo.wrapping_sub(1),
            lo,
            lo.wrapping_add(1),
            hi.wrapping_sub(1),
            hi,
            hi.wrapping_add(1),
        ]);
    }
    out.extend([0, u128::MAX]);
    out
}

fn set_v4(prefixes: &[(u32, u8)]) -> IpSet {
    IpSet::from_cidrs(
        prefixes
            .iter()
            .map(|&(net, len)| Cidr::new(IpAddr::V4(Ipv4Addr::from(net)), len).unwrap()),
    )
}

fn set_v6(prefixes: &[(u128, u8)]) -> IpSet {
    IpSet::from_cidrs(
        prefixes
            .iter()
            .map(|&(net, len)| Cidr::new(IpAddr::V6(Ipv6Addr::from(net)), len).unwrap()),
    )
}

/// Sorted, non-empty, and no two ranges overlap or touch.
fn well_formed<T: Copy + Ord + std::fmt::Debug>(
    ranges: &[(T, T)],
    succ: impl Fn(T) -> Option<T>,
) -> bool {
    ranges.iter().all(|&(lo, hi)| lo <= hi)
        && ranges
            .windows(2)
            .all(|w| succ(w[0].1).is_some_and(|next| next < w[1].0))
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v4_lookup_matches_naive_scan(
        prefixes in prop::collection::vec((v4_addr(), v4_len()), 0..40),
        extra in prop::collection::vec(v4_addr(), 0..40),
    ) {
        // v4 prefixes whose network address is arbitrary: Cidr::new clears host bits.
        let set = set_v4(&prefixes);
        prop_assert!(well_formed(set.v4_ranges(), |x: u32| x.checked_add(1)));
        prop_assert!(set.v6_ranges().is_empty());
        for a in v4_probes(&prefixes, &extra) {
            let want = naive_v4(&prefixes, a);
            let v4 = Ipv4Addr::from(a);
            prop_assert_eq!(set.contains(IpAddr::V4(v4)), want, "address {}", v4);
            // The same address seen through a dual-stack socket.
            prop_assert_eq!(set.contains(IpAddr::V6(v4.to_ipv6_mapped())), want);
        }
    }

    #[test]
    fn v6_lookup_matches_naive_scan(
        prefixes in prop::collection::vec((v6_addr(), v6_len()), 0..40),
        extra in prop::collection::vec(v6_addr(), 0..40),
    ) {
        // Keep the prefixes out of the IPv4-mapped block: those are IPv4
        // networks by design and are covered by the v4 property.
        let prefixes: Vec<(u128, u8)> = prefixes
            .into_iter()
            .filter(|&(net, len)| {
                len < 96 || Ipv6Addr::from(net).to_ipv4_mapped().is_none()
            })
            .collect();
        let set = set_v6(&prefixes);
        prop_assert!(well_formed(set.v6_ranges(), |x: u128| x.checked_add(1)));
        prop_assert!(set.v4_ranges().is_empty());
        for a in v6_probes(&prefixes, &extra) {
            let addr = Ipv6Addr::from(a);
            if addr.to_ipv4_mapped().is_some() {
                // Mapped queries are IPv4 clients; no IPv6 rule matches them.
                prop_assert!(!set.contains(IpAddr::V6(addr)));
                continue;
            }
            prop_assert_eq!(set.contains(IpAddr::V6(addr)), naive_v6(&prefixes, a), "address {}", addr);
        }
    }

    #[test]
    fn label_table_matches_each_sets_own_answer(
        sets in prop::collection::vec(
            (
                prop::collection::vec((v4_addr(), v4_len()), 0..15),
                prop::collection::vec((v6_addr(), v6_len()), 0..8),
            ),
            0..6,
        ),
        extra in prop::collection::vec(v4_addr(), 0..20),
        extra6 in prop::collection::vec(v6_addr(), 0..20),
    ) {
        let built: Vec<IpSet> = sets.iter().map(|(v4, v6)| set_v4(v4).union(&set_v6(v6))).collect();
        let table = LabelTable::new(&built.iter().collect::<Vec<_>>());
        let all4: Vec<(u32, u8)> = sets.iter().flat_map(|(v4, _)| v4.iter().copied()).collect();
        let all6: Vec<(u128, u8)> = sets.iter().flat_map(|(_, v6)| v6.iter().copied()).collect();
        let probes = v4_probes(&all4, &extra)
            .into_iter()
            .map(|a| IpAddr::V4(a.into()))
            .chain(v6_probes(&all6, &extra6).into_iter().map(|a| IpAddr::V6(a.into())));
        for ip in probes {
            let want = built
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, s)| if s.contains(ip) { m | 1 << i } else { m });
            prop_assert_eq!(table.labels(ip), want, "address {}", ip);
        }
    }

    #[test]
    fn union_and_extend_match_building_at_once(
        a in prop::collection::vec((v4_addr(), v4_len()), 0..20),
        b in prop::collection::vec((v4_addr(), v4_len()), 0..20),
        a6 in prop::collection::vec((v6_addr(), v6_len()), 0..10),
        b6 in prop::collection::vec((v6_addr(), v6_len()), 0..10),
    ) {
        let sa = set_v4(&a).union(&set_v6(&a6));
        let sb = set_v4(&b).union(&set_v6(&b6));
        let all: Vec<(u32, u8)> = a.iter().chain(&b).copied().collect();
        let all6: Vec<(u128, u8)> = a6.iter().chain(&b6).copied().collect();
        let at_once = set_v4(&all).union(&set_v6(&all6));
        prop_assert_eq!(&sa.union(&sb), &at_once);
        prop_assert_eq!(&sb.union(&sa), &at_once);
        let mut extended = sa.clone();
        extended.extend(
            b.iter().map(|&(n, l)| Cidr::new(IpAddr::V4(n.into()), l).unwrap())
                .chain(b6.iter().map(|&(n, l)| Cidr::new(IpAddr::V6(n.into()), l).unwrap())),
        );
        prop_assert_eq!(&extended, &at_once);
    }

    #[test]
    fn cidr_display_parse_round_trips_v4(addr in any::<u32>(), len in 0u8..=32) {
        let c = Cidr::new(IpAddr::V4(addr.into()), len).unwrap();
        let back: Cidr = c.to_string().parse().unwrap();
        prop_assert_eq!(back, c);
        prop_assert_eq!(back.to_string(), c.to_string());
    }

    #[test]
    fn cidr_display_parse_round_trips_v6(addr in v6_addr(), len in 0u8..=128) {
        // Includes mapped addresses, which Cidr::new turns into IPv4.
        let c = Cidr::new(IpAddr::V6(addr.into()), len).unwrap();
        let back: Cidr = c.to_string().parse().unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn cidr_display_parse_round_trips_mapped(addr in any::<u32>(), len in 96u8..=128) {
        let mapped = Ipv4Addr::from(addr).to_ipv6_mapped();
        let c = Cidr::new(IpAddr::V6(mapped), len).unwrap();
        prop_assert!(c.addr().is_ipv4());
        prop_assert_eq!(c.prefix_len(), len - 96);
        let back: Cidr = c.to_string().parse().unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<Cidr>();
    }

    #[test]
    fn parse_never_panics_on_near_misses(s in "[0-9a-fA-F:./ \\[\\]%x+-]{0,45}") {
        if let Ok(c) = s.parse::<Cidr>() {
            // Whatever parses must round-trip.
            prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
        }
    }

    #[test]
    fn client_ip_never_panics(xff in "[0-9a-f:.,\\[\\] ]{0,60}", hops in any::<u8>()) {
        let conn: IpAddr = "192.0.2.1".parse().unwrap();
        let got = client_ip(Some(conn), Some(&xff), hops);
        prop_assert!(got.is_some());
        // Never an IPv4-mapped address.
        if let Some(IpAddr::V6(v6)) = got {
            prop_assert!(v6.to_ipv4_mapped().is_none());
        }
    }
}
