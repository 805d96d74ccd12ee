//! Turning failures into gRPC statuses a client can tell apart: a code, a
//! message that names the problem, and `keyd-reason` (+ `keyd-tries-left`).

use crate::device::DeviceError;
use keyd_backends::{BackendError, Precondition, TriesLeft};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

pub fn with_reason(code: Code, reason: &'static str, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status
        .metadata_mut()
        .insert("keyd-reason", MetadataValue::from_static(reason));
    status
}

fn with_tries(mut status: Status, tries: TriesLeft) -> Status {
    if let Ok(v) = MetadataValue::try_from(tries.as_count().to_string()) {
        status.metadata_mut().insert("keyd-tries-left", v);
    }
    status
}

pub fn from_backend(backend: &str, e: &BackendError) -> Status {
    let msg = format!("backend {backend:?}: {e}");
    match e {
        BackendError::KeyNotFound(_) => with_reason(Code::NotFound, "key_not_found", msg),
        BackendError::WrongPin(t) => {
            with_tries(with_reason(Code::Unauthenticated, "wrong_pin", msg), *t)
        }
        BackendError::WrongAuth { tries_left, .. } => with_tries(
            with_reason(Code::Unauthenticated, "wrong_auth", msg),
            *tries_left,
        ),
        BackendError::Lockout(_) => with_reason(Code::FailedPrecondition, "auth_lockout", msg),
        BackendError::PinBlocked => with_tries(
            with_reason(Code::FailedPrecondition, "pin_blocked", msg),
            TriesLeft::Exactly(0),
        ),
        BackendError::LoginRequired => with_reason(Code::FailedPrecondition, "login_required", msg),
        BackendError::Unavailable(_) => with_reason(Code::Unavailable, "backend_unavailable", msg),
        BackendError::UnsupportedAlgorithm(_) | BackendError::InvalidUri { .. } => {
            with_reason(Code::InvalidArgument, "invalid_argument", msg)
        }
        BackendError::NotSupported(_) => with_reason(Code::Unimplemented, "not_supported", msg),
        BackendError::Device(_) | BackendError::Storage(_) => {
            with_reason(Code::Internal, "device_error", msg)
        }
        BackendError::TouchTimeout(_) => with_reason(Code::DeadlineExceeded, "touch_timeout", msg),
        BackendError::Precondition { reason, .. } => {
            with_reason(Code::FailedPrecondition, precondition_word(*reason), msg)
        }
    }
}

fn precondition_word(reason: Precondition) -> &'static str {
    match reason {
        Precondition::SetupNeeded => "setup_needed",
        Precondition::AlreadySetUp => "already_set_up",
        Precondition::ManagementKeyUnknown => "management_key_unknown",
        Precondition::NoFreeSlot => "no_free_slot",
        Precondition::SlotOccupied => "slot_occupied",
        Precondition::BadNewSecret => "bad_new_secret",
        Precondition::WrongPuk => "wrong_puk",
        Precondition::PukBlocked => "puk_blocked",
    }
}

pub fn from_device(backend: &str, e: &DeviceError) -> Status {
    match e {
        DeviceError::Backend(b) => from_backend(backend, b),
        DeviceError::Worker(w) => with_reason(
            Code::Internal,
            "device_error",
            format!("backend {backend:?}: {w}"),
        ),
    }
}

pub fn denied(what: String) -> Status {
    with_reason(Code::PermissionDenied, "permission_denied", what)
}

pub fn invalid(what: impl Into<String>) -> Status {
    with_reason(Code::InvalidArgument, "invalid_argument", what)
}

pub fn key_not_found(id: &str) -> Status {
    with_reason(
        Code::NotFound,
        "key_not_found",
        format!("no key {id:?} in any available backend (see `notaryctl key list`)"),
    )
}
