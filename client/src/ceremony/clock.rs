//! The time as the ceremony reads it: Unix seconds for checks, RFC 3339
//! (UTC) for the transcript. The offline machine's clock decides
//! certificate and expiry checks, so the guide has the witness compare it
//! with a watch first.

use notary_tuf::metadata::format_expires;

pub(super) fn now() -> (i64, String) {
    let now = crate::collection::update::now();
    (now, format_expires(now, 0))
}
