//! `Debug` for request messages that carry a PIN: every field is shown
//! except the PIN, which reads `<redacted>` (or `<empty>`), so requests can
//! be logged or printed in a panic without leaking a secret. build.rs tells
//! prost not to derive `Debug` for exactly these messages.

use crate::keyd::{IssueRootCertificateRequest, SignRequest, UnlockRequest};
use std::fmt;

/// Stands in for a secret in `Debug` output; says only whether one was given.
struct Hidden<'a>(&'a str);

impl fmt::Debug for Hidden<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

impl fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignRequest")
            .field("key_id", &self.key_id)
            .field("payload_len", &self.payload.len())
            .field("gun", &self.gun)
            .field("role", &self.role)
            .field("pin", &Hidden(&self.pin))
            .finish()
    }
}

impl fmt::Debug for IssueRootCertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueRootCertificateRequest")
            .field("key_id", &self.key_id)
            .field("gun", &self.gun)
            .field("validity_days", &self.validity_days)
            .field("pin", &Hidden(&self.pin))
            .finish()
    }
}

impl fmt::Debug for UnlockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnlockRequest")
            .field("backend", &self.backend)
            .field("pin", &Hidden(&self.pin))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "271828";

    #[test]
    fn pins_never_reach_debug_output() {
        let sign = SignRequest {
            key_id: "abc".into(),
            payload: b"{}".to_vec(),
            gun: "example.com/app".into(),
            role: "targets".into(),
            pin: PIN.into(),
        };
        let issue = IssueRootCertificateRequest {
            key_id: "abc".into(),
            gun: "example.com/app".into(),
            validity_days: 1,
            pin: PIN.into(),
        };
        let unlock = UnlockRequest {
            backend: "hsm".into(),
            pin: PIN.into(),
        };
        for shown in [
            format!("{sign:?}"),
            format!("{issue:#?}"),
            format!("{unlock:?}"),
        ] {
            assert!(!shown.contains(PIN), "PIN leaked: {shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        assert!(format!("{sign:?}").contains("example.com/app"));
    }

    #[test]
    fn an_absent_pin_reads_empty() {
        let unlock = UnlockRequest {
            backend: "hsm".into(),
            pin: String::new(),
        };
        assert!(format!("{unlock:?}").contains("<empty>"));
    }
}
