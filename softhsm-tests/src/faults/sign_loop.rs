//! A client that keeps signing with one key while a test breaks another
//! backend: every signature is verified, every failure kept, so the test
//! can show the healthy backend served throughout.

use crate::client::sign_request;
use crate::connect;
use anyhow::{bail, Result};
use keyd_proto::keyd as pb;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SignLoop {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    signed: AtomicU64,
    stop: AtomicBool,
    /// The first failure; the loop stops there.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn check(&self) -> Result<()> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match failure.as_ref() {
            Some(e) => bail!("a signature failed: {e}"),
            None => Ok(()),
        }
    }
}

/// A canonical Targets `signed` object of the given version.
fn targets(version: u64) -> Vec<u8> {
    format!(
        r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"2030-01-01T00:00:00Z","targets":{{}},"version":{version}}}"#
    )
    .into_bytes()
}

impl SignLoop {
    /// Starts signing Targets metadata with `key` (bound to role targets)
    /// over its own connection to `socket`, back to back.
    pub async fn start(socket: &Path, key: &pb::Key) -> Result<SignLoop> {
        let mut client = connect(socket).await?;
        let public = notary_tuf::PublicKey::new(
            key.keytype.parse().map_err(anyhow::Error::msg)?,
            key.public.clone(),
        );
        let key_id = key.key_id.clone();
        let shared = Arc::new(Shared::default());
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut version = 1u64;
            while !state.stop.load(Ordering::SeqCst) {
                let payload = targets(version);
                version += 1;
                let outcome = sign_request(
                    &mut client,
                    pb::SignRequest {
                        key_id: key_id.clone(),
                        payload: payload.clone(),
                        role: pb::KeyRole::Targets as i32,
                        ..Default::default()
                    },
                )
                .await
                .and_then(|r| {
                    let method = r
                        .method()
                        .notary()
                        .ok_or_else(|| anyhow::anyhow!("no signature method"))?;
                    notary_tuf::verify(&public, method, &payload, &r.signature)?;
                    Ok(())
                });
                match outcome {
                    Ok(()) => {
                        state.signed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        // One failure fails the test; a dead daemon would
                        // otherwise make this a busy loop.
                        let mut failure = state.failure.lock().unwrap_or_else(|e| e.into_inner());
                        *failure = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
        });
        Ok(SignLoop { shared, task })
    }

    /// Signatures made and verified so far.
    pub fn signed(&self) -> u64 {
        self.shared.signed.load(Ordering::SeqCst)
    }

    /// Waits until `more` signatures beyond those made so far are done:
    /// proof the key's backend serves now. Fails on a failure (the loop
    /// stops at the first), or after `limit` (a hang).
    pub async fn serves(&self, more: u64, limit: Duration) -> Result<()> {
        let target = self.signed() + more;
        let deadline = Instant::now() + limit;
        while self.signed() < target {
            self.check()?;
            if Instant::now() > deadline {
                bail!(
                    "the sign loop made {} of {more} signatures in {limit:?}",
                    more + self.signed() - target
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.check()
    }

    fn check(&self) -> Result<()> {
        self.shared.check()
    }

    /// Stops and returns how many signatures were made; fails if any failed.
    pub async fn stop(self) -> Result<u64> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.task.await?;
        self.shared.check()?;
        Ok(self.shared.signed.load(Ordering::SeqCst))
    }
}
