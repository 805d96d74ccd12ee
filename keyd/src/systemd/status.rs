//! The one-line summary `systemctl status` shows (`STATUS=`): which
//! backends are usable and how many keys are loaded.

use crate::registry::Registry;
use keyd_backends::Availability;

/// `failed` are configured backends that could not be opened at all.
pub(crate) fn summary(registry: &Registry, failed: &[String]) -> String {
    let mut available = Vec::new();
    let mut unavailable = failed.to_vec();
    for device in registry.devices() {
        match device.backend.availability() {
            Availability::Available => available.push(device.name.clone()),
            Availability::Unavailable(_) => unavailable.push(device.name.clone()),
        }
    }
    let total = available.len() + unavailable.len();
    let mut line = format!(
        "{} of {total} backends available ({}), {} keys",
        available.len(),
        available.join(", "),
        registry.all().len()
    );
    if !unavailable.is_empty() {
        line.push_str(&format!(
            "; unavailable: {} (see `notaryctl backend list`)",
            unavailable.join(", ")
        ));
    }
    line
}
