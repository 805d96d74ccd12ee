//! The shipped units under a real systemd as PID 1: a Debian 12 container
//! (`softhsm_tests::container`), notary-keyd installed exactly as
//! docs/operations.md says, then what an operator relies on: socket
//! activation, the group gate, reload, the watchdog, restarts with keys
//! intact, PINs from credentials, the SoftHSM and signer-API drop-ins,
//! journald fields, a clean stop mid-signature, and the hardening score of
//! the running unit.
//!
//! Each test boots its own container. A machine that cannot boot one fails
//! these tests with a SKIPPED line unless NOTARY_KEYD_ALLOW_NO_CONTAINER=1.

use crate::common;

use anyhow::{ensure, Context, Result};
use keyd_proto::keyd as pb;
use softhsm_tests::container::{can_boot, source_binds, Container, Network, SOCKET};
use softhsm_tests::notary_stack::{free_port, NotaryServer, Pki, RemoteSigner, TrustService};
use softhsm_tests::{connect, openssl_verify, Rule, TestDaemon};
use std::path::Path;
use std::time::{Duration, Instant};

const SERVICE: &str = "notary-keyd.service";
const SOCKET_UNIT: &str = "notary-keyd.socket";

/// A booted container with notary-keyd installed as documented, the
/// socket enabled, and `alice` in the notary-keyd group (`bob` is not).
fn installed(network: Network) -> Result<Container> {
    let container = Container::boot(&source_binds()?, network)?;
    container.install_as_documented()?;
    container.add_user("alice", Some("notary-keyd"))?;
    container.add_user("bob", None)?;
    Ok(container)
}

/// `spec`'s config with the unit's directories for socket, state and
/// audit log.
fn config(spec: TestDaemon) -> String {
    spec.render(
        Path::new("/run/notary-keyd/keyd.sock"),
        Path::new("/var/lib/notary-keyd"),
        Path::new("/var/log/notary-keyd"),
    )
}

/// Members of notary-keyd may do `allow` with targets keys.
fn group_policy(c: &Container, allow: &[&str]) -> Result<Rule> {
    let gid = c.gid("notary-keyd")?;
    Ok(Rule::gids(&[gid]).allow(allow).keys(&["role:targets"]))
}

fn write_config(c: &Container, text: &str) -> Result<()> {
    c.write("/etc/notary-keyd/keyd.toml", text, 0o644)?;
    c.sh_ok("notary-keyd --check-config --config /etc/notary-keyd/keyd.toml")
        .context("the test's config does not check")?;
    Ok(())
}

/// A drop-in of the test's own (not one of systemd/drop-ins/).
fn drop_in(c: &Container, name: &str, text: &str) -> Result<()> {
    c.write(
        &format!("/etc/systemd/system/notary-keyd.service.d/{name}"),
        text,
        0o644,
    )?;
    c.sh_ok("systemctl daemon-reload")?;
    Ok(())
}

/// Generates a targets key for example.com/app as `user`; returns its ID.
fn generate(c: &Container, user: &str, backend: &str, algorithm: &str) -> Result<String> {
    c.generate_as(
        user,
        &format!(
            "--backend {backend} --algorithm {algorithm} --role targets --gun example.com/app"
        ),
    )
}

/// The decisions in the audit log's first segment (free space skipped,
/// request records left out: each request's outcome is its decision).
fn audit_lines(c: &Container) -> Result<Vec<serde_json::Value>> {
    let mut lines = Vec::new();
    for l in c.read("/var/log/notary-keyd/audit-000001.jsonl")?.lines() {
        if l.trim().is_empty() {
            continue;
        }
        let line: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("torn audit line {l:?}"))?;
        if line.get("operation").is_some() && line["kind"] != "request" {
            lines.push(line);
        }
    }
    Ok(lines)
}

