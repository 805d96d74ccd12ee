//! Prometheus metrics: counters and histograms of atomics, updated on the
//! request path without a lock (`histogram`, `counts`), rendered in the
//! text format on request (`render`) and served on their own socket when
//! `[metrics]` is configured (`endpoint`). Every name is documented in
//! docs/operations.md, which the e2e test `metrics.rs` reads.

mod counts;
pub(crate) mod endpoint;
mod histogram;
mod render;

pub(crate) use counts::{RequestCounts, SignOperation};
pub(crate) use histogram::Histogram;
pub(crate) use render::render;

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `[metrics]`: present means on.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsConfig {
    /// Unix socket of the endpoint (default /run/notary-keyd/metrics.sock),
    /// owned by the daemon's user and `socket_group`, like the API's.
    pub socket: Option<PathBuf>,
    /// Loopback TCP address instead of the socket, for a scraper that
    /// cannot read a Unix socket.
    pub listen: Option<SocketAddr>,
}

pub(crate) const DEFAULT_SOCKET: &str = "/run/notary-keyd/metrics.sock";

impl MetricsConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.socket.is_some() && self.listen.is_some() {
            return Err("[metrics]: give `socket` or `listen`, not both".into());
        }
        if let Some(addr) = self.listen.filter(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "[metrics] listen = {addr}: only a loopback address (127.0.0.1, ::1); \
                 the endpoint has no authentication"
            ));
        }
        Ok(())
    }
}

/// One backend's metrics, kept by its `Device`.
pub(crate) struct DeviceMetrics {
    pub(crate) requests: RequestCounts,
    /// Time of the device's signing call, once it has a place in the queue.
    pub(crate) sign_latency: Histogram,
    /// PINs the device refused (a login, an unlock).
    pub(crate) pin_failures: AtomicU64,
}

impl DeviceMetrics {
    pub(crate) const fn new() -> DeviceMetrics {
        DeviceMetrics {
            requests: RequestCounts::new(),
            sign_latency: Histogram::new(),
            pin_failures: AtomicU64::new(0),
        }
    }
}

/// The audit log's writer: how long each batch took to reach the disk
/// (write and fsync), and how many records it wrote.
pub(crate) struct AuditMetrics {
    pub(crate) write_latency: Histogram,
    pub(crate) records: AtomicU64,
}

/// One audit log per daemon, so one set of audit metrics per process.
pub(crate) static AUDIT: AuditMetrics = AuditMetrics {
    write_latency: Histogram::new(),
    records: AtomicU64::new(0),
};

impl AuditMetrics {
    pub(crate) fn wrote(&self, records: usize, took: Duration) {
        self.write_latency.observe(took);
        self.records.fetch_add(
            u64::try_from(records).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Requests that failed before a backend was known (no such key, an empty
/// payload).
pub(crate) static UNROUTED: RequestCounts = RequestCounts::new();
