//! keyd-bench: signing throughput on SoftHSM2, directly in-process through
//! cryptoki and through notary-keyd over its socket, in one invocation.
//!
//! ```text
//! cargo run --release -p softhsm-tests --bin keyd-bench -- --json
//! ```
//!
//! One fresh SoftHSM2 token serves both sides: the daemon gets it through
//! its `[[backend]]` config and `SOFTHSM2_CONF`; this process sets the same
//! `SOFTHSM2_CONF` before loading the module. Keys are generated through the
//! daemon (`GenerateKey`, role "targets") and found here by their CKA_ID, so
//! both sides sign with the same key, mechanism and payload (a canonical
//! Targets object). For every (algorithm, clients) pair the direct and the
//! keyd runs alternate, so their ratio compares like with like. See
//! docs/benchmarks.md.

#[path = "../bench/mod.rs"]
mod bench;

use anyhow::{bail, Context, Result};
use bench::direct::DirectToken;
use bench::report::{self, Row};
use bench::Alg;
use clap::Parser;
use softhsm_tests::{Daemon, SoftHsm, TestDaemon};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "keyd-bench",
    about = "Signing throughput on SoftHSM2: direct (in-process cryptoki) vs through notary-keyd"
)]
struct Args {
    /// Print one JSON object per (algorithm, clients) line instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds measured per run (each side of each pair, per round).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seconds of warm-up before each measured run (signing, not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Direct/keyd alternations per pair; rates are totals over all rounds.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Concurrent clients (comma-separated); with --signer-api, concurrent
    /// streams. Default: 1,16 (1,16,64 with --signer-api).
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// Algorithms (comma-separated): ecdsa-p256, ed25519, rsa-3072.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ecdsa-p256,ed25519,rsa-3072"
    )]
    algs: Vec<String>,
    /// Put `sessions = N` in the daemon's [[backend]] (default: left unset,
    /// so the daemon uses its own default).
    #[arg(long)]
    sessions: Option<usize>,
    /// Exit non-zero, naming the floor, when a floor is missed: a ratio at
    /// 16 clients and the 64 MiB peak-RSS ceiling; with --signer-api the
    /// latency and rate floors at 1, 16 and 64 streams; with --audit-verify
    /// 200,000 records/s.
    #[arg(long)]
    check_floors: bool,
    /// Do not run `cargo build -p notary-keyd` first.
    #[arg(long)]
    no_build: bool,
    /// Instead: the Sign RPC of notary-keyd's signer API (software keystore
    /// and SoftHSM2) against the stock notary-signer, ecdsa and ed25519,
    /// over the same mutual TLS (--clients are concurrent streams).
    #[arg(long)]
    signer_api: bool,
    /// With --signer-api: which notary-keyd backends to measure (soft, hsm).
    #[arg(long, value_delimiter = ',', default_value = "soft,hsm")]
    signer_backends: Vec<String>,
    /// With --signer-api: which key algorithms (ecdsa, ed25519).
    #[arg(long, value_delimiter = ',', default_value = "ecdsa,ed25519")]
    signer_algs: Vec<String>,
    /// Measure the TPM instead (ECDSA P-256 on a fresh swtpm): in-process
    /// through the TPM backend vs through notary-keyd. `--algs` and
    /// `--sessions` do not apply.
    #[arg(long)]
    tpm: bool,
    /// Instead: `notary-keyd audit verify` on a log of this many records,
    /// written by a real daemon signing with the software keystore
    /// (records/s and CPU per record).
    #[arg(long, value_name = "RECORDS")]
    audit_verify: Option<u64>,
}

const LABEL: &str = "keyd-bench";
const PIN: &str = "bench-pin-1234";

