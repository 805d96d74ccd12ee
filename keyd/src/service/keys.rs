//! Key management RPCs: list, get, generate, delete, certificates.

use super::{key_message, KeydService};
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::edge::{self, KeyRef};
use crate::policy::{KeyFacts, Operation};
use crate::registry::{certificate_facts, KeyEntry};
use crate::status::{self, denied, invalid, key_not_found, refusal};
use keyd_backends::{Algorithm, KeySpec};
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use notary_tuf::PublicKey;
use secrecy::SecretString;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// A GenerateKey request as typed values.
struct NewKey {
    backend: Option<String>,
    algorithm: Algorithm,
    label: Option<String>,
    role: Option<Role>,
    gun: Option<Gun>,
    pin: Option<SecretString>,
}

impl NewKey {
    fn parse(req: &mut pb::GenerateKeyRequest) -> Result<NewKey, Status> {
        Ok(NewKey {
            backend: edge::name("backend name", &req.backend)?.map(str::to_string),
            algorithm: crate::wire::algorithm(req.algorithm).map_err(invalid)?,
            label: edge::name("label", &req.label)?.map(str::to_string),
            role: edge::role(req.role, &req.delegation)?,
            gun: edge::gun(&req.gun)?,
            pin: edge::pin(std::mem::take(&mut req.pin)),
        })
    }

    /// The label given, else "<GUN> <role>", the role, or a default.
    fn label(&self) -> String {
        match (&self.label, &self.role, &self.gun) {
            (Some(label), _, _) => label.clone(),
            (None, Some(role), Some(gun)) => format!("{gun} {role}"),
            (None, Some(role), None) => role.name().to_string(),
            (None, None, _) => "notary-keyd key".into(),
        }
    }
}

impl KeydService {
    fn may(&self, caller: &Caller, op: Operation, e: &KeyEntry) -> bool {
        self.policy.allows(caller, op, &e.facts())
    }

