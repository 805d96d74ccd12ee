//! `enrollments/NAME.json`: what enrollment found and made for one holder
//! (the device, the key, the daemon-made root certificate, the device's
//! attestation), and checking it again anywhere, offline, from the bundle
//! alone.

use super::device::Device;
use super::digest::Digest;
use super::keyd::tpm_attestation_key;
use super::plan::{Holding, Plan};
use anyhow::{anyhow, bail, Context, Result};
use notary_tuf::ceremony::{verify_piv_attestation, PivAttestation};
use notary_tuf::metadata::parse_expires;
use notary_tuf::rootcert::check_root_cert;
use notary_tuf::{pem, PublicKey};
use serde::{Deserialize, Serialize};

/// The device as the daemon described it at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceRecord {
    /// The plan's name for it (`yubikey:serial=…`, `pkcs11:token=…`, …).
    pub planned: String,
    /// The daemon's backend and its type.
    pub backend: String,
    pub backend_type: String,
    pub manufacturer: String,
    pub model: String,
    pub label: String,
    pub serial: String,
    /// YubiKey firmware; empty when the device does not say.
    pub firmware: String,
}

impl DeviceRecord {
    /// "YubiKey serial 41000001 (firmware 5.7.1, backend yk)".
    pub(super) fn describe(&self) -> String {
        let mut facts = Vec::new();
        if !self.firmware.is_empty() {
            facts.push(format!("firmware {}", self.firmware));
        }
        if !self.label.is_empty() && self.backend_type == "pkcs11" {
            facts.push(format!("label {:?}", self.label));
        }
        facts.push(format!("backend {}", self.backend));
        let what = match self.backend_type.as_str() {
            "yubikey" => "YubiKey".to_string(),
            "pkcs11" => format!("{} {}", self.manufacturer, self.model)
                .trim()
                .to_string(),
            "soft" => "notary-keyd software keystore".to_string(),
            other => other.to_string(),
        };
        let serial = if self.serial.is_empty() {
            String::new()
        } else {
            format!(" serial {}", self.serial)
        };
        format!("{what}{serial} ({})", facts.join(", "))
    }
}

/// The device's evidence that it made and holds the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(super) enum Evidence {
    /// A YubiKey's attestation: the slot certificate (INS F9) and the
    /// device's attestation certificate that signed it.
    Piv {
        slot_certificate_pem: String,
        device_certificate_pem: String,
    },
    /// A TPM's TPM2_Certify of the key by its attestation key, with the
    /// plan's SHA-256 as the nonce.
    Tpm {
        #[serde(with = "notary_tuf::b64")]
        attest: Vec<u8>,
        #[serde(with = "notary_tuf::b64")]
        signature: Vec<u8>,
        #[serde(with = "notary_tuf::b64")]
        signer_public: Vec<u8>,
        #[serde(with = "notary_tuf::b64")]
        key_public_area: Vec<u8>,
    },
    /// No attestation; for a PKCS#11 token, the key attributes the daemon
    /// reported when it could.
    Unattested {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        never_extractable: Option<bool>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Enrollment {
    pub holder: String,
    pub plan_sha256: Digest,
    pub time: String,
    pub device: DeviceRecord,
    /// Bare notary key ID of the generated key.
    pub key_id: String,
    pub key_uri: String,
    /// The CN=GUN root certificate the daemon made with the key, as Go
    /// writes PEM; root.json lists it byte for byte.
    pub certificate_pem: String,
    pub x509_key_id: String,
    pub evidence: Evidence,
}

/// What checking an enrollment established about where its key lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Attestation {
    /// The attestation chain verified against the plan's roots and
    /// certifies this very key on the planned YubiKey.
    Piv(PivAttestation),
    /// The TPM's attestation key the plan pins certified this very key,
    /// for this plan.
    Tpm,
    /// No attestation: said in every display.
    Unattested(String),
}

