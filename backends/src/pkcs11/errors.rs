//! cryptoki errors in the backend's terms: which ones mean "log in", which
//! mean "the token is gone", and messages that name the PKCS#11 return code.

use crate::BackendError;
use cryptoki::error::{Error, RvError};
use std::fmt;

/// Why an operation on an open token failed, before the backend decides what
/// that means for its state.
#[derive(Debug)]
pub(super) enum OpError {
    /// A cryptoki call failed.
    Call(Error),
    /// The operation needs the user logged in and nobody is (private objects
    /// are invisible then, so this is also inferred from an empty search).
    NotLoggedIn,
    /// No key with that CKA_ID.
    KeyNotFound,
    Backend(BackendError),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Call(e)
    }
}

impl From<BackendError> for OpError {
    fn from(e: BackendError) -> Self {
        OpError::Backend(e)
    }
}

impl OpError {
    fn rv(&self) -> Option<RvError> {
        match self {
            OpError::Call(Error::Pkcs11(rv, _)) => Some(*rv),
            _ => None,
        }
    }

    pub(super) fn needs_login(&self) -> bool {
        matches!(self, OpError::NotLoggedIn) || self.rv() == Some(RvError::UserNotLoggedIn)
    }

    /// The token was removed or reset, or our sessions died with it: every
    /// session and handle we hold is useless and the token must be reopened.
    pub(super) fn token_gone(&self) -> bool {
        matches!(
            self.rv(),
            Some(
                RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::SlotIdInvalid
                    | RvError::CryptokiNotInitialized
            )
        )
    }

    /// A cached object handle no longer names the object (SoftHSM drops
    /// private object handles at logout).
    pub(super) fn stale_handle(&self) -> bool {
        matches!(
            self.rv(),
            Some(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid)
        )
    }

    /// `what` names the operation or key, for the message.
    pub(super) fn into_backend(self, what: &dyn fmt::Display) -> BackendError {
        if self.needs_login() {
            return BackendError::LoginRequired;
        }
        if self.token_gone() {
            let detail = match &self {
                OpError::Call(e) => describe(e),
                _ => String::new(),
            };
            return BackendError::Unavailable(format!(
                "{what}: {detail}; the token was removed or reset and will be reopened on the next request"
            ));
        }
        match self {
            OpError::Call(Error::Pkcs11(RvError::PinLocked, _)) => BackendError::PinBlocked,
            OpError::Call(e) => BackendError::Device(format!("{what}: {}", describe(&e))),
            OpError::KeyNotFound => BackendError::KeyNotFound(what.to_string()),
            OpError::Backend(e) => e,
            OpError::NotLoggedIn => BackendError::LoginRequired,
        }
    }
}

/// "C_Sign returned CKR_KEY_HANDLE_INVALID (the specified key handle is not valid)".
pub(super) fn describe(e: &Error) -> String {
    match e {
        Error::Pkcs11(rv, function) => {
            format!(
                "C_{function:?} returned {} ({})",
                ckr_name(*rv),
                meaning(*rv)
            )
        }
        other => format!("PKCS#11 call failed: {other}"),
    }
}

/// The spec's name for a return code, from cryptoki's variant name
/// (`UserNotLoggedIn` -> `CKR_USER_NOT_LOGGED_IN`).
pub(super) fn ckr_name(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED+{code:#x}"),
        RvError::UnknownErrorCode(code) => format!("unknown return code {code:#x}"),
        other => {
            let camel = format!("{other:?}");
            let mut name = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// The first sentence of the spec's description, lower-cased to fit in a message.
fn meaning(rv: RvError) -> String {
    let text = rv.to_string();
    let sentence = text
        .split(". ")
        .next()
        .unwrap_or(&text)
        .trim_end_matches('.');
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn names_return_codes_like_the_spec() {
        assert_eq!(ckr_name(RvError::UserNotLoggedIn), "CKR_USER_NOT_LOGGED_IN");
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        let text = describe(&Error::Pkcs11(RvError::DeviceRemoved, Function::Sign));
        assert_eq!(
            text,
            "C_Sign returned CKR_DEVICE_REMOVED (the token was removed from its slot during the execution of the function)"
        );
    }

    #[test]
    fn classifies_errors() {
        let e = OpError::Call(Error::Pkcs11(RvError::UserNotLoggedIn, Function::SignInit));
        assert!(e.needs_login());
        assert!(matches!(
            e.into_backend(&"signing"),
            BackendError::LoginRequired
        ));
        let e = OpError::Call(Error::Pkcs11(RvError::TokenNotPresent, Function::Sign));
        assert!(e.token_gone());
        assert!(matches!(
            e.into_backend(&"signing"),
            BackendError::Unavailable(_)
        ));
        let e = OpError::Call(Error::Pkcs11(
            RvError::ObjectHandleInvalid,
            Function::SignInit,
        ));
        assert!(e.stale_handle());
    }
}
