//! The attacker in the adversarial tests: a real `hostile-notary` process
//! serving a collection whose every key the test holds ([`Repo`]), changed
//! between runs of the client to stage each attack. Stopped by its pid when
//! the guard drops.

mod keys;
mod repo;

pub use keys::Key;
pub use repo::{expires_in, now, Files, Repo, Stamp, TargetsRole};

use crate::notary_stack::CertPair;
use crate::process::{start_server, terminate};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct HostileServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub url: String,
    generation: AtomicU32,
}

impl HostileServer {
    /// Starts the server with the TLS certificate `tls` (issued by a test
    /// PKI) and waits until it has bound its port.
    pub fn start(tls: &CertPair) -> Result<HostileServer> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("state-0"))?;
        std::os::unix::fs::symlink("state-0", dir.path().join("current"))?;
        let args = [
            "--cert".into(),
            tls.cert.clone().into_os_string(),
            "--key".into(),
            tls.key.clone().into_os_string(),
            "--dir".into(),
            dir.path().as_os_str().to_owned(),
        ];
        let log = dir.path().join("server.log");
        let (child, port) = start_server("hostile-notary", &args, dir.path(), &log)?;
        let server = HostileServer {
            child: Some(child),
            dir,
            url: format!("https://127.0.0.1:{port}"),
            generation: AtomicU32::new(0),
        };
        Ok(server)
    }

    /// Serves `files` from the next request on (the switch is one rename).
    pub fn serve(&self, files: &Files) -> Result<()> {
        let n = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let state = format!("state-{n}");
        let dir = self.dir.path().join(&state);
        std::fs::create_dir(&dir)?;
        let mut index = String::new();
        for (name, (bytes, behaviour)) in &files.files {
            let path = format!("/v2/{}/_trust/tuf/{name}", files.gun);
            let file = hex::encode(Sha256::digest(path.as_bytes()));
            std::fs::write(dir.join(&file), bytes)?;
            if let Some(behaviour) = behaviour {
                std::fs::write(dir.join(format!("{file}.behaviour")), behaviour)?;
            }
            index.push_str(&format!("{file} {path}\n"));
        }
        std::fs::write(dir.join("index"), index)?;
        let link = self.dir.path().join("current.new");
        std::os::unix::fs::symlink(&state, &link)?;
        std::fs::rename(&link, self.dir.path().join("current"))?;
        Ok(())
    }

    /// `requests.log`: one `GET PATH STATUS BYTES OUTCOME` line per answer.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Waits (up to `limit`) for a logged answer to a path ending in `tail`,
    /// as an answer is logged only once the client stopped reading it.
    pub fn answer_to(&self, tail: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let found = self.requests().lines().find_map(|line| {
                let path = line.split(' ').nth(1)?;
                path.ends_with(tail).then(|| line.to_string())
            });
            if let Some(line) = found {
                return Ok(line);
            }
            if Instant::now() > deadline {
                bail!("no answer to …{tail} logged:\n{}", self.requests());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "hostile-notary", Duration::from_secs(5));
        }
    }
}

/// Every file and folder under `dir` (contents for files), to show that a
/// refused update changed nothing and wrote nothing anywhere.
pub fn tree(dir: &Path) -> Result<BTreeMap<PathBuf, Option<Vec<u8>>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, None);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path)?));
            }
        }
    }
    Ok(out)
}
