//! repo-bench: notaryctl (keys in notary-keyd on SoftHSM2) against the stock
//! notary CLI on one Debian notary-server: stage + publish N targets (stock:
//! one `notary add` per target; notaryctl: one `add` process per target, and
//! one `add --from-file` batch), then `list` and `verify` one target; then a
//! large batch publish and list. Prints wall times and ratios.
//!
//! Run after `cargo build --workspace --bins`:
//!   target/debug/repo-bench [--targets 1000] [--large 10000]

use anyhow::{ensure, Context, Result};
use clap::Parser;
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{SoftHsm, TestDaemon};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Targets per run for the stock-vs-notaryctl comparison.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Targets for the large batch publish and list (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    large: usize,
}

fn ok(out: Result<CliOutput>) -> Result<CliOutput> {
    out?.ok()
}

/// `n` distinct small files and a manifest naming them.
fn make_targets(dir: &Path, n: usize) -> Result<(Vec<(String, PathBuf)>, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::with_capacity(n);
    let mut manifest = String::new();
    for i in 0..n {
        let name = format!("target-{i:05}");
        let path = dir.join(format!("{name}.bin"));
        std::fs::write(&path, format!("payload {i}\n"))?;
        manifest.push_str(&format!("{name} {}\n", path.display()));
        files.push((name, path));
    }
    let manifest_path = dir.join("manifest.txt");
    std::fs::write(&manifest_path, manifest)?;
    Ok((files, manifest_path))
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed()))
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(stock: Duration, ours: Duration) -> String {
    format!("{:.1}x", stock.as_secs_f64() / ours.as_secs_f64().max(1e-9))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let pki = Pki::new("bench")?;
    let server = NotaryServer::start(&pki, &TrustService::Local)?;
    let hsm = SoftHsm::new("bench", "1234")?;
    let daemon = TestDaemon::new().softhsm(&hsm, "hsm")?.start()?;
    let work = tempfile::tempdir()?;
    let (files, manifest) = make_targets(&work.path().join("small"), args.targets)?;
    let (probe_name, probe_file) = files.first().cloned().context("no targets")?;
    let probe = probe_file.to_str().context("path")?.to_string();
    let n = args.targets;

    // Stock CLI: init, one `notary add` per target, publish.
    let stock = server.cli()?;
    let gun = "bench.example/stock";
    let (_, stock_publish) = timed(|| {
        ok(stock.run(&["init", gun]))?;
        for (name, path) in &files {
            ok(stock.run(&["add", gun, name, path.to_str().context("path")?]))?;
        }
        ok(stock.run(&["publish", gun]))
    })?;
    let (listed, stock_list) = timed(|| ok(stock.run(&["list", gun])))?;
    ensure!(listed.stdout.lines().count() >= n, "stock list is short");
    let (_, stock_verify) =
        timed(|| ok(stock.run(&["verify", gun, &probe_name, "-i", &probe, "-q"])))?;

    // notaryctl, one process per target.
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket)?;
    let gun = "bench.example/loop";
    let (_, loop_publish) = timed(|| {
        ok(ctl.run(&["init", gun]))?;
        for (name, path) in &files {
            ok(ctl.run(&["add", gun, name, path.to_str().context("path")?]))?;
        }
        ok(ctl.run(&["publish", gun]))
    })?;

    // notaryctl, one batch.
    let gun = "bench.example/batch";
    let manifest_arg = manifest.to_str().context("path")?;
    let (_, batch_publish) = timed(|| {
        ok(ctl.run(&["init", gun]))?;
        ok(ctl.run(&["add", gun, "--from-file", manifest_arg]))?;
        ok(ctl.run(&["publish", gun]))
    })?;
    let (listed, ctl_list) = timed(|| ok(ctl.run(&["list", gun])))?;
    ensure!(
        listed.stdout.lines().count() >= n,
        "notaryctl list is short"
    );
    let (_, ctl_verify) = timed(|| ok(ctl.run(&["verify", gun, &probe_name, "-i", &probe, "-q"])))?;

    println!(
        "repo-bench: {n} targets, one notary-server (local trust), notaryctl keys on SoftHSM2"
    );
    println!();
    println!("{:<58} {:>12} {:>18}", "step", "wall", "stock / notaryctl");
    println!(
        "{:<58} {:>12}",
        "stock: init + 1 `notary add` per target + publish",
        secs(stock_publish)
    );
    println!(
        "{:<58} {:>12} {:>18}",
        "notaryctl: init + 1 `add` process per target + publish",
        secs(loop_publish),
        ratio(stock_publish, loop_publish)
    );
    println!(
        "{:<58} {:>12} {:>18}",
        "notaryctl: init + `add --from-file` batch + publish",
        secs(batch_publish),
        ratio(stock_publish, batch_publish)
    );
    println!("{:<58} {:>12}", "stock: list", ms(stock_list));
    println!(
        "{:<58} {:>12} {:>18}",
        "notaryctl: list",
        ms(ctl_list),
        ratio(stock_list, ctl_list)
    );
    println!(
        "{:<58} {:>12}",
        "stock: verify one target",
        ms(stock_verify)
    );
    println!(
        "{:<58} {:>12} {:>18}",
        "notaryctl: verify one target",
        ms(ctl_verify),
        ratio(stock_verify, ctl_verify)
    );

    if args.large > 0 {
        let (_, large_manifest) = make_targets(&work.path().join("large"), args.large)?;
        let gun = "bench.example/large";
        let large_arg = large_manifest.to_str().context("path")?;
        let (_, large_publish) = timed(|| {
            ok(ctl.run(&["init", gun]))?;
            ok(ctl.run(&["add", gun, "--from-file", large_arg]))?;
            ok(ctl.run(&["publish", gun]))
        })?;
        let (listed, large_list) = timed(|| ok(ctl.run(&["list", gun])))?;
        ensure!(
            listed.stdout.lines().count() >= args.large,
            "large list is short"
        );
        println!(
            "{:<58} {:>12}",
            format!("notaryctl: init + batch of {} + publish", args.large),
            secs(large_publish)
        );
        println!(
            "{:<58} {:>12}",
            format!("notaryctl: list ({} targets)", args.large),
            ms(large_list)
        );
    }
    Ok(())
}
