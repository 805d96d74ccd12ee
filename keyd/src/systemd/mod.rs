//! Running under systemd: socket activation, readiness/watchdog
//! notifications, the status line `systemctl status` shows, and journald's
//! native log protocol.

pub(crate) mod activation;
pub(crate) mod journal;
pub(crate) mod notify;
pub(crate) mod status;

/// The name the socket unit gives the API socket (`FileDescriptorName=`).
pub(crate) const API_SOCKET_NAME: &str = "keyd";
