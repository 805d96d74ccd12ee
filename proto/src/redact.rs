//! `Debug` for request messages that carry a PIN or passphrase: every field
//! is shown except the secret, which reads `<redacted>` (or `<empty>`), so requests can
//! be logged or printed in a panic without leaking a secret. build.rs tells
//! prost not to derive `Debug` for exactly these messages.

use crate::keyd::{
    GenerateKeyRequest, ImportForMigrationRequest, IssueRootCertificateRequest, SignRequest,
    UnlockRequest, YubiKeySetupRequest,
};
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
            .field("role", &self.role())
            .field("delegation", &self.delegation)
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

impl fmt::Debug for ImportForMigrationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportForMigrationRequest")
            .field("gun", &self.gun)
            .field("key_file_len", &self.key_file.len())
            .field("passphrase", &Hidden(&self.passphrase))
            .field("certificate_pem_len", &self.certificate_pem.len())
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

impl fmt::Debug for GenerateKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateKeyRequest")
            .field("backend", &self.backend)
            .field("algorithm", &self.algorithm)
            .field("label", &self.label)
            .field("role", &self.role())
            .field("delegation", &self.delegation)
            .field("gun", &self.gun)
            .field("slot", &self.slot())
            .field("pin_policy", &self.pin_policy())
            .field("touch_policy", &self.touch_policy())
            .field("pin", &Hidden(&self.pin))
            .finish()
    }
}

impl fmt::Debug for YubiKeySetupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiKeySetupRequest")
            .field("serial", &self.serial)
            .field("current_pin", &Hidden(&self.current_pin))
            .field("new_pin", &Hidden(&self.new_pin))
            .field("current_puk", &Hidden(&self.current_puk))
            .field("new_puk", &Hidden(&self.new_puk))
            .field("force", &self.force)
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
            role: crate::keyd::KeyRole::Targets as i32,
            delegation: String::new(),
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
        let generate = GenerateKeyRequest {
            algorithm: crate::keyd::Algorithm::EcdsaP256 as i32,
            pin: PIN.into(),
            ..Default::default()
        };
        let setup = YubiKeySetupRequest {
            serial: 7,
            current_pin: PIN.into(),
            new_pin: PIN.into(),
            current_puk: PIN.into(),
            new_puk: PIN.into(),
            force: false,
        };
        let import = ImportForMigrationRequest {
            gun: "example.com/app".into(),
            key_file: b"-----BEGIN ENCRYPTED PRIVATE KEY-----".to_vec(),
            passphrase: PIN.into(),
            certificate_pem: String::new(),
        };
        for shown in [
            format!("{sign:?}"),
            format!("{issue:#?}"),
            format!("{unlock:?}"),
            format!("{generate:?}"),
            format!("{setup:?}"),
            format!("{import:?}"),
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
