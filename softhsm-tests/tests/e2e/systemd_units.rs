//! The shipped systemd units pass `systemd-analyze verify` (alone and with
//! each example drop-in), and `systemd-analyze security` rates the service
//! "OK" or better with the score docs/operations.md states.

use softhsm_tests::bin_path;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The service with ExecStart pointing at the freshly built daemon, since
/// verify checks that the binary exists.
fn service_text() -> String {
    let text = std::fs::read_to_string(repo().join("systemd/notary-keyd.service")).unwrap();
    let daemon = bin_path("notary-keyd").unwrap();
    text.replace("/usr/bin/notary-keyd", daemon.to_str().unwrap())
}

fn analyze(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .expect(
            "systemd-analyze (package systemd) must be installed; scripts/test-all.sh installs it",
        )
}

fn verify(service: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notary-keyd.service"), service).unwrap();
    std::fs::copy(
        repo().join("systemd/notary-keyd.socket"),
        dir.path().join("notary-keyd.socket"),
    )
    .unwrap();
    // The units name man:notary-keyd(8), which only the package installs
    // (deb_package.rs runs there).
    let out = analyze(
        &[
            "verify",
            "--man=no",
            "notary-keyd.service",
            "notary-keyd.socket",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    assert!(stderr.trim().is_empty(), "verify complained:\n{stderr}");
}

#[test]
fn units_and_drop_ins_verify() {
    verify(&service_text());
    let drop_ins = repo().join("systemd/drop-ins");
    let mut checked = 0;
    for entry in std::fs::read_dir(drop_ins).unwrap() {
        let path = entry.unwrap().path();
        let drop_in = std::fs::read_to_string(&path).unwrap();
        println!("verifying with {}", path.display());
        verify(&format!("{}\n{drop_in}", service_text()));
        checked += 1;
    }
    assert!(checked >= 4, "drop-in examples are missing");
}

/// `systemd-analyze security`'s overall score and rating, e.g. (0.4, "SAFE").
fn security_score(service: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notary-keyd.service"), service).unwrap();
    let out = analyze(
        &[
            "security",
            "--offline=true",
            "--no-pager",
            "notary-keyd.service",
        ],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // "→ Overall exposure level for notary-keyd.service: 0.4 SAFE 😀"
    let verdict = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("→ Overall exposure level for notary-keyd.service: ")
        })
        .unwrap_or_else(|| panic!("no overall score in:\n{text}"));
    let mut words = verdict.split_whitespace();
    let score = words.next().unwrap().to_string();
    let rating = words.next().unwrap().to_string();
    score.parse::<f64>().unwrap();
    assert!(
        ["SAFE", "OK"].contains(&rating.as_str()),
        "rated {rating} ({score}); the unit must score OK or better"
    );
    (score, rating)
}

#[test]
fn security_scores_are_ok_or_better_and_documented() {
    let docs = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let (score, rating) = security_score(&service_text());
    println!("systemd-analyze security notary-keyd.service: {score} {rating}");
    let line = format!("notary-keyd.service: {score} {rating}");
    assert!(
        docs.contains(&line),
        "docs/operations.md must state the current score: {line:?}"
    );
    for entry in std::fs::read_dir(repo().join("systemd/drop-ins")).unwrap() {
        let path = entry.unwrap().path();
        let drop_in = std::fs::read_to_string(&path).unwrap();
        let (score, rating) = security_score(&format!("{}\n{drop_in}", service_text()));
        let name = path.file_name().unwrap().to_str().unwrap();
        println!("with {name}: {score} {rating}");
        let row = format!("| `{name}` | {score} {rating} |");
        assert!(
            docs.contains(&row),
            "docs/operations.md must list the score with {name}: {row:?}"
        );
    }
}

#[test]
fn sysusers_and_tmpfiles_create_the_user_and_private_directories() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: systemd-tmpfiles needs root to set owners");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let run = |tool: &str, args: &[&str], file: &str| {
        let out = Command::new(tool)
            .arg(format!("--root={}", root.path().display()))
            .args(args)
            .arg(repo().join("systemd").join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("systemd-sysusers", &[], "notary-keyd.sysusers");
    run("systemd-tmpfiles", &["--create"], "notary-keyd.tmpfiles");
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("notary-keyd:"))
        .expect("user created");
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    for (dir, mode) in [
        ("var/lib/notary-keyd", 0o700),
        ("var/log/notary-keyd", 0o700),
        ("run/notary-keyd", 0o755),
    ] {
        let meta = std::fs::metadata(root.path().join(dir)).unwrap();
        assert_eq!(meta.uid(), uid, "{dir} owner");
        assert_eq!(meta.mode() & 0o777, mode, "{dir} mode");
    }
    let creds = std::fs::metadata(root.path().join("etc/notary-keyd/credentials")).unwrap();
    assert_eq!((creds.uid(), creds.mode() & 0o777), (0, 0o700));
}
