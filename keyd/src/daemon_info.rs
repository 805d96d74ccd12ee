//! What the daemon knows about itself for `GetDaemonStatus`: when it
//! started, the file it runs from, the backends that did not open, and
//! what the last reload left behind (sections waiting for a restart, its
//! error). The lifecycle writes the reload's part; the RPC reads it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

pub(crate) struct DaemonInfo {
    pub started: Instant,
    /// Set once the config is known to come from a file (not personal mode).
    pub config_path: OnceLock<PathBuf>,
    /// The backends that could not be opened at all.
    pub not_opened: Arc<[String]>,
    last_reload: Mutex<LastReload>,
}

/// What the last reload left: sections that changed but wait for a
/// restart, or why it failed.
#[derive(Clone, Debug, Default)]
pub(crate) struct LastReload {
    pub pending_restart: Vec<String>,
    pub error: Option<String>,
}

impl DaemonInfo {
    pub(crate) fn new(not_opened: Arc<[String]>) -> DaemonInfo {
        DaemonInfo {
            started: Instant::now(),
            config_path: OnceLock::new(),
            not_opened,
            last_reload: Mutex::default(),
        }
    }

    pub(crate) fn last_reload(&self) -> LastReload {
        self.last_reload
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A reload that applied: the sections it could not apply stay pending.
    pub(crate) fn reloaded(&self, pending_restart: Vec<String>) {
        *self
            .last_reload
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = LastReload {
            pending_restart,
            error: None,
        };
    }

    /// A reload that failed changes nothing, so what was pending still is.
    pub(crate) fn reload_failed(&self, error: String) {
        self.last_reload
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error = Some(error);
    }
}
