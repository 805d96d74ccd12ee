//! Following a server-streaming reply: progress events go to stderr as they
//! come, the final result is returned.

use keyd_proto::keyd as pb;
use pb::progress::Kind;
use tonic::{Status, Streaming};

/// What one event of a progress stream carries.
pub(crate) enum Step<T> {
    Progress(pb::Progress),
    Done(T),
    /// An event with no content (a newer daemon's unknown variant).
    Nothing,
}

/// Stream events that carry progress and end with a result.
pub(crate) trait Event {
    type Output;
    fn into_step(self) -> Step<Self::Output>;
}

impl Event for pb::SignEvent {
    type Output = pb::SignResult;
    fn into_step(self) -> Step<pb::SignResult> {
        match self.event {
            Some(pb::sign_event::Event::Progress(p)) => Step::Progress(p),
            Some(pb::sign_event::Event::Result(r)) => Step::Done(r),
            None => Step::Nothing,
        }
    }
}

impl Event for pb::IssueRootCertificateEvent {
    type Output = pb::Certificate;
    fn into_step(self) -> Step<pb::Certificate> {
        match self.event {
            Some(pb::issue_root_certificate_event::Event::Progress(p)) => Step::Progress(p),
            Some(pb::issue_root_certificate_event::Event::Certificate(c)) => Step::Done(c),
            None => Step::Nothing,
        }
    }
}

/// Reads the stream to its result, reporting progress on stderr.
pub(crate) async fn follow<E: Event>(mut stream: Streaming<E>) -> Result<E::Output, Status> {
    while let Some(event) = stream.message().await? {
        match event.into_step() {
            Step::Progress(p) => {
                if let Some(line) = line(&p) {
                    eprintln!("{line}");
                }
            }
            Step::Done(result) => return Ok(result),
            Step::Nothing => {}
        }
    }
    Err(Status::unknown(
        "notary-keyd ended the reply without a result",
    ))
}

/// What a person should read for one progress event.
pub(crate) fn line(p: &pb::Progress) -> Option<String> {
    Some(match p.kind.as_ref()? {
        Kind::Queued(q) => {
            let requests = if q.ahead == 1 { "request" } else { "requests" };
            format!(
                "Waiting for backend {} ({} {requests} ahead)…",
                q.backend, q.ahead
            )
        }
        Kind::PinNeeded(n) => {
            let tries = if n.tries_left >= 0 {
                n.tries_left.to_string()
            } else if n.tries_low {
                "few".to_string()
            } else {
                "unknown".to_string()
            };
            format!("Backend {} needs its PIN (tries left: {tries})", n.backend)
        }
        Kind::TouchNeeded(t) => {
            format!(
                "Touch your YubiKey (serial {}, slot {})…",
                t.device_serial,
                t.slot().word()
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(kind: Kind) -> pb::Progress {
        pb::Progress { kind: Some(kind) }
    }

    #[test]
    fn progress_lines() {
        let q = progress(Kind::Queued(pb::Queued {
            ahead: 3,
            backend: "hsm".into(),
        }));
        assert_eq!(
            line(&q).unwrap(),
            "Waiting for backend hsm (3 requests ahead)…"
        );
        let q = progress(Kind::Queued(pb::Queued {
            ahead: 1,
            backend: "hsm".into(),
        }));
        assert_eq!(
            line(&q).unwrap(),
            "Waiting for backend hsm (1 request ahead)…"
        );

        let pin = |tries_left, tries_low| {
            line(&progress(Kind::PinNeeded(pb::PinNeeded {
                backend: "hsm".into(),
                tries_left,
                tries_low,
            })))
            .unwrap()
        };
        assert_eq!(pin(3, false), "Backend hsm needs its PIN (tries left: 3)");
        assert_eq!(pin(-1, true), "Backend hsm needs its PIN (tries left: few)");
        assert_eq!(
            pin(-1, false),
            "Backend hsm needs its PIN (tries left: unknown)"
        );

        let t = progress(Kind::TouchNeeded(pb::TouchNeeded {
            backend: "yk".into(),
            device_serial: "123".into(),
            slot: pb::PivSlot::Signature as i32,
            timeout_ms: 15000,
        }));
        assert_eq!(
            line(&t).unwrap(),
            "Touch your YubiKey (serial 123, slot 9c)…"
        );
        assert!(line(&pb::Progress { kind: None }).is_none());
    }
}
