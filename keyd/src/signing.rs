//! The one signing path. The Unix-socket `Sign` and the signer API's `Sign`
//! both call `SigningCore::sign`, which finds the key, applies its binding,
//! checks the payload against the role, asks the policy, runs the device
//! queue and writes the audit record. Each API only turns its request into
//! a `SignRequest`, says who asks (`Requester`) and shapes the reply.

use crate::audit::{withheld, AuditLog, AuditRecord, Requested};
use crate::device::DeviceError;
use crate::edge::KeyRef;
use crate::metrics::{SignOperation, UNROUTED};
use crate::policy::{KeyFacts, Operation};
use crate::registry::{KeyEntry, Registry};
use crate::status::{self, denied, key_not_found, refusal};
use keyd_backends::piv::{Slot, TouchHint};
use keyd_backends::{BackendError, TriesLeft};
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{payload_type, Gun, Role};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use tonic::Status;

/// Sends progress events (queued, PIN needed, touch needed) to whichever
/// stream the API has; the signer API has none and drops them.
pub(crate) type ProgressSink = Arc<dyn Fn(pb::progress::Kind) + Send + Sync>;

/// A signature request in typed values.
pub(crate) struct SignRequest {
    pub key: KeyRef,
    pub payload: Vec<u8>,
    /// The role the payload is for; `None`: the key's binding.
    pub role: Option<Role>,
    /// The GUN the payload is for; `None`: the key's binding.
    pub gun: Option<Gun>,
    /// Logs the token in for this request only.
    pub pin: Option<SecretString>,
}

/// What one API adds to the signing path.
pub(crate) trait Requester: Sync {
    /// Whether the requester may do `op` with the key `facts` describes.
    fn allows(&self, op: Operation, facts: &KeyFacts<'_>) -> bool;
    /// The requester in a refusal ("uid 1000").
    fn who(&self) -> String;
    /// The key the request names, among the keys this API reaches.
    fn find(
        &self,
        registry: &Registry,
        key: &KeyRef,
    ) -> impl Future<Output = Result<Arc<KeyEntry>, Status>> + Send;
    /// The last step before the device signs.
    fn before_signing(&self, _entry: &KeyEntry) -> Result<(), Status> {
        Ok(())
    }
    /// Runs the device step; an API may bound it in time.
    fn on_device<T: Send + Sync>(
        &self,
        _entry: &KeyEntry,
        work: impl Future<Output = Result<T, Status>> + Send,
    ) -> impl Future<Output = Result<T, Status>> + Send {
        work
    }
}

/// A signature and the key that made it.
pub(crate) struct Signed {
    pub entry: Arc<KeyEntry>,
    pub signature: Vec<u8>,
}

/// What a signing request is for, once the key's binding filled the gaps.
pub(crate) struct Purpose {
    pub role: Option<Role>,
    pub gun: Option<Gun>,
}

impl Purpose {
    /// A bound key signs only for its role and GUN.
    pub(crate) fn of(
        entry: &KeyEntry,
        role: Option<Role>,
        gun: Option<Gun>,
    ) -> Result<Purpose, Status> {
        let role = role.or_else(|| entry.role.clone());
        let gun = gun.or_else(|| entry.gun.clone());
        if let Some(bound) = entry.role.as_ref().filter(|&b| role.as_ref() != Some(b)) {
            return Err(refusal(
                Reason::RoleMismatch,
                format!(
                    "key {} is bound to role {:?}, not {:?}",
                    entry.key_id,
                    bound.name(),
                    role.as_ref().map_or("", Role::name)
                ),
            ));
        }
        if let Some(bound) = entry.gun.as_ref().filter(|&b| gun.as_ref() != Some(b)) {
            return Err(refusal(
                Reason::GunMismatch,
                format!(
                    "key {} is bound to GUN {:?}, not {:?}",
                    entry.key_id,
                    bound.as_str(),
                    gun.as_ref().map_or("", Gun::as_str)
                ),
            ));
        }
        Ok(Purpose { role, gun })
    }
}

#[derive(Clone)]
pub(crate) struct SigningCore {
    registry: Arc<Registry>,
    audit: AuditLog,
}

impl SigningCore {
    pub(crate) fn new(registry: Arc<Registry>, audit: AuditLog) -> SigningCore {
        SigningCore { registry, audit }
    }