impl Attestation {
    pub(super) fn describe(&self) -> String {
        match self {
            Attestation::Tpm => {
                "attested: TPM2_Certify by the attestation key the plan names".to_string()
            }
            Attestation::Piv(a) => {
                let mut text =
                    "attested: YubiKey PIV chain verified against the plan's root".to_string();
                if let Some(fw) = &a.firmware {
                    text.push_str(&format!(", firmware {fw}"));
                }
                if let (Some(pin), Some(touch)) = (a.pin_policy, a.touch_policy) {
                    text.push_str(&format!(", PIN {pin}, touch {touch}"));
                }
                text
            }
            Attestation::Unattested(why) => format!("UNATTESTED: {why}"),
        }
    }
}

impl Enrollment {
    pub(super) fn parse(bytes: &[u8], name: &str) -> Result<Enrollment> {
        serde_json::from_slice(bytes)
            .with_context(|| format!("enrollments/{name}.json is not an enrollment record"))
    }

    pub(super) fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The certificate as root.json lists it.
    pub(super) fn root_key(&self) -> Result<PublicKey> {
        Ok(PublicKey::from_certificate_pem(&self.certificate_pem)?)
    }

    /// Checks the record against the plan (its hash, the holder, the
    /// device) and itself: the certificate is a notary root certificate for
    /// the GUN valid until the root expires, in Go's PEM, for the key; the
    /// attestation chains to `anchors` and certifies that key on the
    /// planned device.
    pub(super) fn verify(
        &self,
        plan: &Plan,
        plan_digest: Digest,
        anchors: &[Vec<u8>],
        now: i64,
    ) -> Result<Attestation> {
        let name = &self.holder;
        if self.plan_sha256 != plan_digest {
            bail!(
                "{name}'s enrollment was made for another plan (sha256 {})",
                self.plan_sha256
            );
        }
        let Holding::Enroll(device) = &plan.holder(name)?.holding else {
            bail!("{name} keeps a key of the previous root; the plan has no enrollment for them");
        };
        if self.device.planned != device.to_string() {
            bail!(
                "{name}'s enrollment is for device {}, the plan names {device}",
                self.device.planned
            );
        }
        self.check_certificate(plan, now)?;
        let attestation = match &self.evidence {
            Evidence::Piv {
                slot_certificate_pem,
                device_certificate_pem,
            } => Attestation::Piv(self.check_piv(
                device,
                slot_certificate_pem,
                device_certificate_pem,
                anchors,
            )?),
            Evidence::Tpm { .. } => {
                self.check_tpm(device, plan_digest)?;
                Attestation::Tpm
            }
            Evidence::Unattested {
                reason,
                local,
                never_extractable,
            } => {
                if matches!(device, Device::YubiKey { .. } | Device::Tpm { .. }) {
                    bail!(
                        "{name}'s enrollment on a {} carries no attestation",
                        device.describe()
                    );
                }
                if *local == Some(false) || *never_extractable == Some(false) {
                    bail!(
                        "{name}'s token says the key was not made on it and kept there ({reason}); \
                         a root key must be generated on the device and never leave it"
                    );
                }
                Attestation::Unattested(reason.clone())
            }
        };
        if plan.require_attestation {
            if let Attestation::Unattested(why) = &attestation {
                bail!("{name}'s key is unattested ({why}) and the plan requires attestation");
            }
        }
        Ok(attestation)
    }

    fn check_certificate(&self, plan: &Plan, now: i64) -> Result<()> {
        let name = &self.holder;
        let pem_text = &self.certificate_pem;
        let key = self
            .root_key()
            .with_context(|| format!("{name}'s root certificate"))?;
        if key.key_id() != self.x509_key_id {
            bail!(
                "{name}'s root certificate has key ID {}, the enrollment says {}",
                key.key_id(),
                self.x509_key_id
            );
        }
        let bare = key.bare_key()?;
        if bare.key_id() != self.key_id {
            bail!(
                "{name}'s root certificate is for key {}, not for the enrolled key {}",
                bare.key_id(),
                self.key_id
            );
        }
        let der = key.x509_certificate_der()?;
        if pem::encode("CERTIFICATE", &der) != *pem_text {
            bail!(
                "{name}'s root certificate is not exactly one certificate in Go's PEM encoding; \
                 notary would derive another key ID from it"
            );
        }
        check_root_cert(pem_text, &plan.gun, now).map_err(|e| {
            anyhow!(
                "{name}'s root certificate is not valid for {}: {e}",
                plan.gun
            )
        })?;
        let root_expires = parse_expires(&plan.root_expires)?;
        check_root_cert(pem_text, &plan.gun, root_expires).map_err(|e| {
            anyhow!(
                "{name}'s root certificate is not valid until the root expires ({}): {e}",
                plan.root_expires
            )
        })?;
        Ok(())
    }

