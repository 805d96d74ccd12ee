//! The Prometheus text exposition format (version 0.0.4) of the daemon's
//! metrics, read at scrape time.

use crate::metrics::histogram::Snapshot;
use crate::metrics::{RequestCounts, AUDIT, UNROUTED};
use crate::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Every metric, for the devices of `registry` and the backends in
/// `failed` (configured, but never opened).
pub(crate) fn render(registry: &Registry, failed: &[String]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "notary_keyd_requests_total",
        "counter",
        "Signing requests by operation, gRPC result, backend and algorithm.",
    );
    requests(&mut out, "", &UNROUTED);
    for device in registry.devices() {
        requests(&mut out, &device.name, &device.metrics.requests);
    }
    header(
        &mut out,
        "notary_keyd_sign_duration_seconds",
        "histogram",
        "Time of the backend's signing call, per backend.",
    );
    for device in registry.devices() {
        let labels = format!("backend=\"{}\"", escape(&device.name));
        histogram(
            &mut out,
            "notary_keyd_sign_duration_seconds",
            &labels,
            &device.metrics.sign_latency.snapshot(),
        );
    }
    header(
        &mut out,
        "notary_keyd_queue_waiting",
        "gauge",
        "Requests waiting for a place on the backend.",
    );
    for device in registry.devices() {
        let _ = writeln!(
            out,
            "notary_keyd_queue_waiting{{backend=\"{}\"}} {}",
            escape(&device.name),
            device.waiting()
        );
    }
    header(
        &mut out,
        "notary_keyd_backend_up",
        "gauge",
        "1 when the backend is available, 0 when unavailable or not opened.",
    );
    for device in registry.devices() {
        let up = matches!(
            device.backend.availability(),
            keyd_backends::Availability::Available
        );
        let _ = writeln!(
            out,
            "notary_keyd_backend_up{{backend=\"{}\"}} {}",
            escape(&device.name),
            u8::from(up)
        );
    }
    for name in failed {
        let _ = writeln!(
            out,
            "notary_keyd_backend_up{{backend=\"{}\"}} 0",
            escape(name)
        );
    }
    header(
        &mut out,
        "notary_keyd_pin_failures_total",
        "counter",
        "PINs a backend refused.",
    );
    for device in registry.devices() {
        let _ = writeln!(
            out,
            "notary_keyd_pin_failures_total{{backend=\"{}\"}} {}",
            escape(&device.name),
            device.metrics.pin_failures.load(Ordering::Relaxed)
        );
    }
    header(
        &mut out,
        "notary_keyd_audit_write_duration_seconds",
        "histogram",
        "Time to write and fsync one batch of audit records.",
    );
    histogram(
        &mut out,
        "notary_keyd_audit_write_duration_seconds",
        "",
        &AUDIT.write_latency.snapshot(),
    );
    header(
        &mut out,
        "notary_keyd_audit_records_total",
        "counter",
        "Audit records written since start.",
    );
    let _ = writeln!(
        out,
        "notary_keyd_audit_records_total {}",
        AUDIT.records.load(Ordering::Relaxed)
    );
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn requests(out: &mut String, backend: &str, counts: &RequestCounts) {
    for c in counts.non_zero() {
        let _ = writeln!(
            out,
            "notary_keyd_requests_total{{operation=\"{}\",result=\"{}\",backend=\"{}\",algorithm=\"{}\"}} {}",
            c.operation,
            c.result,
            escape(backend),
            c.algorithm,
            c.value
        );
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, s: &Snapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in &s.cumulative {
        let le = if bound.is_infinite() {
            "+Inf".to_string()
        } else {
            bound.to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", s.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {}", s.count);
}

/// A label value as the text format quotes it. Backend names come from
/// the operator's config, but are escaped anyway.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
