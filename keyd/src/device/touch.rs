//! Telling the person to touch a YubiKey while a private-key operation
//! waits for it.

use super::Device;
use keyd_backends::piv::{TouchHint, TouchNeed};
use keyd_backends::KeyUri;
use std::future::Future;
use std::time::Duration;

/// When the touch policy is unknown, how long a signature may take before
/// the person is told a touch may be needed.
const TOUCH_PROMPT_DELAY: Duration = Duration::from_millis(500);

impl Device {
    /// Runs a private-key operation with `uri`, calling `on_touch` when the
    /// device will wait for a touch: before the operation when the slot's
    /// policy wants one, or after a short delay when the policy is unknown.
    pub(crate) async fn with_touch_prompts<T>(
        &self,
        uri: &KeyUri,
        on_touch: impl FnOnce(&TouchHint),
        operation: impl Future<Output = T>,
    ) -> T {
        if self.backend.piv().is_none() {
            return operation.await;
        }
        let lookup = uri.clone();
        let hint = self
            .run(move |b| match b.piv() {
                Some(p) => p.touch_hint(&lookup).map(Some),
                None => Ok(None),
            })
            .await
            .ok()
            .flatten();
        let Some(hint) = hint else {
            return operation.await;
        };
        match hint.need {
            TouchNeed::NotNeeded => operation.await,
            TouchNeed::Required => {
                on_touch(&hint);
                operation.await
            }
            TouchNeed::Unknown => {
                tokio::pin!(operation);
                tokio::select! {
                    done = &mut operation => done,
                    () = tokio::time::sleep(TOUCH_PROMPT_DELAY) => {
                        on_touch(&hint);
                        operation.await
                    }
                }
            }
        }
    }
}
