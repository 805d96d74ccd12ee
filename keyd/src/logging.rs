//! Diagnostics (the audit log is separate). When stderr is the journal
//! (`$JOURNAL_STREAM` names it), events go to journald over its native
//! protocol: the level is PRIORITY (`journalctl -p warning` works) and each
//! field is a journal field of its own (`journalctl BACKEND=hsm`), with
//! values sent length-prefixed, so a newline in one cannot start a forged
//! entry. If journald's socket cannot be used, lines go to stderr starting
//! with a syslog priority (`<3>` error … `<7>` debug) and without a
//! timestamp (journald adds its own); fields stay `key=value`. Elsewhere:
//! plain lines on stderr.

use crate::systemd::journal::{self, JournalLayer};
use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = || {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            // A lost stderr (journald restarted, a closed pipe) must not take
            // the daemon down: reporting the write error would print to that
            // same stderr, which panics.
            .log_internal_errors(false)
    };
    if !stderr_is_journal() {
        stderr().init();
        return;
    }
    match JournalLayer::connect(Path::new(journal::SOCKET)) {
        Ok(journal) => tracing_subscriber::registry()
            .with(filter())
            .with(journal)
            .init(),
        Err(_) => {
            let plain = format::format().without_time().with_ansi(false);
            stderr().event_format(Journal(plain)).init();
        }
    }
}

/// `$JOURNAL_STREAM` is `DEV:INODE` of the stream systemd connected; it is
/// inherited by children, so it counts only if it still matches stderr.
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(2) else {
        return false;
    };
    value == format!("{}:{}", stat.st_dev, stat.st_ino)
}

/// Prefixes another event format with the syslog priority of the level.
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", journal::priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}
