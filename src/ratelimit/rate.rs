//! The rate syntax: `10/second`, `5 per hour`, `20 per 10 seconds`, `20/10s`.

use std::fmt;
use std::str::FromStr;

/// `count` requests per `period_ns` nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub count: u32,
    pub period_ns: u64,
}

/// Why a rate string was rejected. The message names the input, gives the
/// reason and lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(pub String);

/// The accepted forms, appended to every error message.
const FORMS: &str = "expected `<count>/<unit>` or `<count> per <unit>` \
(e.g. `10/second`, `5 per hour`), optionally with a period length \
(`20/10s`, `20 per 10 seconds`); units: s/sec/second, m/min/minute, \
h/hr/hour, d/day, w/week, ms, us, ns (plurals accepted, case-insensitive); \
the count is a whole number from 1 to 4294967295";

const SECOND: u64 = 1_000_000_000;

struct Unit {
    ns: u64,
    singular: &'static str,
    plural: &'static str,
    names: &'static [&'static str],
}

/// Largest first: `Display` uses the largest unit that divides the period.
const UNITS: [Unit; 8] = [
    Unit {
        ns: 7 * 24 * 3600 * SECOND,
        singular: "week",
        plural: "weeks",
        names: &["w", "wk", "wks", "week", "weeks"],
    },
    Unit {
        ns: 24 * 3600 * SECOND,
        singular: "day",
        plural: "days",
        names: &["d", "day", "days"],
    },
    Unit {
        ns: 3600 * SECOND,
        singular: "hour",
        plural: "hours",
        names: &["h", "hr", "hrs", "hour", "hours"],
    },
    Unit {
        ns: 60 * SECOND,
        singular: "minute",
        plural: "minutes",
        names: &["m", "min", "mins", "minute", "minutes"],
    },
    Unit {
        ns: SECOND,
        singular: "second",
        plural: "seconds",
        names: &["s", "sec", "secs", "second", "seconds"],
    },
    Unit {
        ns: 1_000_000,
        singular: "millisecond",
        plural: "milliseconds",
        names: &["ms", "msec", "msecs", "millisecond", "milliseconds"],
    },
    Unit {
        ns: 1_000,
        singular: "microsecond",
        plural: "microseconds",
        names: &[
            "us",
            "\u{b5}s",
            "\u{3bc}s",
            "usec",
            "usecs",
            "microsecond",
            "microseconds",
        ],
    },
    Unit {
        ns: 1,
        singular: "nanosecond",
        plural: "nanoseconds",
        names: &["ns", "nsec", "nsecs", "nanosecond", "nanoseconds"],
    },
];

/// Words allowed between the count and the separator: `100 requests/minute`.
const COUNT_NOUNS: [&str; 4] = ["requests", "request", "reqs", "req"];

impl Rate {
    /// A rate of `count` per `period_ns` nanoseconds, unchecked (the parser
    /// guarantees `count ≥ 1` and `period_ns ≥ 1`).
    pub const fn new(count: u32, period_ns: u64) -> Rate {
        Rate { count, period_ns }
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| RateError(format!("invalid rate {input:?}: {reason}; {FORMS}"));
        let text = input.trim().to_lowercase();
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        let (count_part, period_part) =
            split(&text).ok_or_else(|| fail("no `/` or `per` between the count and the period"))?;
        let count = parse_count(count_part).map_err(|reason| fail(&reason))?;
        let period_ns = parse_period(period_part).map_err(|reason| fail(&reason))?;
        Ok(Rate { count, period_ns })
    }
}

/// Splits at the first `/`, or else at the first word `per`.
fn split(text: &str) -> Option<(&str, &str)> {
    if let Some(parts) = text.split_once('/') {
        return Some(parts);
    }
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find("per")) {
        let start = from + found;
        let end = start + "per".len();
        let before = text.get(..start).unwrap_or("");
        let after = text.get(end..).unwrap_or("");
        let word_before = before.is_empty() || before.ends_with(char::is_whitespace);
        let word_after = after.is_empty() || after.starts_with(char::is_whitespace);
        if word_before && word_after {
            return Some((before, after));
        }
        from = end;
    }
    None
}

fn parse_count(part: &str) -> Result<u32, String> {
    let mut words = part.split_whitespace();
    let Some(number) = words.next() else {
        return Err("the count is missing".to_string());
    };
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the count {number:?} is not a whole number"));
    }
    let count: u32 = number
        .parse()
        .map_err(|_| format!("the count {number} is too large"))?;
    if count == 0 {
        return Err("the count must be at least 1".to_string());
    }
    match words.next() {
        None => {}
        Some(word) if COUNT_NOUNS.contains(&word) => {}
        Some(word) => return Err(format!("unexpected {word:?} after the count")),
    }
    if let Some(word) = words.next() {
        return Err(format!("unexpected {word:?} after the count"));
    }
    Ok(count)
}

