//! Timestamps: RFC 3339 in and out, as nanoseconds since the Unix epoch.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    let ns = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Formats `ns` as RFC 3339 UTC with nine fractional digits, e.g.
/// `2026-11-22T06:03:48.123456789Z`.
pub fn format_rfc3339_nanos(ns: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)) else {
        return "1970-01-01T00:00:00.000000000Z".to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Parses an RFC 3339 timestamp into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Some(ns) = parse_fast(s.as_bytes()) {
        return Some(ns);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, parsed by hand because
/// it runs for nearly every event on the ingest path (the `time` crate's
/// general parser costs several times more). Anything else returns `None`
/// and takes the general path.
fn parse_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let c = *b.get(i)?;
        c.is_ascii_digit().then(|| i64::from(c - b'0'))
    };
    let n2 = |i: usize| Some(d(i)? * 10 + d(i + 1)?);
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = n2(0)? * 100 + n2(2)?;
    let (month, day) = (n2(5)?, n2(8)?);
    let (hour, min, sec) = (n2(11)?, n2(14)?, n2(17)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut nanos = 0i64;
    let frac = &b[19..b.len() - 1];
    if !frac.is_empty() {
        let digits = frac.strip_prefix(b".")?;
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for (i, c) in digits.iter().enumerate() {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
    }
    // Reject impossible dates (e.g. Feb 30) by round-tripping the day count.
    let days = days_from_civil(year, month, day);
    let (y2, m2, d2) = civil_from_days(days);
    if (y2, m2, d2) != (year, month, day) {
        return None;
    }
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Reads an event's time value: an RFC 3339 string, or a number of seconds
/// (or milliseconds, when larger than 10^11) since the epoch.
pub fn parse_time_value(v: TimeValue<'_>) -> Option<i64> {
    match v {
        TimeValue::Str(s) => parse_rfc3339(s),
        TimeValue::Num(n) => {
            if !n.is_finite() {
                return None;
            }
            let secs = if n.abs() > 1e11 { n / 1000.0 } else { n };
            let ns = secs * 1e9;
            (ns.abs() < 9.2e18).then_some(ns as i64)
        }
    }
}

/// A time as it appears in an event.
#[derive(Debug, Clone, Copy)]
pub enum TimeValue<'a> {
    /// A string, expected to be RFC 3339.
    Str(&'a str),
    /// A number of seconds or milliseconds since the epoch.
    Num(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ns = 1_795_500_228_123_456_789;
        let s = format_rfc3339_nanos(ns);
        assert_eq!(s.len(), 30);
        assert_eq!(parse_rfc3339(&s), Some(ns));
        assert_eq!(
            parse_rfc3339("2026-11-22T07:03:48+01:00"),
            parse_rfc3339("2026-11-22T06:03:48Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_the_time_crate(secs in 0i64..8_000_000_000, nanos in 0u32..1_000_000_000, digits in 0usize..10) {
            let t = OffsetDateTime::from_unix_timestamp(secs).expect("in range");
            let frac = format!("{nanos:09}");
            let s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}Z",
                t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second(),
                if digits > 0 { "." } else { "" }, &frac[..digits]
            );
            let general = OffsetDateTime::parse(&s, &Rfc3339).ok().and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok());
            proptest::prop_assert_eq!(parse_fast(s.as_bytes()), general);
        }
    }

    #[test]
    fn fast_path_refuses_impossible_dates() {
        assert_eq!(parse_fast(b"2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_fast(b"2026-13-01T00:00:00Z"), None);
        assert!(parse_fast(b"2024-02-29T23:59:59.5Z").is_some());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_time_value(TimeValue::Num(1.5)), Some(1_500_000_000));
        assert_eq!(
            parse_time_value(TimeValue::Num(1_700_000_000_000.0)),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_time_value(TimeValue::Num(f64::NAN)), None);
    }
}