fn main() -> Result<()> {
    let args = Args::parse();
    let algs = args
        .algs
        .iter()
        .map(|a| Alg::parse(a))
        .collect::<Result<Vec<_>>>()?;
    if args.seconds <= 0.0 || args.warmup < 0.0 || args.rounds == 0 {
        bail!("--seconds must be > 0, --warmup >= 0 and --rounds >= 1");
    }
    let default_clients: &[usize] = if args.signer_api {
        &[1, 16, 64]
    } else {
        &[1, 16]
    };
    let clients = args
        .clients
        .clone()
        .unwrap_or_else(|| default_clients.to_vec());
    if clients.contains(&0) {
        bail!("--clients must be >= 1");
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.seconds);

    if !args.no_build {
        build_daemon()?;
    }
    if let Some(records) = args.audit_verify {
        let missed = bench::audit_verify::run(records, args.json)?;
        return report_missed(&missed, args.check_floors);
    }
    if args.signer_api {
        let only = bench::signer::Selection::parse(&args.signer_backends, &args.signer_algs)?;
        let shape = bench::signer::Shape {
            streams: &clients,
            warmup,
            measure,
            rounds: args.rounds,
        };
        let missed = bench::signer::compare(&only, &shape, args.json)?;
        return report_missed(&missed, args.check_floors);
    }
    if args.tpm {
        return tpm_main(&args, &clients, warmup, measure);
    }

    // One token for the whole run, shared by the daemon and this process.
    let hsm = SoftHsm::new(LABEL, PIN)?;
    let conf = hsm.conf().display().to_string();
    // Before any other thread exists (the runtime is built below), so no
    // thread can be reading the environment; SoftHSM reads it in C_Initialize.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let sessions = args.sessions.map(|n| format!("sessions = {n}\n"));
    let mut daemon = TestDaemon::new()
        .softhsm_with(&hsm, "hsm", sessions.as_deref().unwrap_or(""))?
        .start()?;
    let pid = daemon.pid().context("daemon has no pid")?;
    eprintln!(
        "keyd-bench: token {LABEL:?} ({conf}), notary-keyd pid {pid} on {}, sessions = {}",
        daemon.socket.display(),
        args.sessions
            .map_or("daemon default".to_string(), |n| n.to_string())
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let direct = DirectToken::open(LABEL, PIN)?;
    let payload = Arc::new(bench::targets_payload()?);
    eprintln!(
        "keyd-bench: payload is {} bytes of canonical Targets metadata",
        payload.len()
    );

    if !args.json {
        println!("{}", report::TABLE_HEADER);
    }
    let mut rows = Vec::new();
    for &alg in &algs {
        let key = rt.block_on(bench::keyd::generate(&daemon.socket, "hsm", alg))?;
        let cka_id = bench::cka_id_from_uri(&key.uri)?;
        let handle = direct.find_key(&cka_id)?;
        check_same_key(&rt, &daemon, &direct, handle, alg, &key, &payload)?;
        eprintln!(
            "keyd-bench: {} key {} ({})",
            alg.name(),
            key.key_id,
            key.uri
        );

        for &clients in &clients {
            let mut d_ops = 0u64;
            let mut d_secs = 0.0;
            let mut d_cpu = Duration::ZERO;
            let mut keyd_total = bench::keyd::KeydRun::default();
            for round in 1..=args.rounds {
                eprintln!(
                    "keyd-bench: {} × {clients} clients, round {round}/{}: direct…",
                    alg.name(),
                    args.rounds
                );
                let d = direct.run(handle, alg, &payload, clients, warmup, measure)?;
                eprintln!("keyd-bench:   direct {:.0} op/s; keyd…", d.ops_per_sec());
                d_ops += d.ops;
                d_secs += d.seconds;
                d_cpu += d.cpu;
                let k = rt.block_on(bench::keyd::run(
                    &daemon.socket,
                    pid,
                    &key.key_id,
                    Arc::clone(&payload),
                    clients,
                    warmup,
                    measure,
                ))?;
                eprintln!("keyd-bench:   keyd {:.0} op/s", k.ops_per_sec());
                keyd_total.absorb(k);
            }
            // CPU is measured over warm-up plus window; scale to per-op with
            // the ops that run in the whole span (rate × span).
            let span = (warmup + measure).as_secs_f64() * f64::from(args.rounds);
            let per_op = |cpu: Duration, rate: f64| bench::cpu_us_per_op(cpu, rate, span);
            let direct_rate = d_ops as f64 / d_secs;
            let keyd_rate = keyd_total.ops_per_sec();
            let row = Row {
                backend: "softhsm",
                alg,
                ratio_floor: alg.floor(),
                clients,
                direct_ops: direct_rate,
                keyd_ops: keyd_rate,
                p50_us: keyd_total.percentile_us(50.0),
                p99_us: keyd_total.percentile_us(99.0),
                keyd_peak_rss_kb: bench::procfs::peak_rss_kb(pid)?,
                daemon_cpu_us_per_op: per_op(keyd_total.daemon_cpu, keyd_rate),
                client_cpu_us_per_op: per_op(keyd_total.bench_cpu, keyd_rate),
                direct_cpu_us_per_op: per_op(d_cpu, direct_rate),
            };
            if args.json {
                println!("{}", row.json());
            } else {
                println!("{}", report::table_line(&row));
            }
            rows.push(row);
        }
    }

    let peak = bench::procfs::peak_rss_kb(pid)?;
    let stopped = daemon.stop();
    drop(direct);
    let missed = report::missed_floors(&rows, peak);
    if !args.json {
        println!();
        println!(
            "notary-keyd peak RSS (VmHWM): {peak} KiB ({:.1} MiB; ceiling 64 MiB)",
            peak as f64 / 1024.0
        );
        println!(
            "ratio = keyd op/s / direct op/s; floors apply at {} clients.",
            bench::FLOOR_CLIENTS
        );
    }
    stopped.context("stopping notary-keyd")?;
    report_missed(&missed, args.check_floors)
}

/// Names each missed floor on stderr; with --check-floors a miss exits 1.
fn report_missed(missed: &[String], check_floors: bool) -> Result<()> {
    if missed.is_empty() {
        eprintln!("keyd-bench: all floors met");
        return Ok(());
    }
    for m in missed {
        eprintln!("keyd-bench: floor missed: {m}");
    }
    if check_floors {
        std::process::exit(1);
    }
    Ok(())
}

/// The TPM line: `bench::tpm` measures, this reports like the SoftHSM lines.
fn tpm_main(args: &Args, clients: &[usize], warmup: Duration, measure: Duration) -> Result<()> {
    let settings = bench::tpm::Settings {
        clients: clients.to_vec(),
        rounds: args.rounds,
        warmup,
        measure,
    };
    let payload = Arc::new(bench::targets_payload()?);
    let (rows, peak) = bench::tpm::run(&settings, payload)?;
    if !args.json {
        println!("{}", report::TABLE_HEADER);
    }
    for row in &rows {
        if args.json {
            println!("{}", row.json());
        } else {
            println!("{}", report::table_line(row));
        }
    }
    report_missed(&report::missed_floors(&rows, peak), args.check_floors)
}

/// Builds notary-keyd in this executable's profile, so `bin_path` finds a
/// current daemon next to it. Cargo's output goes to stderr.
fn build_daemon() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--manifest-path", manifest, "-p", "notary-keyd"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    eprintln!(
        "keyd-bench: building notary-keyd ({cargo} build -p notary-keyd{})",
        if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        }
    );
    let status = cmd
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("building notary-keyd failed ({status})");
    }
    Ok(())
}

