//! RFC 3339 timestamps for `expires`, kept small to avoid a date crate.
//!
//! Notary writes Go's RFC3339Nano in UTC (`2036-11-22T12:40:56.761607508Z`,
//! trailing zeros of the fraction trimmed) and reads any RFC 3339 time.

use super::MetadataError;

/// Seconds since the Unix epoch of an RFC 3339 time; the fraction is dropped.
pub fn parse_expires(text: &str) -> Result<i64, MetadataError> {
    let bad = |why| MetadataError::BadTime(text.to_string(), why);
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let num = |from: usize, to: usize| -> Result<i64, MetadataError> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected digits"));
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("date out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time of day out of range"));
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("empty fraction"));
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad("bad zone offset"));
            }
            let d = |c: u8| i64::from(c - b'0');
            let (hours, minutes) = (d(*h1) * 10 + d(*h2), d(*m1) * 10 + d(*m2));
            if hours > 23 || minutes > 59 {
                return Err(bad("zone offset out of range"));
            }
            let secs = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err(bad("expected Z or a ±HH:MM zone")),
    };
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Go's RFC3339Nano rendering of a UTC time.
pub fn format_expires(unix_secs: i64, nanos: u32) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let nanos = nanos % 1_000_000_000;
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notary_times() {
        assert_eq!(parse_expires("1970-01-01T00:00:00Z").unwrap(), 0);
        // date -d 2036-11-22T12:44:01Z +%s
        assert_eq!(
            parse_expires("2036-11-22T12:44:01.165523574Z").unwrap(),
            2_110_970_641
        );
        assert_eq!(
            parse_expires("2036-11-22T13:44:01+01:00").unwrap(),
            2_110_970_641
        );
        assert_eq!(parse_expires("2000-02-29T00:00:00Z").unwrap(), 951_782_400);
    }

    #[test]
    fn refuses_malformed_times() {
        for bad in [
            "",
            "2036-11-22",
            "2036-11-22 12:44:01Z",
            "2036-13-01T00:00:00Z",
            "2001-02-29T00:00:00Z",
            "2036-11-22T24:00:00Z",
            "2036-11-22T12:44:01",
            "2036-11-22T12:44:01.Z",
            "2036-11-22T12:44:01+0100",
        ] {
            assert!(parse_expires(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(
            format_expires(2_110_970_641, 165_523_574),
            "2036-11-22T12:44:01.165523574Z"
        );
        assert_eq!(
            format_expires(2_110_970_641, 500_000_000),
            "2036-11-22T12:44:01.5Z"
        );
        assert_eq!(format_expires(0, 0), "1970-01-01T00:00:00Z");
        for t in [-86_401, 0, 951_782_400, 4_102_444_800, 253_402_300_799] {
            assert_eq!(parse_expires(&format_expires(t, 0)).unwrap(), t);
        }
    }
}
