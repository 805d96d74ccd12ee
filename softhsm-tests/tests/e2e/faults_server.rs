//! The notary server fails a publish: it answers 500 or 503, answers
//! garbage, or dies in the middle of the upload. Each time the publish
//! must fail with an error that says so, leave the staged change and the
//! cached metadata byte for byte as they were, and a later publish must go
//! through. The server notaryctl talks to is `faulty-front`, a real
//! process in front of Debian's notary-server (which keeps the collection
//! in memory, so killing the front end is how "the server dies" leaves a
//! collection to publish to afterwards).

use softhsm_tests::faults::FaultyFront;
use softhsm_tests::hostile::tree;
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, TestDaemon};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const GUN: &str = "example.com/faults/server";

type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

struct Stack {
    _pki: Pki,
    _server: NotaryServer,
    _daemon: Daemon,
    front: FaultyFront,
    ctl: Notaryctl,
}

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

/// A collection initialised and published through the front end.
fn stack(name: &str) -> Stack {
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let pki = Pki::new(name).unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let front = FaultyFront::start(&pki, &server).unwrap();
    let ctl = Notaryctl::new(&front.url, &pki.ca_cert, &daemon.socket).unwrap();
    ok(ctl.run(&["init", GUN, "-p"]));
    Stack {
        _pki: pki,
        _server: server,
        _daemon: daemon,
        front,
        ctl,
    }
}

/// Paths added, removed or rewritten between two `tree`s.
fn changed(before: &Tree, after: &Tree) -> Vec<PathBuf> {
    let mut changed: Vec<PathBuf> = before
        .iter()
        .filter(|(path, content)| after.get(*path) != Some(content))
        .map(|(path, _)| path.clone())
        .collect();
    changed.extend(after.keys().filter(|p| !before.contains_key(*p)).cloned());
    changed
}

/// Stages target `name`; returns the trust dir as it is then, its cache
/// up to date with the server (so a publish's update finds nothing new).
fn staged(s: &Stack, name: &str) -> Tree {
    let file = s.ctl.work_dir().join(name);
    std::fs::write(&file, format!("release {name}\n")).unwrap();
    ok(s.ctl.run(&["add", GUN, name, file.to_str().unwrap()]));
    ok(s.ctl.run(&["list", GUN]));
    tree(&s.ctl.trust_dir).unwrap()
}

/// The failed publish changed nothing; with the server healthy again the
/// same publish goes through and the change is no longer staged.
fn nothing_lost_and_published_later(s: &Stack, name: &str, before: &Tree, failed: &CliOutput) {
    assert!(
        !failed.status.success(),
        "the publish succeeded:\n{}",
        failed.stderr
    );
    let changed = changed(before, &tree(&s.ctl.trust_dir).unwrap());
    assert!(
        changed.is_empty(),
        "the failed publish changed the trust dir: {changed:?}\n{}",
        failed.stderr
    );
    s.front.fail("").unwrap();
    ok(s.ctl.run(&["publish", GUN]));
    let listed = ok(s.ctl.run(&["list", GUN]));
    listed.assert_prints(name);
    let status = ok(s.ctl.run(&["status", GUN]));
    assert!(
        !status.stdout.contains(name),
        "still staged:\n{}",
        status.stdout
    );
}

#[test]
fn answers_500_503_and_garbage_lose_nothing() {
    let s = stack("faults-server-answers");
    // (rule, what the error must say)
    let cases = [
        ("POST * status 500", "publish failed with HTTP 500"),
        ("POST * status 503", "publish failed with HTTP 503"),
        ("POST * garbage", "answered POST /v2/example.com/faults/server/_trust/tuf/ with something that is not HTTP"),
        ("GET timestamp.json status 503", "GET timestamp.json failed with HTTP 503"),
        ("GET * garbage", "with something that is not HTTP"),
    ];
    for (n, (rule, says)) in cases.iter().enumerate() {
        let name = format!("v{n}");
        let before = staged(&s, &name);
        s.front.fail(rule).unwrap();
        let failed = s.ctl.run(&["publish", GUN]).unwrap();
        eprintln!("{rule}: {}", failed.stderr.trim());
        assert!(
            failed.stderr.contains(says),
            "{rule}: the error does not say what happened:\n{}",
            failed.stderr
        );
        nothing_lost_and_published_later(&s, &name, &before, &failed);
    }
}

#[test]
fn the_server_killed_in_the_middle_of_the_upload_loses_nothing() {
    let mut s = stack("faults-server-killed");
    let before = staged(&s, "v1");
    s.front.fail("POST * hold").unwrap();
    let ctl = &s.ctl;
    let failed = std::thread::scope(|scope| {
        let publish = scope.spawn(|| ctl.run(&["publish", GUN]).unwrap());
        let held = s.front.wait_held(Duration::from_secs(120)).unwrap();
        assert!(held.starts_with("POST "), "{held}");
        s.front.kill().unwrap();
        publish.join().unwrap()
    });
    eprintln!("killed mid-upload: {}", failed.stderr.trim());
    assert!(
        failed.stderr.contains("broke during POST"),
        "the error does not say the upload was cut off:\n{}",
        failed.stderr
    );
    s.front.start_again().unwrap();
    nothing_lost_and_published_later(&s, "v1", &before, &failed);
}
