//! Generating a key on a device: in a PIV slot when the backend has them,
//! else through the backend's own `generate`.

use super::{Device, DeviceError};
use keyd_backends::piv::PivKeyOptions;
use keyd_backends::{BackendKey, KeyBackend, KeySpec};
use secrecy::SecretString;

impl Device {
    /// Generates through the device queue; `pin` (from the request)
    /// unlocks the token for this request. `piv` places the key on
    /// backends with PIV slots (default options when `None`).
    pub(crate) async fn generate(
        &self,
        spec: KeySpec,
        piv: Option<PivKeyOptions>,
        pin: Option<SecretString>,
    ) -> Result<BackendKey, DeviceError> {
        let options = piv.unwrap_or_default();
        let generating = self.run(move |b: &dyn KeyBackend| match b.piv() {
            Some(piv) => piv.generate_in_slot(&spec, &options),
            None => b.generate(&spec),
        });
        self.queued(pin, |_| {}, generating).await
    }
}
