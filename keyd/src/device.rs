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
    /// Places in `queue`. A PIN login takes all of them: checking a PIN can
    /// log the token out first (PKCS#11), and with `pin_cache = "none"` the
    /// login must serve its own request and no other.
    width: u32,
    waiting: AtomicUsize,
    pin_cache: PinCache,
    /// When a person-supplied PIN unlock expires (`pin_cache = N`).
    unlock_expires: Mutex<Option<Instant>>,
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
        let width = u32::try_from(backend.concurrency().max(1)).unwrap_or(u32::MAX);
        Device {
            name,
            backend,
            queue: Semaphore::new(width as usize),
            width,
            waiting: AtomicUsize::new(0),
            pin_cache,
            unlock_expires: Mutex::new(None),
        }
    }

    /// Takes places on the device. `on_wait` is told how many requests were
    /// ahead when the wait has lasted `QUEUED_NOTICE_AFTER`: a person should
    /// hear why nothing happens, but a busy HSM's sub-millisecond queueing
    /// is not news, and telling it costs a message per request.
    ///
    /// `places` are taken at once; the queue is fair, so a request for all
    /// of them waits for those ahead and holds back those behind.
    async fn take(
        &self,
        places: u32,
        on_wait: impl FnOnce(usize),
    ) -> Result<SemaphorePermit<'_>, DeviceError> {
        if let Ok(permit) = self.queue.try_acquire_many(places) {
            return Ok(permit);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let acquire = self.queue.acquire_many(places);
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
    /// request brought, if any. A request with a PIN has the device to
    /// itself from its login to the end of its work, so the PIN serves this
    /// request and no other (a PIN-always YubiKey slot keeps it for the next
    /// operation only), and no other request is on the token while the PIN
    /// is checked; `pin_cache` decides when it is forgotten afterwards
    /// (`"none"`: before anyone else gets the device).
    pub(crate) async fn queued<T>(
        &self,
        pin: Option<SecretString>,
        on_wait: impl FnOnce(usize),
        work: impl std::future::Future<Output = Result<T, DeviceError>>,
    ) -> Result<T, DeviceError> {
        self.expire_unlock().await;
        let Some(pin) = pin else {
            let _place = self.take(1, on_wait).await?;
            return work.await;
        };
        let _alone = self.take(self.width, on_wait).await?;
        self.login(pin).await?;
        let result = work.await;
        if self.forgets_pins() {
            if let Err(e) = self.lock().await {
                tracing::warn!(backend = %self.name, error = %e, "could not lock token after request");
            }
        }
        result
    }

    /// `pin_cache = "none"`: a PIN serves only the request that brings it,
    /// so an unlock that outlives a request has no place.
    pub(crate) fn forgets_pins(&self) -> bool {
        self.pin_cache == PinCache::Word(PinCacheWord::None)
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

    /// Logs in with a PIN a person supplied (`notaryctl key unlock`), with
    /// the device to itself as in `queued`. Never retried.
    pub(crate) async fn unlock(&self, pin: SecretString) -> Result<(), DeviceError> {
        let _alone = self.take(self.width, |_| {}).await?;
        self.login(pin).await
    }

    /// One login with `pin`; the caller holds every place on the device.
    /// Only a PIN the device accepted starts the `pin_cache` clock: a
    /// refused one renews nothing (and on PKCS#11 leaves the token logged
    /// out, since checking it needed a fresh login).
    async fn login(&self, pin: SecretString) -> Result<(), DeviceError> {
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
