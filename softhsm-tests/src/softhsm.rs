//! A fresh SoftHSM2 token per test: its own config and token directory, so
//! tests never share token state.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

pub struct SoftHsm {
    dir: tempfile::TempDir,
    pub label: String,
    pub pin: String,
    pub so_pin: String,
}

impl SoftHsm {
    /// Initialises a token labelled `label` with user PIN `pin`.
    pub fn new(label: &str, pin: &str) -> Result<SoftHsm> {
        if !Path::new(MODULE).exists() {
            bail!("{MODULE} is missing: install softhsm2 (the test command does)");
        }
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("tokens"))?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.path().join("tokens").display()
            ),
        )?;
        let hsm = SoftHsm {
            dir,
            label: label.to_string(),
            pin: pin.to_string(),
            so_pin: "so-secret-1".into(),
        };
        hsm.init_token(label, pin)?;
        Ok(hsm)
    }

    fn init_token(&self, label: &str, pin: &str) -> Result<()> {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                &self.so_pin,
            ])
            .output()
            .context("running softhsm2-util")?;
        if !out.status.success() {
            bail!(
                "softhsm2-util failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Initialises another token in this token directory, so one
    /// `SOFTHSM2_CONF` serves both, and returns a `[[backend]]` section
    /// named `name` for it: with the PIN in a file, or `locked` until a
    /// request brings the PIN.
    pub fn add_token(&self, name: &str, label: &str, pin: &str, locked: bool) -> Result<String> {
        self.init_token(label, pin)?;
        if locked {
            return Ok(self.token_toml(name, label, "\"prompt\""));
        }
        let pin_file = self.dir.path().join(format!("{name}.pin"));
        crate::write_secret(&pin_file, &format!("{pin}\n"))?;
        Ok(self.token_toml(
            name,
            label,
            &format!("{{ file = \"{}\" }}", pin_file.display()),
        ))
    }

    /// Hands the token, its config and PIN files to `uid`:`gid`, for a
    /// daemon that runs as that user.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<()> {
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(path) = stack.pop() {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            if path.is_dir() {
                for entry in std::fs::read_dir(&path)? {
                    stack.push(entry?.path());
                }
            }
        }
        Ok(())
    }

    /// The directory holding the token's files (`directories.tokendir`).
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// The `SOFTHSM2_CONF` to give processes that use this token.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// A `[[backend]]` section for this token with the PIN in a file.
    pub fn backend_toml(&self, name: &str) -> Result<String> {
        let pin_file = self.dir.path().join(format!("{name}.pin"));
        crate::write_secret(&pin_file, &format!("{}\n", self.pin))?;
        Ok(self.backend_toml_with_pin(name, &format!("{{ file = \"{}\" }}", pin_file.display())))
    }

    /// The same backend with `pin = "prompt"`: locked until a person
    /// unlocks it (or a request brings the PIN).
    pub fn locked_backend_toml(&self, name: &str) -> String {
        self.backend_toml_with_pin(name, "\"prompt\"")
    }

    /// A `[[backend]]` section for this token with `pin` as the config
    /// writes it (`{ file = "…" }`, `{ env = "…" }`, `"prompt"`).
    pub fn backend_toml_with_pin(&self, name: &str, pin: &str) -> String {
        self.token_toml(name, &self.label, pin)
    }

    fn token_toml(&self, name: &str, label: &str, pin: &str) -> String {
        format!(
            "[[backend]]\nname = \"{name}\"\ntype = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken = \"{label}\"\npin = {pin}\n"
        )
    }
}
