//! The metrics endpoint of a real daemon, scraped after real signatures on
//! a SoftHSM2 token and the software keystore. The metric names are read
//! from docs/operations.md, so the documentation and the endpoint cannot
//! drift apart.

mod common;

use common::*;
use softhsm_tests::{connect, Daemon, SoftHsm};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// `(name, type)` of every metric in the table of docs/operations.md.
fn documented() -> Vec<(String, String)> {
    let doc = include_str!("../../docs/operations.md");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_metrics_count_real_signatures() {
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let endpoint = tempfile::tempdir().unwrap();
    let socket = endpoint.path().join("metrics.sock");
    let config = format!(
        "{}\n[[backend]]\nname = \"soft\"\ntype = \"soft\"\n\n[metrics]\nsocket = \"{}\"\n",
        hsm.backend_toml("hsm").unwrap(),
        socket.display()
    );
    let conf = hsm.conf();
    let daemon = Daemon::start(&config, &[("SOFTHSM2_CONF", conf.to_str().unwrap())]).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    let gun = "example.com/app";
    let soft = generate(&mut client, "soft", "ecdsa", "p256", 0, "targets", gun).await;
    for version in 1..=3 {
        let (_, signed) = sign(
            &mut client,
            &soft.key_id,
            targets_payload(version),
            "",
            "",
            "",
        )
        .await;
        signed.unwrap();
    }
    let on_hsm = generate(&mut client, "hsm", "ecdsa", "p256", 0, "targets", gun).await;
    let (_, wrong) = sign(
        &mut client,
        &on_hsm.key_id,
        targets_payload(1),
        "",
        "",
        "0000",
    )
    .await;
    assert!(wrong.is_err(), "a wrong PIN signed");
    let (_, signed) = sign(&mut client, &on_hsm.key_id, targets_payload(2), "", "", "").await;
    signed.unwrap();
    let missing = "0".repeat(64);
    let (_, unknown) = sign(&mut client, &missing, targets_payload(1), "", "", "").await;
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