    fn check_piv(
        &self,
        device: &Device,
        slot_pem: &str,
        device_pem: &str,
        anchors: &[Vec<u8>],
    ) -> Result<PivAttestation> {
        let name = &self.holder;
        let Device::YubiKey { serial, .. } = device else {
            bail!(
                "{name}'s enrollment carries a YubiKey attestation, but the plan names a {}",
                device.describe()
            );
        };
        let attested = verify_piv_attestation(&der(slot_pem)?, &der(device_pem)?, anchors)
            .map_err(|e| anyhow!("{name}'s attestation does not verify: {e}"))?;
        let cert_key = self.root_key()?.bare_key()?;
        if attested.spki != cert_key.public_bytes() {
            bail!(
                "{name}'s attestation certifies another key than the one in the root certificate \
                 ({}): the certificate's key was not made on this YubiKey",
                self.key_id
            );
        }
        if attested.serial != Some(*serial) {
            bail!(
                "{name}'s attestation is from YubiKey serial {}, the plan names {serial}",
                attested
                    .serial
                    .map_or_else(|| "(none)".to_string(), |s| s.to_string())
            );
        }
        if self.device.serial != serial.to_string() {
            bail!(
                "{name}'s enrollment saw YubiKey serial {}, the plan names {serial}",
                self.device.serial
            );
        }
        Ok(attested)
    }

    /// The statement must check out (signature, nonce = the plan's SHA-256,
    /// the certified key is the enrolled one) and come from the attestation
    /// key the plan names.
    fn check_tpm(&self, device: &Device, plan_digest: Digest) -> Result<()> {
        let name = &self.holder;
        let (
            Evidence::Tpm {
                attest,
                signature,
                signer_public,
                key_public_area,
            },
            Device::Tpm { ak_sha256 },
        ) = (&self.evidence, device)
        else {
            bail!(
                "{name}'s enrollment carries a TPM attestation, but the plan names a {}",
                device.describe()
            );
        };
        let bare = self.root_key()?.bare_key()?;
        let fingerprint = tpm_attestation_key(
            [attest, signature, signer_public, key_public_area],
            &bare,
            plan_digest,
        )
        .map_err(|e| anyhow!("{name}'s TPM attestation does not check out: {e}"))?;
        if &fingerprint != ak_sha256 {
            bail!(
                "{name}'s key was certified by the TPM attestation key {fingerprint}, not by {ak_sha256} \
                 as the plan names: it is another TPM"
            );
        }
        Ok(())
    }
}

