//! The TPM line of keyd-bench: ECDSA P-256 on a real swtpm, in-process
//! through the TPM backend's own tss-esapi code (one context, one reused
//! salted session, exactly as the daemon runs it) vs through notary-keyd.
//!
//! swtpm serves one connection at a time and the daemon keeps its TPM
//! connection open, so the two sides cannot alternate: all keyd runs come
//! first, then the daemon stops and the direct runs use the same key blob.

use super::direct::DirectRun;
use super::report::Row;
use super::{keyd, procfs, Alg, Window};
use anyhow::{bail, Context, Result};
use keyd_backends::tpm::{TpmBackend, TpmConfig};
use keyd_backends::{KeyBackend, KeyUri};
use secrecy::SecretString;
use softhsm_tests::{Daemon, Swtpm};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The floor for keyd/direct at 16 clients on the TPM.
pub const FLOOR: f64 = 0.9;
const KEY_AUTH: &str = "keyd-bench key auth";

pub struct Settings {
    pub clients: Vec<usize>,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Runs both sides; returns one row per client count and the daemon's peak RSS.
pub fn run(settings: &Settings, payload: Arc<Vec<u8>>) -> Result<(Vec<Row>, u64)> {
    let tpm = Swtpm::start()?;
    let secrets = tempfile::tempdir()?;
    let auth_file = secrets.path().join("key.auth");
    std::fs::write(&auth_file, KEY_AUTH)?;
    let config = format!(
        "[[backend]]\nname = \"tpm\"\ntype = \"tpm\"\ntcti = \"{}\"\nkey_auth = {{ file = \"{}\" }}\n",
        tpm.tcti(),
        auth_file.display()
    );
    let mut daemon = Daemon::start(&config, &[])?;
    let pid = daemon.pid().context("daemon has no pid")?;
    eprintln!("keyd-bench: swtpm on {}, notary-keyd pid {pid}", tpm.tcti());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let key = rt.block_on(keyd::generate(&daemon.socket, "tpm", Alg::EcdsaP256))?;
    eprintln!(
        "keyd-bench: tpm ecdsa-p256 key {} ({})",
        key.key_id, key.uri
    );

    let mut keyd_runs = Vec::new();
    for &clients in &settings.clients {
        eprintln!("keyd-bench: tpm ecdsa-p256 × {clients} clients: keyd…");
        let run = rt.block_on(keyd::run(
            &daemon.socket,
            pid,
            &key.key_id,
            Arc::clone(&payload),
            clients,
            settings.warmup,
            settings.measure,
        ))?;
        eprintln!("keyd-bench:   keyd {:.0} op/s", run.ops_per_sec());
        let rss = procfs::peak_rss_kb(pid)?;
        keyd_runs.push((run, rss));
    }
    let peak = procfs::peak_rss_kb(pid)?;
    let blob_dir = daemon.state_dir.join("tpm-tpm");
    daemon.stop().context("stopping notary-keyd")?;

    let backend = TpmBackend::open(
        "bench",
        TpmConfig {
            tcti: tpm.tcti(),
            dir: blob_dir,
            owner_auth: None,
            key_auth: Some(SecretString::from(KEY_AUTH)),
            persist_from: None,
        },
    )?;
    let uri: KeyUri = key.uri.parse()?;
    let sig = backend.sign(&uri, &payload)?;
    let method = notary_tuf::SignatureMethod::for_key_type(key.public.keytype());
    notary_tuf::verify(&key.public, method, &payload, &sig)
        .context("direct TPM signature does not verify with the daemon's key")?;

    let mut rows = Vec::new();
    for (&clients, (keyd_run, rss)) in settings.clients.iter().zip(keyd_runs) {
        eprintln!("keyd-bench: tpm ecdsa-p256 × {clients} clients: direct…");
        let direct = direct_run(&backend, &uri, &payload, clients, settings)?;
        eprintln!("keyd-bench:   direct {:.0} op/s", direct.ops_per_sec());
        let span = (settings.warmup + settings.measure).as_secs_f64();
        let per_op = |cpu: Duration, rate: f64| {
            if rate > 0.0 {
                cpu.as_secs_f64() * 1e6 / (rate * span)
            } else {
                0.0
            }
        };
        let keyd_rate = keyd_run.ops_per_sec();
        rows.push(Row {
            backend: "swtpm",
            alg: Alg::EcdsaP256,
            ratio_floor: FLOOR,
            clients,
            direct_ops: direct.ops_per_sec(),
            keyd_ops: keyd_rate,
            p50_us: keyd_run.percentile_us(50.0),
            p99_us: keyd_run.percentile_us(99.0),
            keyd_peak_rss_kb: rss,
            daemon_cpu_us_per_op: per_op(keyd_run.daemon_cpu, keyd_rate),
            client_cpu_us_per_op: per_op(keyd_run.bench_cpu, keyd_rate),
            direct_cpu_us_per_op: per_op(direct.cpu, direct.ops_per_sec()),
        });
    }
    Ok((rows, peak))
}

/// `threads` OS threads sign in a loop through the in-process backend
/// (which, like the daemon's, serialises them on its one TPM context).
fn direct_run(
    backend: &TpmBackend,
    uri: &KeyUri,
    payload: &[u8],
    threads: usize,
    settings: &Settings,
) -> Result<DirectRun> {
    let cpu0 = procfs::cpu_time("self")?;
    let window = Window::after(settings.warmup, settings.measure);
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || -> Result<u64> {
                    let mut ops = 0u64;
                    while window.open() {
                        backend.sign(uri, payload)?;
                        if window.counts(Instant::now()) {
                            ops += 1;
                        }
                    }
                    Ok(ops)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("direct worker panicked")))
            })
            .collect::<Result<Vec<u64>>>()
    })?;
    if counts.iter().sum::<u64>() == 0 {
        bail!("no direct TPM signature completed in the window");
    }
    Ok(DirectRun {
        ops: counts.iter().sum(),
        seconds: window.seconds(),
        cpu: procfs::cpu_time("self")?.saturating_sub(cpu0),
    })
}
