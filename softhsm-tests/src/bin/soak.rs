//! soak: notary-keyd under steady load for a long time, with real
//! components, to show that nothing fails, leaks or slows down.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/soak --minutes 60
//! ```
//!
//! One daemon serves the software keystore and a SoftHSM2 token at once:
//! `--clients` connections on the Unix socket sign Targets metadata (half
//! with a soft key, half with a SoftHSM key), `--streams` streams sign
//! Snapshot metadata through the signer API (mutual TLS, SoftHSM), a key
//! is generated every `--keygen-secs` (soft and SoftHSM in turn) and the
//! config is reloaded (SIGHUP) at the end of every period. Every signature
//! is verified here. At the end: no call failed, the daemon's audit log
//! verifies (`notary-keyd audit verify`) and holds one decision per call,
//! and its RSS and open fds stay flat (their slope per period is printed). Exits non-zero when a check fails. See
//! docs/reliability.md.

#[path = "../bench/mod.rs"]
#[allow(dead_code)] // keyd-bench's modules; the soak uses their clients and measure loop
mod bench;

use anyhow::{bail, Context, Result};
use bench::keyd::{measure_calls, BenchKey, KeydRun};
use bench::{procfs, Alg, Window};
use clap::Parser;
use keyd_proto::keyd::keyd_client::KeydClient;
use keyd_proto::signer as spb;
use keyd_proto::signer::signer_client::SignerClient;
use softhsm_tests::notary_stack::{free_port, signer_api_toml, Pki};
use softhsm_tests::{connect, Daemon, SoftHsm, TestDaemon};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

#[derive(Parser, Debug)]
#[command(
    name = "soak",
    about = "Long-running load on notary-keyd (Unix socket and signer API, soft keystore and SoftHSM2) with reloads and key generation; checks failures, audit, RSS and fds"
)]
struct Args {
    /// Number of periods to run (each ends with a reload and a sample).
    #[arg(long, default_value_t = 10)]
    minutes: u32,
    /// Length of a period in seconds (60: a reload every minute).
    #[arg(long, default_value_t = 60)]
    period_secs: u64,
    /// Concurrent clients on the Unix socket, each on its own connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Concurrent Sign streams on one signer-API connection.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Seconds between two GenerateKey calls.
    #[arg(long, default_value_t = 5)]
    keygen_secs: u64,
}

/// What one period measured.
struct Period {
    socket: KeydRun,
    signer: KeydRun,
    rss_kb: u64,
    fds: usize,
}

/// Calls that completed (each one audited by the daemon).
#[derive(Default)]
struct Counts {
    socket_signs: AtomicU64,
    signer_signs: AtomicU64,
    generated: AtomicU64,
}

/// A Unix-socket client and the key it signs with.
struct SocketWorker {
    client: KeydClient<Channel>,
    key: Arc<BenchKey>,
    payload: Arc<Vec<u8>>,
    counts: Arc<Counts>,
}

/// A signer-API stream and the key it signs with.
struct SignerWorker {
    client: SignerClient<Channel>,
    key_id: Arc<str>,
    public: Arc<notary_tuf::PublicKey>,
    payload: Arc<Vec<u8>>,
    counts: Arc<Counts>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.minutes == 0 || args.period_secs == 0 || args.clients == 0 || args.streams == 0 {
        bail!("--minutes, --period-secs, --clients and --streams must be at least 1");
    }
    let pki = Pki::new("soak")?;
    let tls_client = pki.issue("notary-server", "clientAuth")?;
    let hsm = SoftHsm::new("soak", "soak-pin-1234")?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let mut daemon = TestDaemon::new()
        .soft("soft")
        .softhsm(&hsm, "hsm")?
        .toml(&signer_api_toml(&pki, addr, "hsm", "")?)
        .start()?;
    let pid = daemon.pid().context("notary-keyd has no pid")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let counts = Arc::new(Counts::default());
    let outcome = rt.block_on(soak(&args, &daemon, pid, &pki, &tls_client, addr, &counts));
    let periods = match outcome {
        Ok(p) => p,
        Err(e) => {
            eprintln!("soak: daemon log:\n{}", daemon.log_text());
            return Err(e);
        }
    };
    let failures = check(&args, &mut daemon, pid, &counts, &periods)?;
    daemon.stop()?;
    if !failures.is_empty() {
        bail!("soak failed:\n  {}", failures.join("\n  "));
    }
    println!("soak: all checks passed");
    Ok(())
}

