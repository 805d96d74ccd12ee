//! One device: its backend, its work queue and its PIN cache, and what
//! every caller does with a device whatever the API: touch prompts
//! (`touch.rs`), generating (`generate.rs`), releasing (`release.rs`).
//!
//! Hardware is serial per token (or has a few sessions), so each device gets
//! a queue as wide as its backend's concurrency. Blocking device calls run on
//! tokio's blocking pool, never on the reactor; only signatures a backend
//! calls quick in-process work run in place.

mod generate;
mod pin_cache;
mod release;
mod touch;

pub(crate) use pin_cache::{PinCache, PinCacheWord};
pub(crate) use release::release_all;

use keyd_backends::{BackendError, BackendKey, KeyBackend, PinStatus};
use secrecy::SecretString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a request waits for its device before the client is told it is
/// queued.
const QUEUED_NOTICE_AFTER: Duration = Duration::from_millis(100);

pub(crate) struct Device {
    pub name: String,
    pub backend: Arc<dyn KeyBackend>,
    queue: Semaphore,
    waiting: AtomicUsize,
    pin_cache: PinCache,
    /// When a person-supplied PIN unlock expires (`pin_cache = N`).
    unlock_expires: Mutex<Option<Instant>>,
    /// Requests in flight that logged in with their own PIN. Login covers
    /// the whole token, so with `pin_cache = "none"` only the last of them
    /// logs out.
    pin_requests: AtomicUsize,
}

/// Where a device error happened, for mapping to a status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("device worker failed: {0}")]
    Worker(String),
}

impl Device {
    pub(crate) fn new(name: String, backend: Arc<dyn KeyBackend>, pin_cache: PinCache) -> Device {
        let width = backend.concurrency().max(1);
        Device {
            name,
            backend,
            queue: Semaphore::new(width),
            waiting: AtomicUsize::new(0),
            pin_cache,
            unlock_expires: Mutex::new(None),
            pin_requests: AtomicUsize::new(0),
        }
    }

    /// Takes a place on the device. `on_wait` is told how many requests were
    /// ahead when the wait has lasted `QUEUED_NOTICE_AFTER`: a person should
    /// hear why nothing happens, but a busy HSM's sub-millisecond queueing
    /// is not news, and telling it costs a message per request.
    pub(crate) async fn enter(
        &self,
        on_wait: impl FnOnce(usize),
    ) -> Result<SemaphorePermit<'_>, DeviceError> {
        if let Ok(permit) = self.queue.try_acquire() {
            return Ok(permit);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let acquire = self.queue.acquire();
        tokio::pin!(acquire);
        let permit = match tokio::time::timeout(QUEUED_NOTICE_AFTER, &mut acquire).await {
            Ok(permit) => permit,
            Err(_) => {
                on_wait(ahead);
                acquire.await
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|_| DeviceError::Worker("device queue closed".into()))
    }

    /// Runs `work` holding a place on the device, logged in with the PIN the
    /// request brought, if any. The login happens inside the queue so that
    /// the PIN serves this request and no other (a PIN-always YubiKey slot
    /// keeps it for the next operation only); `pin_cache` decides when it is
    /// forgotten afterwards.
    pub(crate) async fn queued<T>(
        &self,
        pin: Option<SecretString>,
        on_wait: impl FnOnce(usize),
        work: impl std::future::Future<Output = Result<T, DeviceError>>,
    ) -> Result<T, DeviceError> {
        self.expire_unlock().await;
        let permit = self.enter(on_wait).await?;
        let with_pin = pin.is_some();
        if let Some(pin) = pin {
            self.unlock_for_request(pin).await?;
        }
        let result = work.await;
        drop(permit);
        if with_pin {
            self.after_request_pin().await;
        }
        result
    }

    /// Runs a blocking backend call off the reactor.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn KeyBackend) -> Result<T, BackendError> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || f(backend.as_ref()))
            .await
            .map_err(|e| DeviceError::Worker(e.to_string()))?
            .map_err(DeviceError::from)
    }

    /// Signs with `key`: in place when its backend says that is quick,
    /// otherwise on the blocking pool.
    pub(crate) async fn sign(
        &self,
        key: &BackendKey,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, DeviceError> {
        if self.backend.signs_in_place(key.algorithm) {
            return self
                .backend
                .sign(&key.uri, &payload)
                .map_err(DeviceError::from);
        }
        let uri = key.uri.clone();
        self.run(move |b| b.sign(&uri, &payload)).await
    }

    /// The token's PIN state, or `None` for backends without a login.
    pub(crate) async fn pin_status(&self) -> Result<Option<PinStatus>, DeviceError> {
        if self.backend.token_login().is_none() {
            return Ok(None);
        }
        self.run(|b| match b.token_login() {
            Some(l) => l.pin_status().map(Some),
            None => Ok(None),
        })
        .await
    }

    /// Logs in with a PIN a person supplied. Never retried.
    pub(crate) async fn unlock(&self, pin: SecretString) -> Result<(), DeviceError> {
        self.run(move |b| match b.token_login() {
            Some(l) => l.login(&pin),
            None => Err(BackendError::NotSupported("this backend has no PIN")),
        })
        .await?;
        let expires = match self.pin_cache {
            PinCache::Seconds(s) => Some(Instant::now() + Duration::from_secs(s)),
            _ => None,
        };
        if let Ok(mut slot) = self.unlock_expires.lock() {
            *slot = expires;
        }
        Ok(())
    }

    pub(crate) async fn lock(&self) -> Result<(), DeviceError> {
        if let Ok(mut slot) = self.unlock_expires.lock() {
            *slot = None;
        }
        self.run(|b| match b.token_login() {
            Some(l) => l.logout(),
            None => Err(BackendError::NotSupported("this backend has no PIN")),
        })
        .await
    }

    /// Logs in with the PIN a request carries; pair with `after_request_pin`.
    pub(crate) async fn unlock_for_request(&self, pin: SecretString) -> Result<(), DeviceError> {
        self.pin_requests.fetch_add(1, Ordering::SeqCst);
        let result = self.unlock(pin).await;
        if result.is_err() {
            self.pin_requests.fetch_sub(1, Ordering::SeqCst);
        }
        result
    }

    /// With `pin_cache = "none"`, a PIN given with a request is forgotten as
    /// soon as the last request that brought one is done.
    pub(crate) async fn after_request_pin(&self) {
        let last = self.pin_requests.fetch_sub(1, Ordering::SeqCst) == 1;
        if last && self.pin_cache == PinCache::Word(PinCacheWord::None) {
            if let Err(e) = self.lock().await {
                tracing::warn!(backend = %self.name, error = %e, "could not lock token after request");
            }
        }
    }

    /// Locks the token when a person's unlock has outlived `pin_cache`.
    /// Cheap when nothing expired: no device call.
    pub(crate) async fn expire_unlock(&self) {
        let expired = match self.unlock_expires.lock() {
            Ok(slot) => slot.is_some_and(|t| Instant::now() >= t),
            Err(_) => false,
        };
        if expired {
            tracing::info!(backend = %self.name, "PIN cache expired; locking token");
            if let Err(e) = self.lock().await {
                tracing::warn!(backend = %self.name, error = %e, "could not lock token");
            }
        }
    }
}
