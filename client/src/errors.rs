//! Turning the daemon's gRPC statuses into one line a person can act on.

use keyd_proto::{Failure, Reason};
use std::fmt;
use tonic::{Code, Response, Status};

/// A request notary-keyd refused or failed, with what the client knows about
/// it (the backend involved) to make the message actionable.
#[derive(Debug)]
pub(crate) struct KeydError {
    status: Status,
    backend: Option<String>,
}

impl KeydError {
    pub(crate) fn new(status: Status) -> Self {
        Self {
            status,
            backend: None,
        }
    }

    /// The connection to the daemon broke (it stopped or restarted): the
    /// status comes from the client's transport, not from notary-keyd.
    pub(crate) fn connection_lost(&self) -> bool {
        transport_failure(&self.status)
    }

    /// For failures of a request whose backend the client knows.
    pub(crate) fn on_backend(status: Status, backend: &str) -> Self {
        let backend = (!backend.is_empty()).then(|| backend.to_string());
        Self { status, backend }
    }
}

/// A daemon call's outcome as the message it returned or the refusal as a
/// [`KeydError`]: `client.get_key(request).await.reply()?`.
pub(crate) trait Reply<T> {
    fn reply(self) -> Result<T, KeydError>;
    /// The same, for a request on a backend the caller named.
    fn reply_on(self, backend: &str) -> Result<T, KeydError>;
}

impl<T> Reply<T> for Result<Response<T>, Status> {
    fn reply(self) -> Result<T, KeydError> {
        self.map(Response::into_inner).map_err(KeydError::new)
    }

