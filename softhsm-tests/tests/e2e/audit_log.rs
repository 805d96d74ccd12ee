//! The audit log v2 against the real daemon and real files: the chain and
//! its checkpoints across restarts and rotations, every kind of tampering
//! named by `notary-keyd audit verify`, a full disk (a real tmpfs), a crash
//! between a request's two records, and an audit key that signs nothing
//! but checkpoints.

use crate::common;

use common::{generate, reason, sign, targets_payload, Algorithm, NewKey};
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use sha2::{Digest, Sha256};
use softhsm_tests::{bin_path, connect, Audit, Daemon, Rule, TestDaemon};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `notary-keyd audit verify --key <state>/audit-key.pem PATH…`: whether it
/// says intact (exit 0), and what it printed.
fn verify(daemon: &Daemon, paths: &[&Path]) -> (bool, String) {
    let out = Command::new(bin_path("notary-keyd").unwrap())
        .args(["audit", "verify", "--key"])
        .arg(daemon.state_dir.join("audit-key.pem"))
        .args(paths)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        other => panic!("audit verify could not check ({other:?}):\n{text}"),
    }
}

fn assert_intact(daemon: &Daemon, paths: &[&Path]) -> String {
    let (intact, text) = verify(daemon, paths);
    assert!(intact, "{text}");
    assert!(text.contains("verdict: intact"), "{text}");
    text
}

