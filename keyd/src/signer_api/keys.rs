//! `proto.KeyManagement`: CreateKey (with reuse of unused keys),
//! GetKeyInfo and an idempotent DeleteKey.

use super::store::ApiKey;
use super::{key_info, SignerApi};
use crate::audit::now_rfc3339;
use crate::registry::KeyEntry;
use crate::service::status::{self, invalid, with_reason};
use keyd_backends::{Algorithm, KeySpec};
use keyd_proto::signer as pb;
use std::collections::HashSet;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

/// Roles notary-server keeps online.
const ROLES: [&str; 2] = ["timestamp", "snapshot"];

fn key_id_of(id: &Option<pb::KeyId>) -> String {
    id.as_ref().map(|k| k.id.clone()).unwrap_or_default()
}

impl SignerApi {
    fn check_create(req: &pb::CreateKeyRequest) -> Result<Algorithm, Status> {
        if !ROLES.contains(&req.role.as_str()) {
            return Err(invalid(format!(
                "role {:?}: the signer API makes only timestamp and snapshot keys",
                req.role
            )));
        }
        if req.gun.is_empty() {
            return Err(invalid("CreateKey needs the GUN the key is for"));
        }
        match req.algorithm.as_str() {
            "ecdsa" => Ok(Algorithm::EcdsaP256),
            "ed25519" => Ok(Algorithm::Ed25519),
            other => Err(invalid(format!(
                "algorithm {other:?} not supported for create key (ecdsa or ed25519)"
            ))),
        }
    }

    /// An unused key this API already made for the same GUN, role and
    /// algorithm in the configured backend, if the device still has it.
    async fn reusable(&self, req: &pb::CreateKeyRequest) -> Option<Arc<KeyEntry>> {
        let candidates = self.store.find(|k| {
            !k.used
                && k.gun == req.gun
                && k.role == req.role
                && k.keytype == req.algorithm
                && k.backend == self.backend
        });
        for (id, _) in candidates {
            if let Some(entry) = self.keyd.registry.find(&id).await {
                return Some(entry);
            }
        }
        None
    }

    fn check_capacity(&self) -> Result<(), Status> {
        let Some(max) = self.max_keys else {
            return Ok(());
        };
        // Keys deleted behind the API's back (notaryctl) no longer count.
        let present: HashSet<String> = self
            .keyd
            .registry
            .all()
            .iter()
            .map(|e| e.key_id.clone())
            .collect();
        let held = self
            .store
            .find(|k| k.backend == self.backend)
            .iter()
            .filter(|(id, _)| present.contains(id))
            .count();
        if held >= max {
            return Err(with_reason(
                Code::ResourceExhausted,
                "max_keys",
                format!(
                    "backend {:?} already holds {held} signer-API keys ([signer_api] max_keys = {max}); delete keys that no published metadata uses",
                    self.backend
                ),
            ));
        }
        Ok(())
    }

    async fn create(
        &self,
        subject: &str,
        req: &pb::CreateKeyRequest,
    ) -> Result<pb::PublicKey, Status> {
        let algorithm = Self::check_create(req)?;
        let _one_at_a_time = self.create_lock.lock().await;
        let reused = self
            .on_device(async { Ok(self.reusable(req).await) })
            .await?;
        let entry = match reused {
            Some(entry) => {
                tracing::info!(key_id = %entry.key_id, gun = %req.gun, role = %req.role, "CreateKey: handing out the unused key made earlier");
                entry
            }
            None => {
                self.check_capacity()?;
                let device = self.keyd.registry.device(&self.backend).ok_or_else(|| {
                    with_reason(
                        Code::Unavailable,
                        "backend_unavailable",
                        format!("backend {:?} is not open", self.backend),
                    )
                })?;
                let spec = KeySpec {
                    algorithm,
                    label: format!("{} {}", req.gun, req.role),
                };
                let generation = self
                    .keyd
                    .registry
                    .begin_generate(&self.backend, &spec.label, &req.role, &req.gun)
                    .map_err(|e| with_reason(Code::Internal, "state_error", e.to_string()))?;
                let key = self
                    .on_signing_device(async {
                        device
                            .run(move |b| b.generate(&spec))
                            .await
                            .map_err(|e| status::from_device(&self.backend, &e))
                    })
                    .await?;
                let entry = generation
                    .add(key)
                    .map_err(|e| with_reason(Code::Internal, "state_error", e.to_string()))?;
                let api_key = ApiKey {
                    backend: self.backend.clone(),
                    gun: req.gun.clone(),
                    role: req.role.clone(),
                    keytype: req.algorithm.clone(),
                    created_by: subject.to_string(),
                    created: now_rfc3339(),
                    used: false,
                };
                self.store
                    .insert(&entry.key_id, api_key)
                    .map_err(|e| with_reason(Code::Internal, "state_error", e.to_string()))?;
                tracing::info!(key_id = %entry.key_id, gun = %req.gun, role = %req.role, backend = %self.backend, "CreateKey: generated key");
                entry
            }
        };
        Ok(pb::PublicKey {
            key_info: Some(key_info(&entry)),
            public_key: entry.key.public.public_bytes().to_vec(),
        })
    }

