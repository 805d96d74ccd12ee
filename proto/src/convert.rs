//! The API's enums beside notary's own vocabulary: roles and signature
//! methods as `notary-tuf` types, and the words people read for each
//! value (`ecdsa-p256`, `9c`, `always`), the same words the CLI takes and
//! `--json` prints.

use crate::keyd::{
    Algorithm, BackendType, KeyRole, PinPolicy, PivSlot, SignatureMethod, TouchPolicy,
};
use notary_tuf::metadata::Role;

/// A role as the API's two fields: the enum and, for a delegation, its
/// full name. `None` is `KEY_ROLE_UNSPECIFIED`.
pub fn role_fields(role: Option<&Role>) -> (i32, String) {
    let (kind, delegation) = match role {
        None => (KeyRole::Unspecified, String::new()),
        Some(Role::Root) => (KeyRole::Root, String::new()),
        Some(Role::Targets) => (KeyRole::Targets, String::new()),
        Some(Role::Snapshot) => (KeyRole::Snapshot, String::new()),
        Some(Role::Timestamp) => (KeyRole::Timestamp, String::new()),
        Some(Role::Delegation(name)) => (KeyRole::Delegation, name.as_str().to_string()),
    };
    (kind as i32, delegation)
}

/// Why the role fields of a message do not name a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleFieldsError {
    #[error("role {0} is not a KeyRole")]
    Unknown(i32),
    #[error("a delegation name is given with a role that is not KEY_ROLE_DELEGATION")]
    StrayDelegation,
    #[error("{0}")]
    Delegation(String),
}

/// The role two API fields name; `None` for `KEY_ROLE_UNSPECIFIED`.
pub fn role_of(role: i32, delegation: &str) -> Result<Option<Role>, RoleFieldsError> {
    let kind = KeyRole::try_from(role).map_err(|_| RoleFieldsError::Unknown(role))?;
    if kind != KeyRole::Delegation && !delegation.is_empty() {
        return Err(RoleFieldsError::StrayDelegation);
    }
    Ok(match kind {
        KeyRole::Unspecified => None,
        KeyRole::Root => Some(Role::Root),
        KeyRole::Targets => Some(Role::Targets),
        KeyRole::Snapshot => Some(Role::Snapshot),
        KeyRole::Timestamp => Some(Role::Timestamp),
        KeyRole::Delegation => match Role::parse(delegation) {
            Ok(role @ Role::Delegation(_)) => Some(role),
            Ok(base) => {
                return Err(RoleFieldsError::Delegation(format!(
                    "{base} is a base role, not a delegation"
                )))
            }
            Err(e) => return Err(RoleFieldsError::Delegation(e.to_string())),
        },
    })
}

/// The role two API fields name, as notary writes it; empty when
/// unspecified (or not a role).
pub fn role_name(role: i32, delegation: &str) -> String {
    match role_of(role, delegation) {
        Ok(Some(role)) => role.name().to_string(),
        _ => String::new(),
    }
}

impl SignatureMethod {
    /// Notary's method; `None` for `SIGNATURE_METHOD_UNSPECIFIED`.
    pub fn notary(self) -> Option<notary_tuf::SignatureMethod> {
        match self {
            SignatureMethod::Unspecified => None,
            SignatureMethod::Ecdsa => Some(notary_tuf::SignatureMethod::Ecdsa),
            SignatureMethod::Eddsa => Some(notary_tuf::SignatureMethod::Eddsa),
            SignatureMethod::Rsapss => Some(notary_tuf::SignatureMethod::RsaPss),
        }
    }

    /// The API's method for one of notary's; the daemon makes only these.
    pub fn from_notary(method: notary_tuf::SignatureMethod) -> SignatureMethod {
        match method {
            notary_tuf::SignatureMethod::Ecdsa => SignatureMethod::Ecdsa,
            notary_tuf::SignatureMethod::Eddsa => SignatureMethod::Eddsa,
            notary_tuf::SignatureMethod::RsaPss => SignatureMethod::Rsapss,
            notary_tuf::SignatureMethod::RsaPkcs1v15 | notary_tuf::SignatureMethod::PyCryptoPss => {
                SignatureMethod::Unspecified
            }
        }
    }
}

