//! YubiKey RPCs: status, setup, release, and the PIV placement of
//! `GenerateKey`.

use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::device::Device;
use crate::edge;
use crate::policy::{KeyFacts, Operation};
use crate::status::{self, denied, invalid, refusal};
use crate::wire;
use keyd_backends::piv::{PivKeyOptions, PivStatus, SetupSecrets};
use keyd_backends::Availability;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The PIV placement a generate request asks for; `None` when it names none.
fn piv_options(req: &pb::GenerateKeyRequest) -> Result<Option<PivKeyOptions>, String> {
    let slot = wire::slot(req.slot)?;
    let pin_policy = wire::pin_policy(req.pin_policy)?;
    let touch_policy = wire::touch_policy(req.touch_policy)?;
    if slot.is_none() && pin_policy.is_none() && touch_policy.is_none() {
        return Ok(None);
    }
    let defaults = PivKeyOptions::default();
    Ok(Some(PivKeyOptions {
        slot,
        pin_policy: pin_policy.unwrap_or(defaults.pin_policy),
        touch_policy: touch_policy.unwrap_or(defaults.touch_policy),
        ..defaults
    }))
}

fn tries(n: Option<u8>) -> i32 {
    n.map_or(-1, i32::from)
}

fn status_message(backend: &str, s: PivStatus) -> pb::YubiKeyStatus {
    pb::YubiKeyStatus {
        backend: backend.to_string(),
        available: true,
        unavailable_reason: String::new(),
        serial: s.serial,
        firmware: s.firmware,
        pin_tries_left: tries(s.pin_tries_left),
        puk_tries_left: tries(s.puk_tries_left),
        default_pin: s.default_pin,
        default_puk: s.default_puk,
        default_management_key: s.default_management_key,
        slots: s
            .slots
            .into_iter()
            .map(|slot| pb::YubiKeySlot {
                slot: wire::slot_message(slot.slot) as i32,
                algorithm: slot
                    .algorithm
                    .map_or(pb::Algorithm::Unspecified, wire::algorithm_message)
                    as i32,
                pin_policy: wire::pin_policy_message(slot.pin_policy) as i32,
                touch_policy: wire::touch_policy_message(slot.touch_policy) as i32,
                generated_on_device: slot.generated_on_device,
                key_id: slot.key_id.unwrap_or_default(),
                label: slot.label,
            })
            .collect(),
    }
}

/// Where a generate request places its key: the PIV options for a
/// backend with PIV slots (recording the key's binding in the slot), none
/// for other backends, which refuse PIV options.
pub(super) fn piv_placement(
    device: &Device,
    req: &pb::GenerateKeyRequest,
    role: Option<&Role>,
    gun: Option<&Gun>,
) -> Result<Option<PivKeyOptions>, Status> {
    let options = piv_options(req).map_err(invalid)?;
    if device.backend.piv().is_none() {
        return match options {
            None => Ok(None),
            Some(_) => Err(invalid(format!(
                "slot, PIN policy and touch policy apply to YubiKey backends; {:?} is a {} backend",
                device.name,
                device.backend.kind()
            ))),
        };
    }
    let mut options = options.unwrap_or_default();
    options.role = role.map(|r| r.name().to_string()).unwrap_or_default();
    options.gun = gun.map(|g| g.as_str().to_string()).unwrap_or_default();
    Ok(Some(options))
}

impl KeydService {
    fn piv_devices(&self) -> Vec<Arc<Device>> {
        self.registry
            .devices()
            .iter()
            .filter(|d| d.backend.piv().is_some())
            .cloned()
            .collect()
    }

    /// The YubiKey backend holding `serial` (0: the only YubiKey backend).
    async fn piv_device(&self, serial: u32) -> Result<Arc<Device>, Status> {
        let devices = self.piv_devices();
        if serial == 0 {
            return match devices.as_slice() {
                [one] => Ok(Arc::clone(one)),
                [] => Err(invalid("the daemon has no YubiKey backend")),
                _ => Err(invalid(
                    "the daemon has several YubiKey backends: name one with --serial",
                )),
            };
        }
        for device in devices {
            // Opening the card (if not open yet) learns its serial.
            let info = device
                .run(|b| {
                    let _ = b.availability();
                    Ok(b.device_info())
                })
                .await
                .map_err(|e| status::from_device(&device.name, &e))?;
            if info.serial == serial.to_string() {
                return Ok(device);
            }
        }
        Err(refusal(
            Reason::DeviceNotFound,
            format!("no YubiKey backend holds YubiKey {serial} (see `notaryctl yubikey status`)"),
        ))
    }