    async fn delete(&self, key_id: &str) -> Result<(), Status> {
        if self.store.get(key_id).is_none() {
            return Ok(());
        }
        if let Some(entry) = self.keyd.registry.find(key_id).await {
            let device = self.keyd.registry.device(&entry.device).ok_or_else(|| {
                with_reason(
                    Code::Unavailable,
                    "backend_unavailable",
                    format!("backend {:?} is not open", entry.device),
                )
            })?;
            let uri = entry.key.uri.clone();
            device
                .run(move |b| b.delete(&uri))
                .await
                .map_err(|e| status::from_device(&entry.device, &e))?;
            if let Err(e) = self.keyd.registry.remove(key_id) {
                tracing::warn!(error = %e, %key_id, "key deleted but its binding could not be removed");
            }
        }
        self.store
            .remove(key_id)
            .map_err(|e| with_reason(Code::Internal, "state_error", e.to_string()))
    }
}

#[tonic::async_trait]
impl pb::key_management_server::KeyManagement for SignerApi {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        let client = self.client(&request, "signer-create-key", "").await?;
        let req = request.into_inner();
        let mut record = Self::record(&client.subject, "signer-create-key", "");
        record.backend = self.backend.clone();
        record.role = req.role.clone();
        record.gun = req.gun.clone();
        match self.create(&client.subject, &req).await {
            Ok(public) => {
                record.key_id = key_id_of(&public.key_info.as_ref().and_then(|k| k.key_id.clone()));
                self.keyd.commit(record).await?;
                Ok(Response::new(public))
            }
            Err(st) => Err(self.keyd.refuse(record, st).await),
        }
    }

    async fn get_key_info(
        &self,
        request: Request<pb::KeyId>,
    ) -> Result<Response<pb::GetKeyInfoResponse>, Status> {
        let key_id = request.get_ref().id.clone();
        let client = self
            .client(&request, "signer-get-key-info", &key_id)
            .await?;
        let mut record = Self::record(&client.subject, "signer-get-key-info", &key_id);
        let not_found = || {
            with_reason(
                Code::NotFound,
                "key_not_found",
                format!("key {key_id} not found"),
            )
        };
        let (api_key, entry) = match self.api_key(&key_id, not_found).await {
            Ok(found) => found,
            Err(st) => return Err(self.keyd.refuse(record, st).await),
        };
        record.backend = entry.device.clone();
        record.role = api_key.role.clone();
        record.gun = api_key.gun.clone();
        if let Err(st) = self.mark_used(&key_id, &api_key) {
            return Err(self.keyd.refuse(record, st).await);
        }
        self.keyd.commit(record).await?;
        Ok(Response::new(pb::GetKeyInfoResponse {
            key_info: Some(key_info(&entry)),
            public_key: entry.key.public.public_bytes().to_vec(),
            role: api_key.role,
        }))
    }

    async fn delete_key(&self, request: Request<pb::KeyId>) -> Result<Response<pb::Void>, Status> {
        let key_id = request.get_ref().id.clone();
        let client = self.client(&request, "signer-delete-key", &key_id).await?;
        let record = Self::record(&client.subject, "signer-delete-key", &key_id);
        match self.on_device(self.delete(&key_id)).await {
            Ok(()) => {
                self.keyd.commit(record).await?;
                Ok(Response::new(pb::Void {}))
            }
            Err(st) => Err(self.keyd.refuse(record, st).await),
        }
    }
}
