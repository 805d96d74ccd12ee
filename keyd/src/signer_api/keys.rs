//! `proto.KeyManagement`: CreateKey (with reuse of unused keys),
//! GetKeyInfo and an idempotent DeleteKey.

use super::client::Client;
use super::store::ApiKey;
use super::{key_info, SignerApi};
use crate::audit::now_rfc3339;
use crate::edge::{self, KeyRef};
use crate::registry::KeyEntry;
use crate::status::{self, invalid, refusal};
use keyd_backends::{Algorithm, KeySpec};
use keyd_proto::signer as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use std::collections::HashSet;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// What CreateKey asks for, as typed values.
struct NewKey {
    role: Role,
    gun: Gun,
    algorithm: Algorithm,
    /// The TUF key type, as the store records it.
    keytype: &'static str,
}

impl NewKey {
    fn parse(req: &pb::CreateKeyRequest) -> Result<NewKey, Status> {
        let role = match req.role.as_str() {
            "timestamp" => Role::Timestamp,
            "snapshot" => Role::Snapshot,
            other => {
                return Err(invalid(format!(
                    "role {}: the signer API makes only timestamp and snapshot keys",
                    edge::quoted(other)
                )))
            }
        };
        let gun = edge::gun(&req.gun)?
            .ok_or_else(|| invalid("CreateKey needs the GUN the key is for"))?;
        let (algorithm, keytype) = match req.algorithm.as_str() {
            "ecdsa" => (Algorithm::EcdsaP256, "ecdsa"),
            "ed25519" => (Algorithm::Ed25519, "ed25519"),
            other => {
                return Err(invalid(format!(
                    "algorithm {} not supported for create key (ecdsa or ed25519)",
                    edge::quoted(other)
                )))
            }
        };
        Ok(NewKey {
            role,
            gun,
            algorithm,
            keytype,
        })
    }
}

