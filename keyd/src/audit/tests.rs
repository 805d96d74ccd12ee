use super::config::ByteSize;
use super::*;
use std::time::{Duration, Instant};

/// Small segments: each log here costs the disk little.
fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        max_size: ByteSize(4 * config::MIN_SEGMENT),
        ..AuditConfig::in_dir(dir.to_path_buf())
    }
}

fn sign_record(uid: u32) -> AuditRecord {
    AuditRecord {
        time: now_rfc3339(),
        uid: Some(uid),
        operation: "sign".into(),
        key_id: "ab".repeat(32),
        allowed: true,
        result: "ok".into(),
        ..Default::default()
    }
}

/// Drops the log and waits until its writer has let go of the directory.
fn close(log: AuditLog, dir: &Path) {
    drop(log);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tail::lock(dir).is_err() {
        assert!(Instant::now() < deadline, "the writer never let go");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(dir: &Path) -> Vec<serde_json::Value> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

fn check(dir: &Path) -> verify::Report {
    verify::verify(&[dir.to_path_buf()], &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_all_land_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&config(dir.path())).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.record(sign_record(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = lines(dir.path());
    assert_eq!(all[0]["kind"], "segment");
    assert_eq!(all[1]["kind"], "start");
    let mut uids: Vec<u64> = all[2..]
        .iter()
        .map(|l| l["uid"].as_u64().unwrap())
        .collect();
    uids.sort_unstable();
    assert_eq!(uids, (0..64).collect::<Vec<_>>());
    let seqs: Vec<u64> = all.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=66).collect::<Vec<_>>());
    let report = check(dir.path());
    assert!(report.intact(), "{report}");
    assert_eq!(report.records, 66);
    // The segment was made at its full size; the records fill its start.
    let size = std::fs::metadata(dir.path().join(segment::file_name(1)))
        .unwrap()
        .len();
    assert_eq!(size, config(dir.path()).max_size.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_rotate_keep_the_chain_and_keep_prunes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig {
        max_size: ByteSize(config::MIN_SEGMENT),
        keep: 3,
        ..config(dir.path())
    };
    let log = AuditLog::open(&cfg).await.unwrap();
    // About 360 bytes a line: a 64 KiB segment holds ~180.
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.record(sign_record(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let segments = segment::list(dir.path()).unwrap();
    let indexes: Vec<u64> = segments.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    assert!(indexes[0] > 1, "the oldest went first: {indexes:?}");
    assert_eq!(indexes[1], indexes[0] + 1);
    let report = check(dir.path());
    assert!(report.intact(), "{report}");
    assert!(report.starts_mid_chain);
    assert_eq!(report.last_seq, Some(log.snapshot().head.seq));
    // Every segment begins with its header, chained to the one before.
    for (index, path) in &segments {
        let text = std::fs::read_to_string(path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"], "segment");
        assert_eq!(first["segment"], *index);
    }
}

#[tokio::test]
async fn a_restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let log = AuditLog::open(&config(dir.path())).await.unwrap();
        log.record(sign_record(round)).await.unwrap();
        close(log, dir.path());
    }
    let all = lines(dir.path());
    let kinds: Vec<&str> = all.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["segment", "start", "decision", "start", "decision", "start", "decision"]
    );
    let report = check(dir.path());
    assert!(report.intact(), "{report}");
    assert_eq!(report.records, 7);
}

#[tokio::test]
async fn a_damaged_tail_stops_the_start_until_a_new_chain_is_begun() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&config(dir.path())).await.unwrap();
    log.record(sign_record(1)).await.unwrap();
    close(log, dir.path());
    // A write cut short after the last record.
    let path = dir.path().join(segment::file_name(1));
    let mut bytes = std::fs::read(&path).unwrap();
    let end = match segment::records_end(&bytes) {
        segment::End::Clean { at } => at,
        torn => panic!("{torn:?}"),
    };
    bytes[end..end + 9].copy_from_slice(b"{\"seq\":4,");
    std::fs::write(&path, &bytes).unwrap();

    let err = AuditLog::open(&config(dir.path())).await.err().unwrap();
    let text = err.to_string();
    assert!(text.contains("line 4"), "{text}");
    assert!(text.contains("new-chain"), "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");
    let report = check(dir.path());
    assert_eq!(report.bad.as_ref().map(|b| b.line), Some(4), "{report}");

    let fresh = new_chain(dir.path(), config(dir.path()).max_size.0, "disk replaced").unwrap();
    assert!(fresh.ends_with(segment::file_name(2)));
    let log = AuditLog::open(&config(dir.path())).await.unwrap();
    log.record(sign_record(2)).await.unwrap();
    let report = verify::verify(&[fresh], &[]);
    assert!(report.intact(), "{report}");
    assert_eq!(report.restarts.len(), 1, "{report}");
    assert!(report.restarts[0].contains("disk replaced"), "{report}");
}

/// A log of 502 records in three segments, and its lines as text.
async fn sample(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let cfg = AuditConfig {
        max_size: ByteSize(config::MIN_SEGMENT),
        ..config(dir)
    };
    let log = AuditLog::open(&cfg).await.unwrap();
    let writes: Vec<_> = (0..500)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(sign_record(i)).await })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    close(log, dir);
    segment::list(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| {
            let text = std::fs::read_to_string(&p).unwrap();
            let lines = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            (p, lines)
        })
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Applies `tamper` to a fresh sample log and returns the first bad record.
async fn tampered(tamper: impl FnOnce(&mut Vec<(PathBuf, Vec<String>)>)) -> verify::Bad {
    let dir = tempfile::tempdir().unwrap();
    let mut segs = sample(dir.path()).await;
    assert!(segs.len() >= 3, "the sample spans segments");
    assert!(check(dir.path()).intact());
    tamper(&mut segs);
    for (path, lines) in &segs {
        if path.exists() {
            rewrite(path, lines);
        }
    }
    let report = check(dir.path());
    match report.bad {
        Some(bad) => bad,
        None => panic!("not noticed:\n{report}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_named() {
    let deleted = tampered(|s| {
        s[0].1.remove(10);
    })
    .await;
    assert_eq!(deleted.line, 11);
    assert!(deleted.problem.contains("missing"), "{deleted}");

    let edited = tampered(|s| {
        s[0].1[10] = s[0].1[10].replace("\"ok\"", "\"no\"");
    })
    .await;
    assert_eq!(edited.line, 11, "{edited}");
    assert!(edited.problem.contains("edited"), "{edited}");

    let reordered = tampered(|s| s[0].1.swap(20, 21)).await;
    assert_eq!(reordered.line, 21, "{reordered}");

    let inserted = tampered(|s| {
        let copy = s[0].1[5].clone();
        s[0].1.insert(30, copy);
    })
    .await;
    assert_eq!(inserted.line, 31, "{inserted}");
    assert!(inserted.problem.contains("inserted"), "{inserted}");

    let edited_in_second = tampered(|s| {
        s[1].1[3] = s[1].1[3].replace("\"sign\"", "\"list\"");
    })
    .await;
    assert!(edited_in_second.path.ends_with(segment::file_name(2)));
    assert_eq!(edited_in_second.line, 4, "{edited_in_second}");

    let removed = tampered(|s| {
        std::fs::remove_file(&s[1].0).unwrap();
    })
    .await;
    assert!(
        removed.problem.contains("segment 2 is missing"),
        "{removed}"
    );

    let torn = tampered(|s| {
        let last = s[0].1.len() - 1;
        s[0].1[last].truncate(40);
    })
    .await;
    assert!(torn.problem.contains("not a record"), "{torn}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_record_comes_first_and_its_outcome_follows() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&config(dir.path())).await.unwrap();
    let mut done = log.request(sign_record(1));
    done.record_mut().backend = "soft".into();
    let seq = done.durable().await.unwrap();
    done.outcome(true, "ok").await;
    // Dropped before its outcome: recorded as abandoned.
    let mut dropped = log.request(sign_record(2));
    dropped.durable().await.unwrap();
    drop(dropped);
    // Never answered, as after a crash while the device worked: leaked,
    // so the log stays open and is checked as it is.
    let mut open = log.request(sign_record(3));
    let open_seq = open.durable().await.unwrap();
    std::mem::forget(open);
    let deadline = Instant::now() + Duration::from_secs(20);
    let all = loop {
        log.record(sign_record(4)).await.unwrap();
        let all = lines(dir.path());
        if all.iter().filter(|l| l["kind"] == "outcome").count() == 2 {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned outcome never came"
        );
    };

    let request = all.iter().find(|l| l["seq"] == seq).unwrap();
    assert_eq!(request["kind"], "request");
    assert!(request["result"].as_str().unwrap().starts_with("pending"));
    let outcomes: Vec<_> = all.iter().filter(|l| l["kind"] == "outcome").collect();
    assert_eq!(outcomes.len(), 2, "{all:#?}");
    assert!(outcomes
        .iter()
        .any(|o| o["request"] == seq && o["result"] == "ok"));
    assert!(outcomes
        .iter()
        .any(|o| o["result"].as_str().unwrap().starts_with("abandoned") && o["allowed"] == false));
    let report = check(dir.path());
    assert!(report.intact(), "{report}");
    assert_eq!(report.open_requests.len(), 1, "{report}");
    assert_eq!(report.open_requests[0].seq, open_seq);
    assert!(
        report.to_string().contains("a signature may exist"),
        "{report}"
    );
}

/// Waits until the log's lines on disk pass `done`; fails after 20 s.
fn wait_for_lines(dir: &Path, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&lines(dir)) {
        assert!(Instant::now() < deadline, "{what} never reached the disk");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_nobody_waits_for_still_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&config(dir.path())).await.unwrap();
    let mut asked = log.request(sign_record(1));
    asked.durable().await.unwrap();
    // Held for company, then written alone when none comes.
    asked.outcome(true, "ok").await;
    wait_for_lines(dir.path(), "a lone outcome", |all| {
        all.iter().any(|l| l["kind"] == "outcome")
    });
    // Closing the log writes what it still holds.
    let mut asked = log.request(sign_record(2));
    let seq = asked.durable().await.unwrap();
    asked.outcome(true, "ok").await;
    close(log, dir.path());
    let all = lines(dir.path());
    assert!(
        all.iter()
            .any(|l| l["kind"] == "outcome" && l["request"] == seq),
        "{all:#?}"
    );
    let report = check(dir.path());
    assert!(report.intact(), "{report}");
    assert!(report.open_requests.is_empty(), "{report}");
}