    pub(super) async fn release_device_rpc(
        &self,
        request: Request<pb::ReleaseDeviceRequest>,
    ) -> Result<Response<pb::ReleaseDeviceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let mut audited = self.audit.begin(self.audit_base(&caller, "release"));
        let outcome = self
            .release_checked(&caller, request.get_ref(), audited.record())
            .await;
        audited.close(outcome).await.map(Response::new)
    }

    async fn release_checked(
        &self,
        caller: &Caller,
        req: &pb::ReleaseDeviceRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::ReleaseDeviceResponse, Status> {
        let backend = edge::name("backend name", &req.backend)?;
        record.backend = backend.unwrap_or_default().to_string();
        let devices: Vec<Arc<Device>> = self
            .piv_devices()
            .into_iter()
            .filter(|d| backend.is_none_or(|b| d.name == b))
            .collect();
        if devices.is_empty() {
            return Err(invalid(match backend {
                None => "the daemon holds no device it can release".to_string(),
                Some(name) => format!("no YubiKey backend named {name:?}"),
            }));
        }
        let mut released = Vec::new();
        for device in devices {
            if !self
                .policy
                .allows(caller, Operation::Unlock, &KeyFacts::backend(&device.name))
            {
                return Err(denied(format!(
                    "uid {} may not release backend {:?}",
                    caller.uid, device.name
                )));
            }
            device
                .release()
                .await
                .map_err(|e| status::from_device(&device.name, &e))?;
            released.push(device.name.clone());
        }
        Ok(pb::ReleaseDeviceResponse { released })
    }

    pub(super) async fn yubikey_status_rpc(
        &self,
        request: Request<pb::YubiKeyStatusRequest>,
    ) -> Result<Response<pb::YubiKeyStatusResponse>, Status> {
        let caller = Caller::of(&request)?;
        let serial = request.get_ref().serial;
        let devices = if serial == 0 {
            self.piv_devices()
        } else {
            vec![self.piv_device(serial).await?]
        };
        let mut yubikeys = Vec::new();
        for device in devices {
            if !self
                .policy
                .allows(&caller, Operation::List, &KeyFacts::backend(&device.name))
            {
                continue;
            }
            let status = device
                .run(|b| match b.piv() {
                    Some(p) => match b.availability() {
                        Availability::Available => p.status().map(Ok),
                        Availability::Unavailable(why) => Ok(Err(why)),
                    },
                    None => Ok(Err("not a YubiKey backend".into())),
                })
                .await;
            yubikeys.push(match status {
                Ok(Ok(s)) => status_message(&device.name, s),
                Ok(Err(why)) => pb::YubiKeyStatus {
                    backend: device.name.clone(),
                    unavailable_reason: why,
                    ..Default::default()
                },
                Err(e) => pb::YubiKeyStatus {
                    backend: device.name.clone(),
                    unavailable_reason: e.to_string(),
                    ..Default::default()
                },
            });
        }
        if yubikeys.is_empty() && !self.piv_devices().is_empty() {
            return Err(denied(format!(
                "uid {} may not see any YubiKey backend",
                caller.uid
            )));
        }
        Ok(Response::new(pb::YubiKeyStatusResponse { yubikeys }))
    }

    pub(super) async fn yubikey_setup_rpc(
        &self,
        request: Request<pb::YubiKeySetupRequest>,
    ) -> Result<Response<pb::YubiKeySetupResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        // Runs to the end even if the client goes away: a card whose PIN and
        // PUK were changed must get its audit line.
        let this = self.clone();
        tokio::spawn(async move {
            let mut audited = this.audit.begin(this.audit_base(&caller, "yubikey-setup"));
            let outcome = this.setup_checked(&caller, req, audited.record()).await;
            audited.close(outcome).await
        })
        .await
        .map_err(|e| Status::internal(format!("setup failed: {e}")))?
        .map(Response::new)
    }

    async fn setup_checked(
        &self,
        caller: &Caller,
        req: pb::YubiKeySetupRequest,
        record: &mut AuditRecord,
    ) -> Result<pb::YubiKeySetupResponse, Status> {
        let secrets = [req.current_pin, req.new_pin, req.current_puk, req.new_puk].map(edge::pin);
        let device = self.piv_device(req.serial).await?;
        record.backend.clone_from(&device.name);
        if !self.policy.allows(
            caller,
            Operation::Generate,
            &KeyFacts::backend(&device.name),
        ) {
            return Err(denied(format!(
                "uid {} may not set up backend {:?} (needs the generate permission)",
                caller.uid, device.name
            )));
        }
        let [Some(current_pin), Some(new_pin), Some(current_puk), Some(new_puk)] = secrets else {
            return Err(invalid("setup needs the current and new PIN and PUK"));
        };
        let secrets = SetupSecrets {
            current_pin,
            new_pin,
            current_puk,
            new_puk,
        };
        let force = req.force;
        let info = device
            .run(move |b| match b.piv() {
                Some(p) => p.setup(&secrets, force).map(|()| b.device_info()),
                None => Err(keyd_backends::BackendError::NotSupported(
                    "setup is for YubiKey backends",
                )),
            })
            .await
            .map_err(|e| status::from_device(&device.name, &e))?;
        Ok(pb::YubiKeySetupResponse {
            serial: info.serial.parse().unwrap_or(0),
            backend: device.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_options_parse_and_name_bad_values() {
        use keyd_backends::piv::{PinPolicy, TouchPolicy};
        let mut req = pb::GenerateKeyRequest::default();
        assert_eq!(piv_options(&req), Ok(None));
        req.slot = pb::PivSlot::Signature as i32;
        req.pin_policy = pb::PinPolicy::Always as i32;
        let o = piv_options(&req).unwrap().unwrap();
        assert_eq!(o.slot, Some("9c".parse().unwrap()));
        assert_eq!(o.pin_policy, PinPolicy::Always);
        assert_eq!(o.touch_policy, TouchPolicy::Always);
        req.touch_policy = 17;
        assert!(piv_options(&req).unwrap_err().contains("touch policy"));
        req.touch_policy = 0;
        req.slot = 0x9b;
        assert!(piv_options(&req).unwrap_err().contains("82-95"));
    }
}
