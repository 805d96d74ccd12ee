//! The pcscd the tests share: one per machine (it owns
//! /run/pcscd/pcscd.comm), started by `scripts/test-pcscd.sh` with vpcd
//! readers on ports 30000-30007. This process holds a shared lock on the
//! script's users.lock for its whole life; the script's supervisor stops
//! exactly the pcscd it started once the last user has gone, so no test
//! process (nor a crashed one) leaves it behind or pulls it from under
//! another. One test at a time (across threads and processes) uses the
//! readers; see [`TestPcscd::lock_readers`].

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// First vpcd port; must match `scripts/test-pcscd.sh`.
pub const BASE_PORT: u16 = 30000;
/// Number of vpcd ports the script configures.
pub const PORT_COUNT: u16 = 8;

const DEFAULT_DIR: &str = "/tmp/notary-keyd-pcscd";
/// Longest wait for the readers; a whole card test takes well under a minute.
const READERS_WAIT: Duration = Duration::from_secs(600);
const READERS_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum PcscdError {
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error(
        "another test has held the virtual readers ({path}) for {READERS_WAIT:?}; is it hanging?"
    )]
    ReadersBusy { path: PathBuf },
    #[error("scripts/test-pcscd.sh start failed ({status}): {stderr}")]
    Start { status: String, stderr: String },
}

/// This process's share of the test pcscd.
pub struct TestPcscd {
    dir: PathBuf,
    _user: Flock<File>,
}

impl TestPcscd {
    /// Starts the shared pcscd unless it already runs, once per process.
    pub fn shared() -> Result<&'static TestPcscd, String> {
        static SHARED: OnceLock<Result<TestPcscd, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| TestPcscd::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start() -> Result<TestPcscd, PcscdError> {
        let dir = std::env::var_os("NOTARY_TEST_PCSCD_DIR")
            .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
        std::fs::create_dir_all(&dir).map_err(|source| PcscdError::Io {
            path: dir.clone(),
            source,
        })?;
        // Shared lock first: the supervisor must not stop pcscd between
        // the script's check and our use of it.
        let user = lock(&dir.join("users.lock"), FlockArg::LockShared)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-pcscd.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .env("NOTARY_TEST_PCSCD_DIR", &dir)
            .output()
            .map_err(|source| PcscdError::Io {
                path: script.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(PcscdError::Start {
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(TestPcscd { dir, _user: user })
    }

    /// Waits until no other test (thread or process) uses the virtual
    /// readers, then holds all of them until the guard drops. Exclusive
    /// because opening any YubiKey by serial SELECTs every card present,
    /// which resets the PIN state of cards other tests are using.
    /// Gives up after [`READERS_WAIT`]: a test that long on the readers hangs.
    pub fn lock_readers(&self) -> Result<Flock<File>, PcscdError> {
        let path = self.dir.join("readers.lock");
        let deadline = Instant::now() + READERS_WAIT;
        loop {
            match lock(&path, FlockArg::LockExclusiveNonblock) {
                Err(PcscdError::Lock {
                    source: nix::Error::EWOULDBLOCK,
                    ..
                }) if Instant::now() < deadline => std::thread::sleep(READERS_POLL),
                Err(PcscdError::Lock {
                    source: nix::Error::EWOULDBLOCK,
                    ..
                }) => return Err(PcscdError::ReadersBusy { path }),
                other => return other,
            }
        }
    }
}

fn lock(path: &Path, how: FlockArg) -> Result<Flock<File>, PcscdError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| PcscdError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Flock::lock(file, how).map_err(|(_, source)| PcscdError::Lock {
        path: path.to_path_buf(),
        source,
    })
}
