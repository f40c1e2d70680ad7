//! Properties of the rate limiter: the window guarantee of GCRA, exact
//! `retry_after`/`remaining`, the bucket table agreeing with bare GCRA for
//! a lone key, and round trips of the text and byte forms.

use palisade::ratelimit::{
    bucket_index, tag, Bucket, Entry, Limit, MemoryStore, Outcome, Rate, RateLimitStore,
    BUCKET_BYTES, WAYS,
};
use proptest::prelude::*;

const MS: u64 = 1_000_000;
const HOUR: u64 = 3_600_000 * MS;

/// count 1..50, period 1ms..1h, burst 0..10.
fn limits() -> impl Strategy<Value = Limit> {
    (1u32..50, MS..=HOUR, 0u32..10)
        .prop_map(|(count, period_ns, burst)| Limit::new(Rate::new(count, period_ns), burst))
}

/// A limit, a start time and a non-decreasing arrival sequence. Gaps are
/// drawn relative to the emission interval so the limiter is pushed hard
/// (bursts of simultaneous arrivals, gaps just under and over `T`) and
/// sometimes left idle (gaps of a few periods).
fn scenarios() -> impl Strategy<Value = (Limit, Vec<u64>)> {
    (limits(), 0u64..=u64::MAX / 2).prop_flat_map(|(limit, start)| {
        proptest::collection::vec(gap(&limit), 1..400)
            .prop_map(move |gaps| (limit, arrival_times(start, gaps)))
    })
}

/// Like [`scenarios`], each arrival tagged with a number picking its key.
fn shared_scenarios() -> impl Strategy<Value = (Limit, Vec<(usize, u64)>)> {
    (limits(), 0u64..=u64::MAX / 2).prop_flat_map(|(limit, start)| {
        proptest::collection::vec((any::<usize>(), gap(&limit)), 1..400).prop_map(move |events| {
            let (picks, gaps): (Vec<usize>, Vec<u64>) = events.into_iter().unzip();
            let events = picks.into_iter().zip(arrival_times(start, gaps)).collect();
            (limit, events)
        })
    })
}

fn gap(limit: &Limit) -> impl Strategy<Value = u64> {
    let t = limit.emission_interval_ns();
    let period = limit.rate.period_ns;
    prop_oneof![
        4 => Just(0u64),
        6 => 0..=t.saturating_mul(2),
        2 => (t.saturating_sub(2))..=t.saturating_add(2),
        1 => 0..=period.saturating_mul(3),
    ]
}

fn arrival_times(start: u64, gaps: Vec<u64>) -> Vec<u64> {
    let mut now = start;
    gaps.into_iter()
        .map(|g| {
            now = now.saturating_add(g);
            now
        })
        .collect()
}