    /// Finds a key the caller may list or sign with (a signer needs the
    /// public key to verify what it gets); unknown and hidden keys look alike.
    pub(super) async fn visible_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
    ) -> Result<Arc<KeyEntry>, Status> {
        let may_rescan = self.policy.allows_any(caller, Operation::List)
            || self.policy.allows_any(caller, Operation::Sign);
        match self.registry.find_for(key.as_str(), may_rescan).await {
            Some(e)
                if self.may(caller, Operation::List, &e)
                    || self.may(caller, Operation::Sign, &e) =>
            {
                Ok(e)
            }
            _ => Err(key_not_found(key.as_str())),
        }
    }

    /// Whether `caller` may give `entry` a certificate whose CN names
    /// `cn_gun`. A certificate decides which x509 key ID the key answers to
    /// and, for a key without a GUN binding, which GUN policy sees it in
    /// (`KeyEntry::facts`), so it takes `generate` on the key as it is and
    /// as it will be: nobody moves a key into a GUN they hold no rights in,
    /// or out of one they do not.
    pub(super) fn may_certify(
        &self,
        caller: &Caller,
        entry: &KeyEntry,
        cn_gun: Option<&Gun>,
        what: &str,
    ) -> Result<(), Status> {
        let now = entry.facts();
        let then = KeyFacts {
            x509_key_id: None,
            gun: entry.gun.as_ref().or(cn_gun),
            ..now
        };
        if self.policy.allows(caller, Operation::Generate, &now)
            && self.policy.allows(caller, Operation::Generate, &then)
        {
            return Ok(());
        }
        let gun = then.gun.map_or(String::new(), |g| {
            format!(" (then a key of GUN {:?})", g.as_str())
        });
        Err(denied(format!(
            "uid {} may not {what} key {}: that needs `generate` on the key as it is and as it will be{gun}",
            caller.uid, entry.key_id
        )))
    }

    /// A key the request names, for `op` (which uses or changes it).
    pub(super) async fn named_key(
        &self,
        caller: &Caller,
        op: Operation,
        key: &KeyRef,
        record: &mut AuditRecord,
    ) -> Result<Arc<KeyEntry>, Status> {
        let may_rescan = self.policy.allows_any(caller, op);
        let entry = self
            .registry
            .find_for(key.as_str(), may_rescan)
            .await
            .ok_or_else(|| key_not_found(key.as_str()))?;
        record.key_id.clone_from(&entry.key_id);
        record.backend.clone_from(&entry.device);
        Ok(entry)
    }

    pub(super) async fn list_keys_rpc(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let backend = edge::name("backend name", &req.backend)?;
        let role = edge::role(req.role, &req.delegation)?;
        let gun = edge::gun(&req.gun)?;
        if !self.policy.allows_any(&caller, Operation::List) {
            return Err(denied(format!("uid {} may not list keys", caller.uid)));
        }
        self.registry.refresh("listing keys").await;
        let mut keys: Vec<pb::Key> = self
            .registry
            .all()
            .iter()
            .filter(|e| self.may(&caller, Operation::List, e))
            .filter(|e| backend.is_none_or(|b| e.device == b))
            .filter(|e| role.is_none() || e.role == role)
            .filter(|e| gun.is_none() || e.gun == gun)
            .map(|e| key_message(e))
            .collect();
        keys.sort_by(|a, b| {
            (&a.backend, &a.role, &a.delegation, &a.key_id).cmp(&(
                &b.backend,
                &b.role,
                &b.delegation,
                &b.key_id,
            ))
        });
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }

    pub(super) async fn get_key_rpc(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let caller = Caller::of(&request)?;
        let key = KeyRef::parse(&request.get_ref().key)?;
        let entry = self.visible_key(&caller, &key).await?;
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
        tokio::spawn(async move {
            let mut audited = this.audit.begin(this.audit_base(&caller, "generate"));
            let outcome = this.generate_checked(&caller, req, audited.record()).await;
            audited.close(outcome).await
        })
        .await
        .map_err(|e| Status::internal(format!("generate failed: {e}")))?
        .map(Response::new)
    }

    async fn generate_checked(
        &self,
        caller: &Caller,
        mut req: pb::GenerateKeyRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::Key, Status> {
        let new = NewKey::parse(&mut req)?;
        let backend = new.backend.as_deref().unwrap_or(&self.default_backend);
        record.backend = backend.to_string();
        record.role.clone_from(&new.role);
        record.gun.clone_from(&new.gun);
        let facts = KeyFacts {
            role: new.role.as_ref(),
            gun: new.gun.as_ref(),
            ..KeyFacts::backend(backend)
        };
        if !self.policy.allows(caller, Operation::Generate, &facts) {
            return Err(denied(format!(
                "uid {} may not generate keys in backend {backend:?}",
                caller.uid
            )));
        }
        let device = self.registry.device(backend).ok_or_else(|| {
            invalid(format!(
                "no backend named {backend:?} (see `notaryctl backend list`)"
            ))
        })?;
        let placement =
            super::yubikey::piv_placement(device, &req, new.role.as_ref(), new.gun.as_ref())?;
        // No rescan between the device step and the stored binding: it
        // would index the new key unbound.
        let change = self.registry.change().await;
        let label = new.label();
        let generation = self
            .registry
            .begin_generate(
                &change,
                backend,
                &label,
                new.role.as_ref(),
                new.gun.as_ref(),
            )
            .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
        let spec = KeySpec {
            algorithm: new.algorithm,
            label,
        };
        let key = device
            .generate(spec, placement, new.pin)
            .await
            .map_err(|e| status::from_device(&device.name, &e))?;
        record.key_id = key.public.key_id();
        let entry = generation
            .add(key)
            .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
        tracing::info!(key_id = %entry.key_id, backend = %backend, role = ?entry.role.as_ref().map(Role::name), gun = ?entry.gun.as_ref().map(Gun::as_str), "generated key");
        Ok(key_message(&entry))
    }

    pub(super) async fn delete_key_rpc(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Result<Response<pb::DeleteKeyResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut audited = self.audit.begin(self.audit_base(&caller, "delete"));
        let outcome = self.delete_checked(&caller, &req, audited.record()).await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn delete_checked(
        &self,
        caller: &Caller,
        req: &pb::DeleteKeyRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::DeleteKeyResponse, Status> {
        let key = KeyRef::parse(&req.key_id)?;
        record.key_id = key.as_str().to_string();
        if req.confirm_key_id != req.key_id {
            return Err(invalid(
                "delete needs key_id and the same ID again in confirm_key_id",
            ));
        }
        let entry = self
            .named_key(caller, Operation::Delete, &key, record)
            .await?;
        record.role.clone_from(&entry.role);
        record.gun.clone_from(&entry.gun);
        if !self.may(caller, Operation::Delete, &entry) {
            return Err(denied(format!(
                "uid {} may not delete key {}",
                caller.uid, entry.key_id
            )));
        }
        let device = self
            .registry
            .device(&entry.device)
            .ok_or_else(|| key_not_found(key.as_str()))?;
        self.registry
            .delete(device, &entry)
            .await
            .map_err(|e| status::from_device(&entry.device, &e))?;
        Ok(pb::DeleteKeyResponse {})
    }

    /// Keeps PEM text in the state store and the leaf in the device.
    pub(super) async fn store_certificate(
        &self,
        entry: &KeyEntry,
        pem: &str,
    ) -> Result<Arc<KeyEntry>, Status> {
        let change = self.registry.change().await;
        let updated = self
            .registry
            .set_certificate(&change, entry, pem)
            .map_err(|e| refusal(Reason::StateError, e.to_string()))?;
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
        let mut audited = self
            .audit
            .begin(self.audit_base(&caller, "attach-certificate"));
        let outcome = self.attach_checked(&caller, req, audited.record()).await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn attach_checked(
        &self,
        caller: &Caller,
        req: pb::AttachCertificateRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::Certificate, Status> {
        let key = KeyRef::parse(&req.key_id)?;
        record.key_id = key.as_str().to_string();
        let entry = self
            .named_key(caller, Operation::Generate, &key, record)
            .await?;
        let cert_key = PublicKey::from_certificate_pem(&req.certificate_pem)
            .and_then(|k| k.bare_key())
            .map_err(|e| invalid(format!("certificate: {e}")))?;
        let (_, cn_gun) = certificate_facts(&req.certificate_pem);
        self.may_certify(caller, &entry, cn_gun.as_ref(), "attach a certificate to")?;
        if cert_key.key_id() != entry.key_id {
            return Err(invalid(format!(
                "the certificate is for key {}, not for key {}",
                cert_key.key_id(),
                entry.key_id
            )));
        }
        let updated = self.store_certificate(&entry, &req.certificate_pem).await?;
        Ok(pb::Certificate {
            key_id: updated.key_id.clone(),
            x509_key_id: updated.x509_key_id.clone().unwrap_or_default(),
            certificate_pem: req.certificate_pem,
        })
    }

    pub(super) async fn get_certificate_rpc(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, Status> {
        let caller = Caller::of(&request)?;
        let key = KeyRef::parse(&request.get_ref().key_id)?;
        let entry = self.visible_key(&caller, &key).await?;
        let pem = entry.certificate_pem.clone().ok_or_else(|| {
            refusal(
                Reason::NoCertificate,
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
