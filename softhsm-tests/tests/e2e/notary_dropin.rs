//! notaryctl as a drop-in for scripts written for the stock notary CLI:
//! one script (tests/dropin/release.sh, notary's flags and aliases only)
//! runs against Debian's notary 0.7 and against notaryctl, each on its own
//! collection of the same notary-server, and every step must end the same
//! way, with the same targets listed at the end.

use softhsm_tests::notary_stack::{openssl, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{bin_path, TestDaemon};
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = include_str!("dropin/release.sh");

/// Runs the script in `dir` with `NOTARY` set to `notary` and `env`.
fn run_script(dir: &Path, notary: &str, gun: &str, env: &[(String, String)]) -> (String, String) {
    std::fs::write(dir.join("a.txt"), b"release a\n").unwrap();
    std::fs::write(dir.join("b.txt"), b"release b, a bit longer\n").unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "d.key",
            "-out",
            "d.crt",
            "-subj",
            // A '/' in a value is escaped: openssl splits -subj at '/'.
            "/CN=targets\\/releases",
            "-days",
            "30",
        ],
        dir,
    )
    .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .current_dir(dir)
        .env("NOTARY", notary)
        .env("GUN", gun)
        .env_remove("NOTARY_KEYD_SOCKET")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn steps(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("step ")).collect()
}

/// NAME, DIGEST, SIZE and ROLE of every target the final `list` shows.
fn listed(out: &str) -> Vec<Vec<String>> {
    let list = out.split("--- list").nth(1).unwrap_or("");
    let mut rows: Vec<Vec<String>> = list
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[0] != "NAME" && f[0] != "----")
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_stock_notary_script_ends_the_same_with_notaryctl() {
    let pki = Pki::new("dropin").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();

    let stock = server.cli().unwrap();
    let notary = format!("notary -c {}", stock.config.display());
    let (stock_out, stock_err) = run_script(
        stock.work_dir(),
        &notary,
        "example.com/dropin/stock",
        &stock.env(),
    );

    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let notaryctl = format!(
        "{} --keyd {} -s {} --tlscacert {} -d {}",
        bin_path("notaryctl").unwrap().display(),
        ctl.socket.display(),
        ctl.server_url,
        ctl.ca_cert.display(),
        ctl.trust_dir.display()
    );
    let home = vec![("HOME".to_string(), ctl.work_dir().display().to_string())];
    let (ctl_out, ctl_err) =
        run_script(ctl.work_dir(), &notaryctl, "example.com/dropin/keyd", &home);

    let context = format!(
        "stock:\n{stock_out}\n{stock_err}\nnotaryctl:\n{ctl_out}\n{ctl_err}\n{}",
        server
            .log_text()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(steps(&stock_out).len(), 23, "{context}");
    assert_eq!(steps(&stock_out), steps(&ctl_out), "{context}");
    // The script's refusals are refusals, its successes successes.
    for expected in [
        "step verify-bad failed",
        "step lookup-missing failed",
        "step delegation-remove-unconfirmed failed",
        "step delegation-remove-yes ok",
        "step add-publish ok",
    ] {
        assert!(steps(&ctl_out).contains(&expected), "{expected}\n{context}");
    }
    let stock_list = listed(&stock_out);
    assert_eq!(stock_list.len(), 1, "only v2 is left: {context}");
    assert_eq!(stock_list, listed(&ctl_out), "{context}");
}

#[test]
fn exit_codes_tell_failures_apart() {
    let pki = Pki::new("exit").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let gun = "example.com/exit";
    let file = ctl.work_dir().join("t.txt");
    std::fs::write(&file, b"content\n").unwrap();
    let file = file.to_str().unwrap();
    ctl.run(&["init", gun, "-p"]).unwrap().ok().unwrap();
    ctl.run(&["add", gun, "t", file, "-p"])
        .unwrap()
        .ok()
        .unwrap();
    let code = |args: &[&str]| ctl.run(args).unwrap().status.code();

    assert_eq!(code(&["verify", gun, "t", "-i", file, "-q"]), Some(0));
    let other = ctl.work_dir().join("other.txt");
    std::fs::write(&other, b"other\n").unwrap();
    let other = other.to_str().unwrap();
    assert_eq!(
        code(&["verify", gun, "t", "-i", other, "-q"]),
        Some(3),
        "mismatch"
    );
    assert_eq!(code(&["lookup", gun, "missing"]), Some(3), "unknown target");
    assert_eq!(code(&["no-such-command"]), Some(2), "usage");
    assert_eq!(
        code(&["key", "delete", "00", "--yes", "--force"]),
        Some(1),
        "a refusal by the daemon"
    );
    let absent = ctl.work_dir().join("absent.sock");
    let unreachable = Command::new(bin_path("notaryctl").unwrap())
        .arg("--keyd")
        .arg(&absent)
        .args(["key", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot reach notary-keyd"), "{stderr}");
}
