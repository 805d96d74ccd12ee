//! The TPM thread: one long-lived context lives on it, and backend calls
//! reach it as jobs over a channel. TPM commands are blocking I/O and the
//! context is `&mut`, so one thread owning it is simpler than a lock and
//! keeps the session reuse trivially safe.

use super::engine::Engine;
use crate::BackendError;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often an idle worker whose TPM is unreachable tries again.
const RECONNECT_EVERY: Duration = Duration::from_secs(2);

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

pub(super) struct Worker {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn stopped() -> BackendError {
    BackendError::Unavailable("the TPM worker thread has stopped".into())
}

impl Worker {
    pub(super) fn spawn(name: &str, mut engine: Engine) -> Result<Worker, BackendError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("tpm-{name}"))
            .spawn(move || loop {
                match rx.recv_timeout(RECONNECT_EVERY) {
                    Ok(job) => job(&mut engine),
                    Err(RecvTimeoutError::Timeout) => engine.reconnect_if_down(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            })
            .map_err(|e| BackendError::Device(format!("cannot start the TPM thread: {e}")))?;
        Ok(Worker {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` on the TPM thread and waits for its result.
    pub(super) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> Result<R, BackendError> + Send + 'static,
    ) -> Result<R, BackendError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |engine| {
            let _ = reply_tx.send(f(engine));
        });
        {
            let jobs = self.jobs.lock().map_err(|_| stopped())?;
            jobs.as_ref()
                .ok_or_else(stopped)?
                .send(job)
                .map_err(|_| stopped())?;
        }
        reply_rx.recv().map_err(|_| stopped())?
    }
}

impl Drop for Worker {
    /// Closes the queue and waits, so the thread flushes what it loaded in
    /// the TPM before the process goes on.
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}
