//! Running under systemd: socket activation, readiness/watchdog
//! notifications and the status line `systemctl status` shows.

pub mod activation;
pub mod notify;
pub mod status;

/// The name the socket unit gives the API socket (`FileDescriptorName=`).
pub const API_SOCKET_NAME: &str = "keyd";
