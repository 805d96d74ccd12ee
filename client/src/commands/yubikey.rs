//! `notaryctl yubikey setup|status|release`.

use crate::connect::Client;
use crate::errors::Reply;
use crate::pin::{self, PinSource};
use anyhow::{bail, Context, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The factory PIN and PUK, used only with --factory-defaults.
const FACTORY_PIN: &str = "123456";
const FACTORY_PUK: &str = "12345678";

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    /// Serial of the YubiKey; may be left out when the daemon has one.
    #[arg(long, value_name = "N")]
    serial: Option<u32>,
    /// Set up a YubiKey again whose management key was changed already.
    #[arg(long)]
    force: bool,
    /// Do not ask for confirmation (scripts); the changes are listed anyway.
    #[arg(long)]
    yes: bool,
    /// The YubiKey still has the factory PIN 123456 and PUK 12345678: use
    /// them as the current ones instead of asking.
    #[arg(long)]
    factory_defaults: bool,
    /// Current PIN from the first line of this file (else $NOTARY_KEYD_PIN_FILE, else $NOTARY_KEYD_PIN,
    /// else a prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// New PIN (6-8 characters) from this file, else asked twice.
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
    /// Current PUK from this file, else asked.
    #[arg(long, value_name = "FILE")]
    puk_file: Option<PathBuf>,
    /// New PUK (6-8 characters) from this file, else asked twice.
    #[arg(long, value_name = "FILE")]
    new_puk_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only the YubiKey with this serial.
    #[arg(long, value_name = "N")]
    serial: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// Only this backend; default: every YubiKey the daemon holds.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
}

fn prompt(what: &str) -> Result<SecretString> {
    let mut typed = rpassword::prompt_password(format!("{what}: "))
        .with_context(|| format!("cannot read the {what} from the terminal"))?;
    let secret = SecretString::from(typed.trim_end_matches(['\r', '\n']).to_string());
    typed.zeroize();
    if secret.expose_secret().is_empty() {
        bail!("the {what} typed is empty");
    }
    Ok(secret)
}

/// A secret from its file, else typed (twice when it is a new one).
fn secret(what: &str, file: Option<&Path>, new: bool) -> Result<SecretString> {
    if let Some(path) = file {
        return pin::read(PinSource::File(path.to_path_buf()), what);
    }
    if !std::io::stdin().is_terminal() {
        bail!("the {what} is needed and there is no terminal to ask for it: pass its --*-file");
    }
    let first = prompt(what)?;
    if new && prompt(&format!("{what} again"))?.expose_secret() != first.expose_secret() {
        bail!("the two entries of the {what} differ; nothing was changed");
    }
    Ok(first)
}

fn current_pin(args: &SetupArgs) -> Result<SecretString> {
    if args.factory_defaults {
        return Ok(SecretString::from(FACTORY_PIN));
    }
    match pin::source(args.pin_file.as_deref()) {
        Some(PinSource::Prompt) | None => secret("current PIN", None, false),
        Some(src) => pin::read(src, "current PIN"),
    }
}

async fn status_of(client: &mut Client, serial: u32) -> Result<Vec<pb::YubiKeyStatus>> {
    Ok(client
        .yubikey_status(pb::YubiKeyStatusRequest { serial })
        .await
        .reply()?
        .yubikeys)
}

/// What setup will change, for the confirmation.
fn changes(y: &pb::YubiKeyStatus) -> String {
    let factory = |d: Option<bool>| match d {
        Some(true) => " (now the factory default)",
        _ => "",
    };
    format!(
        "Setting up YubiKey {} (backend {}) will:\n\
         - change its PIN{}\n\
         - change its PUK{}\n\
         - replace its management key{} with a random one stored on the YubiKey, \
         readable only with the new PIN\n\
         Keys in its slots are kept. Tools that need the management key \
         (ykman piv) will ask for the PIN instead.",
        y.serial,
        y.backend,
        factory(y.default_pin),
        factory(y.default_puk),
        factory(y.default_management_key),
    )
}

fn confirm(serial: u32) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not setting up YubiKey {serial} without confirmation: pass --yes");
    }
    eprint!("Type the serial {serial} to go ahead: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    if line.trim() != serial.to_string() {
        bail!("not confirmed; YubiKey {serial} was not changed");
    }
    Ok(())
}

