//! The Debian mirror the host's apt already uses, so the container's root
//! comes from wherever this machine (or a CI machine with another mirror)
//! gets its packages: both apt formats, `sources.list` one-line entries and
//! deb822 `.sources` stanzas.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A `deb` entry for `suite` with the `main` component.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Mirror {
    pub uri: String,
    /// The keyring apt checks this entry with (`Signed-By`), if it names one.
    pub keyring: Option<PathBuf>,
}

/// The first enabled `deb` entry of `suite`/main in the host's apt sources.
pub(super) fn host_mirror(suite: &str) -> Result<Mirror> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut listed: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        listed.sort();
        files.extend(listed);
    }
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let found = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => deb822(&text, suite),
            _ if is_one_line_file(file) => one_line(&text, suite),
            _ => None,
        };
        if let Some(mirror) = found {
            return Ok(mirror);
        }
    }
    bail!(
        "no enabled `deb` entry for {suite} main in /etc/apt/sources.list or \
         /etc/apt/sources.list.d/: the test container's Debian root is \
         fetched from the host's own mirror"
    )
}

fn is_one_line_file(path: &Path) -> bool {
    path.ends_with("sources.list") || path.extension().is_some_and(|e| e == "list")
}

/// `deb [signed-by=/k.gpg arch=amd64] http://mirror/debian bookworm main`
fn one_line(text: &str, suite: &str) -> Option<Mirror> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default().trim();
        let rest = line.strip_prefix("deb ")?.trim_start();
        let (options, rest) = match rest.strip_prefix('[') {
            Some(r) => r.split_once(']')?,
            None => ("", rest),
        };
        let mut words = rest.split_whitespace();
        let (uri, entry_suite) = (words.next()?, words.next()?);
        if entry_suite != suite || !words.any(|c| c == "main") {
            return None;
        }
        let keyring = options.split_whitespace().find_map(|o| {
            let (k, v) = o.split_once('=')?;
            k.eq_ignore_ascii_case("signed-by")
                .then(|| PathBuf::from(v))
        });
        Some(Mirror {
            uri: uri.to_string(),
            keyring,
        })
    })
}

/// Stanzas of `Field: value` lines separated by blank lines.
fn deb822(text: &str, suite: &str) -> Option<Mirror> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
        };
        let has = |name: &str, word: &str| {
            field(name).is_some_and(|v| v.split_whitespace().any(|w| w == word))
        };
        if field("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no"))
            || !has("Types", "deb")
            || !has("Suites", suite)
            || !has("Components", "main")
        {
            return None;
        }
        let uri = field("URIs")?.split_whitespace().next()?;
        // An inline key block starts on the next line; only a path is usable.
        let keyring = field("Signed-By")
            .filter(|v| v.starts_with('/'))
            .map(PathBuf::from);
        Some(Mirror {
            uri: uri.to_string(),
            keyring,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_entries() {
        let text = "# deb http://old bookworm main\n\
                    deb-src http://src bookworm main\n\
                    deb http://sec bookworm-security main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm contrib main\n";
        assert_eq!(
            one_line(text, "bookworm"),
            Some(Mirror {
                uri: "http://m/debian".into(),
                keyring: Some("/k.gpg".into())
            })
        );
        assert_eq!(
            one_line("deb http://m bookworm contrib\n", "bookworm"),
            None
        );
    }

    #[test]
    fn deb822_stanzas() {
        let text = "Types: deb\nURIs: http://sec\nSuites: bookworm-security\nComponents: main\n\n\
                    Types: deb\nURIs: http://off\nSuites: bookworm\nComponents: main\nEnabled: no\n\n\
                    Types: deb deb-src\n# a comment\nURIs: http://deb.example/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n\
                    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
        assert_eq!(
            deb822(text, "bookworm"),
            Some(Mirror {
                uri: "http://deb.example/debian".into(),
                keyring: Some("/usr/share/keyrings/debian-archive-keyring.gpg".into())
            })
        );
        assert_eq!(deb822(text, "trixie"), None);
    }
}
