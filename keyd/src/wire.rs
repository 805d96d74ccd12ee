//! The API's enums beside the backends' types, both ways. A value a
//! request may not carry (an unknown number) is an error that names it.

use keyd_backends::piv::{PinPolicy, Slot, TouchPolicy};
use keyd_backends::Algorithm;
use keyd_proto::keyd as pb;

/// The algorithm a request asks for; unspecified is the daemon's default.
pub(crate) fn algorithm(value: i32) -> Result<Algorithm, String> {
    Ok(
        match pb::Algorithm::try_from(value).map_err(|_| format!("unknown algorithm {value}"))? {
            pb::Algorithm::Unspecified | pb::Algorithm::EcdsaP256 => Algorithm::EcdsaP256,
            pb::Algorithm::EcdsaP384 => Algorithm::EcdsaP384,
            pb::Algorithm::Ed25519 => Algorithm::Ed25519,
            pb::Algorithm::Rsa2048 => Algorithm::Rsa2048,
            pb::Algorithm::Rsa3072 => Algorithm::Rsa3072,
            pb::Algorithm::Rsa4096 => Algorithm::Rsa4096,
        },
    )
}

pub(crate) fn algorithm_message(a: Algorithm) -> pb::Algorithm {
    match a {
        Algorithm::EcdsaP256 => pb::Algorithm::EcdsaP256,
        Algorithm::EcdsaP384 => pb::Algorithm::EcdsaP384,
        Algorithm::Ed25519 => pb::Algorithm::Ed25519,
        Algorithm::Rsa2048 => pb::Algorithm::Rsa2048,
        Algorithm::Rsa3072 => pb::Algorithm::Rsa3072,
        Algorithm::Rsa4096 => pb::Algorithm::Rsa4096,
    }
}

/// `None` when the request leaves the policy to the daemon.
pub(crate) fn pin_policy(value: i32) -> Result<Option<PinPolicy>, String> {
    Ok(
        match pb::PinPolicy::try_from(value).map_err(|_| format!("unknown PIN policy {value}"))? {
            pb::PinPolicy::Unspecified => None,
            pb::PinPolicy::Never => Some(PinPolicy::Never),
            pb::PinPolicy::Once => Some(PinPolicy::Once),
            pb::PinPolicy::Always => Some(PinPolicy::Always),
        },
    )
}

pub(crate) fn pin_policy_message(p: Option<PinPolicy>) -> pb::PinPolicy {
    match p {
        None => pb::PinPolicy::Unspecified,
        Some(PinPolicy::Never) => pb::PinPolicy::Never,
        Some(PinPolicy::Once) => pb::PinPolicy::Once,
        Some(PinPolicy::Always) => pb::PinPolicy::Always,
    }
}

/// `None` when the request leaves the policy to the daemon.
pub(crate) fn touch_policy(value: i32) -> Result<Option<TouchPolicy>, String> {
    Ok(
        match pb::TouchPolicy::try_from(value)
            .map_err(|_| format!("unknown touch policy {value}"))?
        {
            pb::TouchPolicy::Unspecified => None,
            pb::TouchPolicy::Never => Some(TouchPolicy::Never),
            pb::TouchPolicy::Always => Some(TouchPolicy::Always),
            pb::TouchPolicy::Cached => Some(TouchPolicy::Cached),
        },
    )
}

pub(crate) fn touch_policy_message(t: Option<TouchPolicy>) -> pb::TouchPolicy {
    match t {
        None => pb::TouchPolicy::Unspecified,
        Some(TouchPolicy::Never) => pb::TouchPolicy::Never,
        Some(TouchPolicy::Always) => pb::TouchPolicy::Always,
        Some(TouchPolicy::Cached) => pb::TouchPolicy::Cached,
    }
}

/// `None` when the request leaves the slot to the daemon.
pub(crate) fn slot(value: i32) -> Result<Option<Slot>, String> {
    let slot = pb::PivSlot::try_from(value).map_err(|_| {
        format!("PIV slot {value} cannot hold a notary key: use 9a, 9c, 9d, 9e or 82-95")
    })?;
    match slot.id() {
        None => Ok(None),
        Some(id) => Slot::try_from(id).map(Some),
    }
}

pub(crate) fn slot_message(slot: Slot) -> pb::PivSlot {
    pb::PivSlot::from_id(slot.id()).unwrap_or(pb::PivSlot::Unspecified)
}

/// A backend's `kind()`, as the API names it.
pub(crate) fn backend_type(kind: &str) -> pb::BackendType {
    match kind {
        "soft" => pb::BackendType::Soft,
        "pkcs11" => pb::BackendType::Pkcs11,
        "tpm" => pb::BackendType::Tpm,
        "yubikey" => pb::BackendType::Yubikey,
        _ => pb::BackendType::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips() {
        for a in Algorithm::ALL {
            assert_eq!(algorithm(algorithm_message(a) as i32), Ok(a));
            // The client names algorithms by the proto's words, the
            // config and state files by the backend's: they must agree.
            assert_eq!(algorithm_message(a).word(), a.as_str());
        }
        assert_eq!(algorithm(0), Ok(Algorithm::EcdsaP256));
        assert!(algorithm(42).unwrap_err().contains("42"));
    }

    #[test]
    fn every_slot_round_trips() {
        for s in Slot::all() {
            assert_eq!(slot(slot_message(s) as i32), Ok(Some(s)));
        }
        assert_eq!(slot(0), Ok(None));
        assert!(slot(0x9b).unwrap_err().contains("9a, 9c"));
    }

    #[test]
    fn policies_round_trip() {
        for p in [None, Some(PinPolicy::Never), Some(PinPolicy::Always)] {
            assert_eq!(pin_policy(pin_policy_message(p) as i32), Ok(p));
        }
        for t in [None, Some(TouchPolicy::Cached), Some(TouchPolicy::Never)] {
            assert_eq!(touch_policy(touch_policy_message(t) as i32), Ok(t));
        }
        assert!(pin_policy(7).is_err());
        assert!(touch_policy(7).is_err());
    }
}
