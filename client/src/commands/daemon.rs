//! `notaryctl daemon status`: which daemon this is and what it is doing,
//! for a person. The figures are those its metrics endpoint gives a
//! scraper; the socket and uid lines say how notaryctl reached it.

use crate::connect::Client;
use crate::errors::Reply;
use crate::output;
use clap::Args;
use keyd_proto::keyd as pb;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    /// The socket notaryctl connected to, as it resolved it.
    socket: String,
    /// The uid notaryctl asked as, which the daemon's policy sees.
    caller_uid: u32,
    /// What the policy lets that uid do with some key.
    caller_may: &'a [String],
    version: &'a str,
    pid: u32,
    uptime_seconds: u64,
    config_path: &'a str,
    summary: &'a str,
    pending_restart: &'a [String],
    last_reload_error: &'a str,
    audit_records: u64,
    not_opened: &'a [String],
    backends: Vec<BackendJson<'a>>,
}

#[derive(Serialize)]
struct BackendJson<'a> {
    name: &'a str,
    available: bool,
    unavailable_reason: &'a str,
    keys: u32,
    queued: u32,
    signed: u64,
    failed: u64,
    pin_failures: u64,
    mean_sign_micros: u64,
}

pub(crate) async fn status(
    client: &mut Client,
    socket: &Path,
    args: &StatusArgs,
) -> anyhow::Result<()> {
    let s = client
        .get_daemon_status(pb::GetDaemonStatusRequest {})
        .await
        .reply()?;
    let caller_uid = nix::unistd::geteuid().as_raw();
    if args.json {
        let json = StatusJson {
            socket: socket.display().to_string(),
            caller_uid,
            caller_may: &s.caller_may,
            version: &s.version,
            pid: s.pid,
            uptime_seconds: s.uptime_seconds,
            config_path: &s.config_path,
            summary: &s.summary,
            pending_restart: &s.pending_restart,
            last_reload_error: &s.last_reload_error,
            audit_records: s.audit_records,
            not_opened: &s.not_opened,
            backends: s
                .backends
                .iter()
                .map(|b| BackendJson {
                    name: &b.name,
                    available: b.available,
                    unavailable_reason: &b.unavailable_reason,
                    keys: b.keys,
                    queued: b.queued,
                    signed: b.signed,
                    failed: b.failed,
                    pin_failures: b.pin_failures,
                    mean_sign_micros: b.mean_sign_micros,
                })
                .collect(),
        };
        println!("{}", output::json(&json)?);
        return Ok(());
    }
    print!("{}", text(&s, socket, caller_uid));
    Ok(())
}

/// The status as lines for a terminal, then one table row per backend.
fn text(s: &pb::DaemonStatus, socket: &Path, caller_uid: u32) -> String {
    let mut out = format!(
        "notary-keyd {}, pid {}, up {}\n",
        s.version,
        s.pid,
        uptime(s.uptime_seconds)
    );
    out += &format!("socket:          {}\n", socket.display());
    out += &format!(
        "asked as:        uid {caller_uid}, which may {} (on the keys its rules select)\n",
        s.caller_may.join(", ")
    );
    let config = if s.config_path.is_empty() {
        "none (personal mode)"
    } else {
        &s.config_path
    };
    out += &format!("config:          {config}\n");
    out += &format!("status:          {}\n", s.summary);
    if !s.pending_restart.is_empty() {
        out += &format!(
            "restart needed:  changed since start, applied at the next restart: {}\n",
            s.pending_restart.join(", ")
        );
    }
    if !s.last_reload_error.is_empty() {
        out += &format!(
            "last reload:     failed, previous configuration kept: {}\n",
            s.last_reload_error
        );
    }
    if !s.not_opened.is_empty() {
        out += &format!(
            "not opened:      {} (see the daemon's log)\n",
            s.not_opened.join(", ")
        );
    }
    out += &format!(
        "audit records:   {} written since start\n\n",
        s.audit_records
    );
    let rows: Vec<Vec<String>> = s
        .backends
        .iter()
        .map(|b| {
            let state = output::backend_state(b.available, &b.unavailable_reason);
            let mean = match b.mean_sign_micros {
                0 => "-".to_string(),
                us => format!("{:.2}", us as f64 / 1000.0),
            };
            vec![
                b.name.clone(),
                b.keys.to_string(),
                b.queued.to_string(),
                b.signed.to_string(),
                b.failed.to_string(),
                b.pin_failures.to_string(),
                mean,
                state,
            ]
        })
        .collect();
    out += &output::table(
        &[
            "BACKEND",
            "KEYS",
            "QUEUED",
            "SIGNED",
            "FAILED",
            "PIN FAILURES",
            "MEAN SIGN MS",
            "STATE",
        ],
        &rows,
    );
    out
}

/// "3d 4h", "2h 5m", "4m 10s", "12s".
fn uptime(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_in_its_two_largest_units() {
        assert_eq!(uptime(12), "12s");
        assert_eq!(uptime(250), "4m 10s");
        assert_eq!(uptime(7_500), "2h 5m");
        assert_eq!(uptime(273_600), "3d 4h");
    }

    #[test]
    fn text_shows_pending_restart_and_a_row_per_backend() {
        let s = pb::DaemonStatus {
            version: "1.2.3".into(),
            pid: 42,
            uptime_seconds: 61,
            summary: "1 of 1 backends available (soft), 2 keys".into(),
            pending_restart: vec!["backend".into()],
            audit_records: 9,
            caller_may: vec!["list".into(), "sign".into()],
            backends: vec![pb::BackendActivity {
                name: "soft".into(),
                available: true,
                keys: 2,
                signed: 5,
                failed: 1,
                mean_sign_micros: 250,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = text(&s, Path::new("/run/notary-keyd/keyd.sock"), 1000);
        assert!(
            text.starts_with(
                "notary-keyd 1.2.3, pid 42, up 1m 1s\n\
                 socket:          /run/notary-keyd/keyd.sock\n\
                 asked as:        uid 1000, which may list, sign (on the keys its rules select)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("config:          none (personal mode)\n"),
            "{text}"
        );
        assert!(
            text.contains("applied at the next restart: backend\n"),
            "{text}"
        );
        assert!(!text.contains("last reload"), "{text}");
        let row = text.lines().last().unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["soft", "2", "0", "5", "1", "0", "0.25", "available"]
        );
    }
}
