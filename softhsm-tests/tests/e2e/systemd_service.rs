//! notary-keyd as a systemd service, against the real pieces: socket
//! activation by `systemd-socket-activate`, a real `$NOTIFY_SOCKET`
//! (readiness, status, watchdog, reload, stopping), PINs from
//! `$CREDENTIALS_DIRECTORY`, and the refusal to run as root.

use crate::common;

use common::{generate, method_of, sign, targets_payload, Algorithm, NewKey};
use keyd_proto::keyd as pb;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use softhsm_tests::notify::field;
use softhsm_tests::softhsm::MODULE;
use softhsm_tests::{
    bin_path, connect, openssl_verify, output_within, Daemon, NotifyListener, SoftHsm, TestDaemon,
};
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A started process, killed by pid if the test ends early.
struct Guard(Option<Child>);

impl Guard {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.as_ref().unwrap().id() as i32)
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.0.take().unwrap().wait().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A soft-keystore config in `dir` for a daemon started by hand; returns
/// the config file and its socket.
fn soft_config(dir: &Path) -> (PathBuf, PathBuf) {
    TestDaemon::new().soft("soft").write_to(dir).unwrap()
}

fn ready(message: &str) -> bool {
    message.lines().any(|l| l == "READY=1")
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_activation_serves_clients_from_before_and_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let passed = dir.path().join("activated.sock");
    let (config, configured) = soft_config(dir.path());
    let notify = NotifyListener::new().unwrap();
    let log_path = dir.path().join("keyd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    // The daemon's stderr is "the journal": it should prefix priorities.
    let journal = format!("{}:{}", meta.dev(), meta.ino());

    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("--listen")
        .arg(&passed)
        .arg("--fdname=keyd")
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify.path.display()))
        .arg(format!("--setenv=JOURNAL_STREAM={journal}"))
        .arg(bin_path("notary-keyd").unwrap())
        .arg("--config")
        .arg(&config)
        .env_remove("NOTARY_KEYD_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if is_root() {
        cmd.arg("--allow-root");
    }
    let mut activator = Guard(Some(
        cmd.spawn()
            .expect("systemd-socket-activate (package systemd)"),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !passed.exists() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The tool starts the daemon on the first connection: nothing has run yet.
    assert!(notify.pending().unwrap().is_empty());

    let mut early = connect(&passed).await.unwrap();
    let backends = early
        .list_backends(pb::ListBackendsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(backends.backends[0].name, "soft");
    let seen = notify.wait_for("READY", ready).unwrap();
    let status = field(seen.last().unwrap(), "STATUS").unwrap();
    assert!(
        status.starts_with("1 of 1 backends available (soft)"),
        "{status}"
    );

    let mut late = connect(&passed).await.unwrap();
    late.list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap();
    early
        .list_backends(pb::ListBackendsRequest {})
        .await
        .unwrap();
    assert!(
        !configured.exists(),
        "the configured socket must not be bound"
    );

    kill(activator.pid(), Signal::SIGTERM).unwrap();
    notify
        .wait_for("STOPPING", |m| m.starts_with("STOPPING=1"))
        .unwrap();
    assert!(activator.wait().success());
    assert!(
        passed.exists(),
        "the socket belongs to systemd; the daemon leaves it"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>") && l.contains("notary-keyd ready")),
        "journal lines carry a priority:\n{log}"
    );
    assert!(log.contains("socket activation"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_comes_after_backends_open_with_status_and_watchdog() {
    let hsm = SoftHsm::new("ready", "4242").unwrap();
    let pins = tempfile::tempdir().unwrap();
    softhsm_tests::write_secret(&pins.path().join("absent.pin"), "1111\n").unwrap();
    let notify = NotifyListener::new().unwrap();
    let (k, v) = notify.env();
    let mut daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .toml(&format!(
            "[[backend]]\nname = \"absent\"\ntype = \"pkcs11\"\nmodule = \"{MODULE}\"\n\
             token = \"no-such-token\"\npin = {{ file = \"{}\" }}\n",
            pins.path().join("absent.pin").display()
        ))
        .env(k, &v)
        .env("WATCHDOG_USEC", "200000")
        .start()
        .unwrap();

    let seen = notify.wait_for("READY", ready).unwrap();
    assert_eq!(seen[0], "STATUS=opening backends", "{seen:?}");
    assert_eq!(seen.iter().filter(|m| ready(m)).count(), 1, "{seen:?}");
    let status = field(seen.last().unwrap(), "STATUS").unwrap();
    assert_eq!(
        status,
        "1 of 2 backends available (hsm), 0 keys; unavailable: absent (see `notaryctl backend list`)"
    );
    let pings = notify
        .wait_for("two WATCHDOG=1", {
            let count = std::sync::atomic::AtomicUsize::new(0);
            move |m| {
                m == "WATCHDOG=1" && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
            }
        })
        .unwrap();
    assert!(pings.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2);

    // Keys on the token are loaded before readiness is reported.
    let mut client = connect(&daemon.socket).await.unwrap();
    generate(&mut client, NewKey::on("hsm").role("targets")).await;
    drop(client);
    daemon.restart().unwrap();
    let seen = notify.wait_for("READY after restart", ready).unwrap();
    let status = field(seen.last().unwrap(), "STATUS").unwrap();
    assert!(
        status.starts_with("1 of 2 backends available (hsm), 1 keys"),
        "{status}"
    );
    // SIGTERM right after READY=1: the handler is already installed, so the
    // daemon stops cleanly instead of dying of the signal.
    daemon.stop().unwrap();
    notify
        .wait_for("STOPPING", |m| m.starts_with("STOPPING=1"))
        .unwrap();
}

fn notaryctl_as(uid: u32, socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([&format!("--reuid={uid}"), "--regid=65534", "--clear-groups"])
        .arg(bin_path("notaryctl").unwrap())
        .arg("--keyd")
        .arg(socket)
        .args(args)
        .env_remove("NOTARY_KEYD_SOCKET");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn policy_for(uid: u32) -> String {
    format!("[[policy]]\nuids = [{uid}]\nallow = [\"list\", \"sign\"]\nkeys = [\"role:targets\"]\n")
}

fn reload(daemon: &Daemon, notify: &NotifyListener) -> String {
    kill(Pid::from_raw(daemon.pid().unwrap() as i32), Signal::SIGHUP).unwrap();
    let seen = notify.wait_for("READY after reload", ready).unwrap();
    let start = seen
        .iter()
        .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {seen:?}"));
    assert_eq!(start + 1, seen.len() - 1, "{seen:?}");
    field(seen.last().unwrap(), "STATUS").unwrap().to_string()
}

/// Signs on the shared connection; tells `queued` when the request had to
/// wait for the device.
async fn sign_noting_queue(
    mut client: pb::keyd_client::KeydClient<tonic::transport::Channel>,
    key_id: String,
    queued: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<pb::SignResult, tonic::Status> {
    let mut stream = client
        .sign(pb::SignRequest {
            key_id,
            payload: targets_payload(3),
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        match event.event {
            Some(pb::sign_event::Event::Progress(pb::Progress {
                kind: Some(pb::progress::Kind::Queued(_)),
            })) => {
                let _ = queued.send(());
            }
            Some(pb::sign_event::Event::Result(r)) => return Ok(r),
            _ => {}
        }
    }
    Err(tonic::Status::internal("no result"))
}

/// Sends `count` signatures with `key_id` (a slow key on a one-session
/// token) and returns once `queued` of them wait in the device's queue.
async fn flood_queue(
    client: &pb::keyd_client::KeydClient<tonic::transport::Channel>,
    key_id: &str,
    count: usize,
    queued: usize,
) -> Vec<tokio::task::JoinHandle<Result<pb::SignResult, tonic::Status>>> {
    let (queued_tx, mut waiting) = tokio::sync::mpsc::unbounded_channel();
    let flood = (0..count)
        .map(|_| {
            tokio::spawn(sign_noting_queue(
                client.clone(),
                key_id.to_string(),
                queued_tx.clone(),
            ))
        })
        .collect();
    drop(queued_tx);
    // (Queued is sent after 100 ms of waiting; RSA-4096 keeps them waiting.)
    tokio::time::timeout(Duration::from_secs(120), async {
        for _ in 0..queued {
            waiting
                .recv()
                .await
                .unwrap_or_else(|| panic!("fewer than {queued} requests were queued"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{queued} requests were not queued within 120 s"));
    flood
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_policy_keeps_in_flight_signs_and_survives_a_broken_file() {
    if !is_root() {
        eprintln!("skipped: needs root to call as other uids with setpriv");
        return;
    }
    let hsm = SoftHsm::new("reload", "8642").unwrap();
    // One session: signatures queue on the device, so one can be held in
    // flight behind others while the daemon reloads.
    let notify = NotifyListener::new().unwrap();
    let (k, v) = notify.env();
    let daemon = TestDaemon::new()
        .server("socket_group = \"nogroup\"")
        // 200 requests of one uid in flight: more than the default per-uid cap.
        .limit("max_requests_per_uid", 512)
        .softhsm_with(&hsm, "hsm", "sessions = 1\n")
        .unwrap()
        .toml(&policy_for(65533))
        .env(k, &v)
        .start()
        .unwrap();
    notify.wait_for("READY", ready).unwrap();
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let payload = daemon.dir.path().join("targets.json");
    std::fs::write(&payload, targets_payload(5)).unwrap();
    let payload = payload.to_str().unwrap();

    let mut client = connect(&daemon.socket).await.unwrap();
    let slow = generate(
        &mut client,
        NewKey::on("hsm")
            .algorithm(Algorithm::Rsa4096)
            .role("targets"),
    )
    .await;
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;

    let sign_as = |uid: u32| {
        notaryctl_as(
            uid,
            &daemon.socket,
            &["sign", "--key", &key.key_id, payload],
        )
    };

    // Fill the device's queue with slow RSA-4096 signatures.
    let flood = flood_queue(&client, &slow.key_id, 200, 20).await;
    // uid 65533 may sign now: its request is authorised and waits in line.
    let mut in_flight = Guard(Some(
        sign_as(65533)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stderr = in_flight.0.as_mut().unwrap().stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let waiting = lines.next().unwrap().unwrap();
    assert!(waiting.starts_with("Waiting for backend hsm"), "{waiting}");

    // The new policy no longer lets 65533 sign.
    let old = std::fs::read_to_string(daemon.config_path()).unwrap();
    let new = old.replace(&policy_for(65533), &policy_for(65532));
    std::fs::write(daemon.config_path(), &new).unwrap();
    let status = reload(&daemon, &notify);
    assert!(
        status.starts_with("1 of 1 backends available (hsm), 2 keys"),
        "{status}"
    );
    let still_running = in_flight.0.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(
        still_running,
        "the held signature finished before the reload; the flood is too short"
    );

    let child = in_flight.0.take().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "in-flight sign failed: {}",
        text(&out.stderr)
    );
    let sig: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sig["keyid"], key.key_id.as_str());
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(sig["sig"].as_str().unwrap())
        .unwrap();
    openssl_verify(
        "ecdsa",
        &key.public,
        "ecdsa",
        &targets_payload(5),
        &signature,
    )
    .unwrap();
    for task in flood {
        task.await.unwrap().unwrap();
    }

    // New requests see the new policy; the old connection still works.
    let refused: Output = sign_as(65533).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("uid 65533 may not sign"),
        "{}",
        text(&refused.stderr)
    );
    let allowed = sign_as(65532).output().unwrap();
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    let (_, owner) = sign(&mut client, &key.key_id, targets_payload(6)).await;
    owner.unwrap();

    // A broken file changes nothing and says why.
    std::fs::write(daemon.config_path(), new.replace("\"sign\"]", "\"sing\"]")).unwrap();
    let status = reload(&daemon, &notify);
    assert!(
        status.contains("reload failed, previous configuration kept"),
        "{status}"
    );
    assert!(status.contains("sing"), "{status}");
    assert!(daemon
        .log_text()
        .contains("reload failed; still running the previous configuration"));
    let allowed = sign_as(65532).output().unwrap();
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));

    let audit = daemon.audit_lines();
    let by = |uid: u32, allowed: bool| {
        audit
            .iter()
            .filter(|l| l["uid"] == uid && l["operation"] == "sign" && l["allowed"] == allowed)
            .count()
    };
    assert_eq!(
        by(65533, true),
        1,
        "the in-flight signature is audited as allowed"
    );
    assert_eq!(by(65533, false), 1);
    assert_eq!(by(65532, true), 2);
}

/// Backends are fixed for the life of the process: a reload that removes
/// one says in the status that the change waits for a restart, the
/// requests queued on it finish, and it keeps serving until the restart.
/// After the restart a request for its key is told which backend the key
/// is on and that it is not open, while the other backend serves; the token's keys are untouched,
/// so putting the section back brings them back.
#[tokio::test(flavor = "multi_thread")]
async fn reload_removing_a_backend_finishes_its_requests_and_applies_at_restart() {
    let hsm = SoftHsm::new("removed", "8642").unwrap();
    let notify = NotifyListener::new().unwrap();
    let (k, v) = notify.env();
    let mut daemon = TestDaemon::new()
        .soft("soft")
        .softhsm_with(&hsm, "hsm", "sessions = 1\n")
        .unwrap()
        .env(k, &v)
        .start()
        .unwrap();
    // The section a reload takes out, as the config holds it.
    let backend = format!("{}sessions = 1\n", hsm.backend_toml("hsm").unwrap());
    notify.wait_for("READY", ready).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let slow = generate(
        &mut client,
        NewKey::on("hsm")
            .algorithm(Algorithm::Rsa4096)
            .role("targets"),
    )
    .await;
    let other = generate(&mut client, NewKey::on("soft").role("targets")).await;

    // Queue slow signatures on the backend about to be removed.
    let flood = flood_queue(&client, &slow.key_id, 100, 10).await;

    let old = std::fs::read_to_string(daemon.config_path()).unwrap();
    let without = old.replace(&backend, "");
    assert_ne!(old, without);
    std::fs::write(daemon.config_path(), &without).unwrap();
    let status = reload(&daemon, &notify);
    assert!(
        status.ends_with("; changed, applied at the next restart: backend"),
        "{status}"
    );
    assert!(daemon
        .log_text()
        .contains("these changed sections take effect only after a restart"));
    let unfinished = flood.iter().filter(|t| !t.is_finished()).count();
    assert!(
        unfinished > 0,
        "the flood finished before the reload; too short"
    );
    for task in flood {
        let signed = task.await.unwrap().unwrap();
        assert_eq!(signed.key_id, slow.key_id);
    }
    // Still served until the restart.
    let (_, still) = sign(&mut client, &slow.key_id, targets_payload(7)).await;
    still.unwrap();

    daemon.restart().unwrap();
    notify.wait_for("READY after restart", ready).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let (_, gone) = sign(&mut client, &slow.key_id, targets_payload(8)).await;
    let gone = gone.unwrap_err();
    assert_eq!(
        keyd_proto::Reason::of(&gone),
        Some(keyd_proto::Reason::BackendUnavailable),
        "{gone:?}"
    );
    assert!(
        gone.message().starts_with(&format!(
            "key {} is on backend hsm, which this notary-keyd has not opened",
            slow.key_id
        )),
        "{gone:?}"
    );
    let (_, served) = sign(&mut client, &other.key_id, targets_payload(8)).await;
    served.unwrap();

    // The section back: the token's key is there again.
    std::fs::write(daemon.config_path(), &old).unwrap();
    daemon.restart().unwrap();
    notify
        .wait_for("READY after the second restart", ready)
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let (_, back) = sign(&mut client, &slow.key_id, targets_payload(9)).await;
    back.unwrap();
    let audit = daemon.audit_lines();
    let signs = |allowed: bool| {
        audit
            .iter()
            .filter(|l| l["operation"] == "sign" && l["allowed"] == allowed)
            .filter(|l| l["key_id"] == slow.key_id.as_str())
            .count()
    };
    assert_eq!(
        signs(true),
        102,
        "every signature on the removed backend is audited"
    );
    assert_eq!(signs(false), 1, "the refusal after the restart is audited");
    daemon.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_from_credentials_directory_unlocks_softhsm() {
    let hsm = SoftHsm::new("credential", "975310").unwrap();
    let creds = tempfile::tempdir().unwrap();
    // As systemd leaves a credential: read-only, and shown as 0440 when an
    // ACL grants the service user read (the ACL mask reads as group bits).
    let credential = creds.path().join("hsm.pin");
    std::fs::write(&credential, "975310\n").unwrap();
    std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o440)).unwrap();
    let config = TestDaemon::new().softhsm_pin(&hsm, "hsm", "{ credential = \"hsm.pin\" }");
    let daemon = config
        .clone()
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let (_, result) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    let result = result.unwrap();
    openssl_verify(
        "ecdsa",
        &key.public,
        method_of(&result),
        &targets_payload(2),
        &result.signature,
    )
    .unwrap();
    drop(daemon);

    // Without systemd's credentials the backend fails and says why.
    let daemon = config.soft("soft").start().unwrap();
    let log = daemon.log_text();
    assert!(
        log.contains("$CREDENTIALS_DIRECTORY is not set") && log.contains("LoadCredential"),
        "{log}"
    );
}

#[test]
fn root_with_a_config_file_needs_allow_root() {
    if !is_root() {
        eprintln!("skipped: only root is refused");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = soft_config(dir.path());
    let out = output_within(
        Command::new(bin_path("notary-keyd").unwrap())
            .arg("--config")
            .arg(&config)
            .env_remove("NOTARY_KEYD_SOCKET"),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to run as root with a config file"),
        "{err}"
    );
    assert!(err.contains("pass --allow-root"), "{err}");
    assert!(!socket.exists() && !dir.path().join("state").exists());

    // Personal mode (no config file) only warns, so a newcomer's first
    // command works even as root. Its stderr is closed after the warning:
    // losing the log stream must not kill the daemon.
    let home = tempfile::tempdir().unwrap();
    let mut personal = Guard(Some(
        Command::new(bin_path("notary-keyd").unwrap())
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", home.path())
            .env_remove("NOTARY_KEYD_SOCKET")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stderr = personal.0.as_mut().unwrap().stderr.take().unwrap();
    let first = std::io::BufReader::new(stderr)
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(
        first.contains("running as root in personal mode"),
        "{first}"
    );
    let socket = home.path().join("notary-keyd/keyd.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "personal mode never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(personal.pid(), Signal::SIGTERM).unwrap();
    assert!(personal.wait().success());
}

/// Starts the daemon through `sh`, which sets `$LISTEN_PID` to its own pid
/// and `exec`s (keeping the pid), with `setup` run first (e.g. opening fds).
fn activated_by_hand(setup: &str, env: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = soft_config(dir.path());
    let script = format!("{setup}\nLISTEN_PID=$$ {env} exec \"$0\" --config \"$1\" --allow-root",);
    let out = output_within(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bin_path("notary-keyd").unwrap())
            .arg(&config)
            .env_remove("NOTARY_KEYD_SOCKET"),
        Duration::from_secs(20),
    )
    .unwrap();
    assert!(
        !socket.exists(),
        "no socket of its own when activation is wrong"
    );
    out
}

#[test]
fn bad_socket_activation_is_refused_with_the_reason() {
    let out = activated_by_hand("", "LISTEN_FDS=two");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("$LISTEN_FDS is \"two\", not a number"),
        "{err}"
    );

    let out = activated_by_hand(
        "exec 3</dev/null 4</dev/null",
        "LISTEN_FDS=2 LISTEN_FDNAMES=signer:metrics",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("none is named \"keyd\"") && err.contains("FileDescriptorName=keyd"),
        "{err}"
    );

    let out = activated_by_hand("exec 3</dev/null", "LISTEN_FDS=1 LISTEN_FDNAMES=keyd");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("descriptor 3 (\"keyd\") is not a Unix socket: not a socket"),
        "{err}"
    );
}
