//! `ImportForMigration`: a stock notary client's root key file into the
//! software keystore, for the one rotation that moves its collection under
//! notary-keyd; and the rule that keeps an imported key to that rotation.
//!
//! Only root keys are taken in: the new root lists new targets and snapshot
//! keys, and their metadata is signed again with those, so the old targets
//! and snapshot keys are never needed.

use super::{key_message, KeydService};
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::edge;
use crate::policy::{KeyFacts, Operation};
use crate::registry::KeyEntry;
use crate::status::{self, denied, invalid, refusal};
use keyd_backends::import::{ImportError, ImportMark, NotaryKeyFile};
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::Role;
use notary_tuf::{MetadataType, PublicKey, Root};
use secrecy::SecretString;
use tonic::{Request, Response, Status};

fn import_status(backend: &str, e: ImportError) -> Status {
    match e {
        ImportError::Invalid(why) => refusal(
            Reason::KeyFileInvalid,
            format!("the key file is unreadable: {why}"),
        ),
        ImportError::WrongPassphrase => refusal(
            Reason::WrongPassphrase,
            "the passphrase does not decrypt the key file; nothing was imported",
        ),
        e @ ImportError::KeyMismatch { .. } => refusal(
            Reason::KeyMismatch,
            format!("{e}, which the collection's root lists; nothing was imported"),
        ),
        ImportError::Backend(e) => status::from_backend(backend, &e),
    }
}

impl KeydService {
    pub(super) async fn import_for_migration_rpc(
        &self,
        request: Request<pb::ImportForMigrationRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut audited = self
            .audit
            .begin(self.audit_base(&caller, "import-for-migration"));
        let outcome = self.import_checked(&caller, req, audited.record()).await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn import_checked(
        &self,
        caller: &Caller,
        mut req: pb::ImportForMigrationRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::Key, Status> {
        let passphrase = SecretString::from(std::mem::take(&mut req.passphrase));
        let gun = edge::gun(&req.gun)?
            .ok_or_else(|| invalid("an import for migration needs the collection's GUN"))?;
        record.role = Some(Role::Root);
        record.gun = Some(gun.clone());
        let file = NotaryKeyFile::parse(&req.key_file).map_err(|e| import_status("", e))?;
        if file.role != Role::Root.name() {
            return Err(refusal(
                Reason::RoleMismatch,
                format!(
                    "the key file is a {:?} key; only root keys are imported (targets and \
                     snapshot get new keys in notary-keyd)",
                    file.role
                ),
            ));
        }
        if let Some(other) = file.gun.as_deref().filter(|g| *g != gun.as_str()) {
            return Err(refusal(
                Reason::GunMismatch,
                format!("the key file is for {other:?}, not for {:?}", gun.as_str()),
            ));
        }
        let expected = PublicKey::from_certificate_pem(&req.certificate_pem)
            .and_then(|k| k.bare_key())
            .map_err(|e| invalid(format!("certificate: {e}")))?
            .key_id();
        record.key_id.clone_from(&expected);
        let device = self
            .registry
            .devices()
            .iter()
            .find(|d| d.backend.imports().is_some())
            .ok_or_else(|| {
                refusal(
                    Reason::NotSupported,
                    "no software keystore is configured, and only it takes in key files: add a \
                     backend of type \"soft\"",
                )
            })?;
        record.backend.clone_from(&device.name);
        let facts = KeyFacts {
            role: Some(&Role::Root),
            gun: Some(&gun),
            ..KeyFacts::backend(&device.name)
        };
        if !self.policy.allows(caller, Operation::Generate, &facts) {
            return Err(denied(format!(
                "uid {} may not add root keys for {} to backend {:?}",
                caller.uid,
                gun.as_str(),
                device.name
            )));
        }
        let mark = ImportMark {
            role: Role::Root,
            gun: gun.clone(),
        };
        // Looked up before the import: a lookup after it would list the
        // new key from the device, without its binding.
        let held = self.registry.find(&expected).await;
        // No rescan between the device step and the stored binding: it
        // would index the imported key unbound.
        let change = self.registry.change().await;
        let want = expected.clone();
        let key = device
            .run(move |b| match b.imports() {
                Some(imports) => Ok(imports.import(&file, &passphrase, &want, &mark)),
                None => Err(keyd_backends::BackendError::NotSupported("key import")),
            })
            .await
            .map_err(|e| status::from_device(&device.name, &e))?
            .map_err(|e| import_status(&device.name, e))?;
        let entry = match held {
            Some(held) => held,
            None => self
                .registry
                .add_imported(&change, &device.name, key, Some(&Role::Root), Some(&gun))
                .map_err(|e| refusal(Reason::StateError, e.to_string()))?,
        };
        let entry = if entry.certificate_pem.as_deref() == Some(req.certificate_pem.as_str()) {
            entry
        } else {
            self.store_certificate(&entry, &req.certificate_pem).await?
        };
        tracing::info!(key_id = %entry.key_id, backend = %device.name, gun = %gun.as_str(), "imported a stock notary root key for migration");
        Ok(key_message(&entry))
    }
}

/// An imported key signs one thing: a Root of its collection that no longer
/// lists it, i.e. the rotation away from it. Anything else it is asked to
/// sign (other metadata, a certificate, raw bytes) is refused.
pub(crate) fn migration_signature(
    entry: &KeyEntry,
    mark: &ImportMark,
    payload: &[u8],
) -> Result<(), Status> {
    let refuse = |why: &str| {
        Err(refusal(
            Reason::MigrationOnly,
            format!(
                "key {} was imported to migrate {} and signs only the new root that rotates it \
                 away; {why}",
                entry.key_id,
                mark.gun.as_str()
            ),
        ))
    };
    if entry.gun.as_ref() != Some(&mark.gun) || entry.role.as_ref() != Some(&mark.role) {
        return refuse("its binding no longer matches its import");
    }
    let root = match serde_json::from_slice::<Root>(payload) {
        Ok(root) if root.kind == MetadataType::Root => root,
        _ => return refuse("this is not a root"),
    };
    let listed = root.role(Role::Root.name()).is_some_and(|r| {
        r.keyids
            .iter()
            .any(|id| *id == entry.key_id || entry.x509_key_id.as_deref() == Some(id))
    });
    if listed {
        return refuse("this root still lists it");
    }
    Ok(())
}