/// Both sides must sign with the same key: a direct signature and a keyd
/// signature over the payload both verify against the key the daemon
/// reported (independently, with notary-tuf's verifier).
fn check_same_key(
    rt: &tokio::runtime::Runtime,
    daemon: &Daemon,
    direct: &DirectToken,
    handle: cryptoki::object::ObjectHandle,
    alg: Alg,
    key: &bench::keyd::BenchKey,
    payload: &[u8],
) -> Result<()> {
    let method = notary_tuf::SignatureMethod::for_key_type(key.public.keytype());
    let direct_sig = direct.sign_once(handle, alg, payload)?;
    notary_tuf::verify(&key.public, method, payload, &direct_sig).with_context(|| {
        format!(
            "{}: direct signature does not verify with the daemon's key",
            alg.name()
        )
    })?;
    let result = rt.block_on(async {
        let mut client = softhsm_tests::connect(&daemon.socket).await?;
        bench::keyd::sign(&mut client, &key.key_id, payload).await
    })?;
    if result.method().notary() != Some(method) {
        bail!(
            "{}: daemon used method {:?}, expected {}",
            alg.name(),
            result.method(),
            method.as_str()
        );
    }
    notary_tuf::verify(&key.public, method, payload, &result.signature)
        .with_context(|| format!("{}: keyd signature does not verify", alg.name()))?;
    Ok(())
}