#[test]
fn installed_as_documented_activates_on_connect_serves_its_group_and_reloads() -> Result<()> {
    if !can_boot("installed_as_documented_activates_on_connect_serves_its_group_and_reloads")? {
        return Ok(());
    }
    let c = installed(Network::Private)?;

    // Socket activation: enabled and listening, the daemon not started yet.
    ensure!(
        c.unit_property(SOCKET_UNIT, "ActiveState")? == "active",
        "socket activation: {SOCKET_UNIT} is not active after `systemctl enable --now`"
    );
    ensure!(
        c.unit_property(SERVICE, "ActiveState")? == "inactive",
        "socket activation: {SERVICE} started before anyone connected"
    );

    // The keystore passphrase as a plain credential (LoadCredential=).
    c.write(
        "/etc/notary-keyd/credentials/keystore.passphrase",
        "correct horse battery staple\n",
        0o600,
    )?;
    drop_in(
        &c,
        "credential.conf",
        "[Service]\nLoadCredential=keystore.passphrase:/etc/notary-keyd/credentials/keystore.passphrase\n",
    )?;
    let soft = "[[backend]]\nname = \"soft\"\ntype = \"soft\"\n\
                passphrase = { credential = \"keystore.passphrase\" }\n";
    write_config(
        &c,
        &config(
            TestDaemon::new()
                .toml(soft)
                .policy(group_policy(&c, &["list", "generate", "sign"])?),
        ),
    )?;

    // The first connection starts the daemon.
    let backends = c.notaryctl_ok("alice", "backend list")?;
    ensure!(
        backends.contains("soft"),
        "socket activation: alice's first `backend list` did not list the keystore:\n{backends}"
    );
    ensure!(
        c.unit_property(SERVICE, "ActiveState")? == "active",
        "socket activation: {SERVICE} is not active after the first connection"
    );
    let status = c.unit_property(SERVICE, "StatusText")?;
    ensure!(
        status.starts_with("1 of 1 backends available (soft)"),
        "STATUS= shown by systemctl: {status:?}"
    );

    // Group members are served; others cannot open the socket.
    let key = generate(&c, "alice", "soft", "ecdsa")?;
    c.sign_as("alice", &key)
        .context("a member of notary-keyd signs")?;
    let bob = c.as_user("bob", "notaryctl backend list")?;
    let stderr = String::from_utf8_lossy(&bob.stderr);
    ensure!(
        !bob.status.success() && stderr.contains("ermission denied"),
        "bob is not in notary-keyd: his connection must be refused by the socket's mode, got \
         {}: {stderr}",
        bob.status
    );
    let alice_uid = c.sh_ok("id -u alice")?.trim().parse::<u64>()?;
    let audit = audit_lines(&c)?;
    ensure!(
        audit
            .iter()
            .any(|l| l["uid"] == alice_uid && l["operation"] == "sign" && l["allowed"] == true),
        "no audit line for alice's signature: {audit:?}"
    );

    // `systemctl reload`: the new policy applies to the same process.
    let pid = c.unit_property(SERVICE, "MainPID")?;
    write_config(
        &c,
        &config(
            TestDaemon::new()
                .toml(soft)
                .policy(group_policy(&c, &["list"])?),
        ),
    )?;
    c.sh_ok("systemctl reload notary-keyd")?;
    let refused = c.as_user("alice", &format!("notaryctl sign --key {key} targets.json"))?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("may not sign"),
        "reload: the new policy (list only) still lets alice sign: {stderr}"
    );
    ensure!(
        c.unit_property(SERVICE, "MainPID")? == pid,
        "reload restarted the daemon"
    );
    // A broken file keeps the running configuration, and systemctl says so.
    c.write(
        "/etc/notary-keyd/keyd.toml",
        &config(
            TestDaemon::new()
                .toml(soft)
                .policy(group_policy(&c, &["lsit"])?),
        ),
        0o644,
    )?;
    c.sh_ok("systemctl reload notary-keyd")?;
    let status = c.unit_property(SERVICE, "StatusText")?;
    ensure!(
        status.contains("reload failed, previous configuration kept") && status.contains("lsit"),
        "reload of a broken file: STATUS= is {status:?}"
    );
    c.notaryctl_ok("alice", "key list")
        .context("after a failed reload the previous policy (list) still applies")?;

    journal_has_the_daemons_fields(&c)?;
    running_unit_scores_as_documented(&c)?;
    Ok(())
}

