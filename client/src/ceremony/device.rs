//! Which device a holder's root key is made on, as the plan names it, and
//! finding exactly that device among the daemon's backends.

use keyd_proto::keyd::{self as pb, BackendType, PivSlot};
use std::fmt;
use std::str::FromStr;

/// YubiKey slots that can hold a root key the daemon generates.
const PIV_SLOTS: [PivSlot; 4] = [
    PivSlot::Authentication,
    PivSlot::Signature,
    PivSlot::KeyManagement,
    PivSlot::CardAuthentication,
];
/// The Digital Signature slot: what a YubiKey root key goes into by default.
const DEFAULT_SLOT: &str = "9c";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Device {
    /// `yubikey:serial=N;slot=S` (slot 9c unless named).
    YubiKey { serial: u32, slot: PivSlot },
    /// `pkcs11:token=LABEL`
    Pkcs11Label(String),
    /// `pkcs11:serial=SERIAL`
    Pkcs11Serial(String),
    /// `tpm:ak=SHA256`: the TPM whose attestation key has this fingerprint
    /// (SHA-256 of its SubjectPublicKeyInfo, as `notaryctl key attest`
    /// prints it), recorded when the host was enrolled.
    Tpm { ak_sha256: String },
    /// `backend:NAME`: whatever the daemon's backend of that name is, e.g.
    /// its software keystore in a rehearsal.
    Backend(String),
}

impl Device {
    /// Whether two holders would share one physical device.
    pub(super) fn same_device(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::YubiKey { serial: a, .. }, Device::YubiKey { serial: b, .. }) => a == b,
            _ => self == other,
        }
    }

    /// Whether `backend` is this device.
    pub(super) fn matches(&self, backend: &pb::Backend) -> bool {
        let device = backend.device.clone().unwrap_or_default();
        match self {
            Device::YubiKey { serial, .. } => {
                backend.r#type() == BackendType::Yubikey && device.serial == serial.to_string()
            }
            Device::Pkcs11Label(label) => {
                backend.r#type() == BackendType::Pkcs11 && &device.label == label
            }
            Device::Pkcs11Serial(serial) => {
                backend.r#type() == BackendType::Pkcs11 && &device.serial == serial
            }
            // Which TPM it is shows only in its attestation, after keygen.
            Device::Tpm { .. } => backend.r#type() == BackendType::Tpm,
            Device::Backend(name) => &backend.name == name,
        }
    }

    /// What a person looks for on the table.
    pub(super) fn describe(&self) -> String {
        match self {
            Device::YubiKey { serial, slot } => {
                format!("YubiKey serial {serial}, slot {}", slot.word())
            }
            Device::Pkcs11Label(label) => format!("PKCS#11 token labelled {label:?}"),
            Device::Pkcs11Serial(serial) => format!("PKCS#11 token with serial {serial:?}"),
            Device::Tpm { ak_sha256 } => format!("TPM with attestation key {ak_sha256}"),
            Device::Backend(name) => format!("notary-keyd backend {name:?}"),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::YubiKey { serial, slot } => {
                write!(f, "yubikey:serial={serial};slot={}", slot.word())
            }
            Device::Pkcs11Label(label) => write!(f, "pkcs11:token={label}"),
            Device::Pkcs11Serial(serial) => write!(f, "pkcs11:serial={serial}"),
            Device::Tpm { ak_sha256 } => write!(f, "tpm:ak={ak_sha256}"),
            Device::Backend(name) => write!(f, "backend:{name}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(text: &str) -> Result<Device, String> {
        let usage = || {
            format!(
                "device {text:?} is not one of yubikey:serial=N[;slot=9c], pkcs11:token=LABEL, \
                 pkcs11:serial=SERIAL, tpm:ak=SHA256 or backend:NAME"
            )
        };
        let (scheme, rest) = text.split_once(':').ok_or_else(usage)?;
        if scheme == "backend" {
            return if rest.is_empty() {
                Err(usage())
            } else {
                Ok(Device::Backend(rest.to_string()))
            };
        }
        let mut attributes = Vec::new();
        for part in rest.split(';') {
            let (name, value) = part.split_once('=').ok_or_else(usage)?;
            if value.is_empty() {
                return Err(usage());
            }
            attributes.push((name, value));
        }
        match (scheme, attributes.as_slice()) {
            ("yubikey", [("serial", serial)]) => yubikey(serial, DEFAULT_SLOT),
            ("yubikey", [("serial", serial), ("slot", slot)]) => yubikey(serial, slot),
            ("pkcs11", [("token", label)]) => Ok(Device::Pkcs11Label(label.to_string())),
            ("pkcs11", [("serial", serial)]) => Ok(Device::Pkcs11Serial(serial.to_string())),
            ("tpm", [("ak", ak)])
                if ak.len() == 64 && ak.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Device::Tpm {
                    ak_sha256: ak.to_ascii_lowercase(),
                })
            }
            _ => Err(usage()),
        }
    }
}

