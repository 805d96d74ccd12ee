//! notary's default lifetimes (365-day years, as notary counts them).

use notary_tuf::metadata::format_expires;

pub(crate) const ROOT_YEARS: i64 = 10;
pub(crate) const TARGETS_YEARS: i64 = 3;
pub(crate) const SNAPSHOT_YEARS: i64 = 3;

const YEAR_SECS: i64 = 365 * 86_400;

/// Go's RFC3339Nano of now + `years`.
pub(crate) fn expires_in_years(years: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(0);
    format_expires(secs + years * YEAR_SECS, now.subsec_nanos())
}
