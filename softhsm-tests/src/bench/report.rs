//! One result per (algorithm, clients): the JSON line the issue specifies,
//! a readable table, and the floor check.

use super::{Alg, FLOOR_CLIENTS, RSS_CEILING_KB};
use serde_json::json;
use std::fmt::Write as _;

pub(crate) struct Row {
    /// The device: "softhsm" or "swtpm".
    pub backend: &'static str,
    pub alg: Alg,
    /// keyd/direct floor at `FLOOR_CLIENTS` clients.
    pub ratio_floor: f64,
    pub clients: usize,
    /// Direct in-process signatures per second.
    pub direct_ops: f64,
    /// Signatures per second through the daemon.
    pub keyd_ops: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// The daemon's VmHWM right after this row's keyd run (a high-water
    /// mark: the last row holds the peak of the whole invocation).
    pub keyd_peak_rss_kb: u64,
    /// CPU per keyd signature, µs: in the daemon, and in the bench's clients.
    pub daemon_cpu_us_per_op: f64,
    pub client_cpu_us_per_op: f64,
    /// CPU per direct signature, µs.
    pub direct_cpu_us_per_op: f64,
}

impl Row {
    pub(crate) fn ratio(&self) -> f64 {
        if self.direct_ops > 0.0 {
            self.keyd_ops / self.direct_ops
        } else {
            0.0
        }
    }

    /// The JSON object, one line.
    pub(crate) fn json(&self) -> String {
        json!({
            "backend": self.backend,
            "alg": self.alg.name(),
            "clients": self.clients,
            "direct_ops": round(self.direct_ops, 1),
            "keyd_ops": round(self.keyd_ops, 1),
            "ratio": round(self.ratio(), 3),
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "keyd_peak_rss_kb": self.keyd_peak_rss_kb,
        })
        .to_string()
    }

    /// The ratio floor for this row, if one applies.
    pub(crate) fn floor(&self) -> Option<f64> {
        (self.clients == FLOOR_CLIENTS).then_some(self.ratio_floor)
    }

    fn floor_cell(&self) -> String {
        match self.floor() {
            Some(f) if self.ratio() >= f => format!("ok (≥{f})"),
            Some(f) => format!("MISSED (<{f})"),
            None => "-".into(),
        }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

pub(crate) const TABLE_HEADER: &str = "alg          clients  direct op/s    keyd op/s   ratio     p50 µs    p99 µs  keyd CPU µs/op (daemon+client)  direct CPU µs/op  peak RSS KiB  floor";

pub(crate) fn table_line(r: &Row) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:<12} {:>7} {:>12.0} {:>12.0} {:>7.3} {:>10} {:>9}  {:>14.1} ({:>5.1}+{:>5.1})  {:>16.1} {:>13}  {}",
        r.alg.name(),
        r.clients,
        r.direct_ops,
        r.keyd_ops,
        r.ratio(),
        r.p50_us,
        r.p99_us,
        r.daemon_cpu_us_per_op + r.client_cpu_us_per_op,
        r.daemon_cpu_us_per_op,
        r.client_cpu_us_per_op,
        r.direct_cpu_us_per_op,
        r.keyd_peak_rss_kb,
        r.floor_cell(),
    );
    s
}

/// Every floor the rows (and the daemon's final peak RSS) miss.
pub(crate) fn missed_floors(rows: &[Row], peak_rss_kb: u64) -> Vec<String> {
    let mut missed = Vec::new();
    for r in rows {
        if let Some(f) = r.floor() {
            if r.ratio() < f {
                missed.push(format!(
                    "{} at {} clients: ratio {:.3} < {f} (keyd {:.0} op/s, direct {:.0} op/s)",
                    r.alg.name(),
                    r.clients,
                    r.ratio(),
                    r.keyd_ops,
                    r.direct_ops
                ));
            }
        }
    }
    if peak_rss_kb > RSS_CEILING_KB {
        missed.push(format!(
            "daemon peak RSS {peak_rss_kb} KiB > {RSS_CEILING_KB} KiB (64 MiB)"
        ));
    }
    missed
}
