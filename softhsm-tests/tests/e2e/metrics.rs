//! The metrics endpoint of a real daemon, scraped after real signatures on
//! a SoftHSM2 token and the software keystore. The metric names are read
//! from docs/operations.md, so the documentation and the endpoint cannot
//! drift apart.

use crate::common;

use common::*;
use softhsm_tests::{connect, Daemon, SoftHsm, TestDaemon};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// `(name, type)` of every metric in the table of docs/operations.md.
fn documented() -> Vec<(String, String)> {
    let doc = include_str!("../../../docs/operations.md");
    doc.lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `notary_keyd_")?.split('|');
            let name = format!("notary_keyd_{}", cells.next()?.trim().trim_end_matches('`'));
            Some((name, cells.next()?.trim().to_string()))
        })
        .collect()
}

/// The response to `request` on the endpoint's socket.
fn http(socket: &Path, request: &str) -> String {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

struct Scrape {
    /// `# TYPE` lines: metric name to its type.
    types: BTreeMap<String, String>,
    /// Sample (name with its labels, as written) to value.
    samples: BTreeMap<String, f64>,
}

fn scrape(socket: &Path) -> Scrape {
    let response = http(socket, "GET /metrics HTTP/1.1\r\nHost: keyd\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            samples.insert(sample.to_string(), value.parse().unwrap());
        }
    }
    Scrape { types, samples }
}

impl Scrape {
    fn value(&self, sample: &str) -> f64 {
        *self
            .samples
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in {:#?}", self.samples))
    }

    /// The sum over the samples of `name` whose labels include `label`.
    fn sum(&self, name: &str, label: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(s, _)| s.starts_with(&format!("{name}{{")) && s.contains(label))
            .map(|(_, v)| v)
            .sum()
    }
}