/// The daemon logs over journald's native protocol: its tracing fields are
/// journal fields, and the level is PRIORITY.
fn journal_has_the_daemons_fields(c: &Container) -> Result<()> {
    let json = c.sh_ok(&format!("journalctl --no-pager -o json -u {SERVICE}"))?;
    let entries: Vec<serde_json::Value> = json
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ready = entries
        .iter()
        .find(|e| {
            e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.starts_with("notary-keyd ready"))
        })
        .with_context(|| format!("journald: no \"notary-keyd ready\" entry:\n{json}"))?;
    ensure!(
        ready["_TRANSPORT"] == "journal",
        "journald: the daemon writes text lines to stdout/stderr, not journal entries: {ready}"
    );
    let status = ready["STATUS"].as_str().unwrap_or_default();
    ensure!(
        status.starts_with("1 of 1 backends available"),
        "journald: the ready entry has no STATUS field of its own: {ready}"
    );
    ensure!(
        ready["PRIORITY"] == "6" && ready["SYSLOG_IDENTIFIER"] == "notary-keyd",
        "journald: the ready entry's PRIORITY/SYSLOG_IDENTIFIER: {ready}"
    );
    let failed = entries
        .iter()
        .find(|e| {
            e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed"))
        })
        .context("journald: no entry for the failed reload")?;
    ensure!(
        failed["PRIORITY"] == "3" && failed["ERROR"].as_str().is_some_and(|e| e.contains("lsit")),
        "journald: the failed reload's entry should be an error with an ERROR field: {failed}"
    );
    // Anything the hardening denies (EPERM from the syscall filter, a
    // read-only path) would surface as a warning: there must be none.
    let warnings: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["_COMM"] == "notary-keyd" && e["PRIORITY"].as_str().is_some_and(|p| p <= "4"))
        .filter(|e| !std::ptr::eq(*e, failed))
        .collect();
    ensure!(
        warnings.is_empty(),
        "the daemon warned under the hardened unit: {warnings:#?}"
    );
    Ok(())
}

/// `systemd-analyze security` of the running unit (with the systemd of
/// Debian 12 as PID 1) gives the score docs/operations.md states.
fn running_unit_scores_as_documented(c: &Container) -> Result<()> {
    let out = c.sh_ok(&format!("systemd-analyze security --no-pager {SERVICE}"))?;
    let verdict = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("→ Overall exposure level for "))
        .with_context(|| format!("systemd-analyze security printed no overall score:\n{out}"))?;
    let docs =
        std::fs::read_to_string(softhsm_tests::container::repo().join("docs/operations.md"))?;
    let stated: String = verdict
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    ensure!(
        docs.contains(&format!("→ Overall exposure level for {stated}")),
        "the running unit scores {stated:?}, not what docs/operations.md states:\n{out}"
    );
    println!("systemd-analyze security (running unit): {verdict}");
    Ok(())
}

/// The soft keystore (unencrypted: this test is about restarts) and the
/// group policy, started by alice's first call.
fn serving_soft_keys(c: &Container) -> Result<()> {
    write_config(
        c,
        &config(
            TestDaemon::new()
                .soft("soft")
                .policy(group_policy(c, &["list", "generate", "sign"])?),
        ),
    )?;
    c.notaryctl_ok("alice", "backend list")?;
    Ok(())
}

/// Waits for systemd to run a new main process (not `old`) and be active.
fn wait_restarted(c: &Container, old: &str) -> Result<String> {
    c.wait_unit(SERVICE, "MainPID", Duration::from_secs(90), |pid| {
        pid != old && pid != "0"
    })?;
    c.wait_unit(SERVICE, "ActiveState", Duration::from_secs(30), |s| {
        s == "active"
    })?;
    c.unit_property(SERVICE, "MainPID")
}

