//! Root ceremonies in tests: notaryctl's offline steps run in a network
//! namespace of their own (`unshare -n`, optionally with a link up), the
//! holder's typed confirmation on stdin, uploads to notary-server made by
//! hand with curl, and an attacker's edits to a bundle that keep the
//! transcript's hash chain whole.

use crate::daemon::bin_path;
use crate::notary_stack::{CliOutput, NotaryServer};
use crate::notaryctl_cli::Notaryctl;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The network a command runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// `unshare -n`: only a loopback interface, down, and no routes.
    None,
    /// A fresh namespace with a veth pair up and a default route over it.
    Up,
}

/// Runs `notaryctl ARGS` (with the client's usual flags) in a network
/// namespace of its own, `stdin` as its input.
pub fn notaryctl_in(
    ctl: &Notaryctl,
    network: Network,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> Result<CliOutput> {
    let notaryctl = bin_path("notaryctl")?;
    let mut wrapper = Command::new("unshare");
    wrapper.arg("-n");
    if network == Network::Up {
        wrapper.args([
            "sh",
            "-ec",
            "ip link add ceremony0 type veth peer name ceremony1; \
             ip link set ceremony0 up; ip link set ceremony1 up; \
             ip route add default dev ceremony0; exec \"$0\" \"$@\"",
        ]);
    }
    wrapper.arg(notaryctl);
    let mut child = ctl
        .command(wrapper, env, &[], args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running notaryctl under unshare -n (util-linux, iproute2)")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The word a holder types to sign: the last PGP word of the new root's
/// hash, as `ceremony status` shows it (8 numbered lines of 4 words).
pub fn confirmation_word(status_stdout: &str) -> Result<String> {
    let mut lines = status_stdout
        .lines()
        .skip_while(|l| !l.starts_with("New root v"));
    lines.next().context("status shows no new root")?;
    let last = lines
        .find(|l| l.trim_start().starts_with("8. "))
        .context("status shows no 8th line of words")?;
    let words: Vec<&str> = last.split_whitespace().collect();
    match words.as_slice() {
        [_, _, _, _, word, _hex] => Ok(word.to_string()),
        _ => bail!("unexpected words line {last:?}"),
    }
}

/// POSTs metadata files to the server as notary's client would (one
/// multipart part per role), by hand with curl; returns the HTTP status
/// and the body.
pub fn post_by_hand(
    server: &NotaryServer,
    gun: &str,
    files: &[(&str, &Path)],
) -> Result<(u16, String)> {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--cacert"])
        .arg(&server.ca_cert)
        .args(["-w", "\n%{http_code}"]);
    for (role, path) in files {
        curl.arg("-F")
            .arg(format!("files=@{};filename={role}", path.display()));
    }
    let out = curl
        .arg(format!("{}/v2/{gun}/_trust/tuf/", server.url))
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
    Ok((code.trim().parse()?, body.to_string()))
}

/// The bundle's transcript lines as JSON objects.
pub fn transcript(bundle: &Path) -> Result<Vec<Value>> {
    std::fs::read_to_string(bundle.join("transcript.jsonl"))?
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// Writes `entries` as the transcript, each line chained to the one
/// before it: what someone who edits a bundle and hides it would do.
pub fn write_chained(bundle: &Path, entries: &mut [Value]) -> Result<()> {
    let mut prev = "0".repeat(64);
    let mut text = String::new();
    for (seq, entry) in entries.iter_mut().enumerate() {
        entry["seq"] = seq.into();
        entry["prev_sha256"] = prev.clone().into();
        let line = serde_json::to_string(entry)?;
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(bundle.join("transcript.jsonl"), text)?;
    Ok(())
}

/// SHA-256 (hex) of a bundle file.
pub fn file_sha256(path: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// Copies a bundle directory (one level of subfolders, as bundles have).
pub fn copy_bundle(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_bundle(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