async fn soak(
    args: &Args,
    daemon: &Daemon,
    pid: u32,
    pki: &Pki,
    tls_client: &softhsm_tests::notary_stack::CertPair,
    addr: SocketAddr,
    counts: &Arc<Counts>,
) -> Result<Vec<Period>> {
    let socket = daemon.socket.clone();
    let soft = Arc::new(bench::keyd::generate(&socket, "soft", Alg::EcdsaP256).await?);
    let hsm = Arc::new(bench::keyd::generate(&socket, "hsm", Alg::EcdsaP256).await?);
    counts.generated.fetch_add(2, Ordering::SeqCst);
    let channel = bench::signer::channel(pki, tls_client, addr).await?;
    let (signer_key, signer_public) = bench::signer::create_key_public(&channel, "ecdsa").await?;
    let (signer_key, signer_public): (Arc<str>, _) = (signer_key.into(), Arc::new(signer_public));
    let targets = Arc::new(bench::targets_payload()?);
    let snapshot = Arc::new(bench::signer::snapshot_payload()?);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let keygen = tokio::spawn(generate_keys(
        socket.clone(),
        Duration::from_secs(args.keygen_secs),
        stopped,
        Arc::clone(counts),
    ));
    let period = Duration::from_secs(args.period_secs);
    let mut periods = Vec::new();
    println!("period  socket op/s  socket p99 ms  signer op/s  signer p99 ms  RSS KiB  fds");
    for n in 1..=args.minutes {
        let mut workers = Vec::with_capacity(args.clients);
        for i in 0..args.clients {
            workers.push(SocketWorker {
                client: connect(&socket).await?,
                key: Arc::clone(if i % 2 == 0 { &soft } else { &hsm }),
                payload: Arc::clone(&targets),
                counts: Arc::clone(counts),
            });
        }
        let streams = (0..args.streams)
            .map(|_| SignerWorker {
                client: SignerClient::new(channel.clone()),
                key_id: Arc::clone(&signer_key),
                public: Arc::clone(&signer_public),
                payload: Arc::clone(&snapshot),
                counts: Arc::clone(counts),
            })
            .collect();
        let window = Window::after(Duration::ZERO, period);
        let (socket_run, signer_run) = tokio::join!(
            measure_calls(workers, pid, window, socket_sign),
            measure_calls(streams, pid, window, signer_sign)
        );
        let socket_run = socket_run.with_context(|| format!("Unix-socket signing, period {n}"))?;
        let signer_run = signer_run.with_context(|| format!("signer-API signing, period {n}"))?;
        if keygen.is_finished() {
            break;
        }
        let sample = Period {
            socket: socket_run,
            signer: signer_run,
            rss_kb: procfs::status_kb(pid, "VmRSS")?,
            fds: open_fds(pid)?,
        };
        println!(
            "{n:>6}  {:>11.0}  {:>13.1}  {:>11.0}  {:>13.1}  {:>7}  {:>3}",
            sample.socket.ops_per_sec(),
            sample.socket.percentile_us(99.0) as f64 / 1000.0,
            sample.signer.ops_per_sec(),
            sample.signer.percentile_us(99.0) as f64 / 1000.0,
            sample.rss_kb,
            sample.fds
        );
        periods.push(sample);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGHUP,
        )?;
    }
    let _ = stop.send(true);
    keygen.await?.context("key generation")?;
    Ok(periods)
}

async fn socket_sign(mut w: SocketWorker) -> Result<SocketWorker> {
    let result = bench::keyd::sign(&mut w.client, &w.key.key_id, &w.payload).await?;
    w.counts.socket_signs.fetch_add(1, Ordering::SeqCst);
    let method = result
        .method()
        .notary()
        .context("a signature without a method")?;
    notary_tuf::verify(&w.key.public, method, &w.payload, &result.signature)
        .with_context(|| format!("a signature by {} does not verify", w.key.key_id))?;
    Ok(w)
}

async fn signer_sign(mut w: SignerWorker) -> Result<SignerWorker> {
    let request = spb::SignatureRequest {
        key_id: Some(spb::KeyId {
            id: w.key_id.to_string(),
        }),
        content: w.payload.to_vec(),
    };
    let signature = w.client.sign(request).await?.into_inner();
    w.counts.signer_signs.fetch_add(1, Ordering::SeqCst);
    notary_tuf::verify(
        &w.public,
        notary_tuf::SignatureMethod::Ecdsa,
        &w.payload,
        &signature.content,
    )
    .with_context(|| format!("a signer-API signature by {} does not verify", w.key_id))?;
    Ok(w)
}

