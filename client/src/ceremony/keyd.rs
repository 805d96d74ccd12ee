//! Every request the ceremony makes of notary-keyd, and every message of
//! its API the ceremony builds, in one place. Root signing is the daemon's
//! ordinary policy-checked, audited `Sign` (role root); keys are generated
//! on the device and never leave it.

use super::device::Device;
use super::digest::Digest;
use super::enrollment::Evidence;
use crate::collection::signer::KeydSigner;
use crate::commands::certificate::issue_checked;
use crate::commands::key::generate_with_pin;
use crate::commands::key_named;
use crate::commands::sign::public_key;
use crate::connect::{self, Client};
use crate::errors::{KeydError, Reply};
use anyhow::{bail, Result};
use keyd_proto::convert::role_fields;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::Role;
use notary_tuf::{KeyType, PublicKey, SignedEnvelope};
use std::path::Path;

/// The type of every root key a ceremony makes (ECDSA P-256).
pub(super) const ROOT_KEY_TYPE: KeyType = KeyType::Ecdsa;

pub(super) struct Keyd {
    client: Client,
}

impl Keyd {
    pub(super) async fn connect(socket: &Path) -> Result<Keyd> {
        Ok(Keyd {
            client: connect::connect(socket).await?,
        })
    }

    pub(super) async fn backends(&mut self) -> Result<Vec<pb::Backend>> {
        Ok(self
            .client
            .list_backends(pb::ListBackendsRequest {})
            .await
            .reply()?
            .backends)
    }

    /// A YubiKey's firmware version, as its status reports it.
    pub(super) async fn yubikey_firmware(&mut self, serial: u32) -> Result<String> {
        let status = self
            .client
            .yubikey_status(pb::YubiKeyStatusRequest { serial })
            .await
            .reply()?;
        Ok(status
            .yubikeys
            .into_iter()
            .find(|y| y.serial == serial)
            .map(|y| y.firmware)
            .unwrap_or_default())
    }

    /// A new ECDSA P-256 root key on `backend`, bound to role root and
    /// `gun`; on a YubiKey in the planned slot with touch always.
    pub(super) async fn generate_root_key(
        &mut self,
        backend: &str,
        device: &Device,
        gun: &str,
        holder: &str,
    ) -> Result<pb::Key> {
        let (slot, touch_policy) = match device {
            Device::YubiKey { slot, .. } => (*slot, pb::TouchPolicy::Always),
            _ => (pb::PivSlot::Unspecified, pb::TouchPolicy::Unspecified),
        };
        let (role, delegation) = role_fields(Some(&Role::Root));
        let request = pb::GenerateKeyRequest {
            backend: backend.to_string(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            label: format!("{gun} root ({holder})"),
            role,
            delegation,
            gun: gun.to_string(),
            slot: slot as i32,
            touch_policy: touch_policy as i32,
            ..Default::default()
        };
        generate_with_pin(&mut self.client, request, None).await
    }

    /// The daemon's CN=GUN root certificate for `key`, checked.
    pub(super) async fn issue_root_certificate(
        &mut self,
        key: &pb::Key,
        gun: &str,
        days: u32,
    ) -> Result<pb::Certificate> {
        issue_checked(&mut self.client, key, gun, days, None).await
    }

    /// The device's attestation of `key`, bound to `nonce` where the
    /// device takes one (a TPM); a backend that cannot attest gives an
    /// unattested record.
    pub(super) async fn attest(&mut self, key: &pb::Key, nonce: Digest) -> Result<Evidence> {
        let request = pb::AttestKeyRequest {
            key: key.key_id.clone(),
            nonce: hex::decode(nonce.hex())?,
        };
        let attestation = match self.client.attest_key(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) if Reason::of(&status) == Some(Reason::NotSupported) => {
                return Ok(Evidence::Unattested {
                    reason: format!("backend {} cannot attest its keys", key.backend),
                    local: None,
                    never_extractable: None,
                })
            }
            Err(status) => return Err(KeydError::on_backend(status, &key.backend).into()),
        };
        if attestation.key_id != key.key_id {
            bail!(
                "notary-keyd returned an attestation of key {}, not of key {}",
                attestation.key_id,
                key.key_id
            );
        }
        match attestation.evidence {
            Some(pb::key_attestation::Evidence::Piv(piv)) => Ok(Evidence::Piv {
                slot_certificate_pem: piv.slot_certificate_pem,
                device_certificate_pem: piv.intermediate_pem,
            }),
            Some(pb::key_attestation::Evidence::Pkcs11Origin(origin)) => Ok(Evidence::Unattested {
                reason: format!(
                    "PKCS#11 tokens cannot attest; backend {} reports the key as {} and {}",
                    key.backend,
                    if origin.local {
                        "generated on the token"
                    } else {
                        "imported"
                    },
                    if origin.never_extractable {
                        "never extractable"
                    } else {
                        "once extractable"
                    }
                ),
                local: Some(origin.local),
                never_extractable: Some(origin.never_extractable),
            }),
            Some(pb::key_attestation::Evidence::TpmCertify(tpm))
                if tpm.format != "tpm2-certify" =>
            {
                bail!(
                    "backend {} sent a TPM attestation in format {:?}",
                    key.backend,
                    tpm.format
                )
            }
            Some(pb::key_attestation::Evidence::TpmCertify(tpm)) => Ok(Evidence::Tpm {
                attest: tpm.attest,
                signature: tpm.signature,
                signer_public: tpm.signer_public,
                key_public_area: tpm.key_public_area,
            }),
            None => bail!("notary-keyd sent an attestation without evidence"),
        }
    }

