//! Where the TUI gets its settings: keys from `keys.toml` in pitboss's config dir,
//! colours unless `NO_COLOR`.

use std::path::PathBuf;

use super::keys::Keymap;
use super::theme::Theme;

/// Where the TUI gets its settings.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Keys.
    pub keymap: Keymap,
    /// Colours (off under `NO_COLOR`).
    pub theme: Theme,
    /// Attached to a manager elsewhere (`pitboss attach`): `q` detaches.
    pub attached: bool,
}

impl TuiOptions {
    /// Keys from `keys.toml` in the pitboss config dir; colours unless `NO_COLOR`.
    pub fn from_environment() -> Result<TuiOptions, String> {
        let path = config_dir().join("keys.toml");
        let keymap = Keymap::load(&path)?;
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(TuiOptions { keymap, theme: Theme { color }, attached: false })
    }
}

/// pitboss's config dir (`PITBOSS_CONFIG` overrides it); the same as the CLI's.
pub fn config_dir() -> PathBuf {
    crate::io::dirs::config_dir()
}
