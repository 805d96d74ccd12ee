//! Where in the config file a problem is. Validation names the setting by
//! its path of keys and array indices (`backend[1].tcti`); this module turns
//! that path into the line and column of the setting's value in the text,
//! or of the nearest table that holds it when the setting is missing.

use std::fmt;

/// One step of a path: a key of a table, or an element of an array (of
/// tables, for `[[backend]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A setting's place in the configuration, from its top level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Step>);

impl KeyPath {
    /// The file as a whole.
    pub(crate) fn root() -> KeyPath {
        KeyPath::default()
    }

    pub(crate) fn key(mut self, key: &str) -> KeyPath {
        self.0.push(Step::Key(key.to_string()));
        self
    }

    pub(crate) fn index(mut self, index: usize) -> KeyPath {
        self.0.push(Step::Index(index));
        self
    }

    /// `rest`, taken from the place this path names.
    fn join(mut self, rest: KeyPath) -> KeyPath {
        self.0.extend(rest.0);
        self
    }
}

/// A problem with one setting, before it is placed in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) at: KeyPath,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(at: KeyPath, message: impl Into<String>) -> Problem {
        Problem {
            at,
            message: message.into(),
        }
    }

    /// A problem with the setting `key` of the table being checked.
    pub(crate) fn field(key: &str, message: impl Into<String>) -> Problem {
        Problem::new(KeyPath::root().key(key), message)
    }

    /// The same problem, seen from a table that holds the checked one at
    /// `prefix`.
    pub(crate) fn within(self, prefix: &KeyPath) -> Problem {
        Problem {
            at: prefix.clone().join(self.at),
            message: self.message,
        }
    }
}

/// A line and column in the text, both counted from 1 (columns in
/// characters, as editors count them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineColumn {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl fmt::Display for LineColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl LineColumn {
    /// The position of byte `offset` of `text` (clamped to its end).
    pub(crate) fn of_offset(text: &str, offset: usize) -> LineColumn {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineColumn {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Where `path` is in `text`: its value, else the deepest table on the
/// way that exists (a missing setting is reported at its table), else the
/// start of the file. `text` is a file that parsed already.
pub(crate) fn locate(text: &str, path: &KeyPath) -> LineColumn {
    let start = LineColumn { line: 1, column: 1 };
    let Ok(document) = toml_edit::ImDocument::parse(text) else {
        return start;
    };
    let mut item = document.as_item();
    let mut found = None;
    for step in &path.0 {
        let next = match step {
            Step::Key(key) => item.get(key.as_str()),
            Step::Index(index) => item.get(*index),
        };
        let Some(next) = next else { break };
        item = next;
        if let Some(span) = item.span() {
            found = Some(span.start);
        }
    }
    found.map_or(start, |offset| LineColumn::of_offset(text, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[server]\nstate_dir = '/s'\ndefault_backend = 'nope'\n\n\
                        [[backend]]\nname = 'a'\ntype = 'soft'\n\n\
                        [[backend]]\nname = 'b'\ntype = 'pkcs11'\npin = { file = '/p' }\n";

    fn at(path: KeyPath) -> String {
        locate(TEXT, &path).to_string()
    }

    #[test]
    fn values_tables_and_missing_settings_are_placed() {
        assert_eq!(
            at(KeyPath::root().key("server").key("default_backend")),
            "3:19"
        );
        assert_eq!(
            at(KeyPath::root().key("backend").index(1).key("type")),
            "11:8"
        );
        assert_eq!(
            at(KeyPath::root()
                .key("backend")
                .index(1)
                .key("pin")
                .key("file")),
            "12:16"
        );
        // A setting that is not there: its table's header.
        assert_eq!(
            at(KeyPath::root().key("backend").index(1).key("module")),
            "9:1"
        );
        assert_eq!(at(KeyPath::root().key("signer_api")), "1:1");
    }

    #[test]
    fn offsets_count_characters_from_one() {
        let text = "a = 'é'\nb = 1\n";
        assert_eq!(LineColumn::of_offset(text, 0).to_string(), "1:1");
        assert_eq!(
            LineColumn::of_offset(text, text.find('b').unwrap()).to_string(),
            "2:1"
        );
        assert_eq!(
            LineColumn::of_offset(text, text.find('\'').unwrap() + 3).to_string(),
            "1:7"
        );
        assert_eq!(LineColumn::of_offset(text, 999).to_string(), "3:1");
    }
}
