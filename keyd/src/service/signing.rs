//! `Sign` and `IssueRootCertificate`: the checks that make signing
//! content-aware, the device queue, progress events and the audit record.

use super::progress::{progress_stream, EventStream, ProgressSink};
use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::policy::{KeyFacts, Operation};
use crate::registry::KeyEntry;
use crate::status::{self, denied, invalid, key_not_found, refusal};
use keyd_backends::piv::{Slot, TouchHint};
use keyd_backends::BackendError;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{payload_type, Role};
use notary_tuf::signature::SignatureMethod;
use notary_tuf::KeyType;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::{Request, Response, Status};

fn touch_needed(backend: &str, hint: &TouchHint) -> pb::progress::Kind {
    pb::progress::Kind::TouchNeeded(pb::TouchNeeded {
        backend: backend.to_string(),
        device_serial: hint.serial.clone(),
        slot: hint
            .slot
            .parse::<Slot>()
            .map_or(pb::PivSlot::Unspecified, crate::wire::slot_message) as i32,
        timeout_ms: hint.timeout_ms,
    })
}

/// What a signing request is for, after defaults from the key's binding.
struct Purpose {
    role: String,
    gun: String,
}

impl KeydService {
    /// Applies binding defaults and refuses mismatches: a bound key signs
    /// only for its role and GUN.
    fn purpose(entry: &KeyEntry, role: &str, gun: &str) -> Result<Purpose, Status> {
        let role = if role.is_empty() {
            entry.role.clone()
        } else {
            role.to_string()
        };
        let gun = if gun.is_empty() {
            entry.gun.clone()
        } else {
            gun.to_string()
        };
        if !entry.role.is_empty() && role != entry.role {
            return Err(refusal(
                Reason::RoleMismatch,
                format!(
                    "key {} is bound to role {:?}, not {role:?}",
                    entry.key_id, entry.role
                ),
            ));
        }
        if !entry.gun.is_empty() && gun != entry.gun {
            return Err(refusal(
                Reason::GunMismatch,
                format!(
                    "key {} is bound to GUN {:?}, not {gun:?}",
                    entry.key_id, entry.gun
                ),
            ));
        }
        if !role.is_empty() {
            role.parse::<Role>()
                .map_err(|e| invalid(format!("role {role:?}: {e}")))?;
        }
        Ok(Purpose { role, gun })
    }

