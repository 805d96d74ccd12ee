//! Diagnostics on stderr (the audit log is separate). When stderr is the
//! journal (`$JOURNAL_STREAM` names it), each line starts with a syslog
//! priority (`<3>` error … `<7>` debug) so journald records the level as
//! PRIORITY and `journalctl -p warning` works, and carries no timestamp
//! (journald adds its own); fields stay `key=value`.

use std::fmt;
use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A lost stderr (journald restarted, a closed pipe) must not take
        // the daemon down: reporting the write error would print to that
        // same stderr, which panics.
        .log_internal_errors(false);
    if stderr_is_journal() {
        let plain = format::format().without_time().with_ansi(false);
        builder.event_format(Journal(plain)).init();
    } else {
        builder.init();
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
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}
