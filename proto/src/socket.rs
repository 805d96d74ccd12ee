//! Where the daemon listens by default, so the daemon and its clients agree
//! without configuration.

use std::path::PathBuf;

/// Environment variable naming the socket for both the daemon and clients.
pub const SOCKET_ENV: &str = "NOTARY_KEYD_SOCKET";

/// The system service's socket (systemd `notary-keyd.socket`).
pub const SYSTEM_SOCKET: &str = "/run/notary-keyd/keyd.sock";

/// The personal (zero-config) socket: `$XDG_RUNTIME_DIR/notary-keyd/keyd.sock`,
/// or `/tmp/notary-keyd-<uid>/keyd.sock` when there is no runtime dir.
pub fn personal_socket(uid: u32) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("notary-keyd").join("keyd.sock"),
        None => PathBuf::from(format!("/tmp/notary-keyd-{uid}")).join("keyd.sock"),
    }
}

/// The socket a client should use: `$NOTARY_KEYD_SOCKET`, else the personal
/// socket if it exists, else the system socket.
pub fn client_socket(uid: u32) -> PathBuf {
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let personal = personal_socket(uid);
    if personal.exists() {
        personal
    } else {
        PathBuf::from(SYSTEM_SOCKET)
    }
}
