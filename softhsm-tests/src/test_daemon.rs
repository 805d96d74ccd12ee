//! What a test's notary-keyd runs with, as typed options. `TestDaemon`
//! collects backends, policy rules, limits, the audit log and the signer
//! API, and is the one place that writes the daemon's TOML; `start` runs
//! the real binary on it (see [`Daemon`]).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use softhsm_tests::{Rule, SoftHsm, TestDaemon};
//! let hsm = SoftHsm::new("notary", "1234")?;
//! let daemon = TestDaemon::new()
//!     .soft("soft")
//!     .softhsm(&hsm, "hsm")?
//!     .policy(Rule::uids(&[65534]).allow(&["list"]))
//!     .limit("max_requests_per_uid", 4)
//!     .start()?;
//! # Ok(()) }
//! ```

use crate::daemon::Daemon;
use crate::softhsm::SoftHsm;
use crate::swtpm::Swtpm;
use anyhow::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Default)]
#[must_use]
pub struct TestDaemon {
    server: Vec<String>,
    limits: Vec<String>,
    sections: Vec<String>,
    audit: Option<Audit>,
    env: Vec<(String, String)>,
    user: Option<(u32, u32)>,
    socket_group: Option<String>,
}

impl TestDaemon {
    /// No backend yet: the daemon refuses to start without one.
    pub fn new() -> TestDaemon {
        TestDaemon::default()
    }

    /// A software keystore backend named `name`.
    pub fn soft(self, name: &str) -> TestDaemon {
        self.section(format!("[[backend]]\nname = \"{name}\"\ntype = \"soft\"\n"))
    }

    /// `hsm`'s token as backend `name`, its PIN in a file, and the
    /// `SOFTHSM2_CONF` that finds it.
    pub fn softhsm(self, hsm: &SoftHsm, name: &str) -> Result<TestDaemon> {
        self.softhsm_with(hsm, name, "")
    }

    /// As [`softhsm`](Self::softhsm), with more settings of the backend
    /// (e.g. `sessions = 4`).
    pub fn softhsm_with(self, hsm: &SoftHsm, name: &str, settings: &str) -> Result<TestDaemon> {
        let table = format!("{}{settings}", hsm.backend_toml(name)?);
        Ok(self.softhsm_conf(hsm).section(table))
    }

    /// `hsm`'s token as backend `name` with `pin = "prompt"`: locked until
    /// a person unlocks it (or a request brings the PIN), with more
    /// `settings` of the backend (e.g. `pin_cache = "none"`), or "".
    pub fn locked_softhsm(self, hsm: &SoftHsm, name: &str, settings: &str) -> TestDaemon {
        let table = format!("{}{settings}", hsm.locked_backend_toml(name));
        self.softhsm_conf(hsm).section(table)
    }

    /// `hsm`'s token as backend `name` with `pin` as the config writes it
    /// (`{ file = "…" }`, `{ env = "…" }`), for tests of PIN sources.
    pub fn softhsm_pin(self, hsm: &SoftHsm, name: &str, pin: &str) -> TestDaemon {
        let table = hsm.backend_toml_with_pin(name, pin);
        self.softhsm_conf(hsm).section(table)
    }

    /// Another token, initialised in `hsm`'s token directory with `pin`,
    /// as backend `name` (see [`SoftHsm::add_token`]).
    pub fn softhsm_token(
        self,
        hsm: &SoftHsm,
        name: &str,
        label: &str,
        pin: &str,
        locked: bool,
    ) -> Result<TestDaemon> {
        let table = hsm.add_token(name, label, pin, locked)?;
        Ok(self.softhsm_conf(hsm).section(table))
    }

    fn softhsm_conf(self, hsm: &SoftHsm) -> TestDaemon {
        self.env("SOFTHSM2_CONF", &hsm.conf().display().to_string())
    }

    /// `tpm` as backend `name`, key auth values in `key_auth`.
    pub fn tpm(self, tpm: &Swtpm, name: &str, key_auth: &Path) -> TestDaemon {
        self.tpm_with(tpm, name, key_auth, "")
    }

