//! Configured backends and their opening. Each `[[backend]]` section is one
//! flat table whose `type` decides which fields apply; fields of another type
//! are an error rather than silently ignored.

use crate::check::location::Problem;
use crate::device::PinCache;
use crate::pin_source::PinSource;
use keyd_backends::pkcs11::{Pkcs11Backend, Pkcs11Config, TokenSelector};
use keyd_backends::soft::{SoftBackend, SoftConfig};
#[cfg(feature = "tpm")]
use keyd_backends::tpm::{TpmBackend, TpmConfig, DEFAULT_TCTI};
#[cfg(feature = "yubikey")]
use keyd_backends::yubikey::{YubiKeyBackend, YubiKeyConfig};
use keyd_backends::KeyBackend;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendType {
    Soft,
    Pkcs11,
    Tpm,
    Yubikey,
}

impl BackendType {
    /// The name as the config file writes it (`type = "pkcs11"`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackendType::Soft => "soft",
            BackendType::Pkcs11 => "pkcs11",
            BackendType::Tpm => "tpm",
            BackendType::Yubikey => "yubikey",
        }
    }

    /// The optional `[[backend]]` fields this type uses; any other is an
    /// error rather than silently ignored.
    fn fields(self) -> &'static [&'static str] {
        match self {
            BackendType::Soft => &["dir", "passphrase", "pin_cache"],
            BackendType::Pkcs11 => &[
                "module",
                "token",
                "token_serial",
                "pin",
                "sessions",
                "pin_cache",
            ],
            BackendType::Tpm => &["dir", "tcti", "owner_auth", "key_auth", "persist_from"],
            // No `pin`: a person types the PIN (notaryctl prompts); a
            // configured PIN would be re-tried on every re-insertion and
            // could block the YubiKey.
            BackendType::Yubikey => &["serial", "pin_cache"],
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: BackendType,
    /// soft: keystore directory (default `<state_dir>/soft`); tpm: key blob
    /// directory (default `<state_dir>/tpm-<name>`).
    pub dir: Option<PathBuf>,
    /// soft: passphrase source for encryption at rest.
    pub passphrase: Option<PinSource>,
    /// pkcs11: path of the PKCS#11 module.
    pub module: Option<PathBuf>,
    /// pkcs11: token label.
    pub token: Option<String>,
    /// pkcs11: token serial number (instead of the label).
    pub token_serial: Option<String>,
    /// pkcs11: user PIN source.
    pub pin: Option<PinSource>,
    /// pkcs11: worker sessions (default: twice the CPUs, at least 4).
    pub sessions: Option<usize>,
    /// pkcs11 with `pin = "prompt"`, yubikey: how long an unlock lasts.
    #[serde(default)]
    pub pin_cache: PinCache,
    /// tpm: TCTI (default `device:/dev/tpmrm0`).
    pub tcti: Option<String>,
    /// tpm: owner hierarchy auth source, when the owner set one.
    pub owner_auth: Option<PinSource>,
    /// tpm: auth value source for the keys this backend creates.
    pub key_auth: Option<PinSource>,
    /// yubikey: serial number of the YubiKey (required when several are
    /// plugged in).
    pub serial: Option<u32>,
    /// tpm: also make new keys persistent from this owner handle on.
    pub persist_from: Option<u32>,
}

impl BackendConfig {
    pub(crate) fn personal_soft(passphrase: Option<PinSource>) -> BackendConfig {
        BackendConfig {
            name: "soft".into(),
            kind: BackendType::Soft,
            dir: None,
            passphrase,
            module: None,
            token: None,
            token_serial: None,
            pin: None,
            sessions: None,
            pin_cache: PinCache::Default,
            tcti: None,
            owner_auth: None,
            key_auth: None,
            serial: None,
            persist_from: None,
        }
    }

    /// Every optional field, and whether this section sets it.
    fn fields_set(&self) -> [(&'static str, bool); 13] {
        [
            ("dir", self.dir.is_some()),
            ("passphrase", self.passphrase.is_some()),
            ("module", self.module.is_some()),
            ("token", self.token.is_some()),
            ("token_serial", self.token_serial.is_some()),
            ("pin", self.pin.is_some()),
            ("sessions", self.sessions.is_some()),
            ("pin_cache", self.pin_cache != PinCache::Default),
            ("tcti", self.tcti.is_some()),
            ("owner_auth", self.owner_auth.is_some()),
            ("key_auth", self.key_auth.is_some()),
            ("serial", self.serial.is_some()),
            ("persist_from", self.persist_from.is_some()),
        ]
    }

    /// Checks fields against the type; the problem names the field, at
    /// its place in this section.
    pub(crate) fn validate(&self) -> Result<(), Problem> {
        let name = &self.name;
        let applies = self.kind.fields();
        if let Some((field, _)) = self
            .fields_set()
            .into_iter()
            .find(|(field, set)| *set && !applies.contains(field))
        {
            return Err(Problem::field(
                field,
                format!(
                    "backend {name:?}: `{field}` does not apply to type \"{}\"",
                    self.kind.as_str()
                ),
            ));
        }
        match self.kind {
            BackendType::Yubikey => Ok(()),
            BackendType::Soft => {
                if matches!(self.passphrase, Some(PinSource::Prompt)) {
                    // Nothing can answer the prompt, and a keystore without
                    // its passphrase would write its keys in clear.
                    return Err(Problem::field(
                        "passphrase",
                        format!(
                            "backend {name:?}: the software keystore has no prompt; give \
                             `passphrase` as a file, env or credential, or leave it out for \
                             an unencrypted keystore"
                        ),
                    ));
                }
                Ok(())
            }
            BackendType::Pkcs11 => {
                if self.module.is_none() {
                    return Err(Problem::field(
                        "type",
                        format!("backend {name:?}: pkcs11 needs `module`"),
                    ));
                }
                if self.token.is_some() == self.token_serial.is_some() {
                    let at = if self.token.is_some() {
                        "token"
                    } else {
                        "type"
                    };
                    return Err(Problem::field(
                        at,
                        format!(
                            "backend {name:?}: give exactly one of `token` (label) or `token_serial`"
                        ),
                    ));
                }
                if self.pin.is_none() {
                    return Err(Problem::field(
                        "type",
                        format!(
                            "backend {name:?}: pkcs11 needs `pin` (a file, env, credential, or \"prompt\")"
                        ),
                    ));
                }
                Ok(())
            }
            BackendType::Tpm => self.validate_tpm(),
        }
    }

    fn validate_tpm(&self) -> Result<(), Problem> {
        let name = &self.name;
        for (field, source) in [
            ("owner_auth", &self.owner_auth),
            ("key_auth", &self.key_auth),
        ] {
            if matches!(source, Some(PinSource::Prompt)) {
                return Err(Problem::field(
                    field,
                    format!(
                        "backend {name:?}: `{field}` must be a file, env or credential; the TPM \
                         backend has no prompt (a wrong typed value would count toward lockout)"
                    ),
                ));
            }
        }
        if let Some(from) = self.persist_from {
            // The range is the TPM spec's; checked even without the feature.
            if !(0x8100_0000..=0x817F_FFFF).contains(&from) {
                return Err(Problem::field(
                    "persist_from",
                    format!(
                        "backend {name:?}: `persist_from` = {from:#x} is outside the owner's \
                         persistent handles 0x81000000..=0x817fffff"
                    ),
                ));
            }
        }
        if self.tcti.as_deref().is_some_and(str::is_empty) {
            return Err(Problem::field(
                "tcti",
                format!("backend {name:?}: `tcti` is empty"),
            ));
        }
        Ok(())
    }

    /// The secrets this section reads at start, with the setting that
    /// names each.
    pub(crate) fn secret_sources(&self) -> impl Iterator<Item = (&'static str, &PinSource)> {
        [
            ("passphrase", &self.passphrase),
            ("pin", &self.pin),
            ("owner_auth", &self.owner_auth),
            ("key_auth", &self.key_auth),
        ]
        .into_iter()
        .filter_map(|(field, source)| Some((field, source.as_ref()?)))
    }

    /// soft: the keystore directory.
    pub(crate) fn soft_dir(&self, state_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| state_dir.join("soft"))
    }

    /// Opens the backend. A device that cannot be reached yields a backend
    /// reporting itself unavailable; only configuration errors (a PIN source
    /// that cannot be read, a keystore that refuses to open) are reported as
    /// `Err`, and the caller marks the backend failed with that reason.
    pub(crate) fn open(&self, state_dir: &Path) -> Result<Arc<dyn KeyBackend>, String> {
        match self.kind {
            BackendType::Soft => {
                let passphrase = match &self.passphrase {
                    Some(src) => src.resolve().map_err(|e| e.to_string())?,
                    None => None,
                };
                let dir = self.soft_dir(state_dir);
                let backend =
                    SoftBackend::open(SoftConfig { dir, passphrase }).map_err(|e| e.to_string())?;
                Ok(Arc::new(backend))
            }
            BackendType::Pkcs11 => {
                let pin = match &self.pin {
                    Some(src) => src.resolve().map_err(|e| e.to_string())?,
                    None => None,
                };
                let token = match (&self.token, &self.token_serial) {
                    (Some(label), _) => TokenSelector::Label(label.clone()),
                    (None, Some(serial)) => TokenSelector::Serial(serial.clone()),
                    (None, None) => return Err("no token selector".into()),
                };
                let config = Pkcs11Config {
                    module: self.module.clone().unwrap_or_default(),
                    token,
                    pin,
                    max_sessions: self
                        .sessions
                        .unwrap_or_else(keyd_backends::pkcs11::default_max_sessions),
                };
                Ok(Arc::new(Pkcs11Backend::open(&self.name, config)))
            }
            BackendType::Tpm => self.open_tpm(state_dir),
            #[cfg(feature = "yubikey")]
            BackendType::Yubikey => Ok(Arc::new(YubiKeyBackend::open(
                &self.name,
                YubiKeyConfig {
                    serial: self.serial,
                },
            ))),
            #[cfg(not(feature = "yubikey"))]
            BackendType::Yubikey => {
                Err("this notary-keyd was built without the yubikey feature".into())
            }
        }
    }

    #[cfg(feature = "tpm")]
    fn open_tpm(&self, state_dir: &Path) -> Result<Arc<dyn KeyBackend>, String> {
        let secret = |source: &Option<PinSource>| match source {
            Some(src) => src.resolve().map_err(|e| e.to_string()),
            None => Ok(None),
        };
        let config = TpmConfig {
            tcti: self.tcti.clone().unwrap_or_else(|| DEFAULT_TCTI.into()),
            dir: self
                .dir
                .clone()
                .unwrap_or_else(|| state_dir.join(format!("tpm-{}", self.name))),
            owner_auth: secret(&self.owner_auth)?,
            key_auth: secret(&self.key_auth)?,
            persist_from: self.persist_from,
        };
        let backend = TpmBackend::open(&self.name, config).map_err(|e| e.to_string())?;
        Ok(Arc::new(backend))
    }

    #[cfg(not(feature = "tpm"))]
    fn open_tpm(&self, _state_dir: &Path) -> Result<Arc<dyn KeyBackend>, String> {
        Err("this notary-keyd was built without the `tpm` feature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::location::KeyPath;

    fn parse(text: &str) -> BackendConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn tpm_fields_are_checked_against_the_type() {
        let ok = parse("name='tpm'\ntype='tpm'\nkey_auth={ env='K' }\n");
        assert_eq!(ok.validate(), Ok(()));

        let prompt = parse("name='tpm'\ntype='tpm'\nkey_auth='prompt'\n");
        let err = prompt.validate().unwrap_err().message;
        assert!(
            err.contains("`key_auth` must be a file, env or credential"),
            "{err}"
        );

        let pin = parse("name='tpm'\ntype='tpm'\npin={ env='P' }\n");
        let err = pin.validate().unwrap_err().message;
        assert!(
            err.contains("`pin` does not apply to type \"tpm\""),
            "{err}"
        );

        let empty = parse("name='tpm'\ntype='tpm'\ntcti=''\n");
        assert!(empty
            .validate()
            .unwrap_err()
            .message
            .contains("`tcti` is empty"));

        let handle = parse("name='tpm'\ntype='tpm'\npersist_from=0x80000001\n");
        let err = handle.validate().unwrap_err().message;
        assert!(
            err.contains("outside the owner's persistent handles"),
            "{err}"
        );

        let soft = parse("name='soft'\ntype='soft'\ntcti='device:/dev/tpmrm0'\n");
        let err = soft.validate().unwrap_err().message;
        assert!(
            err.contains("`tcti` does not apply to type \"soft\""),
            "{err}"
        );
    }

    #[test]
    fn a_software_keystore_refuses_a_prompted_passphrase() {
        let err = parse("name='soft'\ntype='soft'\npassphrase='prompt'\n")
            .validate()
            .unwrap_err();
        assert_eq!(err.at, KeyPath::root().key("passphrase"));
        assert!(err.message.contains("has no prompt"), "{}", err.message);
        parse("name='soft'\ntype='soft'\npassphrase={ env='P' }\n")
            .validate()
            .unwrap();
    }

    #[test]
    fn yubikey_takes_a_serial_and_no_pin() {
        let ok = parse("name='yk'\ntype='yubikey'\nserial=12345678\n");
        assert_eq!(ok.serial, Some(12345678));
        ok.validate().unwrap();
        parse("name='yk'\ntype='yubikey'\n").validate().unwrap();
        let err = parse("name='yk'\ntype='yubikey'\npin={ file='/p' }\n")
            .validate()
            .unwrap_err()
            .message;
        assert!(err.contains("`pin` does not apply"), "{err}");
        let err = parse("name='s'\ntype='soft'\nserial=1\n")
            .validate()
            .unwrap_err()
            .message;
        assert!(err.contains("`serial` does not apply"), "{err}");
        assert!(
            toml::from_str::<BackendConfig>("name='yk'\ntype='yubikey'\nserial='x'\n").is_err()
        );
    }
}