impl SignerApi {
    /// An unused key this API already made for the same GUN, role and
    /// algorithm in the configured backend, if the device still has it.
    async fn reusable(&self, client: &Client, new: &NewKey) -> Option<Arc<KeyEntry>> {
        let candidates = self.store.find(|k| {
            self.allowed.reaches(client, k)
                && !k.used
                && k.gun == new.gun.as_str()
                && k.role == new.role.name()
                && k.keytype == new.keytype
                && k.backend == self.backend
        });
        for (id, _) in candidates {
            if let Some(entry) = self.registry.find(&id).await {
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
            return Err(refusal(Reason::MaxKeys, format!(
                    "backend {:?} already holds {held} signer-API keys ([signer_api] max_keys = {max}); delete keys that no published metadata uses",
                    self.backend
                ),
            ));
        }
        Ok(())
    }

    async fn create(&self, client: &Client, new: &NewKey) -> Result<pb::PublicKey, Status> {
        let _one_at_a_time = self.create_lock.lock().await;
        let reused = self
            .on_device(async { Ok(self.reusable(client, new).await) })
            .await?;
        let entry = match reused {
            Some(entry) => {
                tracing::info!(key_id = %entry.key_id, gun = %new.gun, role = %new.role, "CreateKey: handing out the unused key made earlier");
                entry
            }
            None => {
                self.check_capacity()?;
                let device = self.registry.device(&self.backend).ok_or_else(|| {
                    refusal(
                        Reason::BackendUnavailable,
                        format!("backend {:?} is not open", self.backend),
                    )
                })?;
                let spec = KeySpec {
                    algorithm: new.algorithm,
                    label: format!("{} {}", new.gun, new.role),
                };
                let change = self.registry.change().await;
                let generation = self
                    .registry
                    .begin_generate(
                        &change,
                        &self.backend,
                        &spec.label,
                        Some(&new.role),
                        Some(&new.gun),
                    )
                    .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
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
                    .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
                let api_key = ApiKey {
                    backend: self.backend.clone(),
                    gun: new.gun.as_str().to_string(),
                    role: new.role.name().to_string(),
                    keytype: new.keytype.to_string(),
                    created_by: client.subject.clone(),
                    owner: client.name.clone(),
                    created: now_rfc3339(),
                    used: false,
                };
                self.store
                    .insert(&entry.key_id, api_key)
                    .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
                tracing::info!(key_id = %entry.key_id, gun = %new.gun, role = %new.role, backend = %self.backend, "CreateKey: generated key");
                entry
            }
        };
        Ok(pb::PublicKey {
            key_info: Some(key_info(&entry)),
            public_key: entry.key.public.public_bytes().to_vec(),
        })
    }

    /// Deletes an unused key the client reaches. Another client's key is
    /// left alone as if unknown (DeleteKey of an unknown key succeeds, as
    /// notary-signer's does). A used key may be in published metadata, so
    /// deleting it would strand the collection: that is an operator's call
    /// (`notaryctl key delete`), never a client's; notary-server never
    /// deletes keys.
    async fn delete(&self, client: &Client, key_id: &str) -> Result<(), Status> {
        let Some(api_key) = self.reached(client, key_id) else {
            return Ok(());
        };
        if api_key.used {
            return Err(refusal(
                Reason::PermissionDenied,
                format!(
                    "key {key_id} has been used (it may be in published metadata); an operator deletes it with `notaryctl key delete`"
                ),
            ));
        }
        if let Some(entry) = self.registry.find(key_id).await {
            let device = self.registry.device(&entry.device).ok_or_else(|| {
                refusal(
                    Reason::BackendUnavailable,
                    format!("backend {:?} is not open", entry.device),
                )
            })?;
            self.registry
                .delete(device, &entry)
                .await
                .map_err(|e| status::from_device(&entry.device, &e))?;
        }
        self.store
            .remove(key_id)
            .map_err(|e| refusal(Reason::StateError, e.to_string()))
    }
}

#[tonic::async_trait]
impl pb::key_management_server::KeyManagement for SignerApi {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        let mut record = self.record("signer-create-key", "");
        let client = self.client(&request, &record).await?;
        record.client.clone_from(&client.subject);
        record.backend.clone_from(&self.backend);
        let mut audited = self.audit.begin(record);
        let outcome = async {
            let new = NewKey::parse(request.get_ref())?;
            audited.record().role = Some(new.role.clone());
            audited.record().gun = Some(new.gun.clone());
            let public = self.create(&client, &new).await?;
            if let Some(id) = public.key_info.as_ref().and_then(|k| k.key_id.as_ref()) {
                audited.record().key_id.clone_from(&id.id);
            }
            Ok(public)
        }
        .await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn get_key_info(
        &self,
        request: Request<pb::KeyId>,
    ) -> Result<Response<pb::GetKeyInfoResponse>, Status> {
        let key = KeyRef::parse(&request.get_ref().id);
        let shown_id = key.as_ref().map(KeyRef::as_str).unwrap_or_default();
        let mut record = self.record("signer-get-key-info", shown_id);
        let client = self.client(&request, &record).await?;
        record.client.clone_from(&client.subject);
        let mut audited = self.audit.begin(record);
        let outcome = async {
            let key = key?;
            let not_found = |id: &str| refusal(Reason::KeyNotFound, format!("key {id} not found"));
            let (api_key, entry) = self.api_key(&client, key.as_str(), not_found).await?;
            let record = audited.record();
            record.backend.clone_from(&entry.device);
            record.role = Role::parse(&api_key.role).ok();
            record.gun = Gun::parse(&api_key.gun).ok();
            self.mark_used(key.as_str(), &api_key)?;
            Ok(pb::GetKeyInfoResponse {
                key_info: Some(key_info(&entry)),
                public_key: entry.key.public.public_bytes().to_vec(),
                role: api_key.role,
            })
        }
        .await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn delete_key(&self, request: Request<pb::KeyId>) -> Result<Response<pb::Void>, Status> {
        let key = KeyRef::parse(&request.get_ref().id);
        let shown_id = key.as_ref().map(KeyRef::as_str).unwrap_or_default();
        let mut record = self.record("signer-delete-key", shown_id);
        let client = self.client(&request, &record).await?;
        record.client.clone_from(&client.subject);
        let outcome = match key {
            Ok(key) => self.on_device(self.delete(&client, key.as_str())).await,
            Err(st) => Err(st),
        };
        self.audit
            .begin(record)
            .close(outcome)
            .await
            .map(|()| Response::new(pb::Void {}))
    }
}
