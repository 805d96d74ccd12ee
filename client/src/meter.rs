//! Progress lines for long work (hashing large files, many targets, slow
//! key generation) on stderr when it is a terminal; nothing at
//! all on a pipe or file, so scripts and logs see only the results.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// A progress line that clears itself when dropped.
pub(crate) struct Meter(ProgressBar);

impl Meter {
    fn new(bar: ProgressBar, template: &str, message: String) -> Meter {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        Meter(bar)
    }

    /// Bytes of a file being read, out of `total`.
    pub(crate) fn bytes(total: u64, message: String) -> Meter {
        Meter::new(
            ProgressBar::new(total),
            "{msg} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            message,
        )
    }

    /// Items done out of `total` (targets hashed).
    pub(crate) fn items(total: u64, message: String) -> Meter {
        Meter::new(
            ProgressBar::new(total),
            "{msg} {pos}/{len} ({eta} left)",
            message,
        )
    }

    /// Work of unknown length (a key being generated on a device).
    pub(crate) fn waiting(message: String) -> Meter {
        Meter::new(
            ProgressBar::no_length(),
            "{spinner} {msg} ({elapsed})",
            message,
        )
    }

    /// Counts a reader's bytes as they are read.
    pub(crate) fn reader<R: std::io::Read>(&self, reader: R) -> impl std::io::Read {
        self.0.wrap_read(reader)
    }

    pub(crate) fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