pub(crate) async fn setup(client: &mut Client, args: &SetupArgs) -> Result<()> {
    let yubikeys = status_of(client, args.serial.unwrap_or(0)).await?;
    let target = match yubikeys.as_slice() {
        [one] => one,
        [] => bail!("the daemon has no YubiKey backend"),
        _ => bail!(
            "the daemon has several YubiKeys ({}): choose one with --serial",
            yubikeys
                .iter()
                .map(|y| y.serial.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if !target.available {
        bail!(
            "YubiKey backend {} is unavailable: {}",
            target.backend,
            target.unavailable_reason
        );
    }
    if target.default_management_key == Some(false) && !args.force {
        bail!(
            "YubiKey {} was set up already (its management key is not the factory one); \
             pass --force to change its PIN, PUK and management key again",
            target.serial
        );
    }
    eprintln!("{}", changes(target));
    if !args.yes {
        confirm(target.serial)?;
    }
    let current_pin = current_pin(args)?;
    let current_puk = if args.factory_defaults {
        SecretString::from(FACTORY_PUK)
    } else {
        secret("current PUK", args.puk_file.as_deref(), false)?
    };
    let new_pin = secret("new PIN", args.new_pin_file.as_deref(), true)?;
    let new_puk = secret("new PUK", args.new_puk_file.as_deref(), true)?;
    let done = client
        .yubikey_setup(pb::YubiKeySetupRequest {
            serial: target.serial,
            current_pin: pin::for_request(&current_pin),
            new_pin: pin::for_request(&new_pin),
            current_puk: pin::for_request(&current_puk),
            new_puk: pin::for_request(&new_puk),
            force: args.force,
        })
        .await
        .reply_on(&target.backend)?;
    eprintln!(
        "YubiKey {} is set up: new PIN and PUK, random PIN-protected management key. \
         Keep the PUK safe: with PIN and PUK blocked only a reset (which erases the keys) remains.",
        done.serial
    );
    Ok(())
}

fn tries(n: i32) -> String {
    if n < 0 {
        "unknown".into()
    } else {
        n.to_string()
    }
}

fn factory_note(default: Option<bool>, what: &str) -> String {
    match default {
        Some(true) => {
            format!(" (factory default: run `notaryctl yubikey setup` to change the {what})")
        }
        Some(false) => String::new(),
        None => " (firmware does not say whether it is the factory default)".into(),
    }
}

/// One YubiKey as `status` prints it.
pub(crate) fn describe(y: &pb::YubiKeyStatus) -> String {
    if !y.available {
        return format!(
            "backend {}: unavailable: {}\n",
            y.backend, y.unavailable_reason
        );
    }
    let mut out = format!(
        "YubiKey {} (backend {}), firmware {}\n  PIN tries left: {}{}\n  PUK tries left: {}{}\n",
        y.serial,
        y.backend,
        y.firmware,
        tries(y.pin_tries_left),
        factory_note(y.default_pin, "PIN"),
        tries(y.puk_tries_left),
        factory_note(y.default_puk, "PUK"),
    );
    let mgmt = match y.default_management_key {
        Some(true) => "factory default (run `notaryctl yubikey setup`)",
        Some(false) => "changed",
        None => "unknown (firmware before 5.3)",
    };
    out.push_str(&format!("  management key: {mgmt}\n"));
    if y.slots.is_empty() {
        out.push_str("  slots: none hold a key\n");
    }
    for s in &y.slots {
        let or_unknown = |v: &str| {
            if v.is_empty() {
                "unknown".to_string()
            } else {
                v.to_string()
            }
        };
        let origin = match s.generated_on_device {
            Some(true) => "generated on device",
            Some(false) => "imported",
            None => "origin unknown",
        };
        out.push_str(&format!(
            "  slot {}: {}, PIN {}, touch {}, {origin}, key {} {}\n",
            s.slot().word(),
            or_unknown(s.algorithm().word()),
            or_unknown(s.pin_policy().word()),
            or_unknown(s.touch_policy().word()),
            s.key_id,
            s.label
        ));
    }
    out
}

pub(crate) async fn status(client: &mut Client, args: &StatusArgs) -> Result<()> {
    let yubikeys = status_of(client, args.serial.unwrap_or(0)).await?;
    if yubikeys.is_empty() {
        eprintln!("notary-keyd has no YubiKey backend.");
    }
    for y in &yubikeys {
        print!("{}", describe(y));
    }
    Ok(())
}

pub(crate) async fn release(client: &mut Client, args: &ReleaseArgs) -> Result<()> {
    let released = client
        .release_device(pb::ReleaseDeviceRequest {
            backend: args.backend.clone().unwrap_or_default(),
        })
        .await
        .reply()?
        .released;
    eprintln!(
        "Released {}; notary-keyd opens it again when it next needs it.",
        released.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_factory_defaults_and_policies() {
        let y = pb::YubiKeyStatus {
            backend: "yk".into(),
            available: true,
            serial: 1001,
            firmware: "5.7.1".into(),
            pin_tries_left: 2,
            puk_tries_left: -1,
            default_pin: Some(true),
            default_management_key: Some(false),
            slots: vec![pb::YubiKeySlot {
                slot: pb::PivSlot::Signature as i32,
                algorithm: pb::Algorithm::EcdsaP256 as i32,
                pin_policy: pb::PinPolicy::Always as i32,
                touch_policy: pb::TouchPolicy::Unspecified as i32,
                generated_on_device: Some(true),
                key_id: "ab12".into(),
                label: "root".into(),
            }],
            ..Default::default()
        };
        let text = describe(&y);
        assert!(
            text.contains("YubiKey 1001 (backend yk), firmware 5.7.1"),
            "{text}"
        );
        assert!(
            text.contains("PIN tries left: 2 (factory default"),
            "{text}"
        );
        assert!(text.contains("PUK tries left: unknown"), "{text}");
        assert!(text.contains("management key: changed"), "{text}");
        assert!(
            text.contains("slot 9c: ecdsa-p256, PIN always, touch unknown, generated on device"),
            "{text}"
        );
        let setup = changes(&y);
        assert!(
            setup.contains("change its PIN (now the factory default)"),
            "{setup}"
        );
        assert!(setup.contains("Keys in its slots are kept"), "{setup}");
    }
}
