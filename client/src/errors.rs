//! Turning the daemon's gRPC statuses into one line a person can act on.

use std::fmt;
use tonic::{Code, Status};

/// A request notary-keyd refused or failed, with what the client knows about
/// it (the backend involved) to make the message actionable.
#[derive(Debug)]
pub struct KeydError {
    status: Status,
    backend: Option<String>,
}

impl KeydError {
    pub fn new(status: Status) -> Self {
        Self {
            status,
            backend: None,
        }
    }

    /// For failures of a request whose backend the client knows.
    pub fn on_backend(status: Status, backend: &str) -> Self {
        let backend = (!backend.is_empty()).then(|| backend.to_string());
        Self { status, backend }
    }
}

impl From<Status> for KeydError {
    fn from(status: Status) -> Self {
        Self::new(status)
    }
}

impl fmt::Display for KeydError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&self.status, self.backend.as_deref()))
    }
}

impl std::error::Error for KeydError {}

/// The `keyd-reason` metadata of a status, if any.
pub fn reason(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get("keyd-reason")
        .and_then(|v| v.to_str().ok())
}

/// `keyd-tries-left` as a person reads it: a count, or "unknown" (-1 or absent).
fn tries_left(status: &Status) -> String {
    status
        .metadata()
        .get("keyd-tries-left")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

/// The daemon names the backend as `backend "NAME": …` in device errors; used
/// when the client did not know the backend itself (e.g. the default one).
pub(crate) fn backend_in_message(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("backend \"")?;
    rest.split_once('"').map(|(name, _)| name)
}

fn message_or_code(status: &Status) -> String {
    if status.message().is_empty() {
        format!("notary-keyd failed: {}", status.code().description())
    } else {
        status.message().to_string()
    }
}

/// One line for a failed request.
pub fn describe(status: &Status, backend: Option<&str>) -> String {
    let message = message_or_code(status);
    let backend = backend
        .or_else(|| backend_in_message(status.message()))
        .unwrap_or("NAME");
    match reason(status) {
        Some("permission_denied") => format!(
            "notary-keyd refused: {message} (ask the operator to allow it in the daemon's [[policy]])"
        ),
        Some("key_not_found") => message,
        Some("wrong_pin") => format!(
            "wrong PIN for backend {backend} (tries left: {}); check it before trying again: \
             the token blocks after too many wrong PINs",
            tries_left(status)
        ),
        Some("pin_blocked") => format!(
            "the user PIN of backend {backend} is blocked: reset it with the token's SO PIN \
             (e.g. `pkcs11-tool --login --login-type so --init-pin`) or, on a YubiKey, with \
             its PUK (`notaryctl yubikey release`, then `ykman piv access unblock-pin`), \
             then run `notaryctl key unlock --backend {backend}`"
        ),
        Some("login_required") => format!(
            "backend {backend} is locked and needs its PIN; unlock it: notaryctl key unlock --backend {backend} \
             (or point $NOTARY_KEYD_PIN_FILE at a file holding the PIN)"
        ),
        Some("backend_unavailable") => format!(
            "backend unavailable: {message} (see `notaryctl backend list`)"
        ),
        Some("touch_timeout") => format!(
            "touch timed out: {message} (this is not a PIN problem; no PIN try was used)"
        ),
        Some("audit_failed") => format!(
            "notary-keyd could not write its audit log and withheld the result: {message} \
             (ask the operator to fix the daemon's audit_log)"
        ),
        Some("payload_type" | "role_mismatch" | "gun_mismatch") => message,
        _ => match status.code() {
            Code::ResourceExhausted | Code::OutOfRange => format!(
                "request too large for notary-keyd's max_message_bytes ({message})"
            ),
            _ if connection_lost(status) => format!(
                "the connection to notary-keyd broke before it answered (did the daemon stop or \
                 crash? see its log); nothing it was doing was confirmed: {message}"
            ),
            _ => message,
        },
    }
}

/// A status the client made itself from a broken connection (the daemon
/// died or closed it mid-request), not one the daemon sent: only those
/// carry the transport error that caused them.
fn connection_lost(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unknown | Code::Unavailable | Code::Internal | Code::Cancelled
    ) && std::error::Error::source(status).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn status(code: Code, reason: &'static str, message: &str) -> Status {
        let mut st = Status::new(code, message);
        st.metadata_mut()
            .insert("keyd-reason", MetadataValue::from_static(reason));
        st
    }

    fn with_tries(mut st: Status, tries: &'static str) -> Status {
        st.metadata_mut()
            .insert("keyd-tries-left", MetadataValue::from_static(tries));
        st
    }

    #[test]
    fn permission_denied_points_at_policy() {
        let st = status(
            Code::PermissionDenied,
            "permission_denied",
            "uid 1001 may not sign with key ab",
        );
        assert_eq!(
            KeydError::new(st).to_string(),
            "notary-keyd refused: uid 1001 may not sign with key ab (ask the operator to allow it in the daemon's [[policy]])"
        );
    }

    #[test]
    fn key_not_found_keeps_the_daemon_message() {
        let msg = "no key \"ab\" in any available backend (see `notaryctl key list`)";
        assert_eq!(
            describe(&status(Code::NotFound, "key_not_found", msg), None),
            msg
        );
    }

    #[test]
    fn wrong_pin_reports_tries_left() {
        let st = with_tries(
            status(
                Code::Unauthenticated,
                "wrong_pin",
                "backend \"hsm\": wrong PIN",
            ),
            "2",
        );
        assert!(describe(&st, None).starts_with("wrong PIN for backend hsm (tries left: 2); "));
        let st = with_tries(status(Code::Unauthenticated, "wrong_pin", "x"), "-1");
        assert!(describe(&st, Some("tok"))
            .starts_with("wrong PIN for backend tok (tries left: unknown); "));
        let st = status(Code::Unauthenticated, "wrong_pin", "x");
        assert!(describe(&st, Some("tok")).contains("tries left: unknown"));
    }

    #[test]
    fn pin_blocked_says_what_to_do() {
        let st = with_tries(
            status(
                Code::FailedPrecondition,
                "pin_blocked",
                "backend \"hsm\": PIN blocked",
            ),
            "0",
        );
        let line = describe(&st, None);
        assert!(
            line.starts_with("the user PIN of backend hsm is blocked"),
            "{line}"
        );
        assert!(line.contains("SO PIN"), "{line}");
        assert!(line.contains("ykman piv access unblock-pin"), "{line}");
        assert!(
            line.contains("notaryctl key unlock --backend hsm"),
            "{line}"
        );
    }

    #[test]
    fn login_required_names_the_unlock_command() {
        let st = status(
            Code::FailedPrecondition,
            "login_required",
            "backend \"other\": login required",
        );
        let line = describe(&st, Some("hsm"));
        assert!(
            line.contains("unlock it: notaryctl key unlock --backend hsm"),
            "{line}"
        );
        // Without context, the backend comes from the daemon's message.
        let line = describe(&st, None);
        assert!(
            line.contains("unlock it: notaryctl key unlock --backend other"),
            "{line}"
        );
    }

    #[test]
    fn backend_unavailable_and_audit_failed() {
        let st = status(
            Code::Unavailable,
            "backend_unavailable",
            "backend \"hsm\": token not present",
        );
        assert_eq!(
            describe(&st, None),
            "backend unavailable: backend \"hsm\": token not present (see `notaryctl backend list`)"
        );
        let st = status(
            Code::Unavailable,
            "audit_failed",
            "disk full; the result was withheld",
        );
        let line = describe(&st, None);
        assert!(
            line.starts_with("notary-keyd could not write its audit log"),
            "{line}"
        );
        assert!(line.contains("disk full"), "{line}");
    }

    #[test]
    fn binding_refusals_keep_the_message() {
        for reason in ["payload_type", "role_mismatch", "gun_mismatch"] {
            let st = status(
                Code::PermissionDenied,
                reason,
                "key ab is bound to role \"targets\", not \"root\"",
            );
            assert_eq!(
                describe(&st, None),
                "key ab is bound to role \"targets\", not \"root\""
            );
        }
    }

    #[test]
    fn touch_timeout() {
        let st = status(
            Code::DeadlineExceeded,
            "touch_timeout",
            "no touch within 15s",
        );
        assert_eq!(
            describe(&st, None),
            "touch timed out: no touch within 15s (this is not a PIN problem; no PIN try was used)"
        );
    }

    #[test]
    fn oversized_messages() {
        for code in [Code::ResourceExhausted, Code::OutOfRange] {
            let st = Status::new(code, "decoded message length too large");
            assert_eq!(
                describe(&st, None),
                "request too large for notary-keyd's max_message_bytes (decoded message length too large)"
            );
        }
    }

    #[test]
    fn a_broken_connection_says_the_daemon_went_away() {
        let broken = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        let st = Status::from_error(Box::new(broken));
        let line = describe(&st, None);
        assert!(
            line.starts_with("the connection to notary-keyd broke before it answered"),
            "{line}"
        );
        assert!(line.ends_with("connection closed"), "{line}");
        // The same code sent by the daemon is its own message.
        assert_eq!(describe(&Status::unknown("odd"), None), "odd");
    }

    #[test]
    fn anything_else_is_the_status_message() {
        assert_eq!(
            describe(&Status::invalid_argument("bad role"), None),
            "bad role"
        );
        assert_eq!(
            describe(&Status::internal(""), None),
            "notary-keyd failed: Internal error"
        );
    }
}
