//! `[server.limits]`: what one caller may cost the daemon, so a caller
//! without rights (or a buggy one) cannot slow the devices down for others.

use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerLimits {
    /// Least time between two device rescans that an unknown key ID or a
    /// listing asks for. A key on a token plugged in since the last rescan
    /// shows up at most this long after the rescan.
    pub key_rescan_interval_seconds: u64,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            key_rescan_interval_seconds: 2,
        }
    }
}

impl ServerLimits {
    pub(crate) fn key_rescan_interval(&self) -> Duration {
        Duration::from_secs(self.key_rescan_interval_seconds)
    }
}
