//! `docgen OUT_DIR`: writes OUT_DIR/man/ (notaryctl(1) and a page per
//! command, notary-keyd(8), notary-keyd.toml(5)) and
//! OUT_DIR/completions/{bash,zsh,fish}/ for both programs. The pages come
//! from the same clap trees as `--help`, and the config page from
//! docs/notary-keyd.example.toml, so none of them can drift from what they
//! describe. A separate program (not a build.rs), run by
//! scripts/build-deb.sh, so everyday builds do not pay for it.

#![forbid(unsafe_code)]

mod config_page;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// The example config, the source of notary-keyd.toml(5).
const EXAMPLE_CONFIG: &str = include_str!("../../docs/notary-keyd.example.toml");

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: docgen OUT_DIR (writes OUT_DIR/man and OUT_DIR/completions)");
    };
    let out = PathBuf::from(out);
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;

    let ctl = notaryctl::command();
    clap_mangen::generate_to(ctl.clone(), &man).context("writing notaryctl's man pages")?;
    let keyd = notary_keyd::Args::command();
    write(
        &man.join("notary-keyd.8"),
        &render(clap_mangen::Man::new(keyd.clone()).section("8"))?,
    )?;
    write(
        &man.join("notary-keyd.toml.5"),
        config_page::render(EXAMPLE_CONFIG, env!("CARGO_PKG_VERSION")).as_bytes(),
    )?;

    for (shell, dir) in [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
    ] {
        let dir = out.join("completions").join(dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for cmd in [&ctl, &keyd] {
            let name = cmd.get_name().to_string();
            let file = match shell {
                Shell::Zsh => format!("_{name}"),
                Shell::Fish => format!("{name}.fish"),
                _ => name.clone(),
            };
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut text);
            write(&dir.join(file), &text)?;
        }
    }
    Ok(())
}

fn render(man: clap_mangen::Man) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render(&mut page)?;
    Ok(page)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
