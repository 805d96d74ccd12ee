//! RFC 3339 timestamps for `expires`, through the `time` crate.
//!
//! Notary writes Go's RFC3339Nano in UTC (`2036-11-22T12:40:56.761607508Z`,
//! trailing zeros of the fraction trimmed, which is also how `time` writes
//! RFC 3339) and reads any RFC 3339 time.

use super::MetadataError;
use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Seconds since the Unix epoch of an RFC 3339 time; the fraction is dropped.
pub fn parse_expires(text: &str) -> Result<i64, MetadataError> {
    // `time` also takes RFC 3339's lower-case and space-separated forms,
    // which Go (and so notary) refuses; refuse them too.
    let b = text.as_bytes();
    if b.get(10) != Some(&b'T') || b.last() == Some(&b'z') {
        return Err(MetadataError::BadTime(
            text.to_string(),
            "expected YYYY-MM-DDTHH:MM:SS with an upper-case T and Z",
        ));
    }
    // `time` reads second 60 as a leap second and writes it back as 59;
    // Go refuses it ("second out of range"), and so do we.
    if b.get(17..19) == Some(b"60") {
        return Err(MetadataError::BadTime(
            text.to_string(),
            "second out of range",
        ));
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            MetadataError::BadTime(
                text.to_string(),
                "expected an RFC 3339 time such as 2036-11-22T12:44:01Z",
            )
        })
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: RFC 3339 years have
/// four digits.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

/// Go's RFC3339Nano rendering of a UTC time; a time outside years
/// 0000-9999 is written as the nearest end of that range.
pub fn format_expires(unix_secs: i64, nanos: u32) -> String {
    let (secs, nanos) = match unix_secs {
        ..FIRST => (FIRST, 0),
        FIRST..=LAST => (unix_secs, nanos % 1_000_000_000),
        _ => (LAST, 0),
    };
    // Both steps succeed for a time in that range and nanos below 10^9.
    OffsetDateTime::from_unix_timestamp(secs)
        .and_then(|t| t.replace_nanosecond(nanos))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
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
            "2036-11-22t12:44:01Z",
            "2036-11-22T12:44:01z",
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
        assert_eq!(format_expires(253_402_300_800, 0), "9999-12-31T23:59:59Z");
        assert_eq!(format_expires(i64::MAX, 7), "9999-12-31T23:59:59Z");
        assert_eq!(format_expires(-62_167_219_201, 0), "0000-01-01T00:00:00Z");
    }
}
