//! notaryctl's refusals against Debian's notary-server: trust pinning,
//! an unreachable server mid-workflow, a server serving older metadata,
//! TLS trust errors, and notary-keyd being down.

use base64::Engine;
use sha2::Digest;
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, Rule, SoftHsm, TestDaemon};

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

fn refused(out: anyhow::Result<CliOutput>, needle: &str) -> CliOutput {
    let out = out.unwrap();
    assert!(!out.status.success(), "expected a refusal: {}", out.stdout);
    assert!(
        out.stderr.contains(needle),
        "{needle:?} not in: {}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    out
}

fn published(name: &str, gun: &str) -> (Pki, NotaryServer, Daemon, Notaryctl) {
    let pki = Pki::new(name).unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let file = ctl.work_dir().join("v1.bin");
    std::fs::write(&file, b"v1\n").unwrap();
    ok(ctl.run(&["init", gun, "-p"]));
    ok(ctl.run(&["add", gun, "v1", file.to_str().unwrap()]));
    ok(ctl.run(&["publish", gun]));
    (pki, server, daemon, ctl)
}

fn config(ctl: &Notaryctl, pinning: serde_json::Value) -> String {
    let path = ctl.work_dir().join("config.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&serde_json::json!({ "trust_pinning": pinning })).unwrap(),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn staging_for_a_collection_or_role_nothing_trusts_yet_warns_at_once() {
    let gun = "example.com/keyd/known";
    let (_pki, _server, _daemon, ctl) = published("typo", gun);
    let file = ctl.work_dir().join("v2.bin");
    std::fs::write(&file, b"v2\n").unwrap();
    let file = file.to_str().unwrap();
    // A known collection and role: staged without a word.
    let known = ok(ctl.run(&["add", gun, "v2", file]));
    assert!(known.stderr.is_empty(), "{}", known.stderr);
    // A role the collection does not delegate is staged, with a warning.
    let role = ok(ctl.run(&["add", gun, "v2", file, "-r", "targets/nonexist"]));
    role.assert_warns("targets/nonexist is not a delegation of example.com/keyd/known");
    // A mistyped GUN is staged, with a warning, and publish names the fix.
    let typo = "example.com/keyd/knwon";
    let staged = ok(ctl.run(&["add", typo, "v2", file]));
    staged.assert_warns(&format!("nothing of {typo} is trusted here yet"));
    refused(
        ctl.run(&["publish", typo]),
        &format!("initialise it first: notaryctl init {typo}"),
    );
}

#[test]
fn a_manifest_is_hashed_whole_or_staged_not_at_all() {
    let gun = "example.com/keyd/manifest";
    let (_pki, _server, _daemon, ctl) = published("manifest", gun);
    let dir = ctl.work_dir().join("batch");
    std::fs::create_dir(&dir).unwrap();
    let mut manifest = String::new();
    for i in 0..40 {
        std::fs::write(dir.join(format!("f{i}.bin")), format!("file {i}\n")).unwrap();
        manifest.push_str(&format!("t{i} f{i}.bin\n"));
    }
    // One file that cannot be read: the batch is refused, nothing staged.
    let broken = dir.join("broken.txt");
    std::fs::write(&broken, format!("{manifest}t-missing missing.bin\n")).unwrap();
    let out = ctl
        .run(&["add", gun, "--from-file", broken.to_str().unwrap()])
        .unwrap();
    assert!(!out.status.success(), "{}", out.stdout);
    out.assert_warns("missing.bin");
    ok(ctl.run(&["status", gun])).assert_prints("No unpublished changes");
    // The whole manifest, hashed on every core, lands in manifest order.
    let whole = dir.join("manifest.txt");
    std::fs::write(&whole, &manifest).unwrap();
    ok(ctl.run(&["add", gun, "--from-file", whole.to_str().unwrap()]))
        .assert_prints("Addition of 40 targets");
    ok(ctl.run(&["publish", gun]));
    let listed = ok(ctl.run(&["list", gun]));
    for i in [0, 17, 39] {
        let digest = hex::encode(sha2::Sha256::digest(format!("file {i}\n")));
        let row = listed
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("t{i} ")))
            .unwrap_or_else(|| panic!("no t{i} in:\n{}", listed.stdout));
        assert!(row.contains(&digest), "{row}");
    }
}