    fn reply_on(self, backend: &str) -> Result<T, KeydError> {
        self.map(Response::into_inner)
            .map_err(|status| KeydError::on_backend(status, backend))
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

fn message_or_code(status: &Status) -> String {
    if status.message().is_empty() {
        format!("notary-keyd failed: {}", status.code().description())
    } else {
        status.message().to_string()
    }
}

/// A count a person reads: the number, or "unknown".
fn tries_text(tries: Option<u32>) -> String {
    tries.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

/// A status the transport made (it carries the I/O or HTTP/2 error as its
/// source); statuses the daemon sends arrive without one.
fn transport_failure(status: &Status) -> bool {
    use std::error::Error as _;
    Failure::of(status).is_none() && status.source().is_some()
}

/// The innermost cause of a transport failure ("broken pipe").
fn transport_cause(status: &Status) -> String {
    let mut cause: &dyn std::error::Error = status;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// One line for a failed request. `backend` is the one the client asked
/// for; the daemon's own word on it wins when the status carries one.
pub(crate) fn describe(status: &Status, backend: Option<&str>) -> String {
    if transport_failure(status) {
        return format!(
            "lost the connection to notary-keyd ({}): did it stop or restart? \
             `notaryctl backend list` tells whether it is back",
            transport_cause(status)
        );
    }
    let message = message_or_code(status);
    let Some(failure) = Failure::of(status) else {
        return match status.code() {
            Code::ResourceExhausted | Code::OutOfRange => {
                format!("request too large for notary-keyd's max_message_bytes ({message})")
            }
            _ => message,
        };
    };
    let backend = failure.backend.as_deref().or(backend).unwrap_or("NAME");
    match failure.reason {
        Reason::PermissionDenied => format!(
            "notary-keyd refused: {message} (ask the operator to allow it in the daemon's [[policy]])"
        ),
        Reason::WrongPin => format!(
            "wrong PIN for backend {backend} (tries left: {}); check it before trying again: \
             the token blocks after too many wrong PINs",
            tries_text(failure.tries_left)
        ),
        Reason::PinBlocked => format!(
            "the user PIN of backend {backend} is blocked: reset it with the token's SO PIN \
             (e.g. `pkcs11-tool --login --login-type so --init-pin`) or, on a YubiKey, with \
             its PUK (`notaryctl yubikey release`, then `ykman piv access unblock-pin`), \
             then run `notaryctl key unlock --backend {backend}`"
        ),
        Reason::LoginRequired => format!(
            "backend {backend} is locked and needs its PIN; unlock it: notaryctl key unlock --backend {backend} \
             (or point $NOTARY_KEYD_PIN_FILE at a file holding the PIN)"
        ),
        Reason::BackendUnavailable => format!(
            "backend unavailable: {message} (see `notaryctl backend list`)"
        ),
        Reason::TouchTimeout => format!(
            "touch timed out: {message} (this is not a PIN problem; no PIN try was used)"
        ),
        Reason::TooManyRequests => format!(
            "notary-keyd is busy with this user's other requests: {message}; \
             try again once some finish, or ask the operator to raise it"
        ),
        Reason::AuditFailed => format!(
            "notary-keyd could not write its audit log and withheld the result: {message} \
             (ask the operator to fix the daemon's audit_log)"
        ),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: Reason, message: &str) -> Status {
        Failure::new(reason).into_status(message)
    }

    fn on(backend: &str, reason: Reason, tries: Option<u32>, message: &str) -> Status {
        Failure::new(reason)
            .on_backend(backend)
            .with_tries_left(tries)
            .into_status(message)
    }

    #[test]
    fn permission_denied_points_at_policy() {
        let st = status(
            Reason::PermissionDenied,
            "uid 1001 may not sign with key ab",
        );
        assert_eq!(
            KeydError::new(st).to_string(),
            "notary-keyd refused: uid 1001 may not sign with key ab (ask the operator to allow it in the daemon's [[policy]])"
        );
    }

    #[test]
    fn too_many_requests_is_not_taken_for_a_large_request() {
        let st = status(
            Reason::TooManyRequests,
            "uid 1000 already has 128 requests in progress",
        );
        let line = describe(&st, None);
        assert!(
            line.starts_with("notary-keyd is busy with this user's other requests: uid 1000"),
            "{line}"
        );
        assert!(!line.contains("max_message_bytes"), "{line}");
    }

    #[test]
    fn key_not_found_keeps_the_daemon_message() {
        let msg = "no key \"ab\" in any available backend (see `notaryctl key list`)";
        assert_eq!(describe(&status(Reason::KeyNotFound, msg), None), msg);
    }

    #[test]
    fn wrong_pin_reports_tries_left() {
        let st = on(
            "hsm",
            Reason::WrongPin,
            Some(2),
            "backend \"hsm\": wrong PIN",
        );
        assert!(describe(&st, None).starts_with("wrong PIN for backend hsm (tries left: 2); "));
        let st = status(Reason::WrongPin, "x");
        assert!(describe(&st, Some("tok"))
            .starts_with("wrong PIN for backend tok (tries left: unknown); "));
    }

    #[test]
    fn pin_blocked_says_what_to_do() {
        let st = on("hsm", Reason::PinBlocked, Some(0), "PIN blocked");
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
    fn login_required_names_the_backend_the_daemon_names() {
        let st = on("other", Reason::LoginRequired, None, "login required");
        let line = describe(&st, Some("hsm"));
        assert!(
            line.contains("unlock it: notaryctl key unlock --backend other"),
            "{line}"
        );
        let line = describe(
            &status(Reason::LoginRequired, "login required"),
            Some("hsm"),
        );
        assert!(
            line.contains("unlock it: notaryctl key unlock --backend hsm"),
            "{line}"
        );
        // The message text is never read for the name.
        let st = status(Reason::LoginRequired, "backend \"hsm\": login required");
        assert!(describe(&st, None).contains("--backend NAME"));
    }

    #[test]
    fn backend_unavailable_and_audit_failed() {
        let st = on(
            "hsm",
            Reason::BackendUnavailable,
            None,
            "backend \"hsm\": token not present",
        );
        assert_eq!(
            describe(&st, None),
            "backend unavailable: backend \"hsm\": token not present (see `notaryctl backend list`)"
        );
        let st = status(Reason::AuditFailed, "disk full; the result was withheld");
        let line = describe(&st, None);
        assert!(
            line.starts_with("notary-keyd could not write its audit log"),
            "{line}"
        );
        assert!(line.contains("disk full"), "{line}");
    }

    #[test]
    fn binding_refusals_keep_the_message() {
        for reason in [
            Reason::PayloadType,
            Reason::RoleMismatch,
            Reason::GunMismatch,
        ] {
            let msg = "key ab is bound to role \"targets\", not \"root\"";
            assert_eq!(describe(&status(reason, msg), None), msg);
        }
    }

    #[test]
    fn touch_timeout() {
        let st = status(Reason::TouchTimeout, "no touch within 15s");
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
    fn a_broken_connection_names_notary_keyd() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let err = KeydError::new(Status::from_error(Box::new(io)));
        assert!(err.connection_lost());
        let line = err.to_string();
        assert!(
            line.starts_with("lost the connection to notary-keyd (broken pipe)"),
            "{line}"
        );
        assert!(!KeydError::new(Status::unavailable("x")).connection_lost());
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
