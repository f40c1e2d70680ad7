//! The generic cell rate algorithm on `u64` nanoseconds.

use super::Rate;

/// A rate plus the extra requests allowed at once.
/// Guarantee: in any window `[t, t + period)` at most `count + burst` are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub rate: Rate,
    pub burst: u32,
}

/// The result of one admission attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub allowed: bool,
    /// Requests that could still be admitted right now.
    pub remaining: u32,
    /// When denied: how long until one request would be admitted
    /// (`u64::MAX`: never). `0` when allowed.
    pub retry_after_ns: u64,
    /// How long until the limiter is back to its full allowance
    /// (until TAT ≤ now).
    pub reset_ns: u64,
}

impl Limit {
    pub const fn new(rate: Rate, burst: u32) -> Limit {
        Limit { rate, burst }
    }

    /// `T = ceil(period / count)`: the sustained spacing between requests.
    /// Rounded up so that `count × T ≥ period` (never looser than asked).
    /// `u64::MAX` when `count == 0`; a zero period counts as 1 ns.
    pub fn emission_interval_ns(&self) -> u64 {
        let count = u64::from(self.rate.count);
        if count == 0 {
            return u64::MAX;
        }
        let period = self.rate.period_ns.max(1);
        period / count + u64::from(!period.is_multiple_of(count))
    }

    /// `τ = T × burst` (saturating, which only makes the limit stricter).
    pub fn tolerance_ns(&self) -> u64 {
        self.emission_interval_ns()
            .saturating_mul(u64::from(self.burst))
    }

    /// The most requests admitted in any window of one period:
    /// `count + burst`.
    pub fn max_per_period(&self) -> u64 {
        u64::from(self.rate.count) + u64::from(self.burst)
    }

    /// One admission attempt for the key whose state is `tat` (its
    /// theoretical arrival time; `0` for a key never seen). On admission
    /// `tat` advances by `T`; a denied request leaves it unchanged.
    pub fn apply(&self, tat: &mut u64, now_ns: u64) -> Outcome {
        if self.rate.count == 0 {
            return Outcome {
                allowed: false,
                remaining: 0,
                retry_after_ns: u64::MAX,
                reset_ns: tat.saturating_sub(now_ns),
            };
        }
        Gcra {
            interval: self.emission_interval_ns(),
            tolerance: self.tolerance_ns(),
            end: u64::MAX,
        }
        .apply(tat, now_ns)
    }
}

/// The arithmetic of [`Limit::apply`] in any unit of time, on a clock that
/// ends at `end`: nanoseconds up to `u64::MAX` there, whole microseconds up
/// to 2⁵³ − 1 for the Redis limiter, whose Lua twin of [`Gcra::apply`]
/// computes in doubles. The [`Outcome`]'s times are in the same unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// `T`, at least 1.
    pub interval: u64,
    /// `τ`.
    pub tolerance: u64,
    /// The last time the clock can show; a TAT past it is never stored.
    pub end: u64,
}

impl Gcra {
    pub fn apply(&self, tat: &mut u64, now: u64) -> Outcome {
        let start = (*tat).max(now);
        let debt = start - now;
        if debt > self.tolerance {
            return Outcome {
                allowed: false,
                remaining: 0,
                retry_after_ns: debt - self.tolerance,
                reset_ns: debt,
            };
        }
        // Denying instead of saturating keeps every admission worth exactly
        // `T`, which the window guarantee relies on.
        let Some(next) = start
            .checked_add(self.interval)
            .filter(|&next| next <= self.end)
        else {
            return Outcome {
                allowed: false,
                remaining: 0,
                retry_after_ns: u64::MAX,
                reset_ns: debt,
            };
        };
        *tat = next;
        let debt = next - now;
        Outcome {
            allowed: true,
            remaining: self.remaining(next, debt),
            retry_after_ns: 0,
            reset_ns: debt,
        }
    }