#[test]
fn trust_pinning_by_cert_id_and_ca() {
    let gun = "example.com/keyd/pinned";
    let (pki, server, daemon, _ctl) = published("pin", gun);
    let root = server
        .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
        .unwrap();
    let root: serde_json::Value = serde_json::from_slice(&root.body).unwrap();
    let cert_id = root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(
            root["signed"]["keys"][&cert_id]["keyval"]["public"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let reader = || Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();

    let r = reader();
    let c = config(&r, serde_json::json!({"certs": {gun: ["00".repeat(32)]}}));
    refused(
        r.run_with(&["-c", &c], &["list", gun]),
        "does not match the trust pinning",
    );
    let r = reader();
    let c = config(&r, serde_json::json!({"certs": {gun: [cert_id.clone()]}}));
    ok(r.run_with(&["-c", &c], &["list", gun]));
    let r = reader();
    let c = config(
        &r,
        serde_json::json!({"certs": {"example.com/*": [cert_id.clone()]}}),
    );
    ok(r.run_with(&["-c", &c], &["list", gun]));

    // CA pinning: the self-signed root certificate is its own CA; the test
    // PKI's CA did not issue it.
    let r = reader();
    std::fs::write(r.work_dir().join("root-ca.pem"), &pem).unwrap();
    let c = config(
        &r,
        serde_json::json!({"ca": {"example.com/": "root-ca.pem"}}),
    );
    ok(r.run_with(&["-c", &c], &["list", gun]));
    let r = reader();
    let c = config(
        &r,
        serde_json::json!({"ca": {"example.com/": pki.ca_cert.to_str().unwrap()}}),
    );
    refused(r.run_with(&["-c", &c], &["list", gun]), "chains to the CA");

    let r = reader();
    let c = config(&r, serde_json::json!({"disable_tofu": true}));
    refused(
        r.run_with(&["-c", &c], &["list", gun]),
        "trust on first use is disabled",
    );
}

#[test]
fn unreachable_server_keeps_staged_changes_and_wrong_ca_is_a_tls_error() {
    let gun = "example.com/keyd/offline";
    let (_pki, server, _daemon, mut ctl) = published("offline", gun);
    let file = ctl.work_dir().join("v2.bin");
    std::fs::write(&file, b"v2\n").unwrap();
    ok(ctl.run(&["add", gun, "v2", file.to_str().unwrap()]));
    ok(ctl.run(&["list", gun]));
    let port = softhsm_tests::notary_stack::free_port().unwrap();
    let url = std::mem::replace(&mut ctl.server_url, format!("https://127.0.0.1:{port}"));
    refused(
        ctl.run(&["publish", gun]),
        "cannot reach the notary server at",
    );
    // Reads fall back to the verified cache.
    let listed = ok(ctl.run(&["list", gun]));
    listed.assert_prints("v1 ");
    ctl.server_url = url;
    let status = ok(ctl.run(&["status", gun]));
    status.assert_prints("v2");
    ok(ctl.run(&["publish", gun]));
    let status = ok(ctl.run(&["status", gun]));
    status.assert_prints("No unpublished changes");
    let stock = server.cli().unwrap();
    let listed = ok(stock.run(&["list", gun]));
    listed.assert_prints("v2 ");

    let other = Pki::new("other").unwrap();
    ctl.ca_cert = other.ca_cert.clone();
    refused(
        ctl.run(&["publish", gun]),
        "TLS handshake with the notary server",
    );
}

#[test]
fn older_metadata_from_another_server_is_refused_and_cache_kept() {
    let gun = "example.com/keyd/rollback";
    let (_pki, _server_a, daemon, ctl) = published("rollback", gun);
    ok(ctl.run(&["list", gun]));
    let cached = ctl.trust_dir.join("tuf").join(gun).join("metadata");
    let before = std::fs::read(cached.join("timestamp.json")).unwrap();

    // Another server refuses this root: it holds no timestamp key for it.
    // Its errcode body becomes one line.
    let pki_b = Pki::new("rollback-b").unwrap();
    let server_b = NotaryServer::start(&pki_b, &TrustService::Local).unwrap();
    let other_b = Notaryctl::new(&server_b.url, &server_b.ca_cert, &daemon.socket).unwrap();
    let other_meta = other_b.trust_dir.join("tuf").join(gun).join("metadata");
    std::fs::create_dir_all(&other_meta).unwrap();
    std::fs::copy(cached.join("root.json"), other_meta.join("root.json")).unwrap();
    refused(
        other_b.run(&["publish", gun]),
        "INVALID_UPDATE: Update sent by the client is invalid. (ErrBadRoot: ",
    );

    // The same server, wiped and republished from root v1: validly signed
    // metadata with older versions than ctl has seen.
    let other = Notaryctl::new(&ctl.server_url, &ctl.ca_cert, &daemon.socket).unwrap();
    ok(other.run(&["delete", gun, "--remote"]));
    std::fs::create_dir_all(other_meta_dir(&other, gun)).unwrap();
    std::fs::copy(
        cached.join("root.json"),
        other_meta_dir(&other, gun).join("root.json"),
    )
    .unwrap();
    ok(other.run(&["publish", gun]));
    refused(ctl.run(&["list", gun]), "rollback refused");
    refused(ctl.run(&["publish", gun]), "rollback refused");
    assert_eq!(
        std::fs::read(cached.join("timestamp.json")).unwrap(),
        before
    );
}

fn other_meta_dir(ctl: &Notaryctl, gun: &str) -> std::path::PathBuf {
    ctl.trust_dir.join("tuf").join(gun).join("metadata")
}

#[test]
fn keyd_down_is_a_clear_error_and_changes_stay_staged() {
    let gun = "example.com/keyd/down";
    let (_pki, _server, mut daemon, ctl) = published("down", gun);
    let file = ctl.work_dir().join("v2.bin");
    std::fs::write(&file, b"v2\n").unwrap();
    ok(ctl.run(&["add", gun, "v2", file.to_str().unwrap()]));
    daemon.stop().unwrap();
    refused(ctl.run(&["publish", gun]), "cannot reach notary-keyd");
    let status = ok(ctl.run(&["status", gun]));
    status.assert_prints("v2");
    // Reading needs no keys.
    ok(ctl.run(&["list", gun]));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let gun = "example.com/keyd/input";
    let (_pki, _server, _daemon, ctl) = published("input", gun);
    refused(
        ctl.run(&["add", gun, "x", "/nonexistent/file"]),
        "cannot read /nonexistent/file",
    );
    let file = ctl.work_dir().join("x.bin");
    std::fs::write(&file, b"x").unwrap();
    let file = file.to_str().unwrap();
    ok(ctl.run(&["add", gun, "x", file, "--roles", "targets/nope"]));
    refused(
        ctl.run(&["publish", gun]),
        "does not exist in this collection",
    );
    ok(ctl.run(&["reset", gun, "--all"]));
    refused(
        ctl.run(&["add", gun, "x", file, "--roles", "targets/Up"]),
        "lowercase",
    );
    refused(ctl.run(&["add", "../escape", "x", file]), "invalid GUN");
    refused(
        ctl.run(&["addhash", gun, "x", "3", "--sha256", "abcd"]),
        "--sha256 must be 64 hex digits",
    );
    refused(
        ctl.run(&["lookup", gun, "missing"]),
        "has no trusted target named",
    );
    refused(ctl.run(&["init", gun]), "already has a trusted root");
    let stranger = Notaryctl::new(&ctl.server_url, &ctl.ca_cert, &ctl.socket).unwrap();
    refused(
        stranger.run(&["init", gun]),
        "already exists on the notary server",
    );
    refused(ctl.run(&["key", "rotate", gun, "timestamp"]), "use -r");
}

/// uid 65533 (group 65534, no others) with a trust dir of its own, who
/// can read the server's CA.
struct OtherUser {
    dir: tempfile::TempDir,
}

impl OtherUser {
    fn new(server: &NotaryServer) -> OtherUser {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), mode(0o777)).unwrap();
        std::fs::set_permissions(&server.ca_cert, mode(0o644)).unwrap();
        std::fs::set_permissions(server.ca_cert.parent().unwrap(), mode(0o755)).unwrap();
        OtherUser { dir }
    }

    /// notaryctl as this user, against `daemon` and `server`.
    fn run(&self, daemon: &Daemon, server: &NotaryServer, args: &[&str]) -> std::process::Output {
        std::process::Command::new("setpriv")
            .args(["--reuid=65533", "--regid=65534", "--clear-groups"])
            .arg(softhsm_tests::bin_path("notaryctl").unwrap())
            .arg("--keyd")
            .arg(&daemon.socket)
            .args(["-s", &server.url, "--tlscacert"])
            .arg(&server.ca_cert)
            .arg("-d")
            .arg(self.dir.path().join("trust"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("NOTARY_KEYD_SOCKET")
            .output()
            .unwrap()
    }
}

#[test]
fn keyd_policy_denial_is_a_clear_error() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run notaryctl as another uid with setpriv");
        return;
    }
    // uid 65533 may see every key but sign only with targets keys.
    let pki = Pki::new("policy").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new()
        .soft("soft")
        .policy(Rule::uids(&[65533]).allow(&["list"]).keys(&["*"]))
        .policy(
            Rule::uids(&[65533])
                .allow(&["sign"])
                .keys(&["role:targets"]),
        )
        .socket_group("nogroup")
        .start()
        .unwrap();
    let gun = "example.com/keyd/policy";
    let owner = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    ok(owner.run(&["init", gun, "-p"]));

    let other = OtherUser::new(&server);
    let file = other.dir.path().join("t.bin");
    std::fs::write(&file, b"t\n").unwrap();
    let run = |args: &[&str]| other.run(&daemon, &server, args);
    let out = run(&["add", gun, "t", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["publish", gun]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("notary-keyd refused"), "{stderr}");
    assert!(stderr.contains("[[policy]]"), "{stderr}");
    let out = run(&["status", gun]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("create"));
}

/// A plain-HTTP stand-in for a notary server that serves fixed bytes per
/// path (keep-alive, GET only): a mirror that can be made to lie.
fn serve(files: std::collections::HashMap<String, Vec<u8>>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let files = std::sync::Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    let (status, body) = match files.get(&path) {
                        Some(body) => ("200 OK", body.clone()),
                        None => (
                            "404 Not Found",
                            br#"{"errors":[{"code":"METADATA_NOT_FOUND","message":"not found"}]}"#
                                .to_vec(),
                        ),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(&body).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn altered_metadata_is_refused_and_cache_kept() {
    let gun = "example.com/keyd/altered";
    let (_pki, server, _daemon, mut ctl) = published("altered", gun);
    ok(ctl.run(&["list", gun]));
    let cached = ctl.trust_dir.join("tuf").join(gun).join("metadata");
    let good_targets = std::fs::read(cached.join("targets.json")).unwrap();

    // Everything the client fetches, as the real server serves it.
    let prefix = format!("/v2/{gun}/_trust/tuf/");
    let get = |file: &str| server.get(&format!("{prefix}{file}")).unwrap().body;
    let sha256_hex = |meta: &serde_json::Value| {
        let b64 = meta["hashes"]["sha256"].as_str().unwrap();
        hex::encode(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
    };
    let timestamp = get("timestamp.json");
    let ts: serde_json::Value = serde_json::from_slice(&timestamp).unwrap();
    let snapshot_file = format!(
        "snapshot.{}.json",
        sha256_hex(&ts["signed"]["meta"]["snapshot"])
    );
    let snapshot = get(&snapshot_file);
    let snap: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    let targets_file = format!(
        "targets.{}.json",
        sha256_hex(&snap["signed"]["meta"]["targets"])
    );
    let targets = get(&targets_file);
    let files = |targets: Vec<u8>, timestamp: Vec<u8>| {
        std::collections::HashMap::from([
            (format!("{prefix}root.json"), get("root.json")),
            (format!("{prefix}timestamp.json"), timestamp),
            (format!("{prefix}{snapshot_file}"), snapshot.clone()),
            (format!("{prefix}{targets_file}"), targets),
        ])
    };

    // The targets file with one byte changed: its hash no longer matches.
    let mut altered = targets.clone();
    let at = altered.iter().position(|b| *b == b'"').unwrap();
    altered[at + 1] ^= 0x20;
    let url = std::mem::replace(
        &mut ctl.server_url,
        serve(files(altered, timestamp.clone())),
    );
    refused(
        ctl.run(&["list", gun]),
        "targets does not match what snapshot says about it",
    );
    // A timestamp whose signature was tampered with.
    let mut bad_sig: serde_json::Value = ts.clone();
    let sig = bad_sig["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    bad_sig["signatures"][0]["sig"] = serde_json::Value::String(format!("{flipped}{}", &sig[1..]));
    ctl.server_url = serve(files(
        targets.clone(),
        serde_json::to_vec(&bad_sig).unwrap(),
    ));
    refused(ctl.run(&["list", gun]), "timestamp is not validly signed");
    assert_eq!(
        std::fs::read(cached.join("targets.json")).unwrap(),
        good_targets
    );

    // The honest copy still verifies.
    ctl.server_url = serve(files(targets, timestamp));
    ok(ctl.run(&["list", gun]));
    ctl.server_url = url;
    ok(ctl.run(&["list", gun]));
}

/// A delegation gets only keys that can sign it, and a publish signs with
/// the keys that may and skips the ones refused, as stock notary does.
#[test]
fn a_delegation_refuses_a_key_bound_elsewhere_and_publish_skips_refused_keys() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run notaryctl as another uid with setpriv");
        return;
    }
    // uid 65533 may see every key but sign only with those on `soft`, not
    // with those on the SoftHSM2 token `spare`.
    let pki = Pki::new("skip").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let hsm = SoftHsm::new("spare", "2468").unwrap();
    let daemon = TestDaemon::new()
        .soft("soft")
        .softhsm(&hsm, "spare")
        .unwrap()
        .policy(Rule::uids(&[65533]).allow(&["list"]).keys(&["*"]))
        .policy(
            Rule::uids(&[65533])
                .allow(&["sign"])
                .keys(&["backend:soft"]),
        )
        .socket_group("nogroup")
        .start()
        .unwrap();
    let gun = "example.com/keyd/skip";
    let owner = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    ok(owner.run(&["init", gun, "-p"]));
    let generate = |backend: &str, role: &str| {
        let out = ok(owner.run(&[
            "key",
            "generate",
            "--backend",
            backend,
            "--role",
            role,
            "--gun",
            gun,
        ]));
        out.stdout.lines().last().unwrap().trim().to_string()
    };
    let targets_key = generate("soft", "targets");
    let allowed = generate("soft", "targets/releases");
    let refused_key = generate("spare", "targets/releases");

    // A key bound to `targets` could never sign the delegation: refused,
    // nothing staged.
    let out = owner
        .run(&[
            "delegation",
            "add",
            gun,
            "targets/releases",
            "--key",
            &targets_key,
            "--all-paths",
        ])
        .unwrap();
    assert!(!out.status.success(), "{}", out.stdout);
    out.assert_warns("is bound to role \"targets\"");
    ok(owner.run(&["status", gun])).assert_prints("No unpublished changes");
    ok(owner.run(&[
        "delegation",
        "add",
        gun,
        "targets/releases",
        "--key",
        &allowed,
        "--key",
        &refused_key,
        "--all-paths",
        "-p",
    ]));

    // uid 65533 publishes a target of the delegation: the key on `spare` is
    // refused and skipped, the one on `soft` meets the threshold of 1.
    let other = OtherUser::new(&server);
    let file = other.dir.path().join("r.bin");
    std::fs::write(&file, b"release\n").unwrap();
    let run = |args: &[&str]| other.run(&daemon, &server, args);
    let staged = run(&[
        "add",
        gun,
        "r",
        file.to_str().unwrap(),
        "-r",
        "targets/releases",
    ]);
    assert!(
        staged.status.success(),
        "{}",
        String::from_utf8_lossy(&staged.stderr)
    );
    let published = run(&["publish", gun]);
    let stderr = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: skipping key {refused_key} for targets/releases"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("skipping key {allowed}")),
        "{stderr}"
    );
    let listed = ok(owner.run(&["list", gun, "-r", "targets/releases"]));
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("r ")),
        "{}",
        listed.stdout
    );
}
