//! While the daemon serves: `SIGHUP` reloads (and releases the YubiKeys the
//! daemon holds open, so ykman or gpg can use them until the next request
//! re-opens them), `SIGTERM`/`SIGINT` stop, and
//! the systemd watchdog is fed. This is the future the server polls for its
//! shutdown, so a `WATCHDOG=1` also says the serving loop is alive.

use crate::daemon_info::DaemonInfo;
use crate::registry::Registry;
use crate::reload::Reloader;
use crate::systemd::notify::Notifier;
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{interval, Interval, MissedTickBehavior};

/// The signals the daemon handles. Installed at start-up, before systemd
/// hears `READY=1`: until then SIGTERM and SIGHUP would kill the process
/// (their default action), and one sent right after readiness must not.
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

pub(crate) struct Lifecycle {
    pub signals: Signals,
    /// `None` in personal mode: there is no file to re-read.
    pub reloader: Option<Reloader>,
    pub notifier: Arc<Notifier>,
    /// The current `STATUS=` summary.
    pub status: Box<dyn Fn() -> String + Send + Sync>,
    /// Whose held-open devices a SIGHUP releases.
    pub registry: Arc<Registry>,
    /// Where a reload's outcome is kept for `GetDaemonStatus`.
    pub daemon: Arc<DaemonInfo>,
}

impl Lifecycle {
    /// Returns when the daemon should stop, after telling systemd so.
    pub(crate) async fn run_until_stopped(mut self) {
        let mut watchdog = Notifier::watchdog_interval().map(|every| {
            tracing::info!(every_ms = every.as_millis(), "feeding the systemd watchdog");
            let mut ticks = interval(every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        });
        loop {
            tokio::select! {
                _ = self.signals.term.recv() => {
                    tracing::info!("SIGTERM: finishing in-flight requests, then exiting");
                    break;
                }
                _ = self.signals.int.recv() => {
                    tracing::info!("interrupted: finishing in-flight requests, then exiting");
                    break;
                }
                _ = self.signals.hup.recv() => {
                    self.reload();
                    crate::device::release_all(self.registry.devices()).await;
                }
                _ = tick(&mut watchdog) => self.notifier.watchdog(),
            }
        }
        self.notifier.stopping();
    }

    fn reload(&self) {
        self.notifier.reloading();
        let Some(reloader) = &self.reloader else {
            tracing::info!("SIGHUP: personal mode has no config file to reload");
            self.notifier.ready(&(self.status)());
            return;
        };
        let status = match reloader.reload() {
            Ok(done) => {
                tracing::info!(policy_rules = done.policy_rules, "configuration reloaded");
                self.daemon.reloaded(done.needs_restart.clone());
                if done.needs_restart.is_empty() {
                    (self.status)()
                } else {
                    tracing::warn!(
                        sections = ?done.needs_restart,
                        "these changed sections take effect only after a restart"
                    );
                    // Also in `systemctl status`, where an operator who
                    // just reloaded looks.
                    format!(
                        "{}; changed, applied at the next restart: {}",
                        (self.status)(),
                        done.needs_restart.join(", ")
                    )
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed; still running the previous configuration");
                self.daemon.reload_failed(e.to_string());
                format!(
                    "{}; reload failed, previous configuration kept: {e}",
                    (self.status)()
                )
            }
        };
        self.notifier.ready(&status);
    }
}

async fn tick(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}