fn yubikey(serial: &str, slot: &str) -> Result<Device, String> {
    let serial = serial
        .parse()
        .map_err(|_| format!("YubiKey serial {serial:?} is not a number"))?;
    let two_hex_digits = slot.len() == 2 && slot.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(slot) = two_hex_digits
        .then(|| u8::from_str_radix(slot, 16).ok())
        .flatten()
        .and_then(PivSlot::from_id)
        .filter(|s| PIV_SLOTS.contains(s))
    else {
        let slots: Vec<String> = PIV_SLOTS.iter().map(|s| s.word()).collect();
        return Err(format!(
            "YubiKey slot {slot:?}: a root key goes into {}",
            slots.join(", ")
        ));
    };
    Ok(Device::YubiKey { serial, slot })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str, kind: BackendType, label: &str, serial: &str) -> pb::Backend {
        pb::Backend {
            name: name.into(),
            r#type: kind as i32,
            device: Some(pb::DeviceInfo {
                label: label.into(),
                serial: serial.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn parses_and_prints_each_form() {
        let tpm = format!("tpm:ak={}", "ab".repeat(32));
        for text in [
            "yubikey:serial=41000001;slot=9c",
            "pkcs11:token=alice",
            "pkcs11:serial=8d3e1c",
            tpm.as_str(),
            "backend:soft",
        ] {
            assert_eq!(text.parse::<Device>().unwrap().to_string(), text);
        }
        assert_eq!(
            "yubikey:serial=7".parse::<Device>().unwrap(),
            Device::YubiKey {
                serial: 7,
                slot: PivSlot::Signature
            }
        );
        for bad in [
            "yubikey:serial=x",
            "yubikey:serial=7;slot=82",
            "yubikey:serial=7;slot=+9c",
            "pkcs11:label=x",
            "pkcs11:token=",
            "tpm",
            "backend:",
            "yubikey:slot=9c;serial=7",
            "tpm:ak=abcd",
        ] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_only_the_named_device() {
        let yk = backend("yk", BackendType::Yubikey, "", "41000001");
        let hsm = backend("hsm", BackendType::Pkcs11, "alice", "8d3e1c");
        let spec: Device = "yubikey:serial=41000001".parse().unwrap();
        assert!(spec.matches(&yk) && !spec.matches(&hsm));
        let by_label: Device = "pkcs11:token=alice".parse().unwrap();
        assert!(by_label.matches(&hsm) && !by_label.matches(&yk));
        let by_serial: Device = "pkcs11:serial=8d3e1c".parse().unwrap();
        assert!(by_serial.matches(&hsm));
        assert!(!by_serial.matches(&backend("x", BackendType::Pkcs11, "alice", "other")));
        assert!(Device::Backend("hsm".into()).matches(&hsm));
        let slot_9a: Device = "yubikey:serial=41000001;slot=9a".parse().unwrap();
        assert!(slot_9a.same_device(&spec) && slot_9a != spec);
    }
}
