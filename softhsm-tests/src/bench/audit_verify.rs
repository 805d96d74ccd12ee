//! `keyd-bench --audit-verify N`: how fast `notary-keyd audit verify`
//! checks a log. A real daemon (software keystore, 64 MiB segments, the
//! default checkpoint every 10,000 records) writes the log from 64
//! concurrent signers until its chain holds N records; then the verifier
//! runs three times on it and the median is reported (records/s, and CPU
//! µs per record from the child's rusage).

use super::{keyd, Alg};
use anyhow::{bail, Context, Result};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::audit_client::AuditClient;
use serde_json::json;
use softhsm_tests::{bin_path, connect, Audit, Daemon, TestDaemon};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The floor.
const FLOOR_RECORDS_PER_SEC: f64 = 200_000.0;
const SIGNERS: usize = 64;

/// Writes the log, verifies it, prints the line; returns the floors missed.
pub(crate) fn run(records: u64, as_json: bool) -> Result<Vec<String>> {
    let log_dir = tempfile::tempdir_in(std::env::temp_dir())?;
    let mut daemon = TestDaemon::new()
        .audit(Audit::in_dir(log_dir.path()).max_size("64M"))
        .soft("soft")
        .env("RUST_LOG", "warn")
        .start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(fill(&daemon, records))?;
    daemon.stop()?;
    eprintln!(
        "audit-verify bench: wrote {records} records in {:.1} s; verifying…",
        started.elapsed().as_secs_f64()
    );
    let key = daemon.state_dir.join("audit-key.pem");
    let mut runs = Vec::new();
    for round in 1..=3 {
        let run = verify_once(log_dir.path(), &key)?;
        eprintln!(
            "audit-verify bench: run {round}: {} records in {:.2} s",
            run.records, run.seconds
        );
        runs.push(run);
    }
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median = &runs[1];
    let rate = median.records as f64 / median.seconds;
    let cpu_us = median.cpu.as_secs_f64() * 1e6 / median.records as f64;
    let segments = std::fs::read_dir(log_dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("audit-"))
        .count();
    if as_json {
        println!(
            "{}",
            json!({
                "bench": "audit-verify", "records": median.records, "segments": segments,
                "seconds": (median.seconds * 1000.0).round() / 1000.0,
                "records_per_sec": rate.round(), "cpu_us_per_record": (cpu_us * 100.0).round() / 100.0,
                "floor_records_per_sec": FLOOR_RECORDS_PER_SEC,
            })
        );
    } else {
        println!(
            "audit verify: {} records in {segments} segments, {:.2} s: {rate:.0} records/s, {cpu_us:.2} µs CPU per record (floor {FLOOR_RECORDS_PER_SEC:.0}/s)",
            median.records, median.seconds
        );
    }
    Ok(if rate < FLOOR_RECORDS_PER_SEC {
        vec![format!(
            "audit verify: {rate:.0} records/s < {FLOOR_RECORDS_PER_SEC:.0}"
        )]
    } else {
        Vec::new()
    })
}

/// Signs from `SIGNERS` connections until the chain's head reaches `records`.
async fn fill(daemon: &Daemon, records: u64) -> Result<()> {
    let key = keyd::generate(&daemon.socket, "soft", Alg::EcdsaP256).await?;
    let payload = Arc::new(super::targets_payload()?);
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..SIGNERS {
        let mut client = connect(&daemon.socket).await?;
        let (key_id, payload, done) = (key.key_id.clone(), Arc::clone(&payload), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                keyd::sign(&mut client, &key_id, &payload).await?;
            }
            anyhow::Ok(())
        }));
    }
    let channel = softhsm_tests::client::channel(&daemon.socket).await?;
    let mut audit = AuditClient::new(channel);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let head = audit
            .get_audit_status(pb::GetAuditStatusRequest {})
            .await?
            .into_inner()
            .head_seq;
        if head >= records {
            break;
        }
    }
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.context("signer task")??;
    }
    Ok(())
}

struct VerifyRun {
    records: u64,
    seconds: f64,
    cpu: Duration,
}

fn children_cpu() -> Result<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec() as u64, 0) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(tv(usage.user_time()) + tv(usage.system_time()))
}

fn verify_once(dir: &std::path::Path, key: &std::path::Path) -> Result<VerifyRun> {
    let cpu0 = children_cpu()?;
    let t = Instant::now();
    let out = Command::new(bin_path("notary-keyd")?)
        .args(["audit", "verify", "--key"])
        .arg(key)
        .arg(dir)
        .output()
        .context("running notary-keyd audit verify")?;
    let seconds = t.elapsed().as_secs_f64();
    let cpu = children_cpu()?.saturating_sub(cpu0);
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("audit verify failed ({}):\n{text}", out.status);
    }
    let records = text
        .lines()
        .find_map(|l| l.strip_prefix("records: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no record count in:\n{text}"))?;
    Ok(VerifyRun {
        records,
        seconds,
        cpu,
    })
}
