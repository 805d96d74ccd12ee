//! Backend listing and token login RPCs.

use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::device::Device;
use crate::policy::{KeyFacts, Operation};
use crate::status::{self, denied, invalid};
use keyd_backends::Availability;
use keyd_proto::keyd as pb;
use secrecy::SecretString;
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
        self.registry.refresh().await;
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

    /// The device a lock/unlock request names, if the caller may use it;
    /// refusals are audited.
    async fn token_device(
        &self,
        caller: &Caller,
        record: &AuditRecord,
        backend: &str,
        verb: &str,
    ) -> Result<Arc<Device>, Status> {
        let facts = KeyFacts {
            key_ids: &[],
            backend,
            role: "",
            gun: "",
        };
        if !self.policy.allows(caller, Operation::Unlock, &facts) {
            let st = denied(format!(
                "uid {} may not {verb} backend {backend:?}",
                caller.uid
            ));
            return Err(self.refuse(record.clone(), st).await);
        }
        match self.registry.device(backend) {
            Some(device) => Ok(Arc::clone(device)),
            None => {
                let st = invalid(format!("no backend named {backend:?}"));
                Err(self.refuse(record.clone(), st).await)
            }
        }
    }

    pub(super) async fn unlock_rpc(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut record = Self::audit_base(&caller, "unlock");
        record.backend = req.backend.clone();
        let device = self
            .token_device(&caller, &record, &req.backend, "unlock")
            .await?;
        if req.pin.is_empty() {
            return Err(self.refuse(record, invalid("unlock needs a PIN")).await);
        }
        if let Err(e) = device.unlock(SecretString::from(req.pin)).await {
            return Err(self
                .refuse(record, status::from_device(&device.name, &e))
                .await);
        }
        self.commit(record).await?;
        // Keys become visible to listing only after login on some tokens.
        self.registry.refresh().await;
        Ok(Response::new(pb::UnlockResponse {}))
    }

    pub(super) async fn lock_rpc(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut record = Self::audit_base(&caller, "lock");
        record.backend = req.backend.clone();
        let device = self
            .token_device(&caller, &record, &req.backend, "lock")
            .await?;
        if let Err(e) = device.lock().await {
            return Err(self
                .refuse(record, status::from_device(&device.name, &e))
                .await);
        }
        self.commit(record).await?;
        Ok(Response::new(pb::LockResponse {}))
    }
}