/// The largest number of admitted arrivals in any window
/// `[a, a + period)` starting at an admitted arrival `a` (which is where
/// the maximum over all windows is reached).
fn max_in_window(admitted: &[u64], period: u64) -> usize {
    let mut best = 0;
    let mut end = 0;
    for (start, &a) in admitted.iter().enumerate() {
        let limit = a.saturating_add(period);
        if end < start {
            end = start;
        }
        while end < admitted.len() && admitted[end] < limit {
            end += 1;
        }
        best = best.max(end - start);
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_more_than_count_plus_burst_per_window((limit, arrivals) in scenarios()) {
        let mut tat = 0u64;
        let admitted: Vec<u64> = arrivals
            .iter()
            .copied()
            .filter(|&now| limit.apply(&mut tat, now).allowed)
            .collect();
        prop_assert!(!admitted.is_empty(), "an idle key admits its first request");
        let most = max_in_window(&admitted, limit.rate.period_ns);
        prop_assert!(
            most as u64 <= limit.max_per_period(),
            "{} admitted in one period, limit {:?}", most, limit
        );
    }

    #[test]
    fn greedy_client_gets_exactly_its_allowance(
        limit in limits(),
        start in 0u64..=u64::MAX / 2,
    ) {
        // The worst client: retries at exactly `now + retry_after_ns`.
        let mut tat = 0u64;
        let mut now = start;
        let mut admitted = Vec::new();
        let want = 3 * limit.max_per_period() + 5;
        while (admitted.len() as u64) < want {
            let o = limit.apply(&mut tat, now);
            if o.allowed {
                admitted.push(now);
            } else {
                prop_assert!(o.retry_after_ns > 0);
                now += o.retry_after_ns;
            }
        }
        let most = max_in_window(&admitted, limit.rate.period_ns) as u64;
        prop_assert!(most <= limit.max_per_period(), "{} for {:?}", most, limit);
        if limit.rate.period_ns % u64::from(limit.rate.count) == 0 {
            // No rounding: the allowance is reached, not just bounded.
            prop_assert_eq!(most, limit.max_per_period());
        }
    }

    #[test]
    fn outcomes_are_exact((limit, arrivals) in scenarios()) {
        let mut tat = 0u64;
        for now in arrivals {
            let before = tat;
            let o: Outcome = limit.apply(&mut tat, now);
            prop_assert_eq!(o.reset_ns, tat.saturating_sub(now));
            if o.allowed {
                prop_assert_eq!(o.retry_after_ns, 0);
                // Exactly `remaining` more are admitted right now.
                let mut probe = tat;
                for _ in 0..o.remaining {
                    prop_assert!(limit.apply(&mut probe, now).allowed);
                }
                prop_assert!(!limit.apply(&mut probe, now).allowed);
            } else {
                prop_assert_eq!(tat, before, "a denial changed the state");
                prop_assert_eq!(o.remaining, 0);
                prop_assert!(o.retry_after_ns > 0);
                // Admitted after exactly `retry_after_ns`, not sooner.
                let later = now + o.retry_after_ns;
                let mut probe = tat;
                prop_assert!(limit.apply(&mut probe, later).allowed);
                let mut probe = tat;
                prop_assert!(!limit.apply(&mut probe, later - 1).allowed);
            }
        }
    }

    #[test]
    fn lone_key_in_store_is_bare_gcra(
        (limit, arrivals) in scenarios(),
        buckets in 1usize..64,
        key in any::<u64>(),
    ) {
        let mut store = MemoryStore::new(buckets);
        let mut tat = 0u64;
        for now in arrivals {
            let bare = limit.apply(&mut tat, now);
            let stored = store.acquire(key, &limit, now);
            prop_assert_eq!(stored, bare);
        }
    }

    #[test]
    fn up_to_ways_keys_in_one_bucket_are_each_bare_gcra(
        (limit, events) in shared_scenarios(),
        keys in proptest::collection::hash_set(any::<u64>(), 1..=WAYS),
    ) {
        // Every key in the same bucket (all collide on the index): with at
        // most WAYS of them nothing is ever evicted, and no key's outcome
        // depends on another key's traffic.
        let keys: Vec<u64> = keys.into_iter().collect();
        let tags: Vec<u64> = keys.iter().map(|&k| tag(k)).collect();
        let mut distinct = tags.clone();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assume!(distinct.len() == tags.len());
        let mut bucket = Bucket::EMPTY;
        let mut tats = vec![0u64; keys.len()];
        for (pick, now) in events {
            let i = pick % keys.len();
            let bare = limit.apply(&mut tats[i], now);
            prop_assert_eq!(bucket.apply_key(keys[i], &limit, now), bare);
        }
    }

    #[test]
    fn eviction_only_when_every_entry_is_another_active_key(
        (limit, events) in shared_scenarios(),
        n in (WAYS + 1)..12,
    ) {
        let mut bucket = Bucket::EMPTY;
        for (pick, now) in events {
            let key_tag = tag((pick % n) as u64);
            let present = bucket.entries.iter().any(|e| e.tag == key_tag);
            let room = bucket.entries.iter().any(|e| e.tag == 0 || e.tat <= now);
            let others_active: Vec<Entry> = bucket
                .entries
                .iter()
                .copied()
                .filter(|e| e.tag != 0 && e.tag != key_tag && e.tat > now)
                .collect();
            let outcome = bucket.apply(key_tag, &limit, now);
            prop_assert!(outcome.allowed || present, "a new key starts idle");
            let lost: Vec<Entry> = others_active
                .iter()
                .copied()
                .filter(|e| !bucket.entries.contains(e))
                .collect();
            if present || room {
                prop_assert!(lost.is_empty(), "evicted {:?} with room", lost);
            } else {
                let oldest = others_active.iter().map(|e| e.tat).min();
                prop_assert_eq!(lost.len(), 1);
                prop_assert_eq!(Some(lost[0].tat), oldest, "evicted not the closest to idle");
            }
            let mut tags: Vec<u64> = bucket.entries.iter().map(|e| e.tag).filter(|&t| t != 0).collect();
            let before = tags.len();
            tags.sort_unstable();
            tags.dedup();
            prop_assert_eq!(tags.len(), before, "duplicate tags");
        }
    }

    #[test]
    fn rate_display_round_trips(count in 1u32.., period_ns in 1u64..) {
        let rate = Rate::new(count, period_ns);
        let text = rate.to_string();
        prop_assert_eq!(text.parse::<Rate>(), Ok(rate));
        prop_assert_eq!(format!("  {}  ", text.to_uppercase()).parse::<Rate>(), Ok(rate));
    }

    #[test]
    fn rate_parsing_never_panics(text in "\\PC{0,40}") {
        let _ = text.parse::<Rate>();
    }

    #[test]
    fn bucket_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), BUCKET_BYTES)) {
        let bucket = Bucket::from_bytes(&bytes);
        prop_assert!(bucket.is_some());
        if let Some(bucket) = bucket {
            prop_assert_eq!(Bucket::from_bytes(&bucket.to_bytes()), Some(bucket));
        }
    }

    #[test]
    fn index_in_range_and_tag_non_zero(key in any::<u64>(), buckets in 0usize..1_000_000) {
        prop_assert!(bucket_index(key, buckets) < buckets.max(1));
        prop_assert_ne!(tag(key), 0);
    }
}
