//! The notary stack harness against Debian's notary-server with its local
//! trust service: the stock CLI initialises, publishes and lists a
//! collection, and the server serves what was published.

use softhsm_tests::notary_stack::{NotaryServer, Pki, TrustService};

#[test]
fn stock_cli_publishes_to_local_trust_server() -> anyhow::Result<()> {
    let pki = Pki::new("smoke")?;
    let server = NotaryServer::start(&pki, &TrustService::Local)?;
    assert_eq!(server.health()?, 200);

    let gun = "example.com/keyd/smoke";
    let cli = server.cli()?;
    std::fs::write(cli.work_dir().join("target1.txt"), b"payload one\n")?;
    cli.run(&["init", gun])?.ok()?;
    cli.run(&["add", gun, "v1", "target1.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;

    let listed = cli.run(&["list", gun])?.ok()?;
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("v1 ")),
        "v1 not listed:\n{}",
        listed.stdout
    );
    let root = server.get(&format!("/v2/{gun}/_trust/tuf/root.json"))?;
    assert_eq!(root.status, 200);
    let root: serde_json::Value = serde_json::from_slice(&root.body)?;
    assert_eq!(root["signed"]["_type"], "Root");
    let missing = server.get("/v2/example.com/keyd/none/_trust/tuf/root.json")?;
    assert_eq!(missing.status, 404);
    Ok(())
}