/// The watchdog: a daemon that stops pinging is killed and restarted.
///
/// The stall is SIGSTOP from outside, not a test hook in the daemon: a
/// stopped process pings no more, exactly like a hung serving loop from
/// systemd's side, and there is no code path a production daemon could
/// take by accident. (That the pings come from the serving loop itself is
/// the lifecycle's design, checked by systemd_service.rs.)
#[test]
fn watchdog_restarts_a_stalled_daemon_and_kill_9_keeps_the_keys() -> Result<()> {
    if !can_boot("watchdog_restarts_a_stalled_daemon_and_kill_9_keeps_the_keys")? {
        return Ok(());
    }
    let c = installed(Network::Private)?;
    serving_soft_keys(&c)?;
    // (systemd shows the watchdog of a running service only.)
    let shipped = c.unit_property(SERVICE, "WatchdogUSec")?;
    ensure!(
        shipped == "30s",
        "the shipped unit's WatchdogSec= is {shipped}, not 30s"
    );
    // The same mechanism with a shorter limit, so the test waits seconds.
    drop_in(&c, "watchdog.conf", "[Service]\nWatchdogSec=4s\n")?;
    c.sh_ok("systemctl restart notary-keyd.service")?;
    let key = generate(&c, "alice", "soft", "ed25519")?;

    // Healthy: systemd records pings (its watchdog timestamp moves on).
    let first = c.wait_unit(
        SERVICE,
        "WatchdogTimestampMonotonic",
        Duration::from_secs(20),
        |t| t != "0",
    )?;
    c.wait_unit(
        SERVICE,
        "WatchdogTimestampMonotonic",
        Duration::from_secs(20),
        |t| t != first,
    )
    .context("watchdog: the daemon does not ping")?;

    let stalled = c.unit_property(SERVICE, "MainPID")?;
    c.sh_ok(&format!("kill -STOP {stalled}"))?;
    let pid =
        wait_restarted(&c, &stalled).context("watchdog: the stalled daemon was not restarted")?;
    let journal = c.journal(SERVICE)?;
    ensure!(
        journal.contains("Watchdog timeout"),
        "watchdog: the restart was not the watchdog's:\n{journal}"
    );
    c.sign_as("alice", &key)
        .context("after the watchdog restart")?;

    // kill -9: Restart=on-failure brings it back; the key is still there.
    c.sh_ok(&format!("kill -9 {pid}"))?;
    wait_restarted(&c, &pid).context("kill -9: the daemon was not restarted")?;
    c.sign_as("alice", &key)
        .context("after kill -9 the key signs again")?;
    let restarts: u32 = c.unit_property(SERVICE, "NRestarts")?.parse()?;
    ensure!(restarts == 2, "NRestarts is {restarts}, not 2");
    let signed = audit_lines(&c)?
        .iter()
        .filter(|l| l["operation"] == "sign" && l["allowed"] == true)
        .count();
    ensure!(
        signed == 2,
        "the audit log has {signed} allowed signatures, not 2"
    );
    Ok(())
}

