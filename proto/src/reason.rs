//! Why a request failed, in words both the daemon and its clients link, so
//! a client branches on a `Reason` and typed facts, never on message text.
//!
//! A failure travels in the gRPC richer error model: the status carries a
//! `google.rpc.ErrorInfo` whose domain is [`DOMAIN`], whose reason is the
//! `Reason`'s wire word, and whose metadata holds the backend involved and
//! the PIN tries left, when known. The status message is for people.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of notary-keyd's failures.
pub(crate) const DOMAIN: &str = "notary-keyd";

/// `ErrorInfo.metadata` key: the backend (as configured) that failed.
const BACKEND: &str = "backend";
/// `ErrorInfo.metadata` key: PIN tries left, when the device says.
const TRIES_LEFT: &str = "tries_left";

macro_rules! reasons {
    ($($variant:ident => $word:literal, $code:ident;)+) => {
        /// Every reason the daemon gives; each has one gRPC code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($variant,)+
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The word in `ErrorInfo.reason`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $word,)+
                }
            }

            /// The gRPC code a status with this reason has.
            pub fn code(self) -> Code {
                match self {
                    $(Reason::$variant => Code::$code,)+
                }
            }
        }
    };
}

reasons! {
    PermissionDenied => "PERMISSION_DENIED", PermissionDenied;
    RoleMismatch => "ROLE_MISMATCH", PermissionDenied;
    GunMismatch => "GUN_MISMATCH", PermissionDenied;
    PayloadType => "PAYLOAD_TYPE", PermissionDenied;
    InvalidArgument => "INVALID_ARGUMENT", InvalidArgument;
    KeyNotFound => "KEY_NOT_FOUND", NotFound;
    NoCertificate => "NO_CERTIFICATE", NotFound;
    DeviceNotFound => "DEVICE_NOT_FOUND", NotFound;
    LoginRequired => "LOGIN_REQUIRED", FailedPrecondition;
    PinPerRequest => "PIN_PER_REQUEST", FailedPrecondition;
    WrongPin => "WRONG_PIN", Unauthenticated;
    PinBlocked => "PIN_BLOCKED", FailedPrecondition;
    WrongAuth => "WRONG_AUTH", Unauthenticated;
    AuthLockout => "AUTH_LOCKOUT", FailedPrecondition;
    TouchTimeout => "TOUCH_TIMEOUT", DeadlineExceeded;
    BackendUnavailable => "BACKEND_UNAVAILABLE", Unavailable;
    NotSupported => "NOT_SUPPORTED", Unimplemented;
    DeviceError => "DEVICE_ERROR", Internal;
    StateError => "STATE_ERROR", Internal;
    AuditFailed => "AUDIT_FAILED", Unavailable;
    DeviceTimeout => "DEVICE_TIMEOUT", DeadlineExceeded;
    MaxKeys => "MAX_KEYS", ResourceExhausted;
    TooManyRequests => "TOO_MANY_REQUESTS", ResourceExhausted;
    SetupNeeded => "SETUP_NEEDED", FailedPrecondition;
    AlreadySetUp => "ALREADY_SET_UP", FailedPrecondition;
    ManagementKeyUnknown => "MANAGEMENT_KEY_UNKNOWN", FailedPrecondition;
    NoFreeSlot => "NO_FREE_SLOT", FailedPrecondition;
    SlotOccupied => "SLOT_OCCUPIED", FailedPrecondition;
    BadNewSecret => "BAD_NEW_SECRET", FailedPrecondition;
    WrongPuk => "WRONG_PUK", FailedPrecondition;
    PukBlocked => "PUK_BLOCKED", FailedPrecondition;
    WrongPassphrase => "WRONG_PASSPHRASE", Unauthenticated;
    KeyFileInvalid => "KEY_FILE_INVALID", InvalidArgument;
    KeyMismatch => "KEY_MISMATCH", FailedPrecondition;
    MigrationOnly => "MIGRATION_ONLY", PermissionDenied;
}

impl Reason {
    fn from_wire(word: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == word)
    }

    /// The reason a status carries, if it is one of the daemon's.
    pub fn of(status: &Status) -> Option<Reason> {
        Failure::of(status).map(|f| f.reason)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure's reason and the facts a client acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    /// The backend that failed, as the daemon's configuration names it.
    pub backend: Option<String>,
    /// PIN tries left before the PIN blocks, when the device says.
    pub tries_left: Option<u32>,
}

impl Failure {
    pub fn new(reason: Reason) -> Failure {
        Failure {
            reason,
            backend: None,
            tries_left: None,
        }
    }

    pub fn on_backend(mut self, backend: &str) -> Failure {
        self.backend = Some(backend.to_string());
        self
    }

    pub fn with_tries_left(mut self, tries_left: Option<u32>) -> Failure {
        self.tries_left = tries_left;
        self
    }

    /// The status to send: the reason's code, `message` for people, and
    /// this failure as its `ErrorInfo`.
    pub fn into_status(self, message: impl Into<String>) -> Status {
        let mut metadata = HashMap::new();
        if let Some(backend) = self.backend {
            metadata.insert(BACKEND.to_string(), backend);
        }
        if let Some(n) = self.tries_left {
            metadata.insert(TRIES_LEFT.to_string(), n.to_string());
        }
        let details = ErrorDetails::with_error_info(self.reason.as_str(), DOMAIN, metadata);
        Status::with_error_details(self.reason.code(), message, details)
    }

    /// The failure a status carries; `None` for statuses that are not the
    /// daemon's (transport errors, another domain, an unknown reason).
    pub fn of(status: &Status) -> Option<Failure> {
        let info = status.get_details_error_info()?;
        if info.domain != DOMAIN {
            return None;
        }
        Some(Failure {
            reason: Reason::from_wire(&info.reason)?,
            backend: info.metadata.get(BACKEND).cloned(),
            tries_left: info.metadata.get(TRIES_LEFT).and_then(|n| n.parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_survive_the_status() {
        let sent = Failure::new(Reason::WrongPin)
            .on_backend("hsm")
            .with_tries_left(Some(2));
        let status = sent.clone().into_status("backend \"hsm\": wrong PIN");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "backend \"hsm\": wrong PIN");
        assert_eq!(Failure::of(&status), Some(sent));
        let bare = Failure::new(Reason::KeyNotFound).into_status("no key");
        assert_eq!(Reason::of(&bare), Some(Reason::KeyNotFound));
        assert_eq!(Failure::of(&bare).unwrap().backend, None);
    }

    #[test]
    fn wire_words_are_unique_and_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_wire(r.as_str()), Some(*r));
            assert!(r.as_str().len() <= 63, "{r}");
        }
        let mut words: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), Reason::ALL.len());
    }

    #[test]
    fn other_statuses_have_no_reason() {
        assert_eq!(Reason::of(&Status::internal("transport")), None);
        let foreign = Status::with_error_details(
            Code::NotFound,
            "x",
            ErrorDetails::with_error_info("KEY_NOT_FOUND", "example.com", HashMap::new()),
        );
        assert_eq!(Reason::of(&foreign), None);
    }
}
