//! Backend listing and token login RPCs.

use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::device::Device;
use crate::edge;
use crate::policy::{KeyFacts, Operation};
use crate::status::{self, denied, invalid};
use keyd_backends::Availability;
use keyd_proto::keyd as pb;
use keyd_proto::{Failure, Reason};
use std::sync::Arc;
use tonic::{Request, Response, Status};

impl KeydService {
    pub(super) async fn list_backends_rpc(
        &self,
        request: Request<pb::ListBackendsRequest>,
    ) -> Result<Response<pb::ListBackendsResponse>, Status> {
        let caller = Caller::of(&request)?;
        if !self.policy.allows_any(&caller, Operation::List) {
            return Err(denied(format!("uid {} may not list backends", caller.uid)));
        }
        self.registry.refresh("listing backends").await;
        let mut backends = Vec::new();
        for device in self.registry.devices() {
            let (available, unavailable_reason) = match device.backend.availability() {
                Availability::Available => (true, String::new()),
                Availability::Unavailable(r) => (false, r),
            };
            let info = device.backend.device_info();
            let logged_in = if available {
                device
                    .pin_status()
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.logged_in)
            } else {
                false
            };
            backends.push(pb::Backend {
                name: device.name.clone(),
                r#type: crate::wire::backend_type(device.backend.kind()) as i32,
                available,
                unavailable_reason,
                device: Some(pb::DeviceInfo {
                    manufacturer: info.manufacturer,
                    model: info.model,
                    label: info.label,
                    serial: info.serial,
                }),
                algorithms: device
                    .backend
                    .algorithms()
                    .iter()
                    .map(|&a| crate::wire::algorithm_message(a) as i32)
                    .collect(),
                has_login: device.backend.token_login().is_some(),
                logged_in,
                key_count: u32::try_from(self.registry.count_in(&device.name)).unwrap_or(u32::MAX),
                is_default: device.name == self.default_backend,
            });
        }
        Ok(Response::new(pb::ListBackendsResponse { backends }))
    }

    /// The device a lock/unlock request names, if the caller may use it.
    fn token_device(
        &self,
        caller: &Caller,
        record: &mut AuditRecord,
        backend: &str,
        verb: &str,
    ) -> Result<Arc<Device>, Status> {
        let backend = edge::name("backend name", backend)?.unwrap_or_default();
        record.backend = backend.to_string();
        if !self
            .policy
            .allows(caller, Operation::Unlock, &KeyFacts::backend(backend))
        {
            return Err(denied(format!(
                "uid {} may not {verb} backend {backend:?}",
                caller.uid
            )));
        }
        self.registry
            .device(backend)
            .cloned()
            .ok_or_else(|| invalid(format!("no backend named {backend:?}")))
    }

    pub(super) async fn unlock_rpc(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut audited = self.audit.begin(self.audit_base(&caller, "unlock"));
        let outcome = async {
            let device = self.token_device(&caller, audited.record(), &req.backend, "unlock")?;
            let pin = edge::pin(req.pin).ok_or_else(|| invalid("unlock needs a PIN"))?;
            if device.forgets_pins() {
                return Err(per_request_only(&device.name));
            }
            device
                .unlock(pin)
                .await
                .map_err(|e| status::from_device(&device.name, &e))
        }
        .await;
        audited.close(outcome).await?;
        // Keys become visible to listing only after login on some tokens.
        self.registry.refresh("unlocked").await;
        Ok(Response::new(pb::UnlockResponse {}))
    }

    pub(super) async fn lock_rpc(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut audited = self.audit.begin(self.audit_base(&caller, "lock"));
        let outcome = async {
            let device = self.token_device(&caller, audited.record(), &req.backend, "lock")?;
            device
                .lock()
                .await
                .map_err(|e| status::from_device(&device.name, &e))
        }
        .await;
        audited.close(outcome).await?;
        Ok(Response::new(pb::LockResponse {}))
    }
}

/// `Unlock` on a backend with `pin_cache = "none"`: an unlock would outlive
/// the one request a PIN may serve there.
fn per_request_only(backend: &str) -> Status {
    Failure::new(Reason::PinPerRequest)
        .on_backend(backend)
        .into_status(format!(
            "backend {backend:?} has pin_cache = \"none\": a PIN serves only the request \
             that brings it, so the token is never left unlocked; send the PIN with the \
             request instead (notaryctl asks for it, or reads --pin-file or \
             $NOTARY_KEYD_PIN_FILE)"
        ))
}