/// DER of the one certificate in `text`.
fn der(text: &str) -> Result<Vec<u8>> {
    let blocks = pem::parse_blocks(text.as_bytes())?;
    match blocks.as_slice() {
        [block] if block.label == "CERTIFICATE" => Ok(block.der.clone()),
        _ => bail!("an attestation certificate is not one PEM CERTIFICATE block"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ceremony::plan::tests::plan;
    use notary_tuf::rootcert::{assemble_root_cert, root_cert_tbs};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;
    use sha2::{Digest as _, Sha256};

    pub(crate) const NOW: i64 = 1_767_225_600; // 2026-01-01

    /// A root certificate for the key `seed` valid for `days` from NOW.
    pub(crate) fn certificate(seed: u8, gun: &str, days: u32) -> (String, PublicKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let spki = signing.verifying_key().to_public_key_der().unwrap();
        let tbs = root_cert_tbs(gun, spki.as_bytes(), [seed; 16], NOW - 60, days).unwrap();
        let sig: p256::ecdsa::Signature = signing.sign_prehash(&Sha256::digest(&tbs)).unwrap();
        let pem = assemble_root_cert(&tbs, &sig.to_bytes()).unwrap();
        let bare = PublicKey::from_spki_der(spki.as_bytes()).unwrap();
        (pem, bare)
    }

    /// An unattested enrollment of holder `index` of `plan`.
    pub(crate) fn enrollment(plan: &Plan, index: usize, seed: u8) -> Enrollment {
        let holder = &plan.holders[index];
        let Holding::Enroll(device) = &holder.holding else {
            panic!("not an enrolled holder");
        };
        let (pem, bare) = certificate(seed, &plan.gun, 3700);
        Enrollment {
            holder: holder.name.clone(),
            plan_sha256: Digest::of(b"plan"),
            time: "2026-01-01T00:00:00Z".into(),
            device: DeviceRecord {
                planned: device.to_string(),
                backend: holder.name.clone(),
                backend_type: "pkcs11".into(),
                manufacturer: "SoftHSM project".into(),
                model: "SoftHSM v2".into(),
                label: holder.name.clone(),
                serial: "0011".into(),
                firmware: String::new(),
            },
            key_id: bare.key_id(),
            key_uri: format!("pkcs11:token={}", holder.name),
            x509_key_id: PublicKey::from_certificate_pem(&pem).unwrap().key_id(),
            certificate_pem: pem,
            evidence: Evidence::Unattested {
                reason: "PKCS#11".into(),
                local: Some(true),
                never_extractable: Some(true),
            },
        }
    }

    fn check(p: &Plan, e: &Enrollment) -> Result<Attestation> {
        e.verify(p, Digest::of(b"plan"), &[], NOW)
    }

    #[test]
    fn an_honest_enrollment_verifies_as_unattested() {
        let p = plan(1, &["pkcs11:token=b"]);
        let e = enrollment(&p, 0, 3);
        assert!(matches!(check(&p, &e).unwrap(), Attestation::Unattested(_)));
        let back = Enrollment::parse(&e.to_bytes().unwrap(), "h0").unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn refuses_what_does_not_match_plan_key_or_certificate() {
        let p = plan(1, &["pkcs11:token=b"]);
        let base = enrollment(&p, 0, 3);
        let refused = |e: &Enrollment| check(&p, e).unwrap_err().to_string();

        let other_plan = Enrollment {
            plan_sha256: Digest::of(b"other"),
            ..base.clone()
        };
        assert!(refused(&other_plan).contains("another plan"));
        let other_device = Enrollment {
            device: DeviceRecord {
                planned: "pkcs11:token=x".into(),
                ..base.device.clone()
            },
            ..base.clone()
        };
        assert!(refused(&other_device).contains("the plan names pkcs11:token=b"));
        let (pem, _) = certificate(4, &p.gun, 3700);
        let swapped = Enrollment {
            x509_key_id: PublicKey::from_certificate_pem(&pem).unwrap().key_id(),
            certificate_pem: pem,
            ..base.clone()
        };
        assert!(refused(&swapped).contains("not for the enrolled key"));
        let mut respelled = base.clone();
        respelled.certificate_pem.push('\n');
        respelled.x509_key_id = PublicKey::from_certificate_pem(&respelled.certificate_pem)
            .unwrap()
            .key_id();
        assert!(refused(&respelled).contains("Go's PEM encoding"));
        let (short, _) = certificate(3, &p.gun, 30);
        let short = Enrollment {
            x509_key_id: PublicKey::from_certificate_pem(&short).unwrap().key_id(),
            certificate_pem: short,
            ..base.clone()
        };
        assert!(refused(&short).contains("not valid until the root expires"));
        let imported = Enrollment {
            evidence: Evidence::Unattested {
                reason: "imported".into(),
                local: Some(false),
                never_extractable: Some(true),
            },
            ..base.clone()
        };
        assert!(refused(&imported).contains("not made on it"));
        let mut required = p.clone();
        required.require_attestation = true;
        let err = check(&required, &base).unwrap_err().to_string();
        assert!(err.contains("the plan requires attestation"), "{err}");
    }
}
