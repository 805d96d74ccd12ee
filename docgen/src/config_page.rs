//! notary-keyd.toml(5) from the annotated example config: each comment
//! block says what the section or option after it is, and the option lines
//! show its syntax and example value.

use roff::{bold, roman, Roff};

/// One line of the example, as the page uses it.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Comment(&'a str),
    Blank,
    Section(&'a str),
    Option {
        setting: &'a str,
        note: Option<&'a str>,
    },
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() {
        Line::Blank
    } else if let Some(text) = line.strip_prefix('#') {
        Line::Comment(text.trim())
    } else if line.starts_with('[') {
        Line::Section(line)
    } else {
        let (setting, note) = split_note(line);
        Line::Option { setting, note }
    }
}

/// `key = value  # note`: the `#` that starts a note is outside quotes.
fn split_note(line: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return (line[..i].trim_end(), Some(line[i + 1..].trim())),
            _ => {}
        }
    }
    (line, None)
}

pub(crate) fn render(example: &str, version: &str) -> String {
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "NOTARY-KEYD.TOML",
            "5",
            "",
            &format!("notary-keyd {version}"),
        ],
    );
    page.control("SH", ["NAME"]);
    page.text([roman(
        "notary-keyd.toml - configuration file of notary-keyd, the Notary signing-key daemon",
    )]);
    page.control("SH", ["SYNOPSIS"]);
    page.text([bold("/etc/notary-keyd/keyd.toml")]);
    page.control("SH", ["DESCRIPTION"]);
    let mut pending: Vec<&str> = Vec::new();
    let mut in_sections = false;
    for line in example.lines().map(classify) {
        match line {
            Line::Comment(text) => pending.push(text),
            Line::Blank => {
                if !pending.is_empty() {
                    paragraph(&mut page, &pending);
                    pending.clear();
                }
            }
            Line::Section(header) => {
                if !in_sections {
                    page.control("SH", ["SECTIONS AND OPTIONS"]);
                    in_sections = true;
                }
                page.control("SS", [header]);
                paragraph(&mut page, &pending);
                pending.clear();
            }
            Line::Option { setting, note } => {
                page.control("TP", []);
                page.text([bold(setting)]);
                let mut text: Vec<&str> = std::mem::take(&mut pending);
                text.extend(note);
                page.text([roman(text.join(" "))]);
            }
        }
    }
    paragraph(&mut page, &pending);
    page.control("SH", ["FILES"]);
    page.text([roman(
        "The package installs a working /etc/notary-keyd/keyd.toml and this annotated \
         example as /usr/share/doc/notary-keyd/examples/keyd.toml.",
    )]);
    page.control("SH", ["SEE ALSO"]);
    page.text([roman(
        "notary-keyd(8), notaryctl(1), /usr/share/doc/notary-keyd/operations.md",
    )]);
    page.render()
}

fn paragraph(page: &mut Roff, lines: &[&str]) {
    if !lines.is_empty() {
        page.control("PP", []);
        page.text([roman(lines.join(" "))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_told_apart() {
        assert_eq!(classify("  # a note "), Line::Comment("a note"));
        assert_eq!(classify("[[backend]]"), Line::Section("[[backend]]"));
        assert_eq!(
            classify(r#"token = "a#b"   # label; or token_serial"#),
            Line::Option {
                setting: r#"token = "a#b""#,
                note: Some("label; or token_serial")
            }
        );
        assert_eq!(classify(""), Line::Blank);
    }

    #[test]
    fn every_option_of_the_example_is_on_the_page() {
        let example = include_str!("../../docs/notary-keyd.example.toml");
        let page = render(example, "0.0.0");
        for line in example.lines() {
            if let Line::Option { setting, .. } = classify(line) {
                let key = setting.split('=').next().unwrap_or("").trim();
                assert!(page.contains(key), "{key} missing");
            }
        }
        assert!(page.contains(".SS [[policy]]"), "{page}");
        assert!(
            page.lines()
                .any(|l| l.starts_with(".TH NOTARY-KEYD.TOML 5 ")),
            "{page}"
        );
    }
}
