//! notaryctl as a notary client against Debian's notary-server, with keys in
//! notary-keyd, and the stock notary CLI reading what it publishes (and the
//! reverse).

use softhsm_tests::notary_stack::{NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, SoftHsm, TestDaemon};

fn publish_then_stock_reads(daemon: &Daemon, server: &NotaryServer, gun: &str) {
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let file = ctl.work_dir().join("app.bin");
    std::fs::write(&file, b"release one\n").unwrap();
    ctl.run(&["init", gun, "-p"]).unwrap().ok().unwrap();
    ctl.run(&["add", gun, "v1", file.to_str().unwrap()])
        .unwrap()
        .ok()
        .unwrap();
    let status = ctl.run(&["status", gun]).unwrap().ok().unwrap();
    status.assert_prints("create");
    ctl.run(&["publish", gun]).unwrap().ok().unwrap();

    // The stock CLI, trusting on first use, lists and verifies the target.
    let stock = server.cli().unwrap();
    let listed = stock.run(&["list", gun]).unwrap().ok().unwrap();
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("v1 ")),
        "{}",
        listed.stdout
    );
    let copy = stock.work_dir().join("app.bin");
    std::fs::write(&copy, b"release one\n").unwrap();
    stock
        .run(&["verify", gun, "v1", "-i", copy.to_str().unwrap(), "-q"])
        .unwrap()
        .ok()
        .unwrap();
    std::fs::write(&copy, b"release two\n").unwrap();
    let wrong = stock
        .run(&["verify", gun, "v1", "-i", copy.to_str().unwrap(), "-q"])
        .unwrap();
    assert!(!wrong.status.success(), "wrong content accepted");

    // notaryctl reads it back the same way.
    let listed = ctl.run(&["list", gun]).unwrap().ok().unwrap();
    listed.assert_prints("v1 ");
    ctl.run(&["verify", gun, "v1", "-i", file.to_str().unwrap(), "-q"])
        .unwrap()
        .ok()
        .unwrap();
    let wrong = ctl
        .run(&["verify", gun, "v1", "-i", copy.to_str().unwrap(), "-q"])
        .unwrap();
    wrong.assert_warns("does not match target");
}

#[test]
fn notaryctl_publishes_with_soft_keys_and_stock_cli_verifies() {
    let pki = Pki::new("soft").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    publish_then_stock_reads(&daemon, &server, "example.com/keyd/soft");
}

#[test]
fn notaryctl_publishes_with_softhsm_keys_and_stock_cli_verifies() {
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .start()
        .unwrap();
    let pki = Pki::new("hsm").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    publish_then_stock_reads(&daemon, &server, "example.com/keyd/hsm");
}

#[test]
fn stock_cli_publishes_and_notaryctl_verifies() {
    let pki = Pki::new("stock").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let gun = "example.com/stock/app";
    let stock = server.cli().unwrap();
    std::fs::write(stock.work_dir().join("t.txt"), b"stock payload\n").unwrap();
    stock.run(&["init", gun]).unwrap().ok().unwrap();
    stock
        .run(&["add", gun, "v9", "t.txt"])
        .unwrap()
        .ok()
        .unwrap();
    stock.run(&["publish", gun]).unwrap().ok().unwrap();

    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let listed = ctl.run(&["list", gun]).unwrap().ok().unwrap();
    listed.assert_prints("v9 ");
    let input = stock.work_dir().join("t.txt");
    let out = ctl
        .run(&["verify", gun, "v9", "-i", input.to_str().unwrap()])
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(out.stdout, "stock payload\n");
    let lookup = ctl.run(&["lookup", gun, "v9"]).unwrap().ok().unwrap();
    assert!(lookup.stdout.starts_with("v9 sha256:"), "{}", lookup.stdout);
}

#[test]
fn staging_commands_addhash_remove_reset_custom() {
    let pki = Pki::new("staging").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let gun = "example.com/keyd/staging";
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let file = ctl.work_dir().join("a.bin");
    std::fs::write(&file, b"abc").unwrap();
    let custom = ctl.work_dir().join("custom.json");
    std::fs::write(&custom, br#"{"build":42}"#).unwrap();
    let (file, custom) = (file.to_str().unwrap(), custom.to_str().unwrap());
    ok(ctl.run(&["init", gun, "-p"]));
    ok(ctl.run(&["add", gun, "a", file, "--custom", custom]));
    let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    ok(ctl.run(&["addhash", gun, "h", "3", "--sha256", sha256]));
    ok(ctl.run(&["add", gun, "dropped", file]));
    ok(ctl.run(&["reset", gun, "-n", "2"]));
    let status = ok(ctl.run(&["status", gun]));
    assert!(!status.stdout.contains("dropped"), "{}", status.stdout);
    ok(ctl.run(&["publish", gun]));

    let stock = server.cli().unwrap();
    let listed = ok(stock.run(&["list", gun]));
    listed.assert_prints(sha256);
    assert!(!listed.stdout.contains("dropped"), "{}", listed.stdout);
    let targets = server
        .get(&format!("/v2/{gun}/_trust/tuf/targets.json"))
        .unwrap();
    let targets: serde_json::Value = serde_json::from_slice(&targets.body).unwrap();
    assert_eq!(targets["signed"]["targets"]["a"]["custom"]["build"], 42);

    ok(ctl.run(&["remove", gun, "a"]));
    ok(ctl.run(&["publish", gun]));
    let listed = ok(stock.run(&["list", gun]));
    assert!(
        !listed.stdout.lines().any(|l| l.starts_with("a ")),
        "{}",
        listed.stdout
    );
    let again = ok(ctl.run(&["publish", gun]));
    again.assert_prints("No unpublished changes");
    let traced = ok(ctl.run_with(&["-D"], &["list", gun]));
    traced.assert_warns(&format!("GET /v2/{gun}/_trust/tuf/timestamp.json -> 200"));
    let lookup = ok(ctl.run(&["lookup", gun, "h"]));
    assert_eq!(lookup.stdout.trim(), format!("h sha256:{sha256} 3"));
}

fn ok(
    out: anyhow::Result<softhsm_tests::notary_stack::CliOutput>,
) -> softhsm_tests::notary_stack::CliOutput {
    out.unwrap().ok().unwrap()
}
