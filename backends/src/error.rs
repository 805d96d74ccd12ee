//! Errors every backend reports in the same shape, so the daemon can map them
//! to distinct, actionable statuses.

use std::fmt;

/// What a device says about the PIN tries that remain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriesLeft {
    /// The device reports an exact count (PIV, TPM lockout counters).
    Exactly(u32),
    /// PKCS#11 `CKF_USER_PIN_COUNT_LOW`: some tries failed, count unknown.
    Low,
    /// PKCS#11 `CKF_USER_PIN_FINAL_TRY`: one more wrong PIN blocks it.
    FinalTry,
    /// The device does not say.
    Unknown,
}

impl TriesLeft {
    /// A count for the wire: exact or final try; -1 when unknown or only "low".
    pub fn as_count(self) -> i32 {
        match self {
            TriesLeft::Exactly(n) => i32::try_from(n).unwrap_or(i32::MAX),
            TriesLeft::FinalTry => 1,
            TriesLeft::Low | TriesLeft::Unknown => -1,
        }
    }
}

impl fmt::Display for TriesLeft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriesLeft::Exactly(1) | TriesLeft::FinalTry => {
                f.write_str("1 try left before the PIN is blocked")
            }
            TriesLeft::Exactly(n) => write!(f, "{n} tries left"),
            TriesLeft::Low => f.write_str("the token reports few tries left"),
            TriesLeft::Unknown => f.write_str("the token does not report how many tries are left"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("no key {0} in this backend")]
    KeyNotFound(String),
    #[error("wrong PIN: {0}")]
    WrongPin(TriesLeft),
    #[error("PIN is blocked: unblock it with the SO PIN/PUK or re-initialise the token")]
    PinBlocked,
    #[error("token is locked: unlock it with a PIN first (notaryctl key unlock --backend NAME)")]
    LoginRequired,
    /// A device auth value (TPM key or hierarchy auth) was refused. Never
    /// retried by the backend: each try may count toward a lockout.
    #[error("{detail} ({tries_left})")]
    WrongAuth {
        detail: String,
        tries_left: TriesLeft,
    },
    /// The device refuses auth attempts for a while (TPM dictionary-attack
    /// lockout); the message says for how long.
    #[error("{0}")]
    Lockout(String),
    #[error("algorithm {0} is not supported by this backend")]
    UnsupportedAlgorithm(String),
    #[error("operation not supported by this backend: {0}")]
    NotSupported(&'static str),
    #[error("invalid key URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
    #[error("device error: {0}")]
    Device(String),
    #[error("key store error: {0}")]
    Storage(String),
    #[error("the device was not touched in time: {0}")]
    TouchTimeout(String),
    /// The device is not in a state for this operation; `reason` says
    /// which state, so clients can tell the cases apart.
    #[error("{message}")]
    Precondition {
        reason: Precondition,
        message: String,
    },
}

/// Why a device refuses an operation in its present state (YubiKey setup
/// and slot placement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// The device still has its factory management key: set it up first.
    SetupNeeded,
    /// The device was set up already; setting it up again needs `force`.
    AlreadySetUp,
    /// Neither the factory nor a stored management key opens the device.
    ManagementKeyUnknown,
    /// Every slot that may hold a notary key is taken.
    NoFreeSlot,
    /// The slot asked for holds a key.
    SlotOccupied,
    /// A new PIN or PUK does not meet the device's rules.
    BadNewSecret,
    WrongPuk,
    PukBlocked,
}
