//! Loading PKCS#11 modules. A module is process-global: one C_Initialize per
//! process, login state shared by every user of a token. So each library is
//! loaded once and shared by all backends using it, and finalised when the
//! last one lets go (a fresh C_Initialize is also how SoftHSM notices tokens
//! created after it was initialised).

use super::errors::describe;
use super::lock;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

static LOADED: LazyLock<Mutex<HashMap<PathBuf, Weak<Module>>>> = LazyLock::new(Default::default);

pub(super) struct Module {
    key: PathBuf,
    ctx: Pkcs11,
    /// False if something else in the process had initialised the library:
    /// then finalising it is theirs to do.
    finalize: bool,
}

impl Module {
    pub(super) fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }
}

/// Loads and initialises the library at `path`, or shares the copy already
/// loaded. The error is a complete, human-readable reason.
pub(super) fn load(path: &Path) -> Result<Arc<Module>, String> {
    // One entry per file, however it is spelled (the SoftHSM path is a symlink).
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    loop {
        let mut loaded = lock(&LOADED);
        if let Some(weak) = loaded.get(&key) {
            if let Some(module) = weak.upgrade() {
                return Ok(module);
            }
            // Its last user is finalising it; a C_Initialize now would race
            // with that C_Finalize. Wait for the entry to go.
            drop(loaded);
            std::thread::yield_now();
            continue;
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            let hint = if path.to_string_lossy().contains("softhsm") {
                "is softhsm2 installed?"
            } else {
                "check the module path in the config and that the vendor's PKCS#11 library is installed"
            };
            format!("PKCS#11 module {} could not be loaded: {e} ({hint})", path.display())
        })?;
        let finalize = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => {
                let hint = if path.to_string_lossy().contains("softhsm") {
                    " (SoftHSM fails so when it cannot read its config or token directory)"
                } else {
                    ""
                };
                return Err(format!(
                    "PKCS#11 module {} failed to initialise: {}{hint}",
                    path.display(),
                    describe(&e)
                ));
            }
        };
        let module = Arc::new(Module {
            key: key.clone(),
            ctx,
            finalize,
        });
        loaded.insert(key, Arc::downgrade(&module));
        return Ok(module);
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Under the registry lock, so nobody initialises it again until the
        // C_Finalize is done and the entry is gone.
        let mut loaded = lock(&LOADED);
        if self.finalize {
            if let Err(e) = self.ctx.clone().finalize() {
                tracing::warn!(module = %self.key.display(), "C_Finalize failed: {}", describe(&e));
            }
        }
        if loaded.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            loaded.remove(&self.key);
        }
    }
}
