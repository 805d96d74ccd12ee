//! `notaryctl key list|info|generate|delete|unlock|lock`.

use super::key_uses;
use super::repo::Context;
use super::with_pin_retry;
use crate::commands::key_named;
use crate::connect::Client;
use crate::errors::Reply;
use crate::meter::Meter;
use crate::output::{self, KeyJson};
use crate::pin;
use anyhow::{anyhow, bail};
use clap::{Args, ValueEnum};
use keyd_proto::convert::{role_fields, role_name};
use keyd_proto::keyd as pb;
use notary_tuf::metadata::Role;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
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

/// A `--role` value: a base role or a `targets/<name>` delegation.
pub(crate) fn role_arg(role: Option<&str>) -> anyhow::Result<(i32, String)> {
    let role = role
        .map(|r| Role::parse(r).map_err(|e| anyhow!("--role {r:?}: {e}")))
        .transpose()?;
    Ok(role_fields(role.as_ref()))
}

pub(crate) async fn list(client: &mut Client, args: &ListArgs) -> anyhow::Result<()> {
    let (role, delegation) = role_arg(args.role.as_deref())?;
    let request = pb::ListKeysRequest {
        backend: args.backend.clone().unwrap_or_default(),
        role,
        delegation,
        gun: args.gun.clone().unwrap_or_default(),
    };
    let keys = client.list_keys(request).await.reply()?.keys;
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
pub(crate) struct InfoArgs {
    /// Key ID, x509 key ID, or key URI (pkcs11:… or soft:…).
    key: String,
    /// Print a JSON key object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn info(client: &mut Client, args: &InfoArgs) -> anyhow::Result<()> {
    let key = key_named(client, &args.key).await?;
    if args.json {
        println!("{}", output::json(&KeyJson::from(&key))?);
    } else {
        print!("{}", output::key_details(&key));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AlgorithmArg {
    Ecdsa,
    Ed25519,
    Rsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CurveArg {
    P256,
    P384,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RsaBits {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
    #[value(name = "4096")]
    B4096,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Key algorithm, as notary takes it [default: ecdsa]. Notary root
    /// keys with certificates need ecdsa.
    #[arg(value_enum, value_name = "ALGORITHM")]
    algorithm_arg: Option<AlgorithmArg>,
    /// The same as ALGORITHM.
    #[arg(long, value_enum, conflicts_with = "algorithm_arg")]
    algorithm: Option<AlgorithmArg>,
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
    /// Unlike notary, no --role means no binding (notary assumes root).
    #[arg(short = 'r', long)]
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
    /// Refused: notary writes the new private key to this file, but a key
    /// made in notary-keyd never leaves it (`key info` shows the public key).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PinPolicyArg {
    Never,
    Once,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TouchPolicyArg {
    Never,
    Always,
    Cached,
}

impl GenerateArgs {
    pub(crate) fn algorithm(&self) -> AlgorithmArg {
        self.algorithm_arg
            .or(self.algorithm)
            .unwrap_or(AlgorithmArg::Ecdsa)
    }

    fn request(&self) -> anyhow::Result<pb::GenerateKeyRequest> {
        if let Some(path) = &self.output {
            bail!(
                "--output {} is refused: notary writes the private key to a file, but a key \
                 made in notary-keyd never leaves its backend; its public key is printed by \
                 `notaryctl key info KEYID`",
                path.display()
            );
        }
        if self.curve.is_some() && self.algorithm() != AlgorithmArg::Ecdsa {
            bail!("--curve only applies to --algorithm ecdsa");
        }
        if self.bits.is_some() && self.algorithm() != AlgorithmArg::Rsa {
            bail!("--bits only applies to --algorithm rsa");
        }
        let algorithm = match (self.algorithm(), self.curve, self.bits) {
            (AlgorithmArg::Ecdsa, Some(CurveArg::P256) | None, _) => pb::Algorithm::EcdsaP256,
            (AlgorithmArg::Ecdsa, Some(CurveArg::P384), _) => pb::Algorithm::EcdsaP384,
            (AlgorithmArg::Ed25519, ..) => pb::Algorithm::Ed25519,
            (AlgorithmArg::Rsa, _, Some(RsaBits::B2048)) => pb::Algorithm::Rsa2048,
            (AlgorithmArg::Rsa, _, Some(RsaBits::B3072) | None) => pb::Algorithm::Rsa3072,
            (AlgorithmArg::Rsa, _, Some(RsaBits::B4096)) => pb::Algorithm::Rsa4096,
        };
        let (role, delegation) = role_arg(self.role.as_deref())?;
        let slot = match &self.slot {
            None => pb::PivSlot::Unspecified,
            Some(s) => u8::from_str_radix(s, 16)
                .ok()
                .and_then(pb::PivSlot::from_id)
                .ok_or_else(|| anyhow!("--slot {s:?}: use 9a, 9c, 9d, 9e or 82-95"))?,
        };
        let pin_policy = match self.pin_policy {
            None => pb::PinPolicy::Unspecified,
            Some(PinPolicyArg::Never) => pb::PinPolicy::Never,
            Some(PinPolicyArg::Once) => pb::PinPolicy::Once,
            Some(PinPolicyArg::Always) => pb::PinPolicy::Always,
        };
        let touch_policy = match self.touch_policy {
            None => pb::TouchPolicy::Unspecified,
            Some(TouchPolicyArg::Never) => pb::TouchPolicy::Never,
            Some(TouchPolicyArg::Always) => pb::TouchPolicy::Always,
            Some(TouchPolicyArg::Cached) => pb::TouchPolicy::Cached,
        };
        Ok(pb::GenerateKeyRequest {
            backend: self.backend.clone().unwrap_or_default(),
            algorithm: algorithm as i32,
            label: self.label.clone().unwrap_or_default(),
            role,
            delegation,
            gun: self.gun.clone().unwrap_or_default(),
            slot: slot as i32,
            pin_policy: pin_policy as i32,
            touch_policy: touch_policy as i32,
            pin: String::new(),
        })
    }
}

impl GenerateArgs {
    fn algorithm_word(&self) -> &'static str {
        match self.algorithm() {
            AlgorithmArg::Ecdsa => "an ECDSA",
            AlgorithmArg::Ed25519 => "an Ed25519",
            AlgorithmArg::Rsa => "an RSA",
        }
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
    if let Some(b) = target.filter(|b| b.r#type() == pb::BackendType::Yubikey) {
        let serial = b.device.map(|d| d.serial).unwrap_or_default();
        eprintln!(
            "Touch your YubiKey (serial {serial}) when it blinks: the new key signs its slot certificate…"
        );
    }
}

/// GenerateKey; a locked token gets its PIN once (see `with_pin_retry`).
pub(crate) async fn generate_with_pin(
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

pub(crate) async fn generate(client: &mut Client, args: &GenerateArgs) -> anyhow::Result<()> {
    let request = args.request()?;
    let backend = request.backend.clone();
    touch_notice(client, args, &backend).await;
    let meter = Meter::waiting(format!("Generating {} key", args.algorithm_word()));
    let key = generate_with_pin(client, request, args.pin_file.as_deref()).await;
    drop(meter);
    let key = key?;
    let role = role_name(key.role, &key.delegation);
    let binding = match (role.as_str(), key.gun.as_str()) {
        ("", "") => "unbound".to_string(),
        (role, "") => format!("role {role}"),
        ("", gun) => format!("GUN {gun}"),
        (role, gun) => format!("role {role}, GUN {gun}"),
    };
    eprintln!(
        "Generated {} key in backend {} ({binding})",
        key.algorithm().word(),
        key.backend
    );
    eprintln!("URI: {}", key.uri);
    // Last line of stdout, for scripts.
    println!("{}", key.key_id);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// Key ID of the key to delete.
    key_id: String,
    /// Delete without asking; the private key is destroyed in its backend.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Delete even a key in use: bound to a role or GUN, or named by a
    /// collection's trusted metadata in the trust dir (that collection's
    /// role can then never be signed or rotated by this key again).
    #[arg(long)]
    force: bool,
}

/// Refuses unless the deletion is confirmed: by --yes, or by a person at
/// a terminal (asked once the key's uses are known).
pub(crate) fn check_delete(args: &DeleteArgs) -> anyhow::Result<()> {
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!(
            "not deleting key {}: deletion is irreversible (the private key is destroyed in its \
             backend and cannot be recovered). Re-run with --yes to delete it.",
            args.key_id
        );
    }
    Ok(())
}

pub(crate) async fn delete(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<()> {
    check_delete(args)?;
    let mut client = crate::connect::connect(&ctx.keyd_socket).await?;
    let key = key_named(&mut client, &args.key_id).await?;
    let uses = key_uses::uses(&key, &ctx.settings.trust_dir)?;
    if !uses.is_empty() {
        let list = uses.join("; ");
        if !args.force {
            bail!(
                "not deleting key {}: it is in use ({list}). Deleting it leaves what it signs \
                 unsignable; rotate the role to another key first (`notaryctl key rotate`), or \
                 re-run with --force if you are sure",
                key.key_id
            );
        }
        eprintln!("warning: key {} is in use: {list}", key.key_id);
    }
    if !args.yes && !confirmed(&key.key_id)? {
        bail!("not deleting key {}: you did not say yes", key.key_id);
    }
    client
        .delete_key(pb::DeleteKeyRequest {
            key_id: key.key_id.clone(),
            confirm_key_id: key.key_id.clone(),
        })
        .await
        .reply()?;
    eprintln!("Deleted key {}", key.key_id);
    Ok(())
}

fn confirmed(key_id: &str) -> anyhow::Result<bool> {
    eprint!("Delete key {key_id}? Its private key is destroyed and cannot be recovered. (yes/no) ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// Backend whose token to log in.
    #[arg(long, value_name = "NAME")]
    backend: String,
    /// Read the PIN from the first line of this file instead of
    /// $NOTARY_KEYD_PIN_FILE, $NOTARY_KEYD_PIN or a terminal prompt.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

pub(crate) async fn unlock(client: &mut Client, args: &UnlockArgs) -> anyhow::Result<()> {
    let pin = pin::require(args.pin_file.as_deref(), &args.backend)?;
    client
        .unlock(pb::UnlockRequest {
            backend: args.backend.clone(),
            pin: pin::for_request(&pin),
        })
        .await
        .reply_on(&args.backend)?;
    eprintln!("Backend {} unlocked", args.backend);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// Backend whose token to log out.
    #[arg(long, value_name = "NAME")]
    backend: String,
}

pub(crate) async fn lock(client: &mut Client, args: &LockArgs) -> anyhow::Result<()> {
    client
        .lock(pb::LockRequest {
            backend: args.backend.clone(),
        })
        .await
        .reply_on(&args.backend)?;
    eprintln!("Backend {} locked", args.backend);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_args(algorithm: AlgorithmArg) -> GenerateArgs {
        GenerateArgs {
            algorithm_arg: Some(algorithm),
            algorithm: None,
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
            output: None,
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
            (req.slot(), req.pin_policy(), req.touch_policy()),
            (
                pb::PivSlot::Signature,
                pb::PinPolicy::Always,
                pb::TouchPolicy::Cached
            )
        );
        let req = generate_args(AlgorithmArg::Ecdsa).request().unwrap();
        assert_eq!(
            (req.slot(), req.pin_policy()),
            (pb::PivSlot::Unspecified, pb::PinPolicy::Unspecified)
        );
        args.slot = Some("9b".into());
        assert!(args.request().unwrap_err().to_string().contains("--slot"));
    }

    #[test]
    fn generate_request_fields() {
        let mut args = generate_args(AlgorithmArg::Rsa);
        args.bits = Some(RsaBits::B4096);
        let req = args.request().unwrap();
        assert_eq!(req.algorithm(), pb::Algorithm::Rsa4096);
        assert_eq!(req.role(), pb::KeyRole::Targets);
        assert_eq!(req.backend, "");
        assert_eq!(
            generate_args(AlgorithmArg::Rsa)
                .request()
                .unwrap()
                .algorithm(),
            pb::Algorithm::Rsa3072
        );
        let mut args = generate_args(AlgorithmArg::Ed25519);
        args.role = Some("targets/releases".into());
        let req = args.request().unwrap();
        assert_eq!(
            (req.role(), req.delegation.as_str()),
            (pb::KeyRole::Delegation, "targets/releases")
        );
        args.role = Some("Targets".into());
        assert!(args.request().unwrap_err().to_string().contains("--role"));

        let mut args = generate_args(AlgorithmArg::Ecdsa);
        args.curve = Some(CurveArg::P384);
        let req = args.request().unwrap();
        assert_eq!(req.algorithm(), pb::Algorithm::EcdsaP384);
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
    fn delete_needs_yes_off_a_terminal() {
        // Tests run with stdin that is not a terminal.
        let args = DeleteArgs {
            key_id: "ab12".into(),
            yes: false,
            force: false,
        };
        let err = check_delete(&args).unwrap_err().to_string();
        assert!(
            err.contains("ab12") && err.contains("irreversible") && err.contains("--yes"),
            "{err}"
        );
        assert!(check_delete(&DeleteArgs {
            key_id: "ab12".into(),
            yes: true,
            force: false,
        })
        .is_ok());
    }

    #[test]
    fn output_is_refused_with_the_reason() {
        let mut args = generate_args(AlgorithmArg::Ecdsa);
        args.output = Some("k".into());
        let err = args.request().unwrap_err().to_string();
        assert!(err.contains("never leaves its backend"), "{err}");
    }
}