/// The work both tests count: a soft key and a SoftHSM key, three
/// signatures with the first, a wrong PIN and one signature with the second.
async fn sign_on_both(
    client: &mut keyd_proto::keyd::keyd_client::KeydClient<tonic::transport::Channel>,
) {
    let gun = "example.com/app";
    let soft = generate(client, NewKey::on("soft").targets(gun)).await;
    for version in 1..=3 {
        let (_, signed) = sign(client, &soft.key_id, targets_payload(version)).await;
        signed.unwrap();
    }
    let on_hsm = generate(client, NewKey::on("hsm").targets(gun)).await;
    let (_, wrong) = sign_as(
        client,
        &on_hsm.key_id,
        targets_payload(1),
        SignAs::default().pin("0000"),
    )
    .await;
    assert!(wrong.is_err(), "a wrong PIN signed");
    let (_, signed) = sign(client, &on_hsm.key_id, targets_payload(2)).await;
    signed.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_metrics_count_real_signatures() {
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let endpoint = tempfile::tempdir().unwrap();
    let socket = endpoint.path().join("metrics.sock");
    let daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .soft("soft")
        .toml(&format!("[metrics]\nsocket = \"{}\"\n", socket.display()))
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    sign_on_both(&mut client).await;
    let missing = "0".repeat(64);
    let (_, unknown) = sign(&mut client, &missing, targets_payload(1)).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

    let metrics = scrape(&socket);
    // The documented names and types are exactly what is served.
    let documented = documented();
    assert_eq!(documented.len(), 7, "{documented:?}");
    let served: Vec<_> = metrics
        .types
        .iter()
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let mut expected = documented.clone();
    expected.sort();
    assert_eq!(served, expected);

    let ok = |backend: &str| {
        format!(
            "notary_keyd_requests_total{{operation=\"sign\",result=\"ok\",backend=\"{backend}\",algorithm=\"ecdsa_p256\"}}"
        )
    };
    assert_eq!(metrics.value(&ok("soft")), 3.0);
    assert_eq!(metrics.value(&ok("hsm")), 1.0);
    assert_eq!(
        metrics.sum("notary_keyd_requests_total", "backend=\"hsm\""),
        2.0
    );
    assert_eq!(
        metrics.value(
            "notary_keyd_requests_total{operation=\"sign\",result=\"not_found\",backend=\"\",algorithm=\"unknown\"}"
        ),
        1.0
    );
    for (backend, signatures) in [("soft", 3.0), ("hsm", 1.0)] {
        let labels = format!("{{backend=\"{backend}\"}}");
        assert_eq!(
            metrics.value(&format!("notary_keyd_sign_duration_seconds_count{labels}")),
            signatures
        );
        assert_eq!(
            metrics.value(&format!(
                "notary_keyd_sign_duration_seconds_bucket{{backend=\"{backend}\",le=\"+Inf\"}}"
            )),
            signatures
        );
        assert!(metrics.value(&format!("notary_keyd_sign_duration_seconds_sum{labels}")) > 0.0);
        assert_eq!(
            metrics.value(&format!("notary_keyd_backend_up{labels}")),
            1.0
        );
        assert_eq!(
            metrics.value(&format!("notary_keyd_queue_waiting{labels}")),
            0.0
        );
    }
    assert_eq!(
        metrics.value("notary_keyd_pin_failures_total{backend=\"hsm\"}"),
        1.0
    );
    assert_eq!(
        metrics.value("notary_keyd_pin_failures_total{backend=\"soft\"}"),
        0.0
    );

    // Six signing requests and two key generations, each audited: every
    // record of the chain but the segments' headers. A signature's outcome
    // is written after its reply, so the log may gain one between a scrape
    // and the read: a scrape before the read counts no more than the log
    // holds, one after it no fewer.
    let before = metrics.value("notary_keyd_audit_records_total");
    let written = daemon
        .audit_chain()
        .iter()
        .filter(|line| line["kind"] != "segment")
        .count() as f64;
    let records = scrape(&socket).value("notary_keyd_audit_records_total");
    assert!(
        before <= written && written <= records,
        "counted {before}, then {records}; the log holds {written}"
    );
    assert!(
        daemon.audit_lines().len() >= 8,
        "{:?}",
        daemon.audit_lines()
    );
    let batches = metrics.value("notary_keyd_audit_write_duration_seconds_count");
    assert!((1.0..=records).contains(&batches), "{batches} batches");

    let other = http(&socket, "GET /keys HTTP/1.1\r\n\r\n");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}

/// `notaryctl daemon status --json`, parsed.
fn daemon_status(daemon: &Daemon) -> serde_json::Value {
    let o = notaryctl(daemon, &["daemon", "status", "--json"]);
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `notaryctl daemon status` shows a person the figures the endpoint
/// gives a scraper, and what a reload could not apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_status_shows_the_metrics_and_what_waits_for_a_restart() {
    let hsm = SoftHsm::new("status", "1234").unwrap();
    let mut daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .soft("soft")
        .start()
        .unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        daemon.open_to_group("nogroup").unwrap();
    }
    let mut client = connect(&daemon.socket).await.unwrap();
    sign_on_both(&mut client).await;

    let status = daemon_status(&daemon);
    assert_eq!(status["pid"], daemon.pid().unwrap());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status["config_path"],
        daemon.config_path().display().to_string()
    );
    assert_eq!(
        status["summary"],
        "2 of 2 backends available (hsm, soft), 2 keys"
    );
    assert_eq!(status["pending_restart"], serde_json::json!([]));
    assert_eq!(status["last_reload_error"], "");
    assert!(status["audit_records"].as_u64().unwrap() >= 8, "{status}");
    let backend = |name: &str| {
        status["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("no backend {name} in {status}"))
            .clone()
    };
    let (soft_row, hsm_row) = (backend("soft"), backend("hsm"));
    assert_eq!(
        (&soft_row["signed"], &soft_row["failed"], &soft_row["keys"]),
        (&3.into(), &0.into(), &1.into())
    );
    assert_eq!(
        (
            &hsm_row["signed"],
            &hsm_row["failed"],
            &hsm_row["pin_failures"]
        ),
        (&1.into(), &1.into(), &1.into())
    );
    assert!(
        soft_row["mean_sign_micros"].as_u64().unwrap() > 0,
        "{soft_row}"
    );
    assert_eq!(soft_row["available"], true);

    // A reload that changes a fixed section: the status says a restart
    // applies it; a broken file: the status says the reload failed.
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    let changed = text.replace("[server]\n", "[server]\nmax_message_bytes = 1048576\n");
    assert_ne!(changed, text, "{text}");
    std::fs::write(daemon.config_path(), &changed).unwrap();
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.pid().unwrap() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    let until = |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        for _ in 0..100 {
            let status = daemon_status(&daemon);
            if done(&status) {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{what} not shown within 5 s: {}", daemon_status(&daemon));
    };
    hup();
    until("the pending restart", &|s| {
        s["pending_restart"] == serde_json::json!(["server"])
    });
    let o = notaryctl(&daemon, &["daemon", "status"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("restart needed:  changed since start, applied at the next restart: server"),
        "{shown}"
    );
    assert!(shown.contains("BACKEND"), "{shown}");
    // Which daemon this is: the socket notaryctl used, and as whom.
    let socket = format!("socket:          {}\n", daemon.socket.display());
    assert!(shown.contains(&socket), "{shown}");
    // The daemon's own user may do everything but sign-raw.
    let asked_as = format!(
        "asked as:        uid {}, which may list, sign, generate, delete, unlock (",
        nix::unistd::geteuid()
    );
    assert!(shown.contains(&asked_as), "{shown}");
    std::fs::write(daemon.config_path(), changed.replace("[server]", "[sever]")).unwrap();
    hup();
    let failed = until("the failed reload", &|s| s["last_reload_error"] != "");
    assert_eq!(failed["pending_restart"], serde_json::json!(["server"]));

    // Callers without the list permission see nothing.
    if root {
        let o = notaryctl_as(65534, 65534, &daemon, &["daemon", "status"]);
        assert!(!o.status.success(), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("may not see the daemon's status"),
            "{o:?}"
        );
    }
}
