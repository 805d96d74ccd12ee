//! `notary-keyd --check-config` as a pre-flight, run as the real binary:
//! each problem is one line naming file, line and column, and a secret
//! written where a PIN source belongs is never echoed.

use anyhow::Result;
use softhsm_tests::daemon::bin_path;
use softhsm_tests::notary_stack::Pki;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn check(dir: &Path, config: &str) -> Result<Outcome> {
    let path = dir.join("keyd.toml");
    std::fs::write(&path, config)?;
    let out = Command::new(bin_path("notary-keyd")?)
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()?;
    Ok(Outcome {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn server(dir: &Path) -> String {
    format!(
        "[server]\nstate_dir = '{0}/state'\naudit_log = '{0}/log/audit.jsonl'\n",
        dir.display()
    )
}

/// The problem line that names `file:line:column`, in the failed check's
/// stderr.
fn line_at(outcome: &Outcome, place: &str) -> String {
    assert!(!outcome.ok, "check passed: {}", outcome.stdout);
    outcome
        .stderr
        .lines()
        .find(|l| l.contains(place))
        .unwrap_or_else(|| panic!("no problem at {place} in:\n{}", outcome.stderr))
        .to_string()
}

#[test]
fn a_good_config_passes_and_the_starter_config_is_good() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let ok = check(
        d,
        &format!("{}[[backend]]\nname = 'soft'\ntype = 'soft'\n", server(d)),
    )?;
    assert!(ok.ok, "{}", ok.stderr);
    assert!(ok.stdout.contains("configuration is valid"));

    let starter = Command::new(bin_path("notary-keyd")?)
        .arg("--print-config")
        .output()?;
    assert!(starter.status.success());
    let text = String::from_utf8(starter.stdout)?;
    assert!(text.contains("[[backend]]"), "{text}");
    // Its paths are the system's: point them here, the rest unchanged.
    let local = text
        .replace("/var/lib/notary-keyd", &format!("{}/state", d.display()))
        .replace("/var/log/notary-keyd", &format!("{}/log", d.display()));
    let checked = check(d, &local)?;
    assert!(checked.ok, "{}", checked.stderr);
    Ok(())
}

#[test]
fn syntax_and_setting_errors_are_placed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let file = d.join("keyd.toml").display().to_string();

    // A PIN typed where its source belongs: placed, the forms listed, the
    // value not repeated.
    let pin = format!(
        "{}[[backend]]\nname = 'hsm'\ntype = 'pkcs11'\nmodule = '/m.so'\ntoken = 't'\npin = '246810'\n",
        server(d)
    );
    let out = check(d, &pin)?;
    let line = line_at(&out, &format!("{file}:9:7:"));
    assert!(line.contains("{ file = \"PATH\" }"), "{line}");
    assert!(!out.stderr.contains("246810"), "{}", out.stderr);

    let unknown_backend = format!(
        "{}default_backend = 'hsm'\n[[backend]]\nname = 'soft'\ntype = 'soft'\n",
        server(d)
    );
    let line = line_at(&check(d, &unknown_backend)?, &format!("{file}:4:19:"));
    assert!(
        line.contains("\"hsm\" is not a configured backend"),
        "{line}"
    );

    let prompt = format!(
        "{}[[backend]]\nname = 'soft'\ntype = 'soft'\npassphrase = 'prompt'\n",
        server(d)
    );
    let line = line_at(&check(d, &prompt)?, &format!("{file}:7:14:"));
    assert!(line.contains("has no prompt"), "{line}");
    Ok(())
}

#[test]
fn files_the_settings_name_are_checked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let file = d.join("keyd.toml").display().to_string();
    let pin = d.join("hsm.pin");
    std::fs::write(&pin, "1234\n")?;
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o640))?;
    std::fs::write(d.join("state"), "a file where the state dir should be")?;
    let config = format!(
        "[server]\nstate_dir = '{0}/state'\naudit_log = '{0}/log/audit.jsonl'\n\
         [[backend]]\nname = 'hsm'\ntype = 'pkcs11'\nmodule = '{0}/missing.so'\ntoken = 't'\n\
         pin = {{ file = '{0}/hsm.pin' }}\n\
         [[backend]]\nname = 'soft'\ntype = 'soft'\npassphrase = {{ env = 'NOT_SET_FOR_THIS_TEST' }}\n",
        d.display()
    );
    let out = check(d, &config)?;
    assert!(line_at(&out, &format!("{file}:2:13:")).contains("not a directory"));
    assert!(line_at(&out, &format!("{file}:7:10:")).contains("missing.so"));
    let pin_line = line_at(&out, &format!("{file}:9:7:"));
    assert!(pin_line.contains("hsm.pin"), "{pin_line}");
    let env_line = line_at(&out, &format!("{file}:13:14:"));
    assert!(env_line.contains("NOT_SET_FOR_THIS_TEST"), "{env_line}");
    assert_eq!(out.stderr.matches(&file).count(), 4, "{}", out.stderr);
    Ok(())
}

#[test]
fn signer_api_certificate_and_key_must_belong_together() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let file = d.join("keyd.toml").display().to_string();
    let pki = Pki::new("check-config")?;
    let server_pair = pki.issue("keyd", "serverAuth")?;
    let other = pki.issue("other", "serverAuth")?;
    let api = |cert: &Path, key: &Path| {
        format!(
            "{}[[backend]]\nname = 'soft'\ntype = 'soft'\n[signer_api]\nlisten = '127.0.0.1:1'\n\
             tls_cert = '{}'\ntls_key = '{}'\nclient_ca = '{}'\nallowed_clients = ['notary-server']\n",
            server(d),
            cert.display(),
            key.display(),
            pki.ca_cert.display()
        )
    };
    let ok = check(d, &api(&server_pair.cert, &server_pair.key))?;
    assert!(ok.ok, "{}", ok.stderr);
    let line = line_at(
        &check(d, &api(&server_pair.cert, &other.key))?,
        &format!("{file}:10:11:"),
    );
    assert!(line.contains("not the certificate's"), "{line}");
    let line = line_at(
        &check(d, &api(&server_pair.key, &server_pair.key))?,
        &format!("{file}:9:12:"),
    );
    assert!(line.contains("no PEM certificate"), "{line}");
    Ok(())
}
