//! A private SoftHSM2 for a test process: its own config and token directory.
//!
//! SoftHSM reads SOFTHSM2_CONF from the process environment once, at
//! C_Initialize, and the loaded module is shared by the whole process. So a
//! process gets one `SoftHsm`, created before any thread might read the
//! environment and before the module is loaded, with every token it needs
//! initialised up front (SoftHSM does not see tokens created by another
//! process after it initialised).

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub(crate) const SO_PIN: &str = "87654321";

pub(crate) struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    /// Writes the config and points this process (and softhsm2-util) at it.
    pub(crate) fn new() -> SoftHsm {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} not found: install softhsm2 (apt-get install softhsm2)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        // Only sound while no other thread reads the environment: see above.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        SoftHsm { dir }
    }

    pub(crate) fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    pub(crate) fn init_token(&self, label: &str, pin: &str) {
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                SO_PIN,
            ])
            .env("SOFTHSM2_CONF", self.conf())
            .output()
            .expect("run softhsm2-util (is softhsm2 installed?)");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token {label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
