//! `notaryctl key list|info|generate|delete|unlock|lock`.

use super::with_pin_retry;
use crate::connect::Client;
use crate::errors::KeydError;
use crate::output::{self, KeyJson};
use crate::pin;
use anyhow::bail;
use clap::{Args, ValueEnum};
use keyd_proto::keyd as pb;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array of key objects instead of a table.
    #[arg(long)]
    json: bool,
    /// Only keys in this backend (see `notaryctl backend list`).
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Only keys bound to this role (root, targets, snapshot, timestamp, targets/<name>).
    #[arg(long)]
    role: Option<String>,
    /// Only keys bound to this GUN, e.g. example.com/app.
    #[arg(long)]
    gun: Option<String>,
}

pub async fn list(client: &mut Client, args: &ListArgs) -> anyhow::Result<()> {
    let request = pb::ListKeysRequest {
        backend: args.backend.clone().unwrap_or_default(),
        role: args.role.clone().unwrap_or_default(),
        gun: args.gun.clone().unwrap_or_default(),
    };
    let keys = client
        .list_keys(request)
        .await
        .map_err(KeydError::from)?
        .into_inner()
        .keys;
    if args.json {
        let list: Vec<KeyJson> = keys.iter().map(KeyJson::from).collect();
        println!("{}", output::json(&list)?);
    } else if keys.is_empty() {
        eprintln!("No signing keys found.");
    } else {
        print!("{}", output::key_table(&keys));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Key ID, x509 key ID, or key URI (pkcs11:… or soft:…).
    key: String,
    /// Print a JSON key object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn info(client: &mut Client, args: &InfoArgs) -> anyhow::Result<()> {
    let key = client
        .get_key(pb::GetKeyRequest {
            key: args.key.clone(),
        })
        .await
        .map_err(KeydError::from)?
        .into_inner();
    if args.json {
        println!("{}", output::json(&KeyJson::from(&key))?);
    } else {
        print!("{}", output::key_details(&key));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmArg {
    Ecdsa,
    Ed25519,
    Rsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CurveArg {
    P256,
    P384,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RsaBits {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
    #[value(name = "4096")]
    B4096,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Key algorithm. Notary root keys with certificates need ecdsa.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Ecdsa)]
    pub algorithm: AlgorithmArg,
    /// Curve for ecdsa keys [default: p256].
    #[arg(long, value_enum)]
    curve: Option<CurveArg>,
    /// Modulus size for rsa keys [default: 3072].
    #[arg(long, value_name = "N", value_enum)]
    bits: Option<RsaBits>,
    /// Backend to hold the key; default: the daemon's default backend.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Bind the key to a role: it will only sign metadata of that role.
    #[arg(long)]
    role: Option<String>,
    /// Bind the key to a GUN: it will only sign for that collection.
    #[arg(long)]
    gun: Option<String>,
    /// Label stored with the key; default: "<GUN> <ROLE>" or the role.
    #[arg(long)]
    label: Option<String>,
    /// YubiKey: PIV slot (9a, 9c, 9d, 9e, 82-95); default: the first empty
    /// slot, retired slots (82-95) first. An occupied slot is refused.
    #[arg(long, value_name = "SLOT")]
    slot: Option<String>,
    /// YubiKey: when the key needs the PIN [default: once].
    #[arg(long, value_enum, value_name = "POLICY")]
    pin_policy: Option<PinPolicyArg>,
    /// YubiKey: when the key needs a touch [default: always].
    #[arg(long, value_enum, value_name = "POLICY")]
    touch_policy: Option<TouchPolicyArg>,
    /// If the token is locked, read its PIN from the first line of this file
    /// (else $NOTARY_KEYD_PIN_FILE, else $NOTARY_KEYD_PIN, else a terminal prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PinPolicyArg {
    Never,
    Once,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TouchPolicyArg {
    Never,
    Always,
    Cached,
}

impl GenerateArgs {
    fn request(&self) -> anyhow::Result<pb::GenerateKeyRequest> {
        if self.curve.is_some() && self.algorithm != AlgorithmArg::Ecdsa {
            bail!("--curve only applies to --algorithm ecdsa");
        }
        if self.bits.is_some() && self.algorithm != AlgorithmArg::Rsa {
            bail!("--bits only applies to --algorithm rsa");
        }
        let algorithm = match self.algorithm {
            AlgorithmArg::Ecdsa => "ecdsa",
            AlgorithmArg::Ed25519 => "ed25519",
            AlgorithmArg::Rsa => "rsa",
        };
        let curve = match self.curve {
            Some(CurveArg::P256) => "p256",
            Some(CurveArg::P384) => "p384",
            None => "",
        };
        // 0 and "" ask the daemon for its defaults (3072 bits, p256).
        let bits = match self.bits {
            Some(RsaBits::B2048) => 2048,
            Some(RsaBits::B3072) => 3072,
            Some(RsaBits::B4096) => 4096,
            None => 0,
        };
        Ok(pb::GenerateKeyRequest {
            backend: self.backend.clone().unwrap_or_default(),
            algorithm: algorithm.into(),
            curve: curve.into(),
            bits,
            label: self.label.clone().unwrap_or_default(),
            role: self.role.clone().unwrap_or_default(),
            gun: self.gun.clone().unwrap_or_default(),
            slot: self.slot.clone().unwrap_or_default(),
            pin_policy: self
                .pin_policy
                .and_then(|p| p.to_possible_value())
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
            touch_policy: self
                .touch_policy
                .and_then(|t| t.to_possible_value())
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
            pin: String::new(),
        })
    }
}

/// A YubiKey generating with a touch policy signs the new key's slot
/// certificate right away, which needs a touch: say so before the wait.
async fn touch_notice(client: &mut Client, args: &GenerateArgs, backend: &str) {
    if args.touch_policy == Some(TouchPolicyArg::Never) {
        return;
    }
    let Ok(reply) = client.list_backends(pb::ListBackendsRequest {}).await else {
        return;
    };
    let target = reply.into_inner().backends.into_iter().find(|b| {
        if backend.is_empty() {
            b.is_default
        } else {
            b.name == backend
        }
    });
    if let Some(b) = target.filter(|b| b.r#type == "yubikey") {
        let serial = b.device.map(|d| d.serial).unwrap_or_default();
        eprintln!(
            "Touch your YubiKey (serial {serial}) when it blinks: the new key signs its slot certificate…"
        );
    }
}

/// GenerateKey; a locked token gets its PIN once (see `with_pin_retry`).
pub async fn generate_with_pin(
    client: &mut Client,
    request: pb::GenerateKeyRequest,
    pin_file: Option<&Path>,
) -> anyhow::Result<pb::Key> {
    let backend = request.backend.clone();
    with_pin_retry(&backend, pin_file, |pin| {
        let mut request = request.clone();
        request.pin = pin.map(pin::for_request).unwrap_or_default();
        let mut client = client.clone();
        async move { Ok(client.generate_key(request).await?.into_inner()) }
    })
    .await
}

pub async fn generate(client: &mut Client, args: &GenerateArgs) -> anyhow::Result<()> {
    let request = args.request()?;
    let backend = request.backend.clone();
    touch_notice(client, args, &backend).await;
    let key = generate_with_pin(client, request, args.pin_file.as_deref()).await?;
    let binding = match (key.role.as_str(), key.gun.as_str()) {
        ("", "") => "unbound".to_string(),
        (role, "") => format!("role {role}"),
        ("", gun) => format!("GUN {gun}"),
        (role, gun) => format!("role {role}, GUN {gun}"),
    };
    eprintln!(
        "Generated {} key in backend {} ({binding})",
        key.algorithm, key.backend
    );
    eprintln!("URI: {}", key.uri);
    // Last line of stdout, for scripts.
    println!("{}", key.key_id);
    Ok(())
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Key ID of the key to delete.
    key_id: String,
    /// Confirm the deletion; the private key is destroyed in its backend.
    #[arg(long)]
    yes: bool,
}

/// Refuses before contacting the daemon unless the deletion is confirmed.
pub fn check_delete(args: &DeleteArgs) -> anyhow::Result<()> {
    if !args.yes {
        bail!(
            "not deleting key {}: deletion is irreversible (the private key is destroyed in its \
             backend and cannot be recovered). Re-run with --yes to delete it.",
            args.key_id
        );
    }
    Ok(())
}

pub async fn delete(client: &mut Client, args: &DeleteArgs) -> anyhow::Result<()> {
    check_delete(args)?;
    client
        .delete_key(pb::DeleteKeyRequest {
            key_id: args.key_id.clone(),
            confirm_key_id: args.key_id.clone(),
        })
        .await
        .map_err(KeydError::from)?;
    eprintln!("Deleted key {}", args.key_id);
    Ok(())
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Backend whose token to log in.
    #[arg(long, value_name = "NAME")]
    backend: String,
    /// Read the PIN from the first line of this file instead of
    /// $NOTARY_KEYD_PIN_FILE, $NOTARY_KEYD_PIN or a terminal prompt.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

pub async fn unlock(client: &mut Client, args: &UnlockArgs) -> anyhow::Result<()> {
    let pin = pin::require(args.pin_file.as_deref(), &args.backend)?;
    client
        .unlock(pb::UnlockRequest {
            backend: args.backend.clone(),
            pin: pin::for_request(&pin),
        })
        .await
        .map_err(|st| KeydError::on_backend(st, &args.backend))?;
    eprintln!("Backend {} unlocked", args.backend);
    Ok(())
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Backend whose token to log out.
    #[arg(long, value_name = "NAME")]
    backend: String,
}

pub async fn lock(client: &mut Client, args: &LockArgs) -> anyhow::Result<()> {
    client
        .lock(pb::LockRequest {
            backend: args.backend.clone(),
        })
        .await
        .map_err(|st| KeydError::on_backend(st, &args.backend))?;
    eprintln!("Backend {} locked", args.backend);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_args(algorithm: AlgorithmArg) -> GenerateArgs {
        GenerateArgs {
            algorithm,
            curve: None,
            bits: None,
            backend: None,
            role: Some("targets".into()),
            gun: None,
            label: None,
            slot: None,
            pin_policy: None,
            touch_policy: None,
            pin_file: None,
        }
    }

    #[test]
    fn yubikey_options_reach_the_request() {
        let mut args = generate_args(AlgorithmArg::Ecdsa);
        args.slot = Some("9c".into());
        args.pin_policy = Some(PinPolicyArg::Always);
        args.touch_policy = Some(TouchPolicyArg::Cached);
        let req = args.request().unwrap();
        assert_eq!(
            (
                req.slot.as_str(),
                req.pin_policy.as_str(),
                req.touch_policy.as_str()
            ),
            ("9c", "always", "cached")
        );
        let req = generate_args(AlgorithmArg::Ecdsa).request().unwrap();
        assert_eq!((req.slot.as_str(), req.pin_policy.as_str()), ("", ""));
    }

    #[test]
    fn generate_request_fields() {
        let mut args = generate_args(AlgorithmArg::Rsa);
        args.bits = Some(RsaBits::B4096);
        let req = args.request().unwrap();
        assert_eq!(
            (req.algorithm.as_str(), req.bits, req.curve.as_str()),
            ("rsa", 4096, "")
        );
        assert_eq!(req.role, "targets");
        assert_eq!(req.backend, "");

        let mut args = generate_args(AlgorithmArg::Ecdsa);
        args.curve = Some(CurveArg::P384);
        let req = args.request().unwrap();
        assert_eq!(
            (req.algorithm.as_str(), req.bits, req.curve.as_str()),
            ("ecdsa", 0, "p384")
        );
    }

    #[test]
    fn generate_refuses_options_of_other_algorithms() {
        let mut args = generate_args(AlgorithmArg::Ed25519);
        args.curve = Some(CurveArg::P256);
        assert!(args.request().unwrap_err().to_string().contains("--curve"));
        let mut args = generate_args(AlgorithmArg::Ecdsa);
        args.bits = Some(RsaBits::B2048);
        assert!(args.request().unwrap_err().to_string().contains("--bits"));
    }

    #[test]
    fn delete_needs_yes() {
        let args = DeleteArgs {
            key_id: "ab12".into(),
            yes: false,
        };
        let err = check_delete(&args).unwrap_err().to_string();
        assert!(
            err.contains("ab12") && err.contains("irreversible") && err.contains("--yes"),
            "{err}"
        );
        assert!(check_delete(&DeleteArgs {
            key_id: "ab12".into(),
            yes: true
        })
        .is_ok());
    }
}
