//! Timestamps in the two access-log formats: Envoy's RFC 3339 with
//! milliseconds (`2026-11-21T10:00:00.123Z`) and the common log format's
//! `21/Nov/2026:10:00:00 +0000`, to and from nanoseconds since the Unix
//! epoch. (Civil-date arithmetic after Howard Hinnant's `days_from_civil`.)

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const NS: i64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: i64,
    mi: i64,
    s: i64,
    ms: i64,
}

fn parts(ns: u64) -> Parts {
    let ns = ns as i64;
    let secs = ns.div_euclid(NS);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    Parts {
        y,
        mo,
        d,
        h: rem / 3600,
        mi: rem % 3600 / 60,
        s: rem % 60,
        ms: ns.rem_euclid(NS) / 1_000_000,
    }
}

/// `2026-11-21T10:00:00.123Z`, as Envoy's `%START_TIME%` prints it.
pub fn format_rfc3339(ns: u64) -> String {
    let p = parts(ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
    )
}

/// `21/Nov/2026:10:00:00 +0000`, as nginx's `$time_local` prints it in UTC.
pub fn format_clf(ns: u64) -> String {
    let p = parts(ns);
    let month = MONTHS.get(p.mo as usize - 1).copied().unwrap_or("Jan");
    format!(
        "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
        p.d, p.y, p.h, p.mi, p.s
    )
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Nanoseconds since the epoch of a UTC or offset time of day.
fn to_ns(
    date: (i64, u32, u32),
    h: i64,
    mi: i64,
    s: i64,
    frac_ns: i64,
    offset_s: i64,
) -> Option<u64> {
    let (y, mo, d) = date;
    // Four-digit years only: a log line's year is written so, and a huge
    // one would overflow the day arithmetic (found by `make fuzz`).
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&s)
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    u64::try_from(secs.checked_mul(NS)?.checked_add(frac_ns)?).ok()
}

/// An offset `+hhmm`, `-hh:mm` or `Z`, in seconds.
fn offset(s: &str) -> Option<i64> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    // Four ASCII digits: anything else (multi-byte text found by `make
    // fuzz`) would be sliced inside a character below.
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(sign * (num(&digits[..2])? * 3600 + num(&digits[2..])? * 60))
}

/// Parses `2026-11-21T10:00:00.123Z` (any fraction, `Z` or an offset).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(split);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':');
    let (h, mi, sec) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    let frac_ns = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        num(&digits)? * 10i64.pow(9 - digits.len() as u32)
    };
    let off = if zone.is_empty() { 0 } else { offset(zone)? };
    to_ns(
        (y, u32::try_from(mo).ok()?, u32::try_from(day).ok()?),
        h,
        mi,
        sec,
        frac_ns,
        off,
    )
}

/// Parses `21/Nov/2026:10:00:00 +0000`.
pub fn parse_clf(s: &str) -> Option<u64> {
    let (stamp, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut p = stamp.splitn(3, '/');
    let day = num(p.next()?)?;
    let month = p.next()?;
    let mo = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let mut t = p.next()?.splitn(4, ':');
    let y = num(t.next()?)?;
    let (h, mi, sec) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    to_ns(
        (y, mo, u32::try_from(day).ok()?),
        h,
        mi,
        sec,
        0,
        offset(zone.trim())?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_fields_are_refused_not_overflowed() {
        assert_eq!(parse_clf("10/Oct/2020000000005:13:55:36 +0000"), None);
        assert_eq!(parse_rfc3339("99999999999999-10-10T13:55:36Z"), None);
        assert_eq!(parse_clf("10/Oct/2025:-1:55:36 +0000"), None);
        assert_eq!(parse_rfc3339("2025-10-10T13:-5:36Z"), None);
        assert_eq!(parse_clf("10/Oct/2025:13:55:36 +E\u{e8}]"), None);
        assert_eq!(parse_rfc3339("2025-10-10T13:55:36+\u{e9}0"), None);
    }

    #[test]
    fn both_formats_round_trip() {
        let ns = parse_rfc3339("2026-11-21T10:00:00.123Z").unwrap();
        assert_eq!(format_rfc3339(ns), "2026-11-21T10:00:00.123Z");
        assert_eq!(format_clf(ns), "21/Nov/2026:10:00:00 +0000");
        assert_eq!(
            parse_clf("21/Nov/2026:10:00:00 +0000"),
            Some(ns - 123_000_000)
        );
        assert_eq!(
            parse_clf("21/Nov/2026:11:00:00 +0100"),
            Some(ns - 123_000_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.5+00:00")
                .map(format_rfc3339)
                .as_deref(),
            Some("2024-02-29T23:59:59.500Z")
        );
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-21T10:00",
            "21/Foo/2026:10:00:00 +0000",
            "21/Nov/2026:10:00:00 +00",
        ] {
            assert!(parse_rfc3339(s).is_none() && parse_clf(s).is_none(), "{s}");
        }
    }
}