    fn facts<'a>(entry: &'a KeyEntry, ids: &'a [&'a str], purpose: &'a Purpose) -> KeyFacts<'a> {
        KeyFacts {
            key_ids: ids,
            backend: &entry.device,
            role: &purpose.role,
            gun: &purpose.gun,
        }
    }

    /// Runs one signature on the key's device: the queue, optional PIN
    /// login (see `Device::queued`), the device call. Reports "PIN needed"
    /// when the token is locked.
    pub(crate) async fn sign_on_device(
        &self,
        entry: &KeyEntry,
        payload: Vec<u8>,
        pin: String,
        progress: &ProgressSink,
    ) -> Result<Vec<u8>, Status> {
        let device = self
            .registry
            .device(&entry.device)
            .ok_or_else(|| key_not_found(&entry.key_id))?;
        let signing = device.sign(&entry.key, payload);
        let touch = |hint: &TouchHint| progress(touch_needed(&device.name, hint));
        let work = device.with_touch_prompts(&entry.key.uri, touch, signing);
        let queued = |ahead: usize| {
            progress(pb::progress::Kind::Queued(pb::Queued {
                ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
                backend: device.name.clone(),
            }))
        };
        let result = device.queued(pin, queued, work).await;
        match result {
            Ok(sig) => Ok(sig),
            Err(crate::device::DeviceError::Backend(BackendError::LoginRequired)) => {
                let st = device.pin_status().await.ok().flatten();
                let tries = st.map_or(keyd_backends::TriesLeft::Unknown, |s| s.tries_left);
                progress(pb::progress::Kind::PinNeeded(pb::PinNeeded {
                    backend: device.name.clone(),
                    tries_left: tries.as_count(),
                    tries_low: tries == keyd_backends::TriesLeft::Low,
                }));
                Err(status::from_backend(
                    &device.name,
                    &BackendError::LoginRequired,
                ))
            }
            Err(e) => Err(status::from_device(&device.name, &e)),
        }
    }

    pub(super) async fn sign_rpc(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<EventStream<pb::SignEvent>>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let this = self.clone();
        let wrap = |p| pb::SignEvent {
            event: Some(pb::sign_event::Event::Progress(p)),
        };
        Ok(Response::new(progress_stream(
            wrap,
            |progress| async move {
                let mut record = Self::audit_base(&caller, "sign");
                let outcome = this
                    .sign_checked(&caller, req, &progress, &mut record)
                    .await;
                match outcome {
                    Ok(result) => {
                        this.commit(record).await?;
                        Ok(pb::SignEvent {
                            event: Some(pb::sign_event::Event::Result(result)),
                        })
                    }
                    Err(st) => Err(this.refuse(record, st).await),
                }
            },
        )))
    }

    /// Everything `Sign` decides and does; the caller writes `record` with
    /// the outcome.
    async fn sign_checked(
        &self,
        caller: &Caller,
        req: pb::SignRequest,
        progress: &ProgressSink,
        record: &mut AuditRecord,
    ) -> Result<pb::SignResult, Status> {
        record.payload_sha256 = hex::encode(Sha256::digest(&req.payload));
        record.key_id = req.key_id.clone();
        let role = keyd_proto::convert::role_of(req.role, &req.delegation)
            .map_err(|e| invalid(e.to_string()))?
            .map(|r| r.name().to_string())
            .unwrap_or_default();
        record.role = role.clone();
        record.gun = req.gun.clone();
        if req.key_id.is_empty() || req.payload.is_empty() {
            return Err(invalid("sign needs key_id and a payload"));
        }
        let entry = self
            .registry
            .find(&req.key_id)
            .await
            .ok_or_else(|| key_not_found(&req.key_id))?;
        record.key_id = entry.key_id.clone();
        record.backend = entry.device.clone();
        let purpose = Self::purpose(&entry, &role, &req.gun)?;
        record.role = purpose.role.clone();
        record.gun = purpose.gun.clone();
        let x509 = entry.x509_key_id.clone().unwrap_or_default();
        let ids = [entry.key_id.as_str(), x509.as_str()];
        let facts = Self::facts(&entry, &ids, &purpose);

        // Content-aware: notary metadata must fit the role; anything else
        // needs the sign-raw permission.
        let operation = match payload_type(&req.payload) {
            Ok(kind) => {
                if !purpose.role.is_empty() {
                    let role: Role = purpose.role.parse().map_err(|e| invalid(format!("{e}")))?;
                    if !kind.fits_role(&role) {
                        return Err(refusal(
                            Reason::PayloadType,
                            format!(
                                "payload is {kind:?} metadata; key {} may only sign for role {:?}",
                                entry.key_id, purpose.role
                            ),
                        ));
                    }
                }
                Operation::Sign
            }
            Err(e) => {
                if !self.policy.allows(caller, Operation::SignRaw, &facts) {
                    return Err(refusal(Reason::PayloadType, format!("payload is not notary metadata ({e}) and raw signing is not allowed for key {}", entry.key_id),
                    ));
                }
                record.operation = "sign-raw".into();
                Operation::SignRaw
            }
        };
        if !self.policy.allows(caller, operation, &facts) {
            return Err(denied(format!(
                "uid {} may not {} with key {}",
                caller.uid,
                operation.as_str(),
                entry.key_id
            )));
        }

        let signature = self
            .sign_on_device(&entry, req.payload, req.pin, progress)
            .await?;
        let key_id = if !x509.is_empty() && req.key_id == x509 {
            x509
        } else {
            entry.key_id.clone()
        };
        Ok(pb::SignResult {
            key_id,
            method: pb::SignatureMethod::from_notary(SignatureMethod::for_key_type(
                entry.key.public.keytype(),
            )) as i32,
            signature,
        })
    }

    pub(super) async fn issue_root_certificate_rpc(
        &self,
        request: Request<pb::IssueRootCertificateRequest>,
    ) -> Result<Response<EventStream<pb::IssueRootCertificateEvent>>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let this = self.clone();
        let wrap = |p| pb::IssueRootCertificateEvent {
            event: Some(pb::issue_root_certificate_event::Event::Progress(p)),
        };
        Ok(Response::new(progress_stream(
            wrap,
            |progress| async move {
                let mut record = Self::audit_base(&caller, "issue-root-certificate");
                let outcome = this
                    .issue_checked(&caller, req, &progress, &mut record)
                    .await;
                let (entry, pem) = match outcome {
                    Ok(issued) => issued,
                    Err(st) => return Err(this.refuse(record, st).await),
                };
                this.commit(record).await?;
                let updated = this.store_certificate(&entry, &pem).await?;
                Ok(pb::IssueRootCertificateEvent {
                    event: Some(pb::issue_root_certificate_event::Event::Certificate(
                        pb::Certificate {
                            key_id: updated.key_id.clone(),
                            x509_key_id: updated.x509_key_id.clone().unwrap_or_default(),
                            certificate_pem: pem,
                        },
                    )),
                })
            },
        )))
    }

    /// Builds and signs the root certificate; the caller writes `record`
    /// with the outcome and stores the certificate.
    async fn issue_checked(
        &self,
        caller: &Caller,
        mut req: pb::IssueRootCertificateRequest,
        progress: &ProgressSink,
        record: &mut AuditRecord,
    ) -> Result<(Arc<KeyEntry>, String), Status> {
        record.key_id = req.key_id.clone();
        record.gun = req.gun.clone();
        record.role = "root".into();
        if req.gun.is_empty() {
            return Err(invalid("a root certificate needs the GUN (its CN)"));
        }
        let entry = self
            .registry
            .find(&req.key_id)
            .await
            .ok_or_else(|| key_not_found(&req.key_id))?;
        record.key_id = entry.key_id.clone();
        record.backend = entry.device.clone();
        // Root keys are shared across GUNs in notary, so only the role
        // binding is enforced here; a GUN binding must still match.
        let purpose = Self::purpose(&entry, "root", &req.gun)?;
        let ids = [entry.key_id.as_str()];
        if !self.policy.allows(
            caller,
            Operation::Sign,
            &Self::facts(&entry, &ids, &purpose),
        ) {
            return Err(denied(format!(
                "uid {} may not sign with key {}",
                caller.uid, entry.key_id
            )));
        }
        if entry.key.public.keytype() != KeyType::Ecdsa {
            return Err(invalid(format!(
                "key {} is {}: notary root certificates need an ECDSA key",
                entry.key_id,
                entry.key.public.keytype()
            )));
        }
        let days = if req.validity_days == 0 {
            3650
        } else {
            req.validity_days
        };
        let mut serial = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tbs = notary_tuf::rootcert::root_cert_tbs(
            &req.gun,
            entry.key.public.public_bytes(),
            serial,
            now,
            days,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let signature = self
            .sign_on_device(&entry, tbs.clone(), std::mem::take(&mut req.pin), progress)
            .await?;
        let pem = notary_tuf::rootcert::assemble_root_cert(&tbs, &signature)
            .map_err(|e| status::refusal(Reason::DeviceError, e.to_string()))?;
        notary_tuf::rootcert::check_root_cert(&pem, &req.gun, now).map_err(|e| {
            status::refusal(
                Reason::DeviceError,
                format!("issued certificate fails notary's checks: {e}"),
            )
        })?;
        Ok((entry, pem))
    }
}
