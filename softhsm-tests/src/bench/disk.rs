//! The disk's own price for a durable record, measured where the daemon's
//! audit log lives and while the services under test run: a 300-byte
//! `O_DSYNC` write into space the file already has (what the audit log
//! does), and a 300-byte append followed by `fdatasync` (what a plain log
//! does). A reply that waits for its record costs at least the first; the
//! signer-API floors are set in it.
//!
//! On a shared machine this price moves by an order of magnitude as other
//! jobs write (100–200 µs when the disk is quiet, 3–4 ms behind someone's
//! build here), so a probe measured once before the runs says little about
//! them: the probe writes every few milliseconds in a thread of its own
//! during the runs, and each line takes the median of its own samples.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Median latencies in µs, and how many writes of each kind they are from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DurableWrite {
    pub(crate) dsync_p50_us: u64,
    pub(crate) append_fdatasync_p50_us: u64,
    pub(crate) samples: usize,
}

const RECORD: usize = 300;
/// Allocated space for this many records; the probe wraps around.
const SLOTS: usize = 4096;
const EVERY: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Samples {
    dsync: Vec<u64>,
    append: Vec<u64>,
}

/// Probes the disk until dropped.
pub(crate) struct Probe {
    samples: Arc<Mutex<Samples>>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl Probe {
    /// Starts probing in a temp dir inside `dir` (the filesystem the
    /// daemon under test writes its audit log on).
    pub(crate) fn start(dir: &Path) -> Result<Probe> {
        let tmp = tempfile::tempdir_in(dir).context("temp dir for the disk probe")?;
        let allocated = tmp.path().join("allocated");
        {
            let mut f = File::create(&allocated)?;
            f.write_all(&vec![b' '; RECORD * SLOTS])?;
            f.sync_all()?;
        }
        let dsync = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DSYNC)
            .open(&allocated)?;
        let mut appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(tmp.path().join("appended"))?;
        let samples = Arc::new(Mutex::new(Samples::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, stopped) = (Arc::clone(&samples), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                let record = [b'x'; RECORD];
                let mut slot = 0;
                while !stopped.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if dsync.write_all_at(&record, (slot * RECORD) as u64).is_err() {
                        return;
                    }
                    let d = micros(t);
                    slot = (slot + 1) % SLOTS;
                    let t = Instant::now();
                    if appended
                        .write_all(&record)
                        .and_then(|()| appended.sync_data())
                        .is_err()
                    {
                        return;
                    }
                    let a = micros(t);
                    {
                        let mut s = into.lock().unwrap_or_else(PoisonError::into_inner);
                        s.dsync.push(d);
                        s.append.push(a);
                    }
                    std::thread::sleep(EVERY);
                }
            })?;
        Ok(Probe {
            samples,
            stop,
            _dir: tmp,
        })
    }

    /// The medians since the last call.
    pub(crate) fn take(&self) -> DurableWrite {
        let mut s =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner));
        DurableWrite {
            dsync_p50_us: median(&mut s.dsync),
            append_fdatasync_p50_us: median(&mut s.append),
            samples: s.dsync.len(),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
