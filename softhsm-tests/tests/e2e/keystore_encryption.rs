//! Personal mode with --passphrase-file: the real daemon encrypts its
//! software keystore, refuses to open it without the passphrase, and serves
//! the same key again with it.

use softhsm_tests::{bin_path, connect, write_secret};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Personal {
    child: Child,
}

impl Drop for Personal {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

fn command(home: &Path, passphrase: Option<&Path>) -> Command {
    let mut cmd = Command::new(bin_path("notary-keyd").unwrap());
    cmd.env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("NOTARY_KEYD_SOCKET")
        .env_remove("NOTARY_KEYD_PASSPHRASE_FILE")
        .stdin(Stdio::null());
    if let Some(file) = passphrase {
        cmd.arg("--passphrase-file").arg(file);
    }
    cmd
}

/// Starts the personal daemon and waits for its socket.
fn start(home: &Path, passphrase: Option<&Path>) -> Personal {
    let child = command(home, passphrase)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Personal { child };
    let socket = home.join("run/notary-keyd/keyd.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(daemon.child.try_wait().unwrap().is_none(), "daemon exited");
        assert!(Instant::now() < deadline, "no socket after 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// Generates a soft key through the daemon at `socket`; its key ID.
async fn generate(socket: &Path, algorithm: keyd_proto::keyd::Algorithm, label: &str) -> String {
    let mut client = connect(socket).await.unwrap();
    client
        .generate_key(keyd_proto::keyd::GenerateKeyRequest {
            backend: "soft".into(),
            algorithm: algorithm as i32,
            label: label.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key_id
}

/// Asserts that the daemon at `socket` lists `key_id`.
async fn assert_serves(socket: &Path, key_id: &str) {
    let mut client = connect(socket).await.unwrap();
    let listed = client
        .list_keys(keyd_proto::keyd::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(listed.iter().any(|k| k.key_id == key_id), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personal_keystore_is_encrypted_with_the_passphrase_file() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir(home.join("run")).unwrap();
    let passphrase = home.join("keystore.passphrase");
    write_secret(&passphrase, "correct horse battery staple\n").unwrap();
    let socket = home.join("run/notary-keyd/keyd.sock");

    let daemon = start(home, Some(&passphrase));
    let key_id = generate(&socket, keyd_proto::keyd::Algorithm::EcdsaP256, "personal").await;
    drop(daemon);

    let keystore = home.join("data/notary-keyd/soft");
    let meta = std::fs::read_to_string(keystore.join("keystore.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert!(meta["encryption"].is_object(), "{meta}");

    // Without the passphrase the keystore does not open, and says why.
    let refused = command(home, None).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("this keystore is encrypted"), "{stderr}");

    // A passphrase file others may read is refused, naming the file.
    std::fs::set_permissions(
        &passphrase,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let exposed = command(home, Some(&passphrase)).output().unwrap();
    assert!(!exposed.status.success());
    let stderr = String::from_utf8_lossy(&exposed.stderr);
    assert!(stderr.contains("keystore.passphrase"), "{stderr}");
    assert!(!stderr.contains("horse"), "{stderr}");
    std::fs::set_permissions(
        &passphrase,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let _daemon = start(home, Some(&passphrase));
    assert_serves(&socket, &key_id).await;
}

/// `notary-keyd keystore encrypt` with the personal keystore's files.
fn encrypt(home: &Path, passphrase: &Path) -> std::process::Output {
    command(home, Some(passphrase))
        .args(["keystore", "encrypt"])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unencrypted_keystore_is_encrypted_in_place_and_keeps_its_keys() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir(home.join("run")).unwrap();
    let passphrase = home.join("keystore.passphrase");
    write_secret(&passphrase, "later passphrase\n").unwrap();
    let socket = home.join("run/notary-keyd/keyd.sock");

    let daemon = start(home, None);
    let key_id = generate(
        &socket,
        keyd_proto::keyd::Algorithm::Ed25519,
        "made in clear",
    )
    .await;
    // A running daemon holds the keystore and its audit log: the command
    // refuses them.
    let busy = encrypt(home, &passphrase);
    assert!(!busy.status.success());
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains("is a notary-keyd running"), "{stderr}");
    drop(daemon);

    // The daemon refuses the passphrase and names the command.
    let refused = command(home, Some(&passphrase)).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("notary-keyd keystore encrypt"), "{stderr}");

    let done = encrypt(home, &passphrase);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains("encrypted"), "{stdout}");
    let keys = home.join("data/notary-keyd/soft/keys");
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("\"plain\""), "a key file is still plain");
    }

    // The run is in the audit log, after the daemon's own records.
    let audit = softhsm_tests::audit_chain(&home.join("data/notary-keyd/audit"));
    let run = audit
        .iter()
        .rfind(|l| l["operation"] == "keystore-encrypt")
        .unwrap_or_else(|| panic!("no keystore-encrypt record: {audit:?}"));
    assert_eq!(run["backend"], "soft", "{run}");
    assert_eq!(run["result"], "ok", "{run}");

    let _daemon = start(home, Some(&passphrase));
    assert_serves(&socket, &key_id).await;
}