fn parse_period(part: &str) -> Result<u64, String> {
    let part = part.trim();
    let digits = part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len());
    let (number, unit) = part.split_at(digits);
    let unit = unit.trim();
    let length: u64 = if number.is_empty() {
        1
    } else {
        number
            .parse()
            .map_err(|_| format!("the period length {number} is too large"))?
    };
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err(
            "fractional periods are not supported; use a smaller unit (e.g. `1500ms`)".to_string(),
        );
    }
    if unit.is_empty() {
        return Err("the time unit is missing (e.g. `second`)".to_string());
    }
    let Some(unit_ns) = UNITS.iter().find(|u| u.names.contains(&unit)).map(|u| u.ns) else {
        return Err(format!("unknown time unit {unit:?}"));
    };
    if length == 0 {
        return Err("the period must be longer than zero".to_string());
    }
    length
        .checked_mul(unit_ns)
        .ok_or_else(|| "the period is too long (at most about 584 years)".to_string())
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.count;
        let period = self.period_ns;
        // Every period is a whole number of nanoseconds, so a unit is found
        // unless the period is 0 (not a valid rate; printed for debugging).
        let Some(unit) = UNITS
            .iter()
            .find(|u| period != 0 && period.is_multiple_of(u.ns))
        else {
            return write!(f, "{count} per 0 nanoseconds");
        };
        let length = period / unit.ns;
        if length == 1 {
            write!(f, "{count}/{}", unit.singular)
        } else {
            write!(f, "{count} per {length} {}", unit.plural)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        impl serde::de::Visitor<'_> for RateVisitor {
            type Value = Rate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as `10/second` or `20 per 10 seconds`")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Rate, E> {
                value.parse().map_err(|err: RateError| E::custom(err.0))
            }
        }

        deserializer.deserialize_str(RateVisitor)
    }
}

impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;

    fn rate(s: &str) -> Rate {
        match s.parse::<Rate>() {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn error(s: &str) -> String {
        match s.parse::<Rate>() {
            Ok(r) => panic!("{s:?} should not parse, got {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn slash_forms() {
        assert_eq!(rate("10/second"), Rate::new(10, SECOND));
        assert_eq!(rate("100/minute"), Rate::new(100, MIN));
        assert_eq!(rate("1000/day"), Rate::new(1000, DAY));
        assert_eq!(rate("3/hour"), Rate::new(3, HOUR));
        assert_eq!(rate("7/week"), Rate::new(7, 7 * DAY));
    }

    #[test]
    fn short_units() {
        for s in ["10/s", "10/sec", "10/secs", "10/second", "10/seconds"] {
            assert_eq!(rate(s), Rate::new(10, SECOND), "{s}");
        }
        for s in ["10/m", "10/min", "10/mins", "10/minute", "10/minutes"] {
            assert_eq!(rate(s), Rate::new(10, MIN), "{s}");
        }
        for s in ["10/h", "10/hr", "10/hrs", "10/hour", "10/hours"] {
            assert_eq!(rate(s), Rate::new(10, HOUR), "{s}");
        }
        for s in ["10/d", "10/day", "10/days"] {
            assert_eq!(rate(s), Rate::new(10, DAY), "{s}");
        }
        for s in ["10/w", "10/wk", "10/week", "10/weeks"] {
            assert_eq!(rate(s), Rate::new(10, 7 * DAY), "{s}");
        }
        assert_eq!(rate("10/ms"), Rate::new(10, 1_000_000));
        assert_eq!(rate("10/milliseconds"), Rate::new(10, 1_000_000));
        assert_eq!(rate("10/us"), Rate::new(10, 1_000));
        assert_eq!(rate("10/\u{b5}s"), Rate::new(10, 1_000));
        assert_eq!(rate("10/ns"), Rate::new(10, 1));
    }

    #[test]
    fn per_forms() {
        assert_eq!(rate("5 per hour"), Rate::new(5, HOUR));
        assert_eq!(rate("5 per hours"), Rate::new(5, HOUR));
        assert_eq!(rate("20 per 10 seconds"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("20 per 10s"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("20   per   10   seconds"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("1 per 1 day"), Rate::new(1, DAY));
        assert_eq!(rate("20 per\t10 min"), Rate::new(20, 10 * MIN));
    }

    #[test]
    fn multiplier_with_slash() {
        assert_eq!(rate("20/10s"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("20/10 seconds"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("20 / 10 s"), Rate::new(20, 10 * SECOND));
        assert_eq!(rate("20/1s"), Rate::new(20, SECOND));
        assert_eq!(rate("60/15m"), Rate::new(60, 15 * MIN));
        assert_eq!(rate("1500/2h"), Rate::new(1500, 2 * HOUR));
    }

    #[test]
    fn case_whitespace_and_nouns() {
        assert_eq!(rate("  10/SECOND \n"), Rate::new(10, SECOND));
        assert_eq!(rate("5 PER Hour"), Rate::new(5, HOUR));
        assert_eq!(rate("10/Min"), Rate::new(10, MIN));
        assert_eq!(rate("100 requests/minute"), Rate::new(100, MIN));
        assert_eq!(rate("100 requests per minute"), Rate::new(100, MIN));
        assert_eq!(rate("1 request per 2 seconds"), Rate::new(1, 2 * SECOND));
        assert_eq!(rate("10 req/s"), Rate::new(10, SECOND));
    }

    #[test]
    fn limits_of_the_numbers() {
        assert_eq!(rate("4294967295/s"), Rate::new(u32::MAX, SECOND));
        assert_eq!(
            rate("1 per 18446744073709551615 ns"),
            Rate::new(1, u64::MAX)
        );
        assert_eq!(rate("1 per 30000 weeks").period_ns, 30000 * 7 * DAY);
    }

    #[test]
    fn errors_name_input_reason_and_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("10", "no `/` or `per`"),
            ("10 minute", "no `/` or `per`"),
            ("10 perminute", "no `/` or `per`"),
            ("0/second", "at least 1"),
            ("00 per hour", "at least 1"),
            ("/second", "count is missing"),
            ("per second", "count is missing"),
            (" per second", "count is missing"),
            ("ten/second", "not a whole number"),
            ("-1/second", "not a whole number"),
            ("+1/second", "not a whole number"),
            ("1.5/second", "not a whole number"),
            ("4294967296/second", "too large"),
            ("10 apples/second", "unexpected \"apples\""),
            ("10 requests now/second", "unexpected \"now\""),
            ("10/", "unit is missing"),
            ("10 per", "unit is missing"),
            ("10/10", "unit is missing"),
            ("10/fortnight", "unknown time unit \"fortnight\""),
            ("10/second/extra", "unknown time unit"),
            ("10/1.5s", "fractional"),
            ("10/0s", "longer than zero"),
            ("10 per 0 hours", "longer than zero"),
            ("10/-5s", "unknown time unit"),
            ("10/99999999999999999999s", "period length"),
            ("1 per 31000 weeks", "too long"),
            ("1 per 18446744073709551615 s", "too long"),
        ];
        for (input, reason) in cases {
            let message = error(input);
            assert!(
                message.contains(reason),
                "{input:?}: {message:?} lacks {reason:?}"
            );
            assert!(
                message.contains(&format!("{input:?}")),
                "{input:?}: {message:?} does not name the input"
            );
            assert!(message.contains("per <unit>"), "{message:?} lists no forms");
        }
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(rate("10/s").to_string(), "10/second");
        assert_eq!(rate("100 per minutes").to_string(), "100/minute");
        assert_eq!(rate("20/10s").to_string(), "20 per 10 seconds");
        assert_eq!(rate("5 per 60 min").to_string(), "5/hour");
        assert_eq!(rate("5 per 90 min").to_string(), "5 per 90 minutes");
        assert_eq!(rate("1000/d").to_string(), "1000/day");
        assert_eq!(rate("7 per 7 days").to_string(), "7/week");
        assert_eq!(rate("3 per 1500ms").to_string(), "3 per 1500 milliseconds");
        assert_eq!(Rate::new(1, 1).to_string(), "1/nanosecond");
        assert_eq!(Rate::new(2, 0).to_string(), "2 per 0 nanoseconds");
    }

    #[test]
    fn display_round_trips() {
        let samples = [
            Rate::new(1, 1),
            Rate::new(10, SECOND),
            Rate::new(20, 10 * SECOND),
            Rate::new(3, 1_500_000),
            Rate::new(u32::MAX, u64::MAX),
            Rate::new(7, 123_456_789),
            Rate::new(9, 14 * DAY),
            Rate::new(9, 25 * HOUR),
        ];
        for r in samples {
            assert_eq!(rate(&r.to_string()), r, "{r}");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(serde::Deserialize, Debug)]
        struct Config {
            rate: Rate,
        }
        let ok: Config = match serde_json::from_str(r#"{"rate": "20 per 10 seconds"}"#) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(ok.rate, Rate::new(20, 10 * SECOND));
        let owned: Rate = match serde_json::from_value(serde_json::json!("5/h")) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(owned, Rate::new(5, HOUR));

        let bad = serde_json::from_str::<Config>(r#"{"rate": "0/second"}"#);
        let message = bad.map(|c| c.rate).err().map(|e| e.to_string());
        let message = message.unwrap_or_default();
        assert!(message.contains("\"0/second\""), "{message}");
        assert!(message.contains("at least 1"), "{message}");

        let not_string = serde_json::from_str::<Config>(r#"{"rate": 10}"#);
        let message = not_string.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("a rate such as"), "{message}");

        let json = serde_json::to_string(&Rate::new(20, 10 * SECOND)).unwrap_or_default();
        assert_eq!(json, r#""20 per 10 seconds""#);
    }
}
