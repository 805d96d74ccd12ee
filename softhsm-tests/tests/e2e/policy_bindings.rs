//! Policy selectors against the real daemon decide on what a key is (its
//! binding, a root key's certificate CN), never on what a request says it
//! is for: the shipped example's CI rule cannot sign the root of its own
//! collection, and its root rule can. Callers run as other uids via
//! `setpriv`, so the daemon's owner rights do not apply to them.

use crate::common;

use common::{notaryctl, notaryctl_as, root_payload, targets_payload};
use softhsm_tests::{Daemon, TestDaemon};
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

const CI: u32 = 65533;
const RELEASE_MANAGER: u32 = 65532;
const GUN: &str = "example.com/app";

/// The `[[policy]]` rules of the shipped example config, with its user
/// names replaced by uids this host surely has no names for.
fn example_rules() -> String {
    let text = include_str!("../../../docs/notary-keyd.example.toml");
    let start = text.find("\n[[policy]]\n").expect("the example has rules");
    let end = text[start..]
        .find("[signer_api]")
        .map_or(text.len(), |e| start + e);
    let rules = text[start..end]
        .replace("users = [\"ci\"]", &format!("uids = [{CI}]"))
        .replace(
            "users = [\"release-manager\"]",
            &format!("uids = [{RELEASE_MANAGER}]"),
        )
        .replace("groups = [\"release\"]", "gids = [4242]");
    // The signer-API section's comment lines are left behind; rules only.
    rules
        .lines()
        .take_while(|l| !l.starts_with("# notary-signer"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn last_line(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

fn payload(daemon: &Daemon, name: &str, bytes: Vec<u8>) -> String {
    let path = daemon.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path.display().to_string()
}

#[test]
fn the_example_ci_rule_cannot_sign_root_and_the_root_rule_can() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    let rules = example_rules();
    assert!(rules.contains(&format!("uids = [{CI}]")), "{rules}");
    let mut daemon = TestDaemon::new()
        .soft("hsm")
        .toml(&rules)
        .socket_group("nogroup")
        .start()
        .unwrap();

    // The owner makes the collection's keys: a root key (no GUN binding,
    // as notary shares root keys) with its root certificate for the GUN,
    // and a targets key bound to the GUN.
    let root = last_line(notaryctl(
        &daemon,
        &["key", "generate", "--role", "root", "--algorithm", "ecdsa"],
    ));
    let issued = notaryctl(&daemon, &["key", "cert", "issue-root", &root, "--gun", GUN]);
    assert!(issued.status.success(), "{}", text(&issued));
    let targets = last_line(notaryctl(
        &daemon,
        &["key", "generate", "--role", "targets", "--gun", GUN],
    ));
    let root_json = payload(&daemon, "root.json", root_payload());
    let targets_json = payload(&daemon, "targets.json", targets_payload(1));

    // CI signs its targets, but neither its GUN's root (the certificate's
    // CN is its GUN) nor, claiming another role, with the root key.
    let ok = notaryctl_as(
        CI,
        65534,
        &daemon,
        &["sign", "--key", &targets, &targets_json],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    for args in [
        vec!["sign", "--key", &root, &root_json],
        vec![
            "sign", "--key", &root, "--role", "root", "--gun", GUN, &root_json,
        ],
        vec![
            "sign",
            "--key",
            &root,
            "--role",
            "targets",
            "--gun",
            GUN,
            &targets_json,
        ],
    ] {
        let refused = notaryctl_as(CI, 65534, &daemon, &args);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&refused)
        );
    }
    // Nor may it re-issue the root certificate (which would move the key
    // into a GUN of its choosing).
    let refused = notaryctl_as(
        CI,
        65534,
        &daemon,
        &[
            "key",
            "cert",
            "issue-root",
            &root,
            "--gun",
            "example.com/app/ci",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    // The explicit root rule allows the root signature.
    let ok = notaryctl_as(
        RELEASE_MANAGER,
        65534,
        &daemon,
        &["sign", "--key", &root, "--gun", GUN, &root_json],
    );
    assert!(ok.status.success(), "{}", text(&ok));

    let audit = daemon.audit_lines();
    let denied_root = audit.iter().filter(|l| {
        l["uid"] == CI
            && l["operation"] == "sign"
            && l["key_id"] == root.as_str()
            && l["allowed"] == false
    });
    assert!(denied_root.count() >= 2, "{audit:?}");
    assert!(audit.iter().any(|l| l["uid"] == RELEASE_MANAGER
        && l["key_id"] == root.as_str()
        && l["allowed"] == true));
    daemon.stop().unwrap();
}
