//! A backend's state as an operator sees it: `notaryctl backend list
//! --json`, run for real against the daemon (as the daemon's user).

use crate::daemon::{bin_path, Daemon};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

/// `available` and `unavailable_reason` of backend `name`.
pub fn backend_state(daemon: &Daemon, name: &str) -> Result<(bool, String)> {
    let mut cmd = std::process::Command::new(bin_path("notaryctl")?);
    cmd.arg("--keyd")
        .arg(&daemon.socket)
        .args(["backend", "list", "--json"])
        .env_remove("NOTARY_KEYD_SOCKET");
    // notaryctl talks only to a daemon of its own user (or root's).
    if let Some((uid, gid)) = daemon.user() {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid).env("HOME", daemon.dir.path());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "notaryctl backend list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let backend = listed
        .as_array()
        .and_then(|all| all.iter().find(|b| b["name"] == name))
        .with_context(|| format!("backend {name} is not listed: {listed}"))?;
    Ok((
        backend["available"].as_bool().unwrap_or(false),
        backend["unavailable_reason"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    ))
}

/// Waits until backend `name` is listed as `available` (or not); returns
/// the reason it gives. Fails after `limit`: a backend that never changes.
pub async fn wait_backend(
    daemon: &Daemon,
    name: &str,
    available: bool,
    limit: Duration,
) -> Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        let (now, reason) = backend_state(daemon, name)?;
        if now == available {
            return Ok(reason);
        }
        if Instant::now() > deadline {
            bail!("backend {name} is still available={now} after {limit:?} ({reason})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
