//! AttestKey: the device's own evidence that it holds a key: TPM2_Certify
//! by the TPM's attestation key, or a YubiKey's slot attestation
//! certificate with the device intermediate that signed it; for a PKCS#11
//! token, its CKA_LOCAL and CKA_NEVER_EXTRACTABLE.

use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::edge::KeyRef;
use crate::status::{self, invalid, refusal};
use keyd_backends::BackendError;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::pem;
use tonic::{Request, Response, Status};

/// TPM2B_DATA holds at most 64 bytes of qualifying data.
const MAX_NONCE: usize = 64;

impl KeydService {
    pub(super) async fn attest_key_rpc(
        &self,
        request: Request<pb::AttestKeyRequest>,
    ) -> Result<Response<pb::KeyAttestation>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut audited = self.audit.begin(self.audit_base(&caller, "attest"));
        let outcome = self.attest_checked(&caller, req, audited.record()).await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn attest_checked(
        &self,
        caller: &Caller,
        req: pb::AttestKeyRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::KeyAttestation, Status> {
        let key = KeyRef::parse(&req.key)?;
        let entry = self.visible_key(caller, &key).await?;
        record.key_id.clone_from(&entry.key_id);
        record.backend.clone_from(&entry.device);
        if req.nonce.len() > MAX_NONCE {
            return Err(invalid(format!(
                "nonce is {} bytes; at most {MAX_NONCE}",
                req.nonce.len()
            )));
        }
        let device = self
            .registry
            .device(&entry.device)
            .ok_or_else(|| status::key_not_found(&entry.key_id))?;
        let uri = entry.key.uri.clone();
        let nonce = req.nonce;
        let evidence = if device.backend.attestation().is_some() {
            device
                .run(move |b| match b.attestation() {
                    Some(a) => a.attest(&uri, &nonce),
                    None => Err(BackendError::NotSupported("key attestation")),
                })
                .await
                .map(|a| {
                    pb::key_attestation::Evidence::TpmCertify(pb::TpmCertify {
                        format: a.format.to_string(),
                        attest: a.attest,
                        signature: a.signature,
                        signer_public: a.signer_spki,
                        key_public_area: a.key_public_area,
                    })
                })
        } else if device.backend.piv().is_some() {
            device
                .run(move |b| match b.piv() {
                    Some(p) => p.attest(&uri),
                    None => Err(BackendError::NotSupported("key attestation")),
                })
                .await
                .map(|a| {
                    pb::key_attestation::Evidence::Piv(pb::PivAttestation {
                        slot_certificate_pem: pem::encode("CERTIFICATE", &a.slot_certificate_der),
                        intermediate_pem: pem::encode("CERTIFICATE", &a.intermediate_der),
                    })
                })
        } else if device.backend.key_origin().is_some() {
            device
                .run(move |b| match b.key_origin() {
                    Some(o) => o.key_origin(&uri),
                    None => Err(BackendError::NotSupported("key origin")),
                })
                .await
                .map(|o| {
                    pb::key_attestation::Evidence::Pkcs11Origin(pb::Pkcs11KeyOrigin {
                        local: o.local,
                        never_extractable: o.never_extractable,
                    })
                })
        } else {
            return Err(refusal(
                Reason::NotSupported,
                format!(
                    "backend {:?} ({}) cannot attest its keys; TPM and YubiKey backends can, \
                     PKCS#11 backends report CKA_LOCAL and CKA_NEVER_EXTRACTABLE",
                    entry.device,
                    device.backend.kind()
                ),
            ));
        };
        let evidence = evidence.map_err(|e| status::from_device(&entry.device, &e))?;
        Ok(pb::KeyAttestation {
            key_id: entry.key_id.clone(),
            evidence: Some(evidence),
        })
    }
}
