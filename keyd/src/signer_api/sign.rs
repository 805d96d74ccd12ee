//! `proto.Signer/Sign`: a signer-API key signs only canonical notary
//! metadata of its own role, through the daemon's device queue and audit.

use super::{key_info, SignerApi};
use crate::audit::InFlight;
use crate::service::ProgressSink;
use crate::status::refusal;
use keyd_proto::signer as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{payload_type, Role};
use notary_tuf::signature::SignatureMethod;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::{Request, Response, Status};

impl SignerApi {
    /// Refuses payloads that are not canonical metadata of `role`.
    fn check_payload(key_id: &str, role: &str, payload: &[u8]) -> Result<(), Status> {
        let refuse = |why: String| {
            refusal(
                Reason::PayloadType,
                format!("key {key_id} signs only {role} metadata: {why}"),
            )
        };
        let role: Role = role
            .parse()
            .map_err(|e| refuse(format!("its role does not parse ({e})")))?;
        match payload_type(payload) {
            Ok(kind) if kind.fits_role(&role) => Ok(()),
            Ok(kind) => Err(refuse(format!("the payload is {kind:?} metadata"))),
            Err(e) => Err(refuse(format!("the payload is not notary metadata ({e})"))),
        }
    }

    async fn sign_checked(
        &self,
        key_id: &str,
        content: Vec<u8>,
        record: &mut crate::audit::AuditRecord,
    ) -> Result<pb::Signature, Status> {
        let not_found = || {
            refusal(
                Reason::KeyNotFound,
                format!("signing key not found: {key_id}"),
            )
        };
        let (api_key, entry) = self.api_key(key_id, not_found).await?;
        record.backend = entry.device.clone();
        record.role = api_key.role.clone();
        record.gun = api_key.gun.clone();
        Self::check_payload(key_id, &api_key.role, &content)?;
        self.mark_used(key_id, &api_key)?;
        let no_progress: ProgressSink = Arc::new(|_| {});
        let signing = self
            .keyd
            .sign_on_device(&entry, content, String::new(), &no_progress);
        let signature = if entry.device == self.backend {
            self.on_signing_device(signing).await?
        } else {
            self.on_device(signing).await?
        };
        let method = SignatureMethod::for_key_type(entry.key.public.keytype());
        Ok(pb::Signature {
            key_info: Some(key_info(&entry)),
            algorithm: Some(pb::Algorithm {
                algorithm: method.as_str().to_string(),
            }),
            content: signature,
        })
    }
}

#[tonic::async_trait]
impl pb::signer_server::Signer for SignerApi {
    async fn sign(
        &self,
        request: Request<pb::SignatureRequest>,
    ) -> Result<Response<pb::Signature>, Status> {
        let key_id = request
            .get_ref()
            .key_id
            .as_ref()
            .map(|k| k.id.clone())
            .unwrap_or_default();
        let client = self.client(&request, "signer-sign", &key_id).await?;
        let content = request.into_inner().content;
        let mut record = Self::record(&client.subject, "signer-sign", &key_id);
        record.payload_sha256 = hex::encode(Sha256::digest(&content));
        // notary-server's deadline can drop this call mid-signature; the
        // record is written either way.
        let mut in_flight = InFlight::new(&self.keyd.audit, record);
        let outcome = self
            .sign_checked(&key_id, content, in_flight.record_mut())
            .await;
        let record = in_flight.finish();
        match outcome {
            Ok(signature) => {
                self.keyd.commit(record).await?;
                Ok(Response::new(signature))
            }
            Err(st) => Err(self.keyd.refuse(record, st).await),
        }
    }
}
