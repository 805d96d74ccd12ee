//! Key management RPCs: list, get, generate, delete, certificates.

use super::status::{self, denied, invalid, key_not_found, with_reason};
use super::{key_message, KeydService};
use crate::caller::Caller;
use crate::policy::{KeyFacts, Operation};
use crate::registry::KeyEntry;
use keyd_backends::{Algorithm, KeySpec};
use keyd_proto::keyd as pb;
use notary_tuf::metadata::Role;
use notary_tuf::PublicKey;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

fn facts<'a>(e: &'a KeyEntry, ids: &'a [&'a str]) -> KeyFacts<'a> {
    KeyFacts {
        key_ids: ids,
        backend: &e.device,
        role: &e.role,
        gun: &e.gun,
    }
}

impl KeydService {
    fn may(&self, caller: &Caller, op: Operation, e: &KeyEntry) -> bool {
        let x509 = e.x509_key_id.as_deref().unwrap_or("");
        let ids = [e.key_id.as_str(), x509];
        self.policy.allows(caller, op, &facts(e, &ids))
    }

    /// Finds a key the caller may list or sign with (a signer needs the
    /// public key to verify what it gets); unknown and hidden keys look alike.
    pub(super) async fn visible_key(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Arc<KeyEntry>, Status> {
        match self.registry.find(id).await {
            Some(e)
                if self.may(caller, Operation::List, &e)
                    || self.may(caller, Operation::Sign, &e) =>
            {
                Ok(e)
            }
            _ => Err(key_not_found(id)),
        }
    }

    pub(super) async fn list_keys_rpc(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        if !self.policy.allows_any(&caller, Operation::List) {
            return Err(denied(format!("uid {} may not list keys", caller.uid)));
        }
        self.registry.refresh().await;
        let mut keys: Vec<pb::Key> = self
            .registry
            .all()
            .iter()
            .filter(|e| self.may(&caller, Operation::List, e))
            .filter(|e| req.backend.is_empty() || e.device == req.backend)
            .filter(|e| req.role.is_empty() || e.role == req.role)
            .filter(|e| req.gun.is_empty() || e.gun == req.gun)
            .map(|e| key_message(e))
            .collect();
        keys.sort_by(|a, b| {
            (&a.backend, &a.role, &a.key_id).cmp(&(&b.backend, &b.role, &b.key_id))
        });
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }

    pub(super) async fn get_key_rpc(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let caller = Caller::of(&request)?;
        let entry = self.visible_key(&caller, &request.get_ref().key).await?;
        Ok(Response::new(key_message(&entry)))
    }

    pub(super) async fn generate_key_rpc(
        &self,
        request: Request<pb::GenerateKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        // Runs to the end even if the client goes away: a PIN login must be
        // undone, and a key made on the device bound and audited.
        let this = self.clone();
        tokio::spawn(async move { this.generate_key_checked(caller, req).await })
            .await
            .map_err(|e| Status::internal(format!("generate failed: {e}")))?
            .map(Response::new)
    }

    async fn generate_key_checked(
        &self,
        caller: Caller,
        mut req: pb::GenerateKeyRequest,
    ) -> Result<pb::Key, Status> {
        let pin = std::mem::take(&mut req.pin);
        let backend = if req.backend.is_empty() {
            self.default_backend.clone()
        } else {
            req.backend.clone()
        };
        let mut record = Self::audit_base(&caller, "generate");
        record.backend = backend.clone();
        record.role = req.role.clone();
        record.gun = req.gun.clone();

        let curve = (!req.curve.is_empty()).then_some(req.curve.as_str());
        let bits = (req.bits != 0).then_some(req.bits);
        let algorithm = match Algorithm::from_parts(&req.algorithm, curve, bits) {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(record, invalid(e.to_string())).await),
        };
        if !req.role.is_empty() {
            if let Err(e) = req.role.parse::<Role>() {
                return Err(self
                    .refuse(record, invalid(format!("role {:?}: {e}", req.role)))
                    .await);
            }
        }
        let facts = KeyFacts {
            key_ids: &[],
            backend: &backend,
            role: &req.role,
            gun: &req.gun,
        };
        if !self.policy.allows(&caller, Operation::Generate, &facts) {
            let st = denied(format!(
                "uid {} may not generate keys in backend {backend:?}",
                caller.uid
            ));
            return Err(self.refuse(record, st).await);
        }
        let Some(device) = self.registry.device(&backend) else {
            let st = invalid(format!(
                "no backend named {backend:?} (see `notaryctl backend list`)"
            ));
            return Err(self.refuse(record, st).await);
        };
        let label = if req.label.is_empty() {
            match (req.role.is_empty(), req.gun.is_empty()) {
                (false, false) => format!("{} {}", req.gun, req.role),
                (false, true) => req.role.clone(),
                _ => "notary-keyd key".into(),
            }
        } else {
            req.label.clone()
        };
        let state_error =
            |e: crate::state::StateError| with_reason(Code::Internal, "state_error", e.to_string());
        let generation = match self
            .registry
            .begin_generate(&backend, &label, &req.role, &req.gun)
        {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(record, state_error(e)).await),
        };
        let spec = KeySpec { algorithm, label };
        let key = match self.generate_on(device, spec, &req, pin).await {
            Ok(k) => k,
            Err(st) => return Err(self.refuse(record, st).await),
        };
        record.key_id = key.public.key_id();
        let entry = match generation.add(key) {
            Ok(e) => e,
            Err(e) => return Err(self.refuse(record, state_error(e)).await),
        };
        self.commit(record).await?;
        tracing::info!(key_id = %entry.key_id, backend = %backend, role = %entry.role, gun = %entry.gun, "generated key");
        Ok(key_message(&entry))
    }

    pub(super) async fn delete_key_rpc(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Result<Response<pb::DeleteKeyResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut record = Self::audit_base(&caller, "delete");
        record.key_id = req.key_id.clone();
        if req.key_id.is_empty() || req.confirm_key_id != req.key_id {
            let st = invalid("delete needs key_id and the same ID again in confirm_key_id");
            return Err(self.refuse(record, st).await);
        }
        let Some(entry) = self.registry.find(&req.key_id).await else {
            return Err(self.refuse(record, key_not_found(&req.key_id)).await);
        };
        record.key_id = entry.key_id.clone();
        record.backend = entry.device.clone();
        record.role = entry.role.clone();
        record.gun = entry.gun.clone();
        if !self.may(&caller, Operation::Delete, &entry) {
            let st = denied(format!(
                "uid {} may not delete key {}",
                caller.uid, entry.key_id
            ));
            return Err(self.refuse(record, st).await);
        }
        let Some(device) = self.registry.device(&entry.device) else {
            return Err(self.refuse(record, key_not_found(&req.key_id)).await);
        };
        let uri = entry.key.uri.clone();
        if let Err(e) = device.run(move |b| b.delete(&uri)).await {
            return Err(self
                .refuse(record, status::from_device(&entry.device, &e))
                .await);
        }
        if let Err(e) = self.registry.remove(&entry.key_id) {
            tracing::warn!(error = %e, key_id = %entry.key_id, "key deleted but its binding could not be removed");
        }
        self.commit(record).await?;
        Ok(Response::new(pb::DeleteKeyResponse {}))
    }

    /// Keeps PEM text in the state store and the leaf in the device.
    pub(super) async fn store_certificate(
        &self,
        entry: &KeyEntry,
        pem: &str,
    ) -> Result<Arc<KeyEntry>, Status> {
        let updated = self
            .registry
            .set_certificate(entry, pem)
            .map_err(|e| with_reason(Code::Internal, "state_error", e.to_string()))?;
        let der = PublicKey::from_certificate_pem(pem)
            .and_then(|k| k.x509_certificate_der())
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(device) = self.registry.device(&entry.device) {
            let uri = entry.key.uri.clone();
            let stored = device
                .run(move |b| match b.certificates() {
                    Some(store) => store.put_certificate(&uri, &der),
                    None => Ok(()),
                })
                .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, key_id = %entry.key_id, "certificate kept in the state store only");
            }
        }
        Ok(updated)
    }

    pub(super) async fn attach_certificate_rpc(
        &self,
        request: Request<pb::AttachCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut record = Self::audit_base(&caller, "attach-certificate");
        record.key_id = req.key_id.clone();
        let Some(entry) = self.registry.find(&req.key_id).await else {
            return Err(self.refuse(record, key_not_found(&req.key_id)).await);
        };
        record.key_id = entry.key_id.clone();
        record.backend = entry.device.clone();
        if !self.may(&caller, Operation::Generate, &entry) {
            let st = denied(format!(
                "uid {} may not attach certificates to key {}",
                caller.uid, entry.key_id
            ));
            return Err(self.refuse(record, st).await);
        }
        let cert_key = match PublicKey::from_certificate_pem(&req.certificate_pem)
            .and_then(|k| k.bare_key())
        {
            Ok(k) => k,
            Err(e) => {
                return Err(self
                    .refuse(record, invalid(format!("certificate: {e}")))
                    .await)
            }
        };
        if cert_key.key_id() != entry.key_id {
            let st = invalid(format!(
                "the certificate is for key {}, not for key {}",
                cert_key.key_id(),
                entry.key_id
            ));
            return Err(self.refuse(record, st).await);
        }
        let updated = match self.store_certificate(&entry, &req.certificate_pem).await {
            Ok(u) => u,
            Err(st) => return Err(self.refuse(record, st).await),
        };
        self.commit(record).await?;
        Ok(Response::new(pb::Certificate {
            key_id: updated.key_id.clone(),
            x509_key_id: updated.x509_key_id.clone().unwrap_or_default(),
            certificate_pem: req.certificate_pem,
        }))
    }

    pub(super) async fn get_certificate_rpc(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, Status> {
        let caller = Caller::of(&request)?;
        let entry = self.visible_key(&caller, &request.get_ref().key_id).await?;
        let pem = entry.certificate_pem.clone().ok_or_else(|| {
            with_reason(
                Code::NotFound,
                "no_certificate",
                format!("key {} has no certificate", entry.key_id),
            )
        })?;
        Ok(Response::new(pb::Certificate {
            key_id: entry.key_id.clone(),
            x509_key_id: entry.x509_key_id.clone().unwrap_or_default(),
            certificate_pem: pem,
        }))
    }
}