/// The shipped SoftHSM and credentials drop-ins, with the PIN and the
/// keystore passphrase encrypted by `systemd-creds` as the docs show.
fn softhsm_with_encrypted_credentials(c: &Container) -> Result<()> {
    c.sh_ok(
        "softhsm2-util --init-token --free --label notary --pin 271828 --so-pin 31415926 && \
         chown -R notary-keyd:notary-keyd /var/lib/softhsm/tokens",
    )?;
    let creds = c.sh(
        "printf 271828 | systemd-creds encrypt --name=hsm.pin - /etc/notary-keyd/credentials/hsm.pin.cred && \
         printf 'a long keystore passphrase' | systemd-creds encrypt --name=keystore.passphrase - \
           /etc/notary-keyd/credentials/keystore.passphrase.cred",
    )?;
    ensure!(
        creds.status.success(),
        "LoadCredentialEncrypted=: systemd-creds cannot encrypt in this container: {}",
        String::from_utf8_lossy(&creds.stderr)
    );
    c.sh_ok(&format!(
        "cd {} && for d in credentials softhsm; do \
           install -D -m 0644 systemd/drop-ins/$d.conf /etc/systemd/system/notary-keyd.service.d/$d.conf; \
         done && systemctl daemon-reload",
        softhsm_tests::container::SOURCE
    ))?;
    let everything = ["list", "generate", "sign"];
    write_config(
        c,
        &config(
            TestDaemon::new()
                .toml(
                    "[[backend]]\nname = \"hsm\"\ntype = \"pkcs11\"\n\
                     module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken = \"notary\"\n\
                     pin = { credential = \"hsm.pin\" }\n\
                     # One session: signatures queue, so some are in flight at the stop.\n\
                     sessions = 1\n",
                )
                .toml(
                    "[[backend]]\nname = \"soft\"\ntype = \"soft\"\n\
                     passphrase = { credential = \"keystore.passphrase\" }\n",
                )
                .policy(group_policy(c, &everything)?)
                // Root (the host side of this test) may also generate and sign.
                .policy(Rule::uids(&[0]).allow(&everything).keys(&["role:targets"])),
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn softhsm_and_encrypted_credentials_then_a_clean_stop_mid_signature() -> Result<()> {
    if !can_boot("softhsm_and_encrypted_credentials_then_a_clean_stop_mid_signature")? {
        return Ok(());
    }
    let c = installed(Network::Private)?;
    softhsm_with_encrypted_credentials(&c)?;

    // Both backends open with the credentials systemd decrypted.
    let backends = c.notaryctl_ok("alice", "backend list")?;
    let status = c.unit_property(SERVICE, "StatusText")?;
    ensure!(
        status.starts_with("2 of 2 backends available (hsm, soft)"),
        "SoftHSM drop-in and LoadCredentialEncrypted=: {status:?}\n{backends}\n{}",
        c.journal(SERVICE)?
    );
    let on_hsm = generate(&c, "alice", "hsm", "ecdsa")?;
    c.sign_as("alice", &on_hsm)
        .context("alice signs on the SoftHSM token")?;
    let on_soft = generate(&c, "alice", "soft", "ed25519")?;
    c.sign_as("alice", &on_soft)
        .context("alice signs with the encrypted keystore")?;

    // Slow RSA-4096 signatures queue on the token's one session; stop the
    // service while they wait: every one finishes, then the daemon exits 0.
    let mut client = connect(&c.path(SOCKET)).await?;
    let slow = common::generate(
        &mut client,
        common::NewKey::on("hsm")
            .algorithm(common::Algorithm::Rsa4096)
            .role("targets"),
    )
    .await;
    let payload = common::targets_payload(7);
    let (queued_tx, mut queued) = tokio::sync::mpsc::unbounded_channel();
    // No more than the daemon's streams per connection (32 by default):
    // a request still queued in the client when the daemon says GOAWAY was
    // never in flight, and fails as it should.
    const FLOOD: usize = 30;
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (mut client, key, payload, queued) = (
                client.clone(),
                slow.key_id.clone(),
                payload.clone(),
                queued_tx.clone(),
            );
            tokio::spawn(async move {
                let (events, result) = common::sign(&mut client, &key, payload).await;
                if events
                    .iter()
                    .any(|e| matches!(e, pb::progress::Kind::Queued(_)))
                {
                    let _ = queued.send(());
                }
                (result, Instant::now())
            })
        })
        .collect();
    drop(queued_tx);
    queued
        .recv()
        .await
        .context("no signature had to wait for the token")?;
    let stop_sent = Instant::now();
    let stopping = {
        let leader = c.leader();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("nsenter")
                .args([
                    "-t",
                    &leader.to_string(),
                    "-m",
                    "-u",
                    "-i",
                    "-n",
                    "-p",
                    "-r",
                    "-w",
                ])
                .args(["systemctl", "stop", SERVICE])
                .output()
        })
    };
    let mut after_stop = 0;
    for task in flood {
        let (result, done) = task.await?;
        let result = result.context("a signature in flight at the stop failed")?;
        openssl_verify(
            "rsa",
            &slow.public,
            common::method_of(&result),
            &payload,
            &result.signature,
        )?;
        after_stop += usize::from(done > stop_sent);
    }
    let stopped = stopping.await??;
    ensure!(
        stopped.status.success(),
        "systemctl stop: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    ensure!(
        after_stop > 0,
        "every signature finished before the stop; the flood is too short to test it"
    );
    let (result, code, status) = (
        c.unit_property(SERVICE, "Result")?,
        c.unit_property(SERVICE, "ExecMainCode")?,
        c.unit_property(SERVICE, "ExecMainStatus")?,
    );
    ensure!(
        result == "success" && code == "1" && status == "0",
        "the daemon did not exit cleanly after finishing {after_stop} signatures: \
         Result={result} ExecMainCode={code} ExecMainStatus={status}\n{}",
        c.journal(SERVICE)?
    );
    let audited = audit_lines(&c)?
        .iter()
        .filter(|l| {
            l["operation"] == "sign" && l["key_id"] == slow.key_id.as_str() && l["allowed"] == true
        })
        .count();
    ensure!(audited == FLOOD, "{audited} of {FLOOD} signatures audited");
    println!("clean stop: {after_stop} of {FLOOD} signatures finished after `systemctl stop`");
    Ok(())
}

