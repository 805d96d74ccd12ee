//! A caller who floods the daemon with key IDs it does not hold costs the
//! devices at most one rescan per `key_rescan_interval_seconds`, and a
//! caller without any rights costs them none; the daemon keeps serving.
//! Rescans are counted from the daemon's own debug log line.

use crate::common;

use common::{generate, notaryctl_as, sign, sign_as, targets_payload, NewKey, SignAs};
use softhsm_tests::{connect, Daemon, Rule, TestDaemon};

const RESCAN: &str = "rescanning devices for keys";

/// Rescans a miss asked for (not the one at start).
fn miss_rescans(daemon: &Daemon) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains(RESCAN) && l.contains("key not in the index"))
        .count()
}

fn soft_daemon(interval: u64) -> TestDaemon {
    TestDaemon::new()
        .limit("key_rescan_interval_seconds", interval)
        .soft("soft")
        .env("RUST_LOG", "info,notary_keyd::registry=debug")
}

fn unknown_id(i: usize) -> String {
    format!("{i:064x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_rescans_once_per_interval() {
    let daemon = soft_daemon(3600).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let mut tasks = Vec::new();
    for batch in 0..10 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let id = unknown_id(batch * 1000 + i);
                let (_, result) = sign_as(
                    &mut c,
                    &id,
                    targets_payload(1),
                    SignAs::default().role("targets"),
                )
                .await;
                let err = result.expect_err("no such key");
                assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The rescan at start is within the interval: 500 misses, no rescan.
    assert_eq!(miss_rescans(&daemon), 0, "{}", daemon.log_text());
    // The daemon still signs, and wrote one audit line per request.
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    let (_, signed) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    signed.unwrap();
    let audit = daemon.audit_lines();
    assert_eq!(
        audit.iter().filter(|l| l["operation"] == "sign").count(),
        501
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_rights_never_makes_the_daemon_rescan() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    // Interval 0: every miss of a caller with rights rescans.
    let daemon = soft_daemon(0).socket_group("nogroup").start().unwrap();
    let payload = daemon.dir.path().join("targets.json");
    std::fs::write(&payload, targets_payload(1)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o644)).unwrap();
    for i in 0..20 {
        let id = unknown_id(i);
        let o = notaryctl_as(
            65534,
            65534,
            &daemon,
            &["sign", "--key", &id, payload.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(1), "{o:?}");
    }
    assert_eq!(miss_rescans(&daemon), 0, "{}", daemon.log_text());
    // The owner's miss does rescan: the count above could have moved.
    let mut client = connect(&daemon.socket).await.unwrap();
    let (_, result) = sign(&mut client, &unknown_id(99), targets_payload(1)).await;
    assert_eq!(result.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(miss_rescans(&daemon), 1, "{}", daemon.log_text());
}

/// One uid's idle connections are capped; the connections beyond the cap
/// are closed at once, and another uid is still served while they stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_of_one_uid_leave_the_daemon_serving_others() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    let daemon = TestDaemon::new()
        .limit("max_connections_per_uid", 16)
        .soft("soft")
        .policy(Rule::uids(&[65534]).allow(&["list"]))
        .socket_group("nogroup")
        .start()
        .unwrap();
    // 500 connections that never send a byte. The daemon serves at most 16
    // of them (it greets those with its HTTP/2 settings, or stays silent)
    // and closes the rest: reading those gives end-of-file. (The harness's
    // own readiness probe may still hold a slot for a moment, so "at most".)
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap());
    }
    let (mut closed, mut served) = (0, 0);
    for conn in &mut idle {
        use std::io::Read;
        // Only so that a silent kept connection cannot hang the test.
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut bytes = [0u8; 64];
        match conn.read(&mut bytes) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => served += 1,
        }
    }
    assert!(
        served <= 16 && closed >= 500 - 16,
        "served {served}, closed {closed}"
    );
    let o = notaryctl_as(65534, 65534, &daemon, &["key", "list"]);
    assert!(o.status.success(), "{o:?}");
    // The refusals went to the log, not the audit log.
    assert!(
        daemon.audit_lines().len() <= 1,
        "{:?}",
        daemon.audit_lines()
    );
    assert!(daemon
        .log_text()
        .contains("max_connections_per_uid connections open"));
    drop(idle);
}

/// One uid's requests in progress are capped over all its connections:
/// the one beyond the cap is answered RESOURCE_EXHAUSTED with a reason
/// that names the limit, another uid is still served, and the uid gets
/// its place back when one of its requests ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_a_uids_limit_are_refused_and_others_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run clients as other uids with setpriv");
        return;
    }
    let mut daemon = TestDaemon::new()
        .limit("max_requests_per_uid", 4)
        .soft("soft")
        .policy(Rule::uids(&[65534]).allow(&["list"]))
        .socket_group("nogroup")
        .start()
        .unwrap();
    // Health watches are requests that stay in progress until dropped;
    // four of them, on two connections, fill this uid's places.
    let mut watches = Vec::new();
    for _ in 0..2 {
        let channel = softhsm_tests::client::channel(&daemon.socket)
            .await
            .unwrap();
        for _ in 0..2 {
            let mut health = HealthClient::new(channel.clone());
            let mut stream = health
                .watch(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap()
                .into_inner();
            stream.message().await.unwrap().expect("a first status");
            watches.push(stream);
        }
    }
    let mut client = connect(&daemon.socket).await.unwrap();
    let refused = client
        .list_keys(keyd_proto::keyd::ListKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(
        keyd_proto::Reason::of(&refused),
        Some(keyd_proto::Reason::TooManyRequests)
    );
    assert!(
        refused.message().contains("max_requests_per_uid"),
        "{refused:?}"
    );
    // Every refusal is answered, but a burst of them costs the daemon's log
    // about a line a second, not a line each.
    for _ in 0..50 {
        let refused = client
            .list_keys(keyd_proto::keyd::ListKeysRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    }
    let warned = daemon
        .log_text()
        .matches("max_requests_per_uid requests in progress")
        .count();
    assert!(
        (1..25).contains(&warned),
        "{warned} warnings for 51 refusals"
    );
    // notaryctl, as the same uid, says what happened.
    let o = common::notaryctl(&daemon, &["key", "list"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("busy with this user's other requests"),
        "{stderr}"
    );
    // Another uid is not affected.
    let o = notaryctl_as(65534, 65534, &daemon, &["key", "list"]);
    assert!(o.status.success(), "{o:?}");
    // A watch that ends gives its place back (the daemon sees the stream
    // reset shortly after the drop).
    watches.pop();
    let mut listed = None;
    for _ in 0..50 {
        match client
            .list_keys(keyd_proto::keyd::ListKeysRequest::default())
            .await
        {
            Ok(keys) => {
                listed = Some(keys);
                break;
            }
            Err(st) => {
                assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    assert!(listed.is_some(), "the place was not given back within 5 s");
    // The daemon's log names the limit.
    assert!(daemon
        .log_text()
        .contains("max_requests_per_uid requests in progress"));
    drop(watches);
    daemon.stop().unwrap();
}