    /// Signs for `requester`. What is asked (`record`, which the API filled
    /// in with who asks and the operation, plus the key as named and the
    /// payload's digest) goes to the audit log first, so its write overlaps
    /// the checks and the device; the signature is returned only once that
    /// request record is on disk. A refusal or device error is recorded as
    /// the request's outcome here; for a signature the API records it
    /// through the returned `Requested` once it knows whether the reply was
    /// delivered (dropped first, it is recorded as abandoned).
    pub(crate) async fn sign(
        &self,
        requester: &impl Requester,
        req: SignRequest,
        progress: &ProgressSink,
        mut record: AuditRecord,
    ) -> Result<(Signed, Requested), Status> {
        record.payload_sha256 = hex::encode(Sha256::digest(&req.payload));
        record.key_id = req.key.as_str().to_string();
        record.role.clone_from(&req.role);
        record.gun.clone_from(&req.gun);
        let mut requested = self.audit.request(record);
        let outcome = self
            .sign_checked(requester, req, progress, requested.record_mut())
            .await;
        let record = requested.record_mut();
        let operation = if record.operation == Operation::SignRaw.as_str() {
            SignOperation::SignRaw
        } else {
            SignOperation::Sign
        };
        let device = self.registry.device(&record.backend).cloned();
        let algorithm = outcome.as_ref().ok().map(|s| s.entry.key.algorithm);
        let result = match (outcome, requested.durable().await) {
            (Ok(signed), Ok(_)) => Ok((signed, requested)),
            (Ok(_), Err(e)) => Err(withheld(&e)),
            (Err(status), _) => {
                requested.outcome(false, status.message()).await;
                Err(status)
            }
        };
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        let counts = device.as_ref().map_or(&UNROUTED, |d| &d.metrics.requests);
        counts.count(operation, code, algorithm);
        result
    }

    async fn sign_checked(
        &self,
        requester: &impl Requester,
        req: SignRequest,
        progress: &ProgressSink,
        record: &mut AuditRecord,
    ) -> Result<Signed, Status> {
        if req.payload.is_empty() {
            return Err(status::invalid("sign needs a payload"));
        }
        let entry = requester.find(&self.registry, &req.key).await?;
        record.key_id.clone_from(&entry.key_id);
        record.backend.clone_from(&entry.device);
        let purpose = Purpose::of(&entry, req.role, req.gun)?;
        record.role.clone_from(&purpose.role);
        record.gun.clone_from(&purpose.gun);
        // The policy decides on what the key is; the role and GUN asked
        // for only had to fit its binding (above).
        let facts = entry.facts();
        // Content-aware: notary metadata must fit the role; anything else
        // needs the sign-raw permission.
        match payload_type(&req.payload) {
            Ok(kind) => {
                if let Some(role) = purpose.role.as_ref().filter(|r| !kind.fits_role(r)) {
                    return Err(refusal(
                        Reason::PayloadType,
                        format!(
                            "payload is {kind:?} metadata; key {} may only sign for role {:?}",
                            entry.key_id,
                            role.name()
                        ),
                    ));
                }
                if !requester.allows(Operation::Sign, &facts) {
                    return Err(denied(format!(
                        "{} may not sign with key {}",
                        requester.who(),
                        entry.key_id
                    )));
                }
            }
            Err(e) => {
                if !requester.allows(Operation::SignRaw, &facts) {
                    return Err(refusal(
                        Reason::PayloadType,
                        format!(
                            "payload is not notary metadata ({e}) and raw signing is not allowed for key {}",
                            entry.key_id
                        ),
                    ));
                }
                record.operation = Operation::SignRaw.as_str().into();
            }
        }
        requester.before_signing(&entry)?;
        let signing = self.on_device(&entry, req.payload, req.pin, progress);
        let signature = requester.on_device(&entry, signing).await?;
        Ok(Signed { entry, signature })
    }

    /// Runs one signature on the key's device: the queue, optional PIN
    /// login (see `Device::queued`), touch prompts, the device call.
    /// Reports "PIN needed" when the token is locked.
    pub(crate) async fn on_device(
        &self,
        entry: &KeyEntry,
        payload: Vec<u8>,
        pin: Option<SecretString>,
        progress: &ProgressSink,
    ) -> Result<Vec<u8>, Status> {
        let device = self
            .registry
            .device(&entry.device)
            .ok_or_else(|| key_not_found(&entry.key_id))?;
        let imports = device.backend.imports();
        if let Some(mark) = imports.and_then(|i| i.imported(&entry.key.uri)) {
            crate::service::import::migration_signature(entry, &mark, &payload)?;
        }
        let signing = device.sign(&entry.key, payload);
        let touch = |hint: &TouchHint| progress(touch_needed(&device.name, hint));
        let work = device.with_touch_prompts(&entry.key.uri, touch, signing);
        let queued = |ahead: usize| {
            progress(pb::progress::Kind::Queued(pb::Queued {
                ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
                backend: device.name.clone(),
            }))
        };
        match device.queued(pin, queued, work).await {
            Ok(sig) => Ok(sig),
            Err(DeviceError::Backend(BackendError::LoginRequired)) => {
                let st = device.pin_status().await.ok().flatten();
                let tries = st.map_or(TriesLeft::Unknown, |s| s.tries_left);
                progress(pb::progress::Kind::PinNeeded(pb::PinNeeded {
                    backend: device.name.clone(),
                    tries_left: tries.as_count(),
                    tries_low: tries == TriesLeft::Low,
                }));
                Err(status::from_backend(
                    &device.name,
                    &BackendError::LoginRequired,
                ))
            }
            Err(e) => Err(status::from_device(&device.name, &e)),
        }
    }
}

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