/// The signer API's certificate, key and client CA, readable by the daemon.
fn signer_api_tls(c: &Container, pki: &Pki) -> Result<()> {
    let tls = pki.issue("notary-keyd", "serverAuth")?;
    for (from, to, mode) in [
        (&tls.cert, "keyd.crt", 0o644),
        (&tls.key, "keyd.key", 0o640),
        (&pki.ca_cert, "ca.crt", 0o644),
    ] {
        c.write(
            &format!("/etc/notary-keyd/tls/{to}"),
            &std::fs::read_to_string(from)?,
            mode,
        )?;
    }
    c.sh_ok("chgrp notary-keyd /etc/notary-keyd/tls/keyd.key")?;
    Ok(())
}

/// The signer API (TCP, mutual TLS) is refused by the unit's hardening
/// until the shipped signer-api.conf (port edited) turns the network on;
/// then a stock notary-server on the host keeps its timestamp and snapshot
/// keys in the daemon and the stock CLI publishes through it.
#[test]
fn signer_api_needs_its_drop_in_and_then_serves_notary_server() -> Result<()> {
    if !can_boot("signer_api_needs_its_drop_in_and_then_serves_notary_server")? {
        return Ok(());
    }
    // The host's network: notary-server runs on the host and dials in.
    let c = installed(Network::Host)?;
    let pki = Pki::new("pid1-signer")?;
    signer_api_tls(&c, &pki)?;
    let port = free_port()?;
    write_config(
        &c,
        &config(TestDaemon::new().soft("soft").toml(&format!(
            "[signer_api]\nlisten = \"127.0.0.1:{port}\"\n\
             tls_cert = \"/etc/notary-keyd/tls/keyd.crt\"\ntls_key = \"/etc/notary-keyd/tls/keyd.key\"\n\
             client_ca = \"/etc/notary-keyd/tls/ca.crt\"\nbackend = \"soft\"\n\
             allowed_clients = [\"notary-server\"]\n"
        ))),
    )?;

    let refused = c.sh("systemctl start notary-keyd.service")?;
    let journal = c.journal(SERVICE)?;
    ensure!(
        !refused.status.success() && journal.contains("Address family not supported"),
        "without signer-api.conf the hardened unit must refuse a TCP listener:\n{journal}"
    );

    c.sh_ok(&format!(
        "mkdir -p /etc/systemd/system/notary-keyd.service.d && \
         sed 's/tcp:7899/tcp:{port}/' {}/systemd/drop-ins/signer-api.conf > \
           /etc/systemd/system/notary-keyd.service.d/signer-api.conf && \
         systemctl daemon-reload && systemctl restart notary-keyd.service",
        softhsm_tests::container::SOURCE
    ))
    .context("with signer-api.conf the daemon starts")?;

    let server = NotaryServer::start(
        &pki,
        &TrustService::Remote(RemoteSigner {
            addr: ([127, 0, 0, 1], port).into(),
            key_algorithm: "ecdsa".into(),
            client: pki.issue("notary-server", "serverAuth,clientAuth")?,
        }),
    )
    .with_context(|| {
        format!(
            "notary-server with the daemon as its signer:\n{}",
            c.journal(SERVICE).unwrap_or_default()
        )
    })?;
    let cli = server.cli()?;
    let gun = "example.com/pid1/signer";
    std::fs::write(cli.work_dir().join("app.txt"), "payload\n")?;
    cli.run(&["init", gun])?.ok()?;
    cli.run(&["add", gun, "v1", "app.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;
    let created = audit_lines(&c)?
        .iter()
        .filter(|l| {
            l["client"]
                .as_str()
                .is_some_and(|s| s.contains("notary-server"))
        })
        .count();
    ensure!(
        created > 0,
        "no signer-API call from notary-server was audited by the daemon"
    );
    Ok(())
}
