//! AttestKey: the device's own statement that it holds a key.

use super::status::{self, invalid, with_reason};
use super::KeydService;
use crate::caller::Caller;
use keyd_backends::BackendError;
use keyd_proto::keyd as pb;
use tonic::{Code, Request, Response, Status};

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
        let device = match self.registry.device(&entry.device) {
            Some(d) if d.backend.attestation().is_some() => d,
            _ => {
                let st = with_reason(
                    Code::Unimplemented,
                    "not_supported",
                    format!(
                        "backend {:?} cannot attest its keys (only tpm backends can)",
                        entry.device
                    ),
                );
                return Err(self.refuse(record, st).await);
            }
        };
        let uri = entry.key.uri.clone();
        let nonce = req.nonce;
        let attested = device
            .run(move |b| match b.attestation() {
                Some(a) => a.attest(&uri, &nonce),
                None => Err(BackendError::NotSupported("key attestation")),
            })
            .await;
        let attestation = match attested {
            Ok(a) => a,
            Err(e) => {
                let st = status::from_device(&entry.device, &e);
                return Err(self.refuse(record, st).await);
            }
        };
        self.commit(record).await?;
        Ok(Response::new(pb::KeyAttestation {
            key_id: entry.key_id.clone(),
            format: attestation.format.to_string(),
            attest: attestation.attest,
            signature: attestation.signature,
            signer_public: attestation.signer_spki,
            key_public_area: attestation.key_public_area,
        }))
    }
}
