//! `proto.Signer/Sign`: a signer-API key signs only canonical notary
//! metadata of its own role, through the daemon's device queue and audit.

use super::{key_info, SignerApi};
use crate::service::status::with_reason;
use crate::service::{withheld, ProgressSink};
use keyd_proto::signer as pb;
use notary_tuf::metadata::{payload_type, Role};
use notary_tuf::signature::SignatureMethod;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

impl SignerApi {
    /// Refuses payloads that are not canonical metadata of `role`.
    fn check_payload(key_id: &str, role: &str, payload: &[u8]) -> Result<(), Status> {
        let refuse = |why: String| {
            with_reason(
                Code::PermissionDenied,
                "payload_type",
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
            with_reason(
                Code::NotFound,
                "key_not_found",
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
        // On disk while the key is found and signs. notary-server's
        // deadline can drop this call mid-signature: the outcome then says
        // it was abandoned.
        let mut requested = self.keyd.audit.request(record);
        let outcome = self
            .sign_checked(&key_id, content, requested.record_mut())
            .await;
        match (outcome, requested.durable().await) {
            (Ok(signature), Ok(_)) => {
                requested.outcome(true, "ok").await;
                Ok(Response::new(signature))
            }
            (Ok(_), Err(e)) => Err(withheld(&e)),
            (Err(st), _) => {
                requested.outcome(false, st.message()).await;
                Err(st)
            }
        }
    }
}