    /// As [`tpm`](Self::tpm), with more settings of the backend (e.g.
    /// `persist_from = 0x81010100`).
    pub fn tpm_with(self, tpm: &Swtpm, name: &str, key_auth: &Path, settings: &str) -> TestDaemon {
        self.section(format!("{}{settings}", tpm.backend_toml(name, key_auth)))
    }

    /// The YubiKey (a virtual one, in the tests) with `serial` as backend
    /// `name`.
    pub fn yubikey(self, name: &str, serial: u32) -> TestDaemon {
        self.section(format!(
            "[[backend]]\nname = \"{name}\"\ntype = \"yubikey\"\nserial = {serial}\n"
        ))
    }

    /// Backend `name` on whichever YubiKey is present (no serial).
    pub fn any_yubikey(self, name: &str) -> TestDaemon {
        self.section(format!(
            "[[backend]]\nname = \"{name}\"\ntype = \"yubikey\"\n"
        ))
    }

    pub fn policy(self, rule: Rule) -> TestDaemon {
        let table = rule.toml();
        self.section(table)
    }

    /// `[server.limits] name = value`.
    pub fn limit(mut self, name: &str, value: u64) -> TestDaemon {
        self.limits.push(format!("{name} = {value}\n"));
        self
    }

    /// A `[server]` setting beside the socket and state dir the harness
    /// sets, as TOML (e.g. `max_message_bytes = 65536`).
    pub fn server(mut self, setting: &str) -> TestDaemon {
        self.server.push(format!("{}\n", setting.trim_end()));
        self
    }

    /// The socket owned by `group`, mode 0660, in a temp dir others may
    /// traverse: callers of that group, run through setpriv, reach the
    /// socket and meet the policy.
    pub fn socket_group(mut self, group: &str) -> TestDaemon {
        self.socket_group = Some(group.to_string());
        self
    }

    /// The audit log; without it, segments of 1 MiB in the temp dir.
    pub fn audit(mut self, audit: Audit) -> TestDaemon {
        self.audit = Some(audit);
        self
    }

    /// TOML that no option above writes: a section the test makes itself
    /// (`[signer_api]` from `notary_stack::signer_api_toml`, `[metrics]`,
    /// the shipped example's rules).
    pub fn toml(self, text: &str) -> TestDaemon {
        self.section(text.to_string())
    }

