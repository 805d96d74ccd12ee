//! `proto.Signer/Sign`: a signer-API key signs only canonical notary
//! metadata of the role it was made for, through the daemon's signing core.

use super::client::Client;
use super::store::ApiKey;
use super::{key_info, not_found, SignerApi};
use crate::edge::KeyRef;
use crate::policy::{KeyFacts, Operation};
use crate::registry::{KeyEntry, Registry};
use crate::signing::{ProgressSink, Requester, SignRequest};
use crate::status::refusal;
use keyd_proto::signer as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use notary_tuf::signature::SignatureMethod;
use std::future::Future;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// An allowed signer-API client asking to sign with one of the API's keys.
struct ApiCaller<'a> {
    api: &'a SignerApi,
    client: &'a Client,
    api_key: ApiKey,
}

impl Requester for ApiCaller<'_> {
    /// `allowed_clients` admitted the caller; its keys sign metadata only.
    fn allows(&self, op: Operation, _facts: &KeyFacts<'_>) -> bool {
        op == Operation::Sign
    }

    fn who(&self) -> String {
        format!("client {:?}", self.client.subject)
    }

    async fn find(&self, _registry: &Registry, key: &KeyRef) -> Result<Arc<KeyEntry>, Status> {
        let (_, entry) = self
            .api
            .api_key(self.client, key.as_str(), not_found)
            .await?;
        Ok(entry)
    }

    fn before_signing(&self, entry: &KeyEntry) -> Result<(), Status> {
        self.api.mark_used(&entry.key_id, &self.api_key)
    }

    async fn on_device<T: Send + Sync>(
        &self,
        entry: &KeyEntry,
        work: impl Future<Output = Result<T, Status>> + Send,
    ) -> Result<T, Status> {
        if entry.device == self.api.backend {
            self.api.on_signing_device(work).await
        } else {
            self.api.on_device(work).await
        }
    }
}

/// The binding the API's store gave a key, as typed values.
fn stored_binding(key_id: &str, api_key: &ApiKey) -> Result<(Role, Gun), Status> {
    let unusable = |e: String| {
        refusal(
            Reason::StateError,
            format!("signer-api.json binds key {key_id} to {e}"),
        )
    };
    let role = Role::parse(&api_key.role).map_err(|e| unusable(e.to_string()))?;
    let gun = Gun::parse(&api_key.gun).map_err(|e| unusable(e.to_string()))?;
    Ok((role, gun))
}

#[tonic::async_trait]
impl pb::signer_server::Signer for SignerApi {
    async fn sign(
        &self,
        request: Request<pb::SignatureRequest>,
    ) -> Result<Response<pb::Signature>, Status> {
        let raw_id = request
            .get_ref()
            .key_id
            .as_ref()
            .map(|k| k.id.as_str())
            .unwrap_or_default();
        let key = KeyRef::parse(raw_id);
        let shown_id = key.as_ref().map(KeyRef::as_str).unwrap_or_default();
        let mut record = self.record("signer-sign", shown_id);
        let client = self.client(&request, &record).await?;
        record.client = client.subject.clone();
        let content = request.into_inner().content;
        let key = match key {
            Ok(key) => key,
            Err(st) => return self.audit.begin(record).close(Err(st)).await,
        };
        let binding = self
            .reached(&client, key.as_str())
            .ok_or_else(|| not_found(key.as_str()))
            .and_then(|api_key| Ok((stored_binding(key.as_str(), &api_key)?, api_key)));
        let ((role, gun), api_key) = match binding {
            Ok(found) => found,
            Err(st) => return self.audit.begin(record).close(Err(st)).await,
        };
        let requester = ApiCaller {
            api: self,
            client: &client,
            api_key,
        };
        let req = SignRequest {
            key,
            payload: content,
            role: Some(role),
            gun: Some(gun),
            pin: None,
        };
        let no_progress: ProgressSink = Arc::new(|_| {});
        // notary-server's deadline can drop this call while the device
        // signs: the request's outcome then says it was abandoned.
        let (signed, requested) = self
            .signing
            .sign(&requester, req, &no_progress, record)
            .await?;
        requested.outcome(true, "ok").await;
        let method = SignatureMethod::for_key_type(signed.entry.key.public.keytype());
        Ok(Response::new(pb::Signature {
            key_info: Some(key_info(&signed.entry)),
            algorithm: Some(pb::Algorithm {
                algorithm: method.as_str().to_string(),
            }),
            content: signed.signature,
        }))
    }
}