impl Algorithm {
    /// `ecdsa-p256`, …; empty when unspecified.
    pub fn word(self) -> &'static str {
        match self {
            Algorithm::Unspecified => "",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Rsa3072 => "rsa-3072",
            Algorithm::Rsa4096 => "rsa-4096",
        }
    }
}

impl PinPolicy {
    /// `never`, `once`, `always`; empty when unspecified.
    pub fn word(self) -> &'static str {
        match self {
            PinPolicy::Unspecified => "",
            PinPolicy::Never => "never",
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
        }
    }
}

impl TouchPolicy {
    /// `never`, `always`, `cached`; empty when unspecified.
    pub fn word(self) -> &'static str {
        match self {
            TouchPolicy::Unspecified => "",
            TouchPolicy::Never => "never",
            TouchPolicy::Always => "always",
            TouchPolicy::Cached => "cached",
        }
    }
}

impl PivSlot {
    /// The slot's ID; `None` when unspecified.
    pub fn id(self) -> Option<u8> {
        u8::try_from(self as i32).ok().filter(|&id| id != 0)
    }

    /// The slot for an ID that can hold a notary key.
    pub fn from_id(id: u8) -> Option<PivSlot> {
        PivSlot::try_from(i32::from(id))
            .ok()
            .filter(|s| *s != PivSlot::Unspecified)
    }

    /// `9c`, `82`, …; empty when unspecified.
    pub fn word(self) -> String {
        self.id().map(|id| format!("{id:02x}")).unwrap_or_default()
    }
}

impl BackendType {
    /// As in the daemon's configuration: `soft`, `pkcs11`, `tpm`, `yubikey`.
    pub fn word(self) -> &'static str {
        match self {
            BackendType::Unspecified => "",
            BackendType::Soft => "soft",
            BackendType::Pkcs11 => "pkcs11",
            BackendType::Tpm => "tpm",
            BackendType::Yubikey => "yubikey",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_fields() {
        for name in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
        ] {
            let role = Role::parse(name).unwrap();
            let (kind, delegation) = role_fields(Some(&role));
            assert_eq!(role_of(kind, &delegation), Ok(Some(role)));
        }
        assert_eq!(role_fields(None), (0, String::new()));
        assert_eq!(role_of(0, ""), Ok(None));
    }

    #[test]
    fn bad_role_fields_are_named() {
        assert_eq!(role_of(99, ""), Err(RoleFieldsError::Unknown(99)));
        assert_eq!(
            role_of(KeyRole::Targets as i32, "targets/x"),
            Err(RoleFieldsError::StrayDelegation)
        );
        assert!(matches!(
            role_of(KeyRole::Delegation as i32, "targets/Bad"),
            Err(RoleFieldsError::Delegation(_))
        ));
        assert!(matches!(
            role_of(KeyRole::Delegation as i32, "targets"),
            Err(RoleFieldsError::Delegation(_))
        ));
    }

    #[test]
    fn slots_are_their_ids() {
        assert_eq!(PivSlot::Signature.id(), Some(0x9c));
        assert_eq!(PivSlot::from_id(0x82), Some(PivSlot::Retired1));
        assert_eq!(PivSlot::from_id(0x9b), None);
        assert_eq!(PivSlot::from_id(0), None);
        assert_eq!(PivSlot::Retired9.word(), "8a");
        assert_eq!(PivSlot::Unspecified.id(), None);
    }

    #[test]
    fn methods_map_to_notary() {
        for m in [
            SignatureMethod::Ecdsa,
            SignatureMethod::Eddsa,
            SignatureMethod::Rsapss,
        ] {
            assert_eq!(SignatureMethod::from_notary(m.notary().unwrap()), m);
        }
    }
}
