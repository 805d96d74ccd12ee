//! How long a PIN typed by a person keeps a device unlocked
//! (`pin_cache` in a `[[backend]]`).

use serde::Deserialize;

/// How long a PIN typed by a person keeps a token unlocked.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq, Default)]
#[serde(untagged)]
pub(crate) enum PinCache {
    /// `"until-lock"` (default) or `"none"`.
    Word(PinCacheWord),
    /// Seconds after unlocking.
    Seconds(u64),
    #[default]
    #[serde(skip)]
    Default,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PinCacheWord {
    UntilLock,
    None,
}
