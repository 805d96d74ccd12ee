//! `GetDaemonStatus`: the daemon's own state and each backend's work, for
//! `notaryctl daemon status`. The figures are the metrics endpoint's,
//! read from the same counters.

use super::KeydService;
use crate::caller::Caller;
use crate::policy::Operation;
use crate::status::denied;
use keyd_backends::Availability;
use keyd_proto::keyd as pb;
use std::sync::atomic::Ordering;
use tonic::{Request, Response, Status};

impl KeydService {
    pub(super) async fn get_daemon_status_rpc(
        &self,
        request: Request<pb::GetDaemonStatusRequest>,
    ) -> Result<Response<pb::DaemonStatus>, Status> {
        let caller = Caller::of(&request)?;
        if !self.policy.allows_any(&caller, Operation::List) {
            return Err(denied(format!(
                "uid {} may not see the daemon's status",
                caller.uid
            )));
        }
        let info = &self.daemon;
        let reload = info.last_reload();
        let backends =
            self.registry.devices().iter().map(|device| {
                let (available, unavailable_reason) = match device.backend.availability() {
                    Availability::Available => (true, String::new()),
                    Availability::Unavailable(reason) => (false, reason),
                };
                let (signed, failed) = device.metrics.requests.non_zero().iter().fold(
                    (0, 0),
                    |(ok, failed), count| match count.result {
                        "ok" => (ok + count.value, failed),
                        _ => (ok, failed + count.value),
                    },
                );
                let latency = device.metrics.sign_latency.snapshot();
                pb::BackendActivity {
                    name: device.name.clone(),
                    available,
                    unavailable_reason,
                    keys: u32::try_from(self.registry.count_in(&device.name)).unwrap_or(u32::MAX),
                    queued: u32::try_from(device.waiting()).unwrap_or(u32::MAX),
                    signed,
                    failed,
                    pin_failures: device.metrics.pin_failures.load(Ordering::Relaxed),
                    mean_sign_micros: latency.mean_micros(),
                }
            });
        Ok(Response::new(pb::DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_seconds: info.started.elapsed().as_secs(),
            config_path: info
                .config_path
                .get()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            summary: crate::systemd::status::summary(&self.registry, &info.not_opened),
            pending_restart: reload.pending_restart,
            last_reload_error: reload.error.unwrap_or_default(),
            audit_records: crate::metrics::AUDIT.records.load(Ordering::Relaxed),
            backends: backends.collect(),
            not_opened: info.not_opened.to_vec(),
            caller_may: Operation::ALL
                .into_iter()
                .filter(|&op| self.policy.allows_any(&caller, op))
                .map(|op| op.as_str().to_string())
                .collect(),
        }))
    }
}
