//! AttestKey: the device's own evidence that it holds a key: TPM2_Certify
//! by the TPM's attestation key, or a YubiKey's slot attestation
//! certificate with the device intermediate that signed it.

use super::KeydService;
use crate::caller::Caller;
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
        let mut record = Self::audit_base(&caller, "attest");
        let entry = match self.visible_key(&caller, &req.key).await {
            Ok(e) => e,
            Err(st) => return Err(self.refuse(record, st).await),
        };
        record.key_id = entry.key_id.clone();
        record.backend = entry.device.clone();
        if req.nonce.len() > MAX_NONCE {
            let st = invalid(format!(
                "nonce is {} bytes; at most {MAX_NONCE}",
                req.nonce.len()
            ));
            return Err(self.refuse(record, st).await);
        }
        let Some(device) = self.registry.device(&entry.device) else {
            let st = status::key_not_found(&entry.key_id);
            return Err(self.refuse(record, st).await);
        };
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
        } else {
            let st = refusal(
                Reason::NotSupported,
                format!(
                    "backend {:?} ({}) cannot attest its keys; TPM and YubiKey backends can",
                    entry.device,
                    device.backend.kind()
                ),
            );
            return Err(self.refuse(record, st).await);
        };
        let evidence = match evidence {
            Ok(e) => e,
            Err(e) => {
                let st = status::from_device(&entry.device, &e);
                return Err(self.refuse(record, st).await);
            }
        };
        self.commit(record).await?;
        Ok(Response::new(pb::KeyAttestation {
            key_id: entry.key_id.clone(),
            evidence: Some(evidence),
        }))
    }
}