    /// The notary-keyd key behind a root key listed in metadata, if the
    /// daemon has it (and lets us see it).
    pub(super) async fn find_root_key(&mut self, listed: &PublicKey) -> Result<Option<pb::Key>> {
        KeydSigner::new(self.client.clone(), "").find(listed).await
    }

    /// A key named by ID or URI, with its public key checked against its ID.
    pub(super) async fn named_key(&mut self, name: &str) -> Result<(pb::Key, PublicKey)> {
        let key = key_named(&mut self.client, name).await?;
        let public = public_key(&key)?;
        Ok((key, public))
    }

    /// Signs `envelope` (a root) with `key` through the daemon's `Sign`
    /// (role root), listed as `listed_id`; the signature is verified
    /// against `listed` before it is appended.
    pub(super) async fn sign_root(
        &mut self,
        envelope: &mut SignedEnvelope,
        gun: &str,
        listed_id: &str,
        listed: &PublicKey,
        key: &pb::Key,
    ) -> Result<()> {
        KeydSigner::new(self.client.clone(), gun)
            .sign_with(envelope, "root", listed_id, listed, key)
            .await
    }
}

/// Checks a recorded TPM2_Certify statement (`attest`, `signature`,
/// `signer_public`, `key_public_area`) for `key` and `nonce`, as `notaryctl
/// key attest` does; returns the attestation key's fingerprint.
pub(super) fn tpm_attestation_key(
    [attest, signature, signer_public, key_public_area]: [&Vec<u8>; 4],
    key: &PublicKey,
    nonce: Digest,
) -> Result<String> {
    let statement = pb::TpmCertify {
        format: "tpm2-certify".into(),
        attest: attest.clone(),
        signature: signature.clone(),
        signer_public: signer_public.clone(),
        key_public_area: key_public_area.clone(),
    };
    let key = pb::Key {
        key_id: key.key_id(),
        keytype: key.keytype().to_string(),
        public: key.public_bytes().to_vec(),
        ..Default::default()
    };
    Ok(crate::attestation::check(
        &statement,
        &key,
        &hex::decode(nonce.hex())?,
    )?)
}