    /// How many more requests would be admitted at once, from state `tat`
    /// (at most `end`) with `debt = tat − now`.
    fn remaining(&self, tat: u64, debt: u64) -> u32 {
        if debt > self.tolerance || self.interval == 0 {
            return 0;
        }
        let by_tolerance = (self.tolerance - debt) / self.interval + 1;
        let by_clock = (self.end - tat) / self.interval;
        u32::try_from(by_tolerance.min(by_clock)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SECOND: u64 = 1_000 * MS;

    fn limit(count: u32, period_ns: u64, burst: u32) -> Limit {
        Limit::new(Rate::new(count, period_ns), burst)
    }

    #[test]
    fn interval_rounds_up() {
        assert_eq!(limit(10, SECOND, 0).emission_interval_ns(), 100 * MS);
        assert_eq!(limit(3, 10, 0).emission_interval_ns(), 4);
        assert_eq!(limit(3, 9, 0).emission_interval_ns(), 3);
        assert_eq!(limit(5, 1, 0).emission_interval_ns(), 1);
        assert_eq!(limit(5, 0, 0).emission_interval_ns(), 1);
        assert_eq!(limit(0, SECOND, 0).emission_interval_ns(), u64::MAX);
        assert_eq!(limit(1, u64::MAX, 0).emission_interval_ns(), u64::MAX);
        assert_eq!(
            limit(2, u64::MAX, 0).emission_interval_ns(),
            u64::MAX / 2 + 1
        );
        assert_eq!(limit(10, SECOND, 3).tolerance_ns(), 300 * MS);
        assert_eq!(limit(1, u64::MAX, 3).tolerance_ns(), u64::MAX);
        assert_eq!(limit(10, SECOND, 3).max_per_period(), 13);
    }

    #[test]
    fn idle_key_admits_burst_plus_one_then_one_per_interval() {
        for burst in [0u32, 1, 4, 9] {
            let l = limit(10, SECOND, burst);
            let t = l.emission_interval_ns();
            let mut tat = 0;
            let now = 5 * SECOND;
            for i in 0..=burst {
                let o = l.apply(&mut tat, now);
                assert!(o.allowed, "burst {burst}, request {i}");
                assert_eq!(o.remaining, burst - i);
                assert_eq!(o.retry_after_ns, 0);
                assert_eq!(o.reset_ns, u64::from(i + 1) * t);
            }
            let denied = l.apply(&mut tat, now);
            assert!(!denied.allowed);
            assert_eq!(denied.remaining, 0);
            assert_eq!(denied.retry_after_ns, t);
            // One more exactly one interval later, not a nanosecond sooner.
            assert!(!l.apply(&mut tat, now + t - 1).allowed);
            let o = l.apply(&mut tat, now + t);
            assert!(o.allowed);
            assert_eq!(o.remaining, 0);
            assert!(!l.apply(&mut tat, now + t).allowed);
            assert!(l.apply(&mut tat, now + 2 * t).allowed);
        }
    }

    #[test]
    fn steady_rate_is_admitted_forever() {
        let l = limit(10, SECOND, 0);
        let mut tat = 0;
        for i in 0..1_000u64 {
            assert!(l.apply(&mut tat, i * 100 * MS).allowed, "request {i}");
        }
    }

    #[test]
    fn retry_after_is_exact() {
        let l = limit(4, SECOND, 2);
        let mut tat = 0;
        for _ in 0..3 {
            assert!(l.apply(&mut tat, 0).allowed);
        }
        // TAT = 750ms, τ = 500ms: next admission at 250ms.
        for now in [0, 100 * MS, 249 * MS] {
            let o = l.apply(&mut tat, now);
            assert!(!o.allowed);
            assert_eq!(o.retry_after_ns, 250 * MS - now);
            assert_eq!(o.reset_ns, 750 * MS - now);
            let mut probe = tat;
            assert!(l.apply(&mut probe, now + o.retry_after_ns).allowed);
            let mut probe = tat;
            assert!(!l.apply(&mut probe, now + o.retry_after_ns - 1).allowed);
        }
    }

    #[test]
    fn denied_request_changes_nothing() {
        let l = limit(1, SECOND, 0);
        let mut tat = 0;
        assert!(l.apply(&mut tat, 10).allowed);
        let before = tat;
        for now in [10, 11, SECOND, SECOND + 9] {
            assert!(!l.apply(&mut tat, now).allowed);
            assert_eq!(tat, before);
        }
        assert!(l.apply(&mut tat, SECOND + 10).allowed);
    }

    #[test]
    fn remaining_and_reset_after_partial_recovery() {
        let l = limit(10, SECOND, 4);
        let mut tat = 0;
        for _ in 0..5 {
            assert!(l.apply(&mut tat, 0).allowed);
        }
        // TAT = 500ms. At 250ms, 2.5 intervals have drained.
        let o = l.apply(&mut tat, 250 * MS);
        assert!(o.allowed);
        assert_eq!(o.reset_ns, 350 * MS);
        // debt 350ms, τ 400ms: one more now (debt 450ms > τ afterwards).
        assert_eq!(o.remaining, 1);
        assert!(l.apply(&mut tat, 250 * MS).allowed);
        assert!(!l.apply(&mut tat, 250 * MS).allowed);
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let l = limit(2, SECOND, 0);
        let mut tat = 0;
        assert!(l.apply(&mut tat, 10 * SECOND).allowed);
        let o = l.apply(&mut tat, 5 * SECOND);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, 5 * SECOND + 500 * MS);
    }

    #[test]
    fn zero_count_admits_nothing() {
        let l = limit(0, SECOND, 5);
        let mut tat = 0;
        for now in [0, 1, u64::MAX] {
            let o = l.apply(&mut tat, now);
            assert!(!o.allowed);
            assert_eq!(o.retry_after_ns, u64::MAX);
            assert_eq!(tat, 0);
        }
    }

    #[test]
    fn zero_period_is_one_nanosecond() {
        let l = limit(1, 0, 0);
        let mut tat = 0;
        assert!(l.apply(&mut tat, 7).allowed);
        assert!(!l.apply(&mut tat, 7).allowed);
        assert!(l.apply(&mut tat, 8).allowed);
    }

    #[test]
    fn huge_periods_and_late_clocks_do_not_overflow() {
        let l = limit(1, u64::MAX, 10);
        let mut tat = 0;
        let first = l.apply(&mut tat, 0);
        assert!(first.allowed);
        assert_eq!(first.remaining, 0);
        assert_eq!(tat, u64::MAX);
        let o = l.apply(&mut tat, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, u64::MAX);

        let l = limit(u32::MAX, SECOND, u32::MAX);
        let mut tat = u64::MAX - 5;
        let o = l.apply(&mut tat, u64::MAX - 10);
        assert!(o.allowed);
        assert_eq!(tat, u64::MAX - 4);
        assert_eq!(o.remaining, 4);
        for _ in 0..4 {
            assert!(l.apply(&mut tat, u64::MAX - 10).allowed);
        }
        let o = l.apply(&mut tat, u64::MAX - 10);
        assert!(!o.allowed);
        assert_eq!(tat, u64::MAX);
        assert!(!l.apply(&mut tat, u64::MAX).allowed);

        let l = limit(1, 10, 0);
        let mut tat = 0;
        assert!(l.apply(&mut tat, u64::MAX - 10).allowed);
        assert_eq!(tat, u64::MAX);
        assert!(!l.apply(&mut tat, u64::MAX).allowed);
    }

    #[test]
    fn remaining_saturates_at_u32_max() {
        let l = limit(u32::MAX, 1, u32::MAX);
        let mut tat = 0;
        let o = l.apply(&mut tat, 1_000);
        assert!(o.allowed);
        assert_eq!(o.remaining, u32::MAX);
    }
}
