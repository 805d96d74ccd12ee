//! What the signer API's health service answers: SERVING while its backend
//! can sign, NOT_SERVING while it cannot (unavailable, locked, PIN blocked,
//! not answering in time). notary-server asks this service for its own
//! `/_notary_server/health`, so a dead or locked HSM shows there before a
//! publish fails on it.
//!
//! Two sources: the outcome of every device call the API makes (a failure
//! that stops all signing turns it off, any success turns it on), and a
//! check every few seconds of the backend's availability, and of its login
//! once a call has found it locked, so it comes back without traffic.

use crate::device::Device;
use keyd_backends::Availability;
use keyd_proto::Reason;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tonic::Status;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// Service names notary-server's health check asks for.
pub(super) const HEALTH_NAMES: [&str; 2] = [
    "grpc.health.v1.Health.KeyManagement",
    "grpc.health.v1.Health.Signer",
];

/// How often the backend is looked at while nothing else reports on it.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Failures after which no signature can succeed until something changes.
const STOPS_SIGNING: [Reason; 5] = [
    Reason::BackendUnavailable,
    Reason::LoginRequired,
    Reason::PinBlocked,
    Reason::AuthLockout,
    Reason::DeviceTimeout,
];

/// Why the backend cannot sign: the reason, and what it said.
#[derive(Clone, Debug)]
struct Failing {
    reason: Reason,
    detail: String,
}

impl Failing {
    fn new(reason: Reason, detail: impl std::fmt::Display) -> Failing {
        Failing {
            reason,
            detail: detail.to_string(),
        }
    }
}

pub(super) struct SignerHealth {
    reporter: HealthReporter,
    device: Option<Arc<Device>>,
    /// Why the backend cannot sign now; `None` while it can.
    failing: Mutex<Option<Failing>>,
    /// One publisher at a time, each publishing the state as it is then,
    /// so two changes racing cannot leave the older one published.
    publishing: tokio::sync::Mutex<()>,
}

impl SignerHealth {
    /// Starts SERVING (or NOT_SERVING if the backend is not configured).
    pub(super) async fn new(
        reporter: HealthReporter,
        device: Option<Arc<Device>>,
    ) -> Arc<SignerHealth> {
        let health = Arc::new(SignerHealth {
            reporter,
            failing: Mutex::new(
                device
                    .is_none()
                    .then(|| Failing::new(Reason::BackendUnavailable, "no such backend")),
            ),
            device,
            publishing: tokio::sync::Mutex::new(()),
        });
        let serving = health.failing().is_none();
        health.publish(serving).await;
        health
    }

    fn failing(&self) -> Option<Failing> {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn publish(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in HEALTH_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Moves to `now` (None = can sign) and tells the health service if
    /// that is a change. Cheap when nothing changes: one lock, no await.
    async fn set(&self, now: Option<Failing>) {
        let changed = {
            let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = failing.is_some() != now.is_some();
            *failing = now.clone();
            changed
        };
        if !changed {
            return;
        }
        match &now {
            Some(why) => {
                tracing::warn!(reason = %why.reason, detail = ?why.detail, "signer API health: NOT_SERVING")
            }
            None => tracing::info!("signer API health: SERVING again"),
        }
        let _one = self.publishing.lock().await;
        let serving = self.failing().is_none();
        self.publish(serving).await;
    }

    /// Learns from the outcome of a device call.
    pub(super) async fn observe<T>(&self, outcome: &Result<T, Status>) {
        match outcome {
            Ok(_) => self.set(None).await,
            Err(status) => {
                if let Some(reason) = Reason::of(status).filter(|r| STOPS_SIGNING.contains(r)) {
                    self.set(Some(Failing::new(reason, status.message()))).await;
                }
            }
        }
    }

    /// Looks at the backend every `CHECK_EVERY` until the process ends.
    pub(super) fn watch(self: &Arc<Self>) {
        let health = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECK_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = health.check().await;
                health.set(now).await;
            }
        });
    }

    /// Why the backend cannot sign, by asking it (availability; the login
    /// only while a call has found it locked, because asking a card about
    /// its PIN is not free).
    async fn check(&self) -> Option<Failing> {
        let Some(device) = &self.device else {
            return Some(Failing::new(Reason::BackendUnavailable, "no such backend"));
        };
        let available = device.run(|b| Ok(b.availability())).await;
        match available {
            Ok(Availability::Available) => {}
            Ok(Availability::Unavailable(why)) => {
                return Some(Failing::new(Reason::BackendUnavailable, why))
            }
            Err(e) => return Some(Failing::new(Reason::DeviceError, e)),
        }
        let was = self.failing()?;
        if was.reason != Reason::LoginRequired {
            return None;
        }
        match device.pin_status().await {
            Ok(Some(pin)) if !pin.logged_in => Some(was),
            Ok(_) => None,
            Err(e) => Some(Failing::new(Reason::DeviceError, e)),
        }
    }
}