/// `n` signatures from `streams` concurrent connections; panics on any
/// failure.
async fn sign_many(daemon: &Daemon, key_id: &str, n: usize, streams: usize) {
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut client = connect(&daemon.socket).await.unwrap();
        let key_id = key_id.to_string();
        let mine = n / streams + usize::from(s < n % streams);
        tasks.push(tokio::spawn(async move {
            for i in 0..mine {
                let (_, r) = sign(&mut client, &key_id, targets_payload(i as u32)).await;
                r.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn signatures(daemon: &Daemon) -> usize {
    daemon
        .audit_lines()
        .iter()
        .filter(|l| l["operation"] == "sign" && l["result"] == "ok")
        .count()
}

/// Sign requests whose record reached the disk before their reply.
fn sign_requests(daemon: &Daemon) -> usize {
    daemon
        .audit_chain()
        .iter()
        .filter(|l| l["kind"] == "request" && l["operation"] == "sign")
        .count()
}

fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            let index = name
                .strip_prefix("audit-")?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()?;
            Some((index, path))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_and_checkpoints_verify_after_10000_signatures_and_three_restarts() {
    let log = tempfile::tempdir().unwrap();
    let mut daemon = TestDaemon::new()
        .audit(
            Audit::in_dir(log.path())
                .max_size("256K")
                .checkpoint_records(1000),
        )
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    for round in 0..4 {
        if round > 0 {
            daemon.restart().unwrap();
        }
        sign_many(&daemon, &key.key_id, 2500, 32).await;
    }
    daemon.stop().unwrap();
    assert_eq!(signatures(&daemon), 10_000);
    let text = assert_intact(&daemon, &[log.path()]);
    let checkpoints: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("checkpoints: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // At least one per 1,000 records and one at each of the four stops.
    assert!(checkpoints >= 12, "{text}");
    assert!(text.contains("open requests: none"), "{text}");
    assert!(segments(log.path()).len() > 1, "the log rotated");
    // The last line is the checkpoint written at the last stop.
    let last = daemon.audit_chain().pop().unwrap();
    assert_eq!(last["kind"], "checkpoint", "{last}");
    let starts = daemon
        .audit_chain()
        .iter()
        .filter(|l| l["kind"] == "start")
        .count();
    assert_eq!(starts, 4);
}

/// A stopped daemon's log of several 64 KiB segments.
async fn sample_log() -> (Daemon, tempfile::TempDir) {
    let log = tempfile::tempdir().unwrap();
    let mut daemon = TestDaemon::new()
        .audit(
            Audit::in_dir(log.path())
                .max_size("64K")
                .checkpoint_records(100),
        )
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    sign_many(&daemon, &key.key_id, 600, 8).await;
    daemon.stop().unwrap();
    assert!(segments(log.path()).len() >= 3);
    (daemon, log)
}

/// A copy of the log with `tamper` applied to its segments' record lines
/// (free space dropped); `None` removes the segment.
fn tampered(
    from: &Path,
    tamper: impl Fn(u64, &mut Vec<String>) -> Option<()>,
) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for (index, path) in segments(from) {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        if tamper(index, &mut lines).is_some() {
            let mut out = lines.join("\n");
            out.push('\n');
            std::fs::write(copy.path().join(path.file_name().unwrap()), out).unwrap();
        }
    }
    copy
}

fn sha256_hex(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

/// The first bad record `audit verify` names: "… audit-00000N.jsonl line L".
fn named(daemon: &Daemon, dir: &Path) -> String {
    let (intact, text) = verify(daemon, &[dir]);
    assert!(!intact, "tampering not noticed:\n{text}");
    let verdict = text
        .lines()
        .find(|l| l.starts_with("verdict: NOT INTACT"))
        .unwrap_or_else(|| panic!("{text}"));
    verdict.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_every_kind_of_tampering() {
    let (daemon, log) = sample_log().await;
    let untouched = tampered(log.path(), |_, _| Some(()));
    assert_intact(&daemon, &[untouched.path()]);

    let deleted = tampered(log.path(), |i, lines| {
        if i == 2 {
            lines.remove(40);
        }
        Some(())
    });
    let v = named(&daemon, deleted.path());
    assert!(v.contains("audit-000002.jsonl line 41"), "{v}");
    assert!(v.contains("missing"), "{v}");

    let edited = tampered(log.path(), |i, lines| {
        if i == 1 {
            lines[30] = lines[30].replace("\"allowed\":true", "\"allowed\":false");
        }
        Some(())
    });
    let v = named(&daemon, edited.path());
    assert!(v.contains("audit-000001.jsonl line 31"), "{v}");
    assert!(v.contains("edited"), "{v}");

    let reordered = tampered(log.path(), |i, lines| {
        if i == 3 {
            lines.swap(10, 11);
        }
        Some(())
    });
    let v = named(&daemon, reordered.path());
    assert!(v.contains("audit-000003.jsonl line 11"), "{v}");

    let inserted = tampered(log.path(), |i, lines| {
        if i == 2 {
            let copy = lines[5].clone();
            lines.insert(20, copy);
        }
        Some(())
    });
    let v = named(&daemon, inserted.path());
    assert!(v.contains("audit-000002.jsonl line 21"), "{v}");
    assert!(v.contains("inserted"), "{v}");

    let removed = tampered(log.path(), |i, _| (i != 2).then_some(()));
    let v = named(&daemon, removed.path());
    assert!(v.contains("segment 2 is missing"), "{v}");

    // The last line is the checkpoint of the stop: a changed time no
    // longer matches its signature.
    let last_edited = tampered(log.path(), |_, lines| {
        let last = lines.len() - 1;
        if lines[last].contains("\"kind\":\"checkpoint\"") {
            lines[last] = lines[last].replacen("\"time\":\"20", "\"time\":\"19", 1);
        }
        Some(())
    });
    let v = named(&daemon, last_edited.path());
    assert!(v.contains("does not verify"), "{v}");

    // A forged checkpoint, appended with a correct link: its signature is
    // one taken from a real checkpoint, over another head.
    let last_index = segments(log.path()).last().unwrap().0;
    let forged = tampered(log.path(), |i, lines| {
        if i == last_index {
            let last = lines.last().unwrap().clone();
            let value: serde_json::Value = serde_json::from_str(&last).unwrap();
            let seq = value["seq"].as_u64().unwrap();
            let line = format!(
                r#"{{"seq":{},"prev":"{}","kind":"checkpoint","time":"2030-01-01T00:00:00Z","head_seq":{seq},"head":"{}","key_id":"{}","sig":"{}"}}"#,
                seq + 1,
                sha256_hex(&last),
                sha256_hex(&last),
                value["key_id"].as_str().unwrap(),
                value["sig"].as_str().unwrap(),
            );
            lines.push(line);
        }
        Some(())
    });
    let v = named(&daemon, forged.path());
    assert!(v.contains("does not verify"), "{v}");
    assert!(
        v.contains(&format!(
            "{} line",
            segments(log.path())
                .last()
                .unwrap()
                .1
                .file_name()
                .unwrap()
                .to_string_lossy()
        )),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_keeps_every_record_and_keep_removes_only_the_oldest() {
    let log = tempfile::tempdir().unwrap();
    let mut daemon = TestDaemon::new()
        .audit(Audit::in_dir(log.path()).max_size("64K"))
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(
        &mut client,
        NewKey::on("soft")
            .algorithm(Algorithm::Ed25519)
            .role("targets"),
    )
    .await;
    sign_many(&daemon, &key.key_id, 2000, 32).await;
    let before = segments(log.path());
    assert!(before.len() >= 5, "{before:?}");
    // Each request record is durable before its reply; an outcome may
    // still be on its way, so outcomes are counted once the daemon stopped.
    assert_eq!(
        sign_requests(&daemon),
        2000,
        "no request lost in a rotation"
    );
    daemon.stop().unwrap();
    assert_eq!(signatures(&daemon), 2000, "no outcome lost in a rotation");
    assert_intact(&daemon, &[log.path()]);

    // keep = 3: after the next rotations only the three newest remain.
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(
        &daemon.config,
        text.replace("max_size = \"64K\"", "max_size = \"64K\"\nkeep = 3"),
    )
    .unwrap();
    daemon.restart().unwrap();
    sign_many(&daemon, &key.key_id, 800, 16).await;
    daemon.stop().unwrap();
    // The three left are the newest: consecutive, up to the current one.
    let after = segments(log.path());
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after[2].0 > before.last().unwrap().0, "{after:?}");
    assert_eq!(after[1].0, after[0].0 + 1);
    assert_eq!(after[2].0, after[0].0 + 2);
    let text = assert_intact(&daemon, &[log.path()]);
    assert!(text.contains("continues an earlier one"), "{text}");
}

/// A tmpfs of `size` mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount a tmpfs");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_bytes(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.path()).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_every_request_of_the_batch_and_the_chain_continues() {
    let Some(disk) = Tmpfs::mount("512k") else {
        return;
    };
    let log = disk.path().join("audit");
    let mut daemon = TestDaemon::new()
        .audit(Audit::in_dir(&log).max_size("64K"))
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    // Once the next segment is made ahead, leave room for records but not
    // for the one after it.
    let spare = log.join(".audit-next.jsonl.tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&spare).map_or(true, |m| m.len() < 64 * 1024) {
        assert!(std::time::Instant::now() < deadline, "no spare segment");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let filler = disk.path().join("filler");
    let keep_free = 16 * 1024;
    std::fs::write(&filler, vec![0u8; (disk.free_bytes() - keep_free) as usize]).unwrap();

    let mut signed = 0;
    let refused = loop {
        let (_, r) = sign(&mut client, &key.key_id, targets_payload(signed)).await;
        match r {
            Ok(_) => signed += 1,
            Err(st) => break st,
        }
        assert!(signed < 2000, "the disk never filled");
    };
    assert_eq!(reason(&refused), Some(Reason::AuditFailed), "{refused:?}");
    assert!(refused.message().contains("withheld"), "{refused:?}");
    assert!(refused.message().contains("No space left"), "{refused:?}");
    assert!(
        refused.message().contains(log.to_str().unwrap()),
        "{refused:?}"
    );

    // A batch of concurrent requests: every one is refused, none signed.
    let mut batch = Vec::new();
    for i in 0..8u32 {
        let mut client = connect(&daemon.socket).await.unwrap();
        let key_id = key.key_id.clone();
        batch.push(tokio::spawn(async move {
            sign(&mut client, &key_id, targets_payload(5000 + i))
                .await
                .1
        }));
    }
    for t in batch {
        let st = t.await.unwrap().unwrap_err();
        assert_eq!(reason(&st), Some(Reason::AuditFailed), "{st:?}");
    }
    // No torn line, no record of a refused request. Every signature sent
    // had its request on disk first; the outcome of the last one may not
    // have fitted, and verify reports that request as open.
    assert_intact(&daemon, &[&log]);
    assert_eq!(sign_requests(&daemon), signed as usize);

    // Space returns: the next request is signed and the chain goes on.
    std::fs::remove_file(&filler).unwrap();
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(9999)).await;
    r.unwrap();
    daemon.stop().unwrap();
    assert_intact(&daemon, &[&log]);
    assert_eq!(sign_requests(&daemon), signed as usize + 1);
    let last_sign = daemon
        .audit_lines()
        .into_iter()
        .rev()
        .find(|l| l["operation"] == "sign")
        .unwrap();
    assert_eq!(last_sign["kind"], "outcome");
    assert_eq!(last_sign["result"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_key_signs_only_checkpoints_for_every_caller() {
    let uid = nix::unistd::geteuid().as_raw();
    // Everyone may do everything, raw signing included.
    let everything = ["list", "sign", "sign-raw", "generate", "delete", "unlock"];
    let mut daemon = TestDaemon::new()
        .soft("soft")
        .policy(Rule::uids(&[uid, 65534]).allow(&everything))
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let audit_key = std::fs::read_to_string(daemon.state_dir.join("audit-key.json")).unwrap();
    let audit_key: serde_json::Value = serde_json::from_str(&audit_key).unwrap();
    assert_eq!(
        audit_key["backend"], "soft",
        "no TPM or HSM: the software keystore"
    );
    let id = audit_key["key_id"].as_str().unwrap().to_string();

    // No request reaches it: it is not among the keys, whoever asks.
    let refused = |st: tonic::Status| {
        assert_eq!(reason(&st), Some(Reason::KeyNotFound), "{st:?}");
    };
    let listed = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(listed.iter().all(|k| k.key_id != id), "{listed:?}");
    let st = client
        .get_key(pb::GetKeyRequest { key: id.clone() })
        .await
        .unwrap_err();
    refused(st);
    for payload in [targets_payload(1), b"raw bytes".to_vec()] {
        let (_, r) = sign(&mut client, &id, payload).await;
        refused(r.unwrap_err());
    }
    let mut stream = client
        .issue_root_certificate(pb::IssueRootCertificateRequest {
            key_id: id.clone(),
            gun: "example.com/audit".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let outcome = loop {
        match stream.message().await {
            Ok(Some(pb::IssueRootCertificateEvent {
                event: Some(pb::issue_root_certificate_event::Event::Certificate(_)),
            })) => panic!("the audit key made a root certificate"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("no outcome"),
            Err(st) => break st,
        }
    };
    refused(outcome);
    let st = client
        .delete_key(pb::DeleteKeyRequest {
            key_id: id.clone(),
            confirm_key_id: id.clone(),
        })
        .await
        .unwrap_err();
    refused(st);

    // Another uid, with every permission: refused the same way.
    if nix::unistd::geteuid().is_root() {
        daemon.open_to_group("nogroup").unwrap();
        let payload = daemon.dir.path().join("payload.json");
        std::fs::write(&payload, targets_payload(2)).unwrap();
        std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_path("notaryctl").unwrap())
            .arg("--keyd")
            .arg(&daemon.socket)
            .args(["sign", "--key", &id])
            .arg(&payload)
            .env_remove("NOTARY_KEYD_SOCKET")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("no key"), "{err}");
    }
    // It is there still, and its public key is the one notaryctl shows.
    let shown = common::notaryctl(&daemon, &["audit", "key", "--pem"]);
    assert!(shown.status.success());
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        std::fs::read_to_string(daemon.state_dir.join("audit-key.pem")).unwrap()
    );
    // The checkpoints it does sign still verify.
    daemon.stop().unwrap();
    let text = assert_intact(&daemon, &[&daemon.audit_dir]);
    assert!(!text.contains("checkpoints: none"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_audit_log_setting_writes_segments_beside_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("audit.jsonl");
    std::fs::write(&old, "{\"operation\":\"sign\"}\n").unwrap();
    let mut daemon = TestDaemon::new().soft("soft").start().unwrap();
    // Point [server] audit_log at the old file instead of the [audit] table.
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let table = format!(
        "[audit]\ndir = \"{}\"\nmax_size = \"1M\"\n",
        daemon.audit_dir.display()
    );
    let text = text.replace(&table, "").replacen(
        "[server]\n",
        &format!("[server]\naudit_log = \"{}\"\n", old.display()),
        1,
    );
    std::fs::write(&daemon.config, text).unwrap();
    daemon.restart().unwrap();
    daemon.stop().unwrap();
    assert_eq!(
        std::fs::read_to_string(&old).unwrap(),
        "{\"operation\":\"sign\"}\n"
    );
    assert_eq!(segments(dir.path()).len(), 1);
    assert!(daemon
        .log_text()
        .contains("[server] audit_log is read as [audit] dir"));
    assert_intact(&daemon, &[dir.path()]);
}

/// A daemon whose only backend is a fresh swtpm; the auth file's directory
/// lives as long as the test.
fn tpm_daemon() -> (softhsm_tests::Swtpm, tempfile::TempDir, Daemon) {
    let tpm = softhsm_tests::Swtpm::start().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let auth = secrets.path().join("key.auth");
    softhsm_tests::write_secret(&auth, "tpm key auth\n").unwrap();
    let daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth).start().unwrap();
    (tpm, secrets, daemon)
}

/// Stops the TPM (SIGSTOP), starts a Sign of `payload` on a connection of
/// its own and returns once its request record is on disk, the
/// `requests`-th Sign request of the log: the Sign then waits on the
/// device. The caller resumes the TPM with `SIGCONT` to `swtpm`.
async fn sign_held_on_the_tpm(
    daemon: &Daemon,
    swtpm: nix::unistd::Pid,
    key_id: &str,
    payload: Vec<u8>,
    requests: usize,
) -> tokio::task::JoinHandle<(
    Vec<pb::progress::Kind>,
    Result<pb::SignResult, tonic::Status>,
)> {
    nix::sys::signal::kill(swtpm, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let key_id = key_id.to_string();
    let mut held_client = connect(&daemon.socket).await.unwrap();
    let held = tokio::spawn(async move { sign(&mut held_client, &key_id, payload).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sign_requests(daemon) < requests {
        assert!(std::time::Instant::now() < deadline, "no request record");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_requests_two_records_leaves_one_open_request() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let (mut tpm, _secrets, mut daemon) = tpm_daemon();
    let audit_key: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(daemon.state_dir.join("audit-key.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        audit_key["backend"], "tpm",
        "a TPM holds the audit key when there is one"
    );
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("tpm").role("targets")).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();

    // The TPM stops answering: the next Sign's request record is written,
    // then it waits on the device; the daemon is killed right there.
    let swtpm = Pid::from_raw(i32::try_from(tpm.pid().unwrap()).unwrap());
    let stuck = sign_held_on_the_tpm(&daemon, swtpm, &key.key_id, targets_payload(2), 2).await;
    kill(Pid::from_raw(daemon.pid().unwrap() as i32), Signal::SIGKILL).unwrap();
    assert!(
        stuck.await.unwrap().1.is_err(),
        "no signature left the daemon"
    );
    kill(swtpm, Signal::SIGCONT).unwrap();

    let (intact, text) = verify(&daemon, &[&daemon.audit_dir]);
    assert!(intact, "{text}");
    let open: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("open request:"))
        .collect();
    assert_eq!(open.len(), 1, "{text}");
    assert!(
        open[0].contains(&key.key_id) && open[0].contains("a signature may exist"),
        "{text}"
    );
    assert!(
        !text.contains("unsigned checkpoint") && !text.contains("new chain"),
        "{text}"
    );

    // A restart continues the chain; the request stays open.
    daemon.restart().unwrap();
    daemon.stop().unwrap();
    let text = assert_intact(&daemon, &[&daemon.audit_dir]);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("open request:"))
            .count(),
        1,
        "{text}"
    );
    tpm.kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_whose_client_went_away_is_recorded_as_not_delivered() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let (mut tpm, _secrets, mut daemon) = tpm_daemon();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("tpm").role("targets")).await;

    // The TPM stops answering while a Sign waits on it; its client goes
    // away (the connection closes), then the TPM answers again.
    let swtpm = Pid::from_raw(i32::try_from(tpm.pid().unwrap()).unwrap());
    let gone = sign_held_on_the_tpm(&daemon, swtpm, &key.key_id, targets_payload(7), 1).await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    kill(swtpm, Signal::SIGCONT).unwrap();

    // The device signed; the outcome says the signature never left.
    let digest = hex::encode(Sha256::digest(targets_payload(7)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let outcome = loop {
        let found = daemon
            .audit_chain()
            .into_iter()
            .find(|l| l["kind"] == "outcome" && l["payload_sha256"] == digest.as_str());
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no outcome record");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(outcome["allowed"], false, "{outcome}");
    assert!(
        outcome["result"]
            .as_str()
            .unwrap()
            .starts_with("not delivered"),
        "{outcome}"
    );
    // Nothing else was recorded as signed for that payload, and the log
    // holds no open request.
    assert_eq!(signatures(&daemon), 0);
    daemon.stop().unwrap();
    let text = assert_intact(&daemon, &[&daemon.audit_dir]);
    assert!(!text.contains("open request:"), "{text}");
    tpm.kill().unwrap();
}

/// The raw last line of the log and the last checkpoint line, read while
/// the log stands still: both are read again until two reads agree.
async fn settled_tail(daemon: &Daemon) -> (String, serde_json::Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = daemon.audit_text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            .collect();
        let checkpoint = lines
            .iter()
            .rev()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["kind"] == "checkpoint");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let (Some(last), Some(checkpoint)) = (lines.last(), checkpoint) {
            if daemon.audit_text() == text {
                return (last.to_string(), checkpoint);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log never settled"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notaryctl_audit_status_and_key_show_what_the_files_hold() {
    let log = tempfile::tempdir().unwrap();
    let mut daemon = TestDaemon::new()
        .audit(Audit::in_dir(log.path()).checkpoint_records(10))
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    sign_many(&daemon, &key.key_id, 25, 1).await;
    let (last, checkpoint) = settled_tail(&daemon).await;
    let last_seq = serde_json::from_str::<serde_json::Value>(&last).unwrap()["seq"].clone();

    // The machine-readable status is the tail of the files.
    let out = common::notaryctl(&daemon, &["audit", "status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["head_seq"], last_seq, "{status}");
    assert_eq!(status["head_hash"], sha256_hex(&last), "{status}");
    assert_eq!(status["dir"], log.path().display().to_string(), "{status}");
    let current = segments(log.path()).pop().unwrap().1;
    assert_eq!(
        status["segment"],
        current.file_name().unwrap().to_str().unwrap(),
        "{status}"
    );
    let segment_size = std::fs::metadata(&current).unwrap().len();
    assert_eq!(status["segment_size"], segment_size, "{status}");
    assert!(status["segment_bytes"].as_u64().unwrap() <= segment_size);
    let shown = &status["last_checkpoint"];
    assert_eq!(shown["seq"], checkpoint["seq"], "{status}");
    assert_eq!(shown["time"], checkpoint["time"], "{status}");
    assert_eq!(shown["head_seq"], checkpoint["head_seq"], "{status}");
    assert_eq!(shown["head_hash"], checkpoint["head"], "{status}");
    assert_eq!(status["audit_key_id"], checkpoint["key_id"], "{status}");

    // The text form says the same for a person.
    let out = common::notaryctl(&daemon, &["audit", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for expected in [
        format!("head:            seq {last_seq} {}", sha256_hex(&last)),
        format!(
            "last checkpoint: seq {} at {}, signs seq {} {}",
            checkpoint["seq"],
            checkpoint["time"].as_str().unwrap(),
            checkpoint["head_seq"],
            checkpoint["head"].as_str().unwrap()
        ),
        format!(
            "audit key:       {}",
            checkpoint["key_id"].as_str().unwrap()
        ),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }

    // `audit key` names the key that signs the checkpoints and prints the
    // public key `audit verify --key` takes.
    let pem = std::fs::read_to_string(daemon.state_dir.join("audit-key.pem")).unwrap();
    let out = common::notaryctl(&daemon, &["audit", "key"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let key_line = format!("key ID:    {}", checkpoint["key_id"].as_str().unwrap());
    assert!(text.starts_with(&format!("{key_line}\n")), "{text}");
    assert!(text.contains("backend:   soft\n"), "{text}");
    assert!(text.ends_with(&pem), "{text}");

    // A uid no rule lets list is told why, and sees neither.
    daemon.open_to_group("nogroup").unwrap();
    for args in [["audit", "status"], ["audit", "key"]] {
        let out = common::notaryctl_as(65534, 65534, &daemon, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("may not list"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
