//! `virtual-piv`: a virtual YubiKey 5 in a vpcd reader, for trying tools
//! (ykman, yubico-piv-tool, notaryctl) by hand. Test code uses the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;
use virtual_piv::{Profile, TestCard, TestReaders, TouchMode, VirtualYubiKey};

/// Runs a virtual YubiKey 5 PIV card (test-only: its keys are not protected).
///
/// With --port it connects to that vpcd port of an already running pcscd.
/// Without, it starts (or shares) the test pcscd of scripts/test-pcscd.sh
/// and takes its readers, like the tests do. Stop it with Ctrl-C.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Serial number the card reports (GET SERIAL).
    #[arg(long, default_value_t = 12_345_678)]
    serial: u32,
    /// Firmware profile: 5.4 (3DES default management key) or 5.7 (AES-192).
    #[arg(long, value_enum, default_value_t = Firmware::V5_7)]
    firmware: Firmware,
    /// vpcd port of a running pcscd (Debian's default reader listens on 35963).
    #[arg(long)]
    port: Option<u16>,
    /// Touch behaviour: immediate, never, manual (see --control) or a delay in ms.
    #[arg(long, default_value = "immediate", value_parser = parse_touch)]
    touch: TouchMode,
    /// How long the card waits for a touch before answering 6982.
    #[arg(long, default_value_t = 15_000)]
    touch_timeout_ms: u64,
    /// Unix socket for commands, one per line: `touch`, `touch-mode MODE`,
    /// `touch-timeout MS`, `remove`, `insert`, `status`.
    #[arg(long)]
    control: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Firmware {
    #[value(name = "5.4")]
    V5_4,
    #[value(name = "5.7")]
    V5_7,
}

fn parse_touch(value: &str) -> Result<TouchMode, String> {
    match value {
        "immediate" => Ok(TouchMode::Immediate),
        "never" => Ok(TouchMode::Never),
        "manual" => Ok(TouchMode::Manual),
        ms => ms
            .parse()
            .map(|ms| TouchMode::After(Duration::from_millis(ms)))
            .map_err(|_| format!("`{ms}` is not immediate, never, manual or milliseconds")),
    }
}

/// The card, plugged in either way.
enum Plugged {
    Port(VirtualYubiKey),
    TestReaders(TestCard),
}

impl Plugged {
    fn card(&self) -> &VirtualYubiKey {
        match self {
            Plugged::Port(card) => card,
            Plugged::TestReaders(card) => card,
        }
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let profile = match args.firmware {
        Firmware::V5_4 => Profile::yubikey_5_4(args.serial),
        Firmware::V5_7 => Profile::yubikey_5_7(args.serial),
    };
    let plugged = match args.port {
        Some(port) => Plugged::Port(VirtualYubiKey::insert_new(port, profile)),
        None => Plugged::TestReaders(
            TestReaders::acquire()
                .and_then(|readers| readers.insert(profile))
                .map_err(anyhow::Error::msg)?,
        ),
    };
    let card = plugged.card();
    card.set_touch(args.touch);
    card.set_touch_timeout(Duration::from_millis(args.touch_timeout_ms));
    tracing::info!(
        serial = args.serial,
        port = card.port(),
        "virtual YubiKey inserted"
    );
    match &args.control {
        Some(path) => serve_control(path, card),
        None => loop {
            std::thread::park();
        },
    }
}

fn serve_control(path: &PathBuf, card: &VirtualYubiKey) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    for stream in listener.incoming() {
        let stream = stream.context("accepting a control connection")?;
        if let Err(e) = handle_control(stream, card) {
            tracing::warn!("control connection: {e:#}");
        }
    }
    Ok(())
}

fn handle_control(stream: UnixStream, card: &VirtualYubiKey) -> Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let reply = match run_command(line?.trim(), card) {
            Ok(reply) => reply,
            Err(e) => format!("error: {e}"),
        };
        writeln!(writer, "{reply}")?;
    }
    Ok(())
}

fn run_command(line: &str, card: &VirtualYubiKey) -> Result<String> {
    let mut words = line.split_whitespace();
    let reply = match (words.next(), words.next()) {
        (Some("touch"), None) if card.touch() => "ok".to_string(),
        (Some("touch"), None) => bail!("the card is not waiting for a touch"),
        (Some("touch-mode"), Some(mode)) => {
            card.set_touch(parse_touch(mode).map_err(anyhow::Error::msg)?);
            "ok".to_string()
        }
        (Some("touch-timeout"), Some(ms)) => {
            card.set_touch_timeout(Duration::from_millis(ms.parse().context("milliseconds")?));
            "ok".to_string()
        }
        (Some("remove"), None) => {
            card.remove();
            "ok".to_string()
        }
        (Some("insert"), None) => {
            card.insert();
            "ok".to_string()
        }
        (Some("status"), None) => format!(
            "serial {} port {} pin-tries {} puk-tries {} touch-requests {}",
            card.serial(),
            card.port(),
            card.pin_tries_left(),
            card.puk_tries_left(),
            card.touch_requests()
        ),
        _ => bail!("unknown command `{line}` (touch, touch-mode M, touch-timeout MS, remove, insert, status)"),
    };
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_modes_parse() {
        assert_eq!(parse_touch("never"), Ok(TouchMode::Never));
        assert_eq!(
            parse_touch("300"),
            Ok(TouchMode::After(Duration::from_millis(300)))
        );
        assert!(parse_touch("soon").unwrap_err().contains("soon"));
    }
}
