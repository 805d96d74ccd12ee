//! One file per command group.

pub(crate) mod attest;
pub(crate) mod audit;
pub(crate) mod backend;
pub(crate) mod ceremony;
pub(crate) mod certificate;
pub(crate) mod daemon;
pub(crate) mod key;
pub(crate) mod key_transfer;
pub(crate) mod key_uses;
pub(crate) mod repo;
pub(crate) mod sign;
pub(crate) mod yubikey;

use crate::connect::Client;
use crate::errors::{KeydError, Reply};
use crate::pin;
use keyd_proto::keyd as pb;
use keyd_proto::{Failure, Reason};
use secrecy::SecretString;
use std::future::Future;
use std::path::Path;
use tonic::Status;

/// The daemon's key named `name` (a key ID, x509 key ID or key URI).
pub(crate) async fn key_named(client: &mut Client, name: &str) -> Result<pb::Key, KeydError> {
    client
        .get_key(pb::GetKeyRequest {
            key: name.to_string(),
        })
        .await
        .reply()
}

/// Runs a PIN-capable request without a PIN; if the token turns out to be
/// locked and a PIN can be had, runs it once more with the PIN. A wrong PIN
/// is never retried: the second attempt's outcome is final.
pub(crate) async fn with_pin_retry<T, F, Fut>(
    backend: &str,
    pin_file: Option<&Path>,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut(Option<&SecretString>) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let status = match attempt(None).await {
        Ok(result) => return Ok(result),
        Err(status) => status,
    };
    let failure = Failure::of(&status);
    let locked = failure
        .as_ref()
        .is_some_and(|f| f.reason == Reason::LoginRequired);
    let source = locked.then(|| pin::source(pin_file)).flatten();
    let Some(source) = source else {
        return Err(KeydError::on_backend(status, backend).into());
    };
    // A request for the default backend learns its name from the refusal.
    let named_by_daemon = failure.and_then(|f| f.backend);
    let prompt_name = match backend {
        "" => named_by_daemon.as_deref().unwrap_or("(default)"),
        named => named,
    };
    let pin = pin::read(source, prompt_name)?;
    attempt(Some(&pin))
        .await
        .map_err(|status| KeydError::on_backend(status, backend).into())
}
