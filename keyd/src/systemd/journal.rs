//! journald's native protocol: one datagram per event to
//! `/run/systemd/journal/socket`, each field a `NAME=value` line, or
//! `NAME`, a little-endian u64 length and the raw bytes when the value holds
//! a newline (so a newline in a logged value can never start a forged
//! entry). The level is `PRIORITY`, every tracing field is also a journal
//! field of its own (`BACKEND=hsm`), and `MESSAGE` reads as the text line
//! would (`backend unavailable backend=hsm reason=…`), so `journalctl -u`
//! stays useful without `-o verbose`.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

pub(crate) const SOCKET: &str = "/run/systemd/journal/socket";

pub(crate) struct JournalLayer {
    socket: UnixDatagram,
}

impl JournalLayer {
    pub(crate) fn connect(path: &Path) -> std::io::Result<JournalLayer> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(JournalLayer { socket })
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (name, value) in &fields.others {
            let _ = write!(message, " {name}={value}");
        }
        let meta = event.metadata();
        let mut entry = Vec::with_capacity(256);
        put(&mut entry, "PRIORITY", &priority(*meta.level()).to_string());
        put(&mut entry, "SYSLOG_IDENTIFIER", "notary-keyd");
        put(&mut entry, "MESSAGE", &message);
        put(&mut entry, "TARGET", meta.target());
        for (name, value) in &fields.others {
            put(&mut entry, &journal_name(name), value);
        }
        // Too large for one datagram, or journald gone: the line still
        // reaches stderr, which systemd connects to the journal too.
        if self.socket.send(&entry).is_err() {
            let _ = writeln!(std::io::stderr(), "<{}>{message}", priority(*meta.level()));
        }
    }
}

/// syslog priorities: `journalctl -p warning` shows WARN and ERROR.
pub(crate) fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name => self.others.push((name, value)),
        }
    }
}

/// Journal field names are `[A-Z0-9_]`, not starting with `_` (trusted
/// fields) or a digit; one of journald's own names gets an `F_` prefix.
fn journal_name(field: &str) -> String {
    let name: String = field
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    let journalds = ["MESSAGE", "PRIORITY", "TARGET", "CODE_", "SYSLOG_"]
        .iter()
        .any(|own| name.starts_with(own));
    if journalds || name.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        format!("F_{name}")
    } else {
        name
    }
}

fn put(entry: &mut Vec<u8>, name: &str, value: &str) {
    entry.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        entry.push(b'\n');
        entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        entry.push(b'=');
    }
    entry.extend_from_slice(value.as_bytes());
    entry.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn fields_are_journal_fields_and_newlines_are_length_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let journald = UnixDatagram::bind(&path).unwrap();
        let layer = JournalLayer::connect(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let gun = "x\n<3>PRIORITY=3";
            tracing::warn!(backend = "hsm", %gun, message_id = 7, "backend unavailable");
        });
        let mut buf = vec![0u8; 4096];
        let n = journald.recv(&mut buf).unwrap();
        let entry = &buf[..n];
        let text = String::from_utf8_lossy(entry);
        assert!(
            text.starts_with("PRIORITY=4\nSYSLOG_IDENTIFIER=notary-keyd\n"),
            "{text}"
        );
        assert!(
            text.contains("MESSAGE\n") && text.contains("backend unavailable backend=hsm gun=x"),
            "{text}"
        );
        assert!(text.contains("\nBACKEND=hsm\n"), "{text}");
        assert!(text.contains("\nF_MESSAGE_ID=7\n"), "{text}");
        // The GUN's newline is inside a length-prefixed value, not a new field.
        let gun = b"GUN\n";
        let at = entry.windows(gun.len()).position(|w| w == gun).unwrap() + gun.len();
        let len = u64::from_le_bytes(entry[at..at + 8].try_into().unwrap());
        assert_eq!(&entry[at + 8..at + 8 + len as usize], b"x\n<3>PRIORITY=3");
    }

    #[test]
    fn names_are_sanitised_and_journald_own_names_prefixed() {
        assert_eq!(journal_name("key_id"), "KEY_ID");
        assert_eq!(journal_name("every-ms"), "EVERY_MS");
        assert_eq!(journal_name("priority"), "F_PRIORITY");
        assert_eq!(journal_name("message_id"), "F_MESSAGE_ID");
        assert_eq!(journal_name("code_file"), "F_CODE_FILE");
        assert_eq!(journal_name("_pid"), "F__PID");
        assert_eq!(journal_name("2fa"), "F_2FA");
    }
}
