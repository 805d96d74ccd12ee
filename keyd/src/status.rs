//! Turning failures into gRPC statuses a client can tell apart: a message
//! that names the problem, and a typed `Reason` with the backend and the
//! PIN tries left (`keyd_proto::Failure`).

use crate::device::DeviceError;
use keyd_backends::{BackendError, Precondition, TriesLeft};
use keyd_proto::{Failure, Reason};
use tonic::Status;

/// A status whose only fact is its reason.
pub(crate) fn refusal(reason: Reason, message: impl Into<String>) -> Status {
    Failure::new(reason).into_status(message)
}

fn backend_reason(e: &BackendError) -> Reason {
    match e {
        BackendError::KeyNotFound(_) => Reason::KeyNotFound,
        BackendError::WrongPin(_) => Reason::WrongPin,
        BackendError::WrongAuth { .. } => Reason::WrongAuth,
        BackendError::Lockout(_) => Reason::AuthLockout,
        BackendError::PinBlocked => Reason::PinBlocked,
        BackendError::LoginRequired => Reason::LoginRequired,
        BackendError::Unavailable(_) => Reason::BackendUnavailable,
        BackendError::UnsupportedAlgorithm(_) | BackendError::InvalidUri { .. } => {
            Reason::InvalidArgument
        }
        BackendError::NotSupported(_) => Reason::NotSupported,
        BackendError::Device(_) | BackendError::Storage(_) => Reason::DeviceError,
        BackendError::TouchTimeout(_) => Reason::TouchTimeout,
        BackendError::Precondition { reason, .. } => match reason {
            Precondition::SetupNeeded => Reason::SetupNeeded,
            Precondition::AlreadySetUp => Reason::AlreadySetUp,
            Precondition::ManagementKeyUnknown => Reason::ManagementKeyUnknown,
            Precondition::NoFreeSlot => Reason::NoFreeSlot,
            Precondition::SlotOccupied => Reason::SlotOccupied,
            Precondition::BadNewSecret => Reason::BadNewSecret,
            Precondition::WrongPuk => Reason::WrongPuk,
            Precondition::PukBlocked => Reason::PukBlocked,
        },
    }
}

/// What the device says about PIN tries, for the status.
fn tries_left(e: &BackendError) -> Option<TriesLeft> {
    match e {
        BackendError::WrongPin(t) => Some(*t),
        BackendError::WrongAuth { tries_left, .. } => Some(*tries_left),
        BackendError::PinBlocked => Some(TriesLeft::Exactly(0)),
        _ => None,
    }
}

pub(crate) fn from_backend(backend: &str, e: &BackendError) -> Status {
    let tries = tries_left(e).and_then(|t| u32::try_from(t.as_count()).ok());
    Failure::new(backend_reason(e))
        .on_backend(backend)
        .with_tries_left(tries)
        .into_status(format!("backend {backend:?}: {e}"))
}

pub(crate) fn from_device(backend: &str, e: &DeviceError) -> Status {
    match e {
        DeviceError::Backend(b) => from_backend(backend, b),
        DeviceError::Worker(w) => Failure::new(Reason::DeviceError)
            .on_backend(backend)
            .into_status(format!("backend {backend:?}: {w}")),
    }
}

pub(crate) fn denied(what: String) -> Status {
    refusal(Reason::PermissionDenied, what)
}

pub(crate) fn invalid(what: impl Into<String>) -> Status {
    refusal(Reason::InvalidArgument, what)
}

pub(crate) fn key_not_found(id: &str) -> Status {
    refusal(
        Reason::KeyNotFound,
        format!("no key {id:?} in any available backend (see `notaryctl key list`)"),
    )
}
