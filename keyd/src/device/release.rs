//! Letting go of a device the daemon holds open (a YubiKey), so other
//! programs (ykman, gpg) can use it until the daemon next needs it.

use super::{Device, DeviceError};
use std::sync::Arc;

impl Device {
    /// Closes the card; the next operation opens it again, by serial.
    /// Nothing to do for devices that are not held open.
    pub(crate) async fn release(&self) -> Result<(), DeviceError> {
        self.run(|b| match b.piv() {
            Some(p) => p.release(),
            None => Ok(()),
        })
        .await
    }
}

/// SIGHUP: releases every device that can be released.
pub(crate) async fn release_all(devices: &[Arc<Device>]) {
    for device in devices.iter().filter(|d| d.backend.piv().is_some()) {
        match device.release().await {
            Ok(()) => tracing::info!(backend = %device.name, "device released (SIGHUP)"),
            Err(e) => {
                tracing::warn!(backend = %device.name, error = %e, "could not release device")
            }
        }
    }
}
