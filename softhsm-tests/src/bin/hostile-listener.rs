//! Test-only: a hostile local user's fake daemon. Run as another uid, it
//! makes the socket's directory if missing (mode 0755, as an attacker
//! would), listens there with a socket anyone may connect to, and records
//! each connection as one line `BYTES HEX` in the record file: how much
//! the client sent before it closed, and what. It then answers `recorded`
//! and takes the next connection. Connections are served one at a time, so
//! once a probe connection has its answer, every earlier one is recorded.
//!
//! Usage: hostile-listener SOCKET RECORD_FILE (prints `listening` once
//! anyone may connect)

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// More than any client sends before it waits for an answer.
const MAX_RECORDED: u64 = 1 << 20;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(socket), Some(record)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: hostile-listener SOCKET RECORD_FILE");
    };
    let (socket, record) = (PathBuf::from(socket), PathBuf::from(record));
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777))?;
    // The test waits for this line before it lets anyone connect.
    println!("listening");
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut received = Vec::new();
        // An error mid-read still records what arrived.
        let _ = (&mut stream).take(MAX_RECORDED).read_to_end(&mut received);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&record)?;
        writeln!(file, "{} {}", received.len(), hex::encode(&received))?;
        file.sync_all()?;
        let _ = stream.write_all(b"recorded\n");
    }
    Ok(())
}
