//! The daemon's config file: TOML parsing and validation as `--check-config`
//! and start-up run them, and a reload (SIGHUP) of the same file.
//!
//! What must hold, besides no panic:
//! - a refused config gets a message that names the file;
//! - an accepted config names a default backend and a signer-API backend
//!   that are among its `[[backend]]`s, and parses the same way again;
//! - reloading the file a daemon started from succeeds, applies the same
//!   policy rules and asks for no restart.

#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_keyd::fuzzing::{reload, ParsedConfig};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the text is written for the reload: one file per process.
fn reload_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("notary-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir.join("keyd.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = reload_path();
    let config = match ParsedConfig::parse(path, text) {
        Ok(config) => config,
        Err(message) => {
            assert!(
                message.contains(&path.display().to_string()),
                "a refusal that does not name the file: {message}"
            );
            return;
        }
    };
    let backends = config.backend_names();
    assert!(
        backends.contains(&config.default_backend()),
        "default backend {:?} is not among {backends:?}",
        config.default_backend()
    );
    if let Some(api) = config.signer_api_backend() {
        assert!(
            backends.contains(&api),
            "signer API backend {api:?} is not among {backends:?}"
        );
    }
    let again =
        ParsedConfig::parse(path, text).expect("an accepted config is refused the second time");
    assert_eq!(again.backend_names(), backends);
    assert_eq!(again.default_backend(), config.default_backend());
    assert_eq!(again.policy_rules(), config.policy_rules());

    std::fs::write(path, text).expect("the config file is written");
    let (rules, needs_restart) = reload(path, text)
        .unwrap_or_else(|e| panic!("reloading the file a daemon started from fails: {e}"));
    assert_eq!(
        rules,
        config.policy_rules(),
        "a reload applied other policy rules"
    );
    assert!(
        needs_restart.is_empty(),
        "an unchanged file needs a restart for {needs_restart:?}"
    );
});