    /// An environment variable of the daemon's (the last value counts).
    pub fn env(mut self, name: &str, value: &str) -> TestDaemon {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Runs the daemon as `uid`:`gid` (this process must be root), owning
    /// its temp dir. Whatever else it needs (a token, PIN files) the test
    /// hands over itself; callers other than `uid` need a rule.
    pub fn run_as(mut self, uid: u32, gid: u32) -> TestDaemon {
        self.user = Some((uid, gid));
        self
    }

    pub fn start(self) -> Result<Daemon> {
        Daemon::launch(self)
    }

    /// Writes the config into `dir`, with the socket, state and audit log
    /// there too, for a daemon the test starts some other way (under
    /// systemd-socket-activate, say). Returns the config file and the
    /// socket it names.
    pub fn write_to(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let layout = self.layout(dir);
        self.write(&layout)?;
        Ok((layout.config, layout.socket))
    }

    /// Where a daemon of this spec keeps its files in `dir`.
    pub(crate) fn layout(&self, dir: &Path) -> Layout {
        Layout {
            socket: dir.join("keyd.sock"),
            config: dir.join("keyd.toml"),
            state_dir: dir.join("state"),
            audit_dir: self.audit_dir(&dir.join("audit")),
        }
    }

    /// Writes the config file `layout` names, for the paths it names.
    pub(crate) fn write(&self, layout: &Layout) -> Result<()> {
        let text = self.render(&layout.socket, &layout.state_dir, &layout.audit_dir);
        std::fs::write(&layout.config, text)?;
        Ok(())
    }

    fn section(mut self, text: String) -> TestDaemon {
        if !text.trim().is_empty() {
            self.sections.push(text);
        }
        self
    }

    pub(crate) fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    /// Whether others must reach the socket (see [`socket_group`](Self::socket_group)).
    pub(crate) fn shares_socket(&self) -> bool {
        self.socket_group.is_some()
    }

    pub(crate) fn env_vars(&self) -> &[(String, String)] {
        &self.env
    }

    /// The audit log's directory: the test's own, or `default`.
    fn audit_dir(&self, default: &Path) -> PathBuf {
        self.audit
            .as_ref()
            .map_or_else(|| default.to_path_buf(), |a| a.dir.clone())
    }

    /// The config file's text for a daemon on `socket` keeping its state
    /// in `state_dir` and its audit log in `audit_dir`.
    pub fn render(&self, socket: &Path, state_dir: &Path, audit_dir: &Path) -> String {
        let mut out = format!(
            "[server]\nsocket = \"{}\"\nstate_dir = \"{}\"\n",
            socket.display(),
            state_dir.display()
        );
        out.extend(self.server.iter().map(String::as_str));
        if let Some(group) = &self.socket_group {
            let _ = writeln!(out, "socket_group = {group:?}");
        }
        if !self.limits.is_empty() {
            out.push_str("\n[server.limits]\n");
            out.extend(self.limits.iter().map(String::as_str));
        }
        let _ = write!(out, "\n[audit]\ndir = \"{}\"\n", audit_dir.display());
        match &self.audit {
            Some(audit) => out.extend(audit.settings.iter().map(String::as_str)),
            None => out.push_str("max_size = \"1M\"\n"),
        }
        for section in &self.sections {
            out.push('\n');
            out.push_str(section);
            if !section.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// The files of a test daemon in its directory.
pub(crate) struct Layout {
    pub(crate) socket: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) audit_dir: PathBuf,
}

/// A `[[policy]]` rule: who (uids and gids) may do what (`allow`) with
/// which keys (`keys`, every key when none is given).
#[must_use]
pub struct Rule {
    uids: Vec<u32>,
    gids: Vec<u32>,
    allow: Vec<String>,
    keys: Vec<String>,
}

impl Rule {
    pub fn uids(uids: &[u32]) -> Rule {
        Rule {
            uids: uids.to_vec(),
            gids: Vec::new(),
            allow: Vec::new(),
            keys: Vec::new(),
        }
    }

    pub fn gids(gids: &[u32]) -> Rule {
        Rule {
            gids: gids.to_vec(),
            ..Rule::uids(&[])
        }
    }

    pub fn allow(mut self, operations: &[&str]) -> Rule {
        self.allow = operations.iter().map(|o| o.to_string()).collect();
        self
    }

    /// Key selectors (`role:targets`, `backend:hsm`, `gun:…`, `*`).
    pub fn keys(mut self, selectors: &[&str]) -> Rule {
        self.keys = selectors.iter().map(|k| k.to_string()).collect();
        self
    }

    fn toml(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let numbers = |ids: &[u32]| {
            ids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::from("[[policy]]\n");
        if !self.uids.is_empty() {
            let _ = writeln!(out, "uids = [{}]", numbers(&self.uids));
        }
        if !self.gids.is_empty() {
            let _ = writeln!(out, "gids = [{}]", numbers(&self.gids));
        }
        let _ = writeln!(out, "allow = [{}]", list(&self.allow));
        if !self.keys.is_empty() {
            let _ = writeln!(out, "keys = [{}]", list(&self.keys));
        }
        out
    }
}

/// The `[audit]` table: the log's directory and its settings.
#[derive(Clone)]
#[must_use]
pub struct Audit {
    dir: PathBuf,
    settings: Vec<String>,
}

impl Audit {
    pub fn in_dir(dir: &Path) -> Audit {
        Audit {
            dir: dir.to_path_buf(),
            settings: Vec::new(),
        }
    }

    /// Segment size, as the config writes it (`"64K"`, `"1M"`).
    pub fn max_size(self, size: &str) -> Audit {
        self.setting(format!("max_size = {size:?}"))
    }

    pub fn checkpoint_records(self, records: u64) -> Audit {
        self.setting(format!("checkpoint_records = {records}"))
    }

    fn setting(mut self, line: String) -> Audit {
        self.settings.push(line + "\n");
        self
    }
}
