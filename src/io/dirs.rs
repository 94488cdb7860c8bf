//! Where pitboss keeps its files outside a run folder: the home (runs, logs) and the
//! config dir (keys). Every front end asks here, so the CLI and the TUI can never
//! disagree about the platform folders.

use std::path::PathBuf;

/// Overrides the home folder (runs and pitboss's own log).
pub const HOME_ENV: &str = "PITBOSS_HOME";
/// Overrides the config folder (`keys.toml`).
pub const CONFIG_ENV: &str = "PITBOSS_CONFIG";

/// Used when the platform has no home folder to derive the others from.
const FALLBACK: &str = ".pitboss";

/// The platform folders for pitboss. The qualifiers only show on macOS and Windows
/// (`dev.pitboss.pitboss`); on Linux this is `~/.local/share/pitboss` and
/// `~/.config/pitboss`.
fn project() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "pitboss", "pitboss")
}

/// An override from the environment; an empty value counts as unset.
fn from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Base folder for runs and logs: `$PITBOSS_HOME`, else the platform data dir.
pub fn home() -> PathBuf {
    from_env(HOME_ENV)
        .or_else(|| project().map(|d| d.data_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(FALLBACK))
}

/// pitboss's config folder: `$PITBOSS_CONFIG`, else the platform config dir.
pub fn config_dir() -> PathBuf {
    from_env(CONFIG_ENV)
        .or_else(|| project().map(|d| d.config_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(FALLBACK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_override_counts_as_unset() {
        // A name no other test touches: the environment is shared by the test threads.
        const NAME: &str = "PITBOSS_DIRS_TEST_OVERRIDE";
        std::env::set_var(NAME, "");
        assert_eq!(from_env(NAME), None);
        std::env::set_var(NAME, "/x/y");
        assert_eq!(from_env(NAME), Some(PathBuf::from("/x/y")));
        std::env::remove_var(NAME);
        assert_eq!(from_env(NAME), None);
    }
}
