//! Running under systemd: socket activation, readiness/watchdog
//! notifications, the status line `systemctl status` shows, and journald's
//! native log protocol.

pub mod activation;
pub mod journal;
pub mod notify;
pub mod status;

/// The name the socket unit gives the API socket (`FileDescriptorName=`).
pub const API_SOCKET_NAME: &str = "keyd";
