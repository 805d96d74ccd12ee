//! `--check-config`: is the configuration right, and can the daemon start
//! with it (`preflight`); where in the file a problem is (`location`).

pub(crate) mod location;
mod preflight;

use crate::config::{Config, ConfigError};
use std::path::Path;

/// Reports every problem `preflight` finds on stderr, one line each,
/// placed in `file` (path and text) when there is one. Returns how many.
pub(crate) fn report(config: &Config, file: Option<(&Path, &str)>) -> usize {
    let problems = preflight::preflight(config);
    for problem in &problems {
        match file {
            Some((path, text)) => {
                eprintln!("{}", ConfigError::at(path, text, problem.clone()));
            }
            None => eprintln!("{}", problem.message),
        }
    }
    problems.len()
}
