//! The TPM line of keyd-bench: ECDSA P-256 on a real swtpm, in-process
//! through the TPM backend's own tss-esapi code (one context, one reused
//! salted session, exactly as the daemon runs it) vs through notary-keyd.
//!
//! swtpm serves one connection at a time and the daemon keeps its TPM
//! connection open, so the two sides take turns: for every (clients, round)
//! the daemon is started for its run and stopped, then the direct side
//! opens the same key blob in-process for its run.

use super::direct::DirectRun;
use super::report::Row;
use super::{count_in_window, cpu_us_per_op, keyd, procfs, Alg, Window};
use anyhow::{bail, Context, Result};
use keyd_backends::tpm::{TpmBackend, TpmConfig};
use keyd_backends::{KeyBackend, KeyUri};
use secrecy::SecretString;
use softhsm_tests::{Swtpm, TestDaemon};
use std::sync::Arc;
use std::time::Duration;

/// The floor for keyd/direct at 16 clients on the TPM.
pub(crate) const FLOOR: f64 = 0.9;
const KEY_AUTH: &str = "keyd-bench key auth";

pub(crate) struct Settings {
    pub clients: Vec<usize>,
    pub rounds: u32,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Runs both sides; returns one row per client count and the daemon's peak RSS.
pub(crate) fn run(settings: &Settings, payload: Arc<Vec<u8>>) -> Result<(Vec<Row>, u64)> {
    let tpm = Swtpm::start()?;
    let secrets = tempfile::tempdir()?;
    let auth_file = secrets.path().join("key.auth");
    softhsm_tests::write_secret(&auth_file, KEY_AUTH)?;
    let mut daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth_file).start()?;
    eprintln!("keyd-bench: swtpm on {}", tpm.tcti());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let key = rt.block_on(keyd::generate(&daemon.socket, "tpm", Alg::EcdsaP256))?;
    eprintln!(
        "keyd-bench: tpm ecdsa-p256 key {} ({})",
        key.key_id, key.uri
    );

    let blob_dir = daemon.state_dir.join("tpm-tpm");
    let tcti = tpm.tcti();
    let uri: KeyUri = key.uri.parse()?;
    let open_direct = || {
        TpmBackend::open(
            "bench",
            TpmConfig {
                tcti: tcti.clone(),
                dir: blob_dir.clone(),
                owner_auth: None,
                key_auth: Some(SecretString::from(KEY_AUTH)),
                persist_from: None,
            },
        )
    };
    daemon.stop().context("stopping notary-keyd")?;
    {
        let direct = open_direct()?;
        let sig = direct.sign(&uri, &payload)?;
        let method = notary_tuf::SignatureMethod::for_key_type(key.public.keytype());
        notary_tuf::verify(&key.public, method, &payload, &sig)
            .context("direct TPM signature does not verify with the daemon's key")?;
    }

    let mut rows = Vec::new();
    let mut peak = 0;
    for &clients in &settings.clients {
        let (mut d_ops, mut d_secs, mut d_cpu) = (0u64, 0.0, Duration::ZERO);
        let mut keyd_total = keyd::KeydRun::default();
        for round in 1..=settings.rounds {
            eprintln!(
                "keyd-bench: tpm ecdsa-p256 × {clients} clients, round {round}/{}: keyd…",
                settings.rounds
            );
            daemon.restart()?;
            let pid = daemon.pid().context("daemon has no pid")?;
            let k = rt.block_on(keyd::run(
                &daemon.socket,
                pid,
                &key.key_id,
                Arc::clone(&payload),
                clients,
                settings.warmup,
                settings.measure,
            ))?;
            peak = peak.max(procfs::peak_rss_kb(pid)?);
            daemon.stop().context("stopping notary-keyd")?;
            eprintln!("keyd-bench:   keyd {:.0} op/s; direct…", k.ops_per_sec());
            keyd_total.absorb(k);

            let direct = open_direct()?;
            let d = direct_run(&direct, &uri, &payload, clients, settings)?;
            eprintln!("keyd-bench:   direct {:.0} op/s", d.ops_per_sec());
            d_ops += d.ops;
            d_secs += d.seconds;
            d_cpu += d.cpu;
        }
        let span = (settings.warmup + settings.measure).as_secs_f64() * f64::from(settings.rounds);
        let per_op = |cpu: Duration, rate: f64| cpu_us_per_op(cpu, rate, span);
        let direct_rate = d_ops as f64 / d_secs;
        let keyd_rate = keyd_total.ops_per_sec();
        rows.push(Row {
            backend: "swtpm",
            alg: Alg::EcdsaP256,
            ratio_floor: FLOOR,
            clients,
            direct_ops: direct_rate,
            keyd_ops: keyd_rate,
            p50_us: keyd_total.percentile_us(50.0),
            p99_us: keyd_total.percentile_us(99.0),
            keyd_peak_rss_kb: peak,
            daemon_cpu_us_per_op: per_op(keyd_total.daemon_cpu, keyd_rate),
            client_cpu_us_per_op: per_op(keyd_total.bench_cpu, keyd_rate),
            direct_cpu_us_per_op: per_op(d_cpu, direct_rate),
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
    let workers = (0..threads)
        .map(|_| {
            move || -> Result<()> {
                backend.sign(uri, payload)?;
                Ok(())
            }
        })
        .collect();
    let ops = count_in_window(window, workers)?;
    if ops == 0 {
        bail!("no direct TPM signature completed in the window");
    }
    Ok(DirectRun {
        ops,
        seconds: window.seconds(),
        cpu: procfs::cpu_time("self")?.saturating_sub(cpu0),
    })
}
