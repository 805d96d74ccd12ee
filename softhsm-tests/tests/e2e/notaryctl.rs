//! `notaryctl` against the real daemon: key commands, signing with client-
//! side verification, caller policy by uid (via `setpriv`), and the daemon
//! being down.

use crate::common;

use common::{notaryctl, notaryctl_as, notaryctl_with_groups, targets_payload};
use softhsm_tests::{openssl_verify, Daemon, Rule, SoftHsm, TestDaemon};
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

/// A soft-keystore daemon with `policy` whose socket members of nogroup
/// (65534) can reach, so setpriv'd callers get as far as the policy.
fn soft_daemon_for_nogroup(policy: Rule) -> Daemon {
    TestDaemon::new()
        .soft("soft")
        .policy(policy)
        .socket_group("nogroup")
        .start()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "notaryctl failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn key_commands_and_verified_signatures_on_softhsm() {
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .start()
        .unwrap();

    let out = ok(notaryctl(&daemon, &["backend", "list", "--json"]));
    let backends: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(out.contains("\"hsm\""), "{backends}");

    let mut ids = Vec::new();
    for args in [
        vec!["--algorithm", "ecdsa", "--curve", "p384"],
        vec!["--algorithm", "ed25519"],
        vec!["--algorithm", "rsa", "--bits", "2048"],
    ] {
        let mut full = vec![
            "key",
            "generate",
            "--backend",
            "hsm",
            "--role",
            "targets",
            "--gun",
            "example.com/app",
        ];
        full.extend(args);
        let out = ok(notaryctl(&daemon, &full));
        let id = out.lines().last().unwrap().trim().to_string();
        assert_eq!(id.len(), 64, "last line is the key ID: {out}");
        ids.push(id);
    }

    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&ok(notaryctl(&daemon, &["key", "list", "--json"]))).unwrap();
    assert_eq!(listed.len(), 3);
    for id in &ids {
        let key = listed.iter().find(|k| k["keyid"] == id.as_str()).unwrap();
        for field in ["keytype", "public", "backend", "uri", "role", "gun"] {
            assert!(key.get(field).is_some(), "{field} missing in {key}");
        }
        assert_eq!(key["backend"], "hsm");
        assert_eq!(key["role"], "targets");
        assert!(key["uri"].as_str().unwrap().starts_with("pkcs11:"));
    }

    let payload_file = daemon.dir.path().join("signed.json");
    std::fs::write(&payload_file, targets_payload(7)).unwrap();
    for id in &ids {
        let out = ok(notaryctl(
            &daemon,
            &["sign", "--key", id, payload_file.to_str().unwrap()],
        ));
        let sig: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(sig["keyid"], id.as_str());
        let info: serde_json::Value =
            serde_json::from_str(&ok(notaryctl(&daemon, &["key", "info", id, "--json"]))).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let public = b64.decode(info["public"].as_str().unwrap()).unwrap();
        let signature = b64.decode(sig["sig"].as_str().unwrap()).unwrap();
        openssl_verify(
            info["keytype"].as_str().unwrap(),
            &public,
            sig["method"].as_str().unwrap(),
            &targets_payload(7),
            &signature,
        )
        .unwrap();
    }

    // Refusals reach the person as one readable line and exit code 1.
    std::fs::write(&payload_file, common::root_payload()).unwrap();
    let o = notaryctl(
        &daemon,
        &["sign", "--key", &ids[0], payload_file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Root"), "{}", stderr(&o));
    let o = notaryctl(&daemon, &["key", "delete", &ids[0]]);
    assert!(!o.status.success(), "delete without --yes must refuse");
    // The key is bound to a role: deleting it needs --force as well.
    let o = notaryctl(&daemon, &["key", "delete", &ids[0], "--yes"]);
    assert!(!o.status.success(), "a bound key needs --force");
    assert!(stderr(&o).contains("it is in use"), "{}", stderr(&o));
    ok(notaryctl(
        &daemon,
        &["key", "delete", &ids[0], "--yes", "--force"],
    ));
    let o = notaryctl(&daemon, &["key", "info", &ids[0]]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn policy_by_uid_is_enforced_and_audited() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    // 65533 may list and sign targets keys; 65534 (nobody) may do nothing.
    let policy = Rule::uids(&[65533])
        .allow(&["list", "sign"])
        .keys(&["role:targets"]);
    let daemon = soft_daemon_for_nogroup(policy);

    let targets = ok(notaryctl(
        &daemon,
        &["key", "generate", "--role", "targets"],
    ));
    let targets = targets.lines().last().unwrap().trim().to_string();
    let root = ok(notaryctl(&daemon, &["key", "generate", "--role", "root"]));
    let root = root.lines().last().unwrap().trim().to_string();
    let payload_file = daemon.dir.path().join("signed.json");
    std::fs::write(&payload_file, targets_payload(1)).unwrap();
    std::fs::set_permissions(&payload_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let payload = payload_file.to_str().unwrap();

    let o = notaryctl_as(65534, 65534, &daemon, &["sign", "--key", &targets, payload]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("refused") || stderr(&o).contains("may not"),
        "{}",
        stderr(&o)
    );
    let o = notaryctl_as(65534, 65534, &daemon, &["key", "list"]);
    assert_eq!(o.status.code(), Some(1));

    let out = ok(notaryctl_as(
        65533,
        65534,
        &daemon,
        &["sign", "--key", &targets, payload],
    ));
    assert!(out.contains(&targets));
    let listed = ok(notaryctl_as(
        65533,
        65534,
        &daemon,
        &["key", "list", "--json"],
    ));
    assert!(
        listed.contains(&targets) && !listed.contains(&root),
        "only targets keys are visible: {listed}"
    );
    let o = notaryctl_as(65533, 65534, &daemon, &["key", "generate"]);
    assert_eq!(o.status.code(), Some(1));

    let audit = daemon.audit_lines();
    assert!(audit.iter().any(|l| l["uid"] == 65534
        && l["allowed"] == false
        && l["operation"] == "sign"
        && l["key_id"] == targets.as_str()));
    assert!(audit
        .iter()
        .any(|l| l["uid"] == 65533 && l["allowed"] == true && l["operation"] == "sign"));
    assert!(audit.iter().all(|l| l["pid"].is_i64() || l["pid"].is_u64()));
}

#[test]
fn supplementary_groups_count_for_gids_rules() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    // Group 4242 may list; the callers' primary group is nogroup (65534),
    // which only lets them reach the socket.
    let policy = Rule::gids(&[4242]).allow(&["list"]).keys(&["*"]);
    let daemon = soft_daemon_for_nogroup(policy);

    let member = notaryctl_with_groups(65533, 65534, &[4242], &daemon, &["key", "list"]);
    assert!(member.status.success(), "{}", stderr(&member));
    let outsider = notaryctl_with_groups(65533, 65534, &[4243], &daemon, &["key", "list"]);
    assert_eq!(outsider.status.code(), Some(1), "{}", stdout(&outsider));
    assert!(
        stderr(&outsider).contains("may not list"),
        "{}",
        stderr(&outsider)
    );
}

#[test]
fn daemon_down_is_a_clear_error() {
    let mut daemon = TestDaemon::new().soft("soft").start().unwrap();
    daemon.stop().unwrap();
    let o = notaryctl(&daemon, &["key", "list"]);
    assert_eq!(o.status.code(), Some(4), "exit 4: daemon unreachable");
    let err = stderr(&o);
    assert!(err.contains("cannot reach notary-keyd"), "{err}");
    assert!(err.contains("notary-keyd"), "says how to start it: {err}");
}
