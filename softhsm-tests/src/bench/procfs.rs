//! What `/proc` says about the daemon and the bench process: peak RSS and
//! CPU time.

use anyhow::{bail, Context, Result};
use std::time::Duration;

/// `VmHWM` (peak resident set size) of a process, in KiB.
pub(crate) fn peak_rss_kb(pid: u32) -> Result<u64> {
    status_kb(pid, "VmHWM")
}

/// A `kB` field of `/proc/<pid>/status`.
pub(crate) fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb = rest.trim().trim_end_matches("kB").trim();
            return kb
                .parse()
                .with_context(|| format!("{path}: {field} {rest:?}"));
        }
    }
    bail!("{path} has no {field}")
}

/// User plus system CPU time of a whole process (all its threads, including
/// those that have exited), from `/proc/<pid>/stat`.
pub(crate) fn cpu_time(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may contain spaces: count
    // fields after the last ')'. utime and stime are fields 14 and 15.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path}: short"))?
            .parse::<u64>()
            .with_context(|| format!("{path}: field {}", i + 3))
    };
    // fields[0] is field 3 (state), so utime (14) is fields[11].
    let total = ticks(11)? + ticks(12)?;
    // /proc reports in USER_HZ, which is 100 on every Linux ABI.
    Ok(Duration::from_millis(total * 10))
}