/// A GenerateKey every `every`, soft and SoftHSM in turn, until told to
/// stop (which ends the wait at once, however long `every` is).
async fn generate_keys(
    socket: std::path::PathBuf,
    every: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    counts: Arc<Counts>,
) -> Result<()> {
    let mut backends = ["soft", "hsm"].into_iter().cycle();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|&stop| stop) => return Ok(()),
        }
        let backend = backends.next().unwrap_or("soft");
        bench::keyd::generate(&socket, backend, Alg::EcdsaP256)
            .await
            .with_context(|| format!("GenerateKey on {backend}"))?;
        counts.generated.fetch_add(1, Ordering::SeqCst);
    }
}

/// File descriptors a process has open now.
fn open_fds(pid: u32) -> Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("reading {path}"))?
        .count())
}

/// Least-squares slope of `ys` per step.
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in ys.iter().enumerate() {
        let dx = x as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den
}

/// Decisions per (operation, allowed), read a line at a time: an hour's
/// log holds millions of records, too many to hold in memory as JSON.
/// Request records (a Sign's first record) are left out; its outcome counts.
fn decisions(daemon: &Daemon) -> Result<HashMap<(String, bool), u64>> {
    let mut counts = HashMap::new();
    for segment in daemon.audit_segments() {
        let file = std::fs::File::open(&segment)
            .with_context(|| format!("cannot read {}", segment.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line?;
            // A segment's unused, preallocated space follows its last record.
            if line.trim().is_empty() {
                break;
            }
            let record: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("a record in {} does not parse", segment.display()))?;
            if record["kind"] == "request" {
                continue;
            }
            if let (Some(operation), Some(allowed)) =
                (record["operation"].as_str(), record["allowed"].as_bool())
            {
                *counts.entry((operation.to_string(), allowed)).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

/// The end-of-run checks; returns what failed.
fn check(
    args: &Args,
    daemon: &mut Daemon,
    pid: u32,
    counts: &Counts,
    periods: &[Period],
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    if !daemon.is_running() || daemon.pid() != Some(pid) {
        failures.push("the daemon stopped or was restarted".to_string());
    }
    if periods.len() < args.minutes as usize {
        failures.push(format!(
            "only {} of {} periods ran",
            periods.len(),
            args.minutes
        ));
    }
    // Stopped first, so every outcome and the last checkpoint are written.
    daemon.stop()?;
    if let Err(e) = daemon.audit_verify() {
        failures.push(format!("the audit log does not verify: {e}"));
    }
    let decisions = decisions(daemon)?;
    let count = |operation: &str| {
        decisions
            .get(&(operation.to_string(), true))
            .copied()
            .unwrap_or(0)
    };
    let expected = [
        ("sign", counts.socket_signs.load(Ordering::SeqCst)),
        ("signer-sign", counts.signer_signs.load(Ordering::SeqCst)),
        ("generate", counts.generated.load(Ordering::SeqCst)),
    ];
    for (operation, calls) in expected {
        let audited = count(operation);
        println!("soak: {calls} {operation} calls, {audited} audit records");
        if audited != calls {
            failures.push(format!(
                "{calls} {operation} calls but {audited} audit records"
            ));
        }
    }
    let refused: u64 = decisions
        .iter()
        .filter(|((_, allowed), _)| !allowed)
        .map(|(_, n)| n)
        .sum();
    if refused > 0 {
        failures.push(format!("{refused} audit records of refused calls"));
    }
    let reloads = daemon.log_text().matches("reloaded").count();
    println!(
        "soak: {reloads} reloads logged for {} SIGHUPs",
        periods.len()
    );
    if reloads < periods.len() {
        failures.push(format!(
            "{} SIGHUPs but {reloads} reloads logged",
            periods.len()
        ));
    }
    // The first period warms caches up; the slope is taken after it.
    let steady = periods.get(1..).unwrap_or_default();
    let rss: Vec<f64> = steady.iter().map(|p| p.rss_kb as f64).collect();
    let fds: Vec<f64> = steady.iter().map(|p| p.fds as f64).collect();
    let (rss_slope, fd_slope) = (slope(&rss), slope(&fds));
    println!(
        "soak: after period 1, RSS slope {rss_slope:.1} KiB/period, fd slope {fd_slope:.2} fds/period ({} samples)",
        steady.len()
    );
    let first_fds = steady.first().map_or(0, |p| p.fds);
    let last_fds = steady.last().map_or(0, |p| p.fds);
    if last_fds > first_fds + args.clients {
        failures.push(format!(
            "open fds grew from {first_fds} to {last_fds} after the first period"
        ));
    }
    Ok(failures)
}
