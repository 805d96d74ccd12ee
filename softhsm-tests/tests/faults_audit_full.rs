//! The audit log's filesystem runs full: a tmpfs of its own, filled to the
//! last byte. Every signature is then refused with a clear error (none
//! leaves the daemon unaudited), no record is torn, and signing resumes by
//! itself once space is freed.

mod common;

use common::{generate, reason, sign, targets_payload, Reason};
use softhsm_tests::faults::{audit_records, Tmpfs};
use softhsm_tests::Daemon;

/// More than a page's worth of records: once the filler took every free
/// page, no more than the audit file's last page can still take records.
const TRIES: u32 = 64;

#[tokio::test(flavor = "multi_thread")]
async fn a_full_audit_filesystem_refuses_every_sign_tears_nothing_and_recovers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let fs = Tmpfs::mount(256).unwrap();
    let log = fs.path().join("audit.jsonl");
    let mut daemon = Daemon::start_auditing_to(
        Some(&log),
        "[[backend]]\nname = \"soft\"\ntype = \"soft\"\n",
        &[],
    )
    .unwrap();
    let mut client = softhsm_tests::connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, "soft", "ecdsa", "p256", 0, "targets", "").await;
    let mut signed = 0;
    let (_, first) = sign(&mut client, &key.key_id, targets_payload(1), "", "", "").await;
    first.unwrap();
    signed += 1;

    let filler = fs.fill().unwrap();
    // The audit file's last page may still hold a few records; then the
    // disk is full for it too, and from then on every signature is refused.
    let mut refused = 0;
    for version in 2..2 + TRIES {
        let (_, result) = sign(
            &mut client,
            &key.key_id,
            targets_payload(version),
            "",
            "",
            "",
        )
        .await;
        match result {
            Ok(_) if refused == 0 => signed += 1,
            Ok(_) => panic!("a signature left the daemon after the audit log was full"),
            Err(status) => {
                assert_eq!(reason(&status), Some(Reason::AuditFailed), "{status:?}");
                assert!(
                    status.message().contains(&log.display().to_string())
                        && status.message().contains("No space left on device"),
                    "the refusal does not say why: {status:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        refused >= TRIES / 2,
        "only {refused} of {TRIES} signatures were refused on a full disk"
    );
    assert!(daemon.is_running(), "the daemon died of a full disk");

    // Space comes back: the next signature is audited and returned, no
    // restart needed.
    std::fs::remove_file(&filler).unwrap();
    let (_, again) = sign(&mut client, &key.key_id, targets_payload(100), "", "", "").await;
    again.unwrap_or_else(|s| panic!("signing did not resume once space was freed: {s:?}"));
    signed += 1;

    let records = audit_records(&log).unwrap();
    let ok_signs = records
        .iter()
        .filter(|r| r["operation"] == "sign" && r["result"] == "ok")
        .count();
    assert_eq!(ok_signs, signed, "one audit line per signature returned");
    daemon.stop().unwrap();
}
