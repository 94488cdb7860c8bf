//! Where pitboss keeps its files outside a run folder: the home (runs, logs) and the
//! config dir (keys). Every front end asks here, so the CLI and the TUI can never
//! disagree about the platform folders.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::fsutil::{create_private_dir, private_file};
use super::rundir::explain_io;

/// Overrides the home folder (runs and pitboss's own log).
pub const HOME_ENV: &str = "PITBOSS_HOME";
/// Overrides the config folder (`keys.toml`).
pub const CONFIG_ENV: &str = "PITBOSS_CONFIG";

/// pitboss's own log (tracing output), under `HOME/logs`.
pub const OWN_LOG: &str = "pitboss.log";

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

/// Why pitboss's own log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OwnLogError {
    /// A folder or file on the way is a symbolic link, which could send the log
    /// anywhere the user can write: refused, like a link in a run folder.
    #[error("{0} is a symbolic link; pitboss does not write its log through links (remove it to get the log back)")]
    Symlink(PathBuf),
    /// The log path is something other than a regular file (a FIFO would block).
    #[error("{0} is not a regular file; pitboss does not write its log there")]
    NotAFile(PathBuf),
    /// The file system refused (said in words: see [`explain_io`]).
    #[error("{path}: {}; pitboss keeps its own log under PITBOSS_HOME: make that a folder this user can write", explain_io(.source))]
    Io {
        /// Path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OwnLogError + '_ {
    move |source| OwnLogError::Io { path: path.to_path_buf(), source }
}

/// Opens `home/logs/pitboss.log` for appending, under the run folder's rules whatever
/// the umask: the home and `logs` are created 0700, `logs` (pitboss's own) is
/// tightened to 0700 if it exists, the file is created 0600 or tightened to it, and a
/// symbolic link for `logs` or the file is refused, never followed. An existing home
/// keeps its mode: it may be a folder the user chose and shares on purpose.
pub fn open_own_log(home: &Path) -> Result<File, OwnLogError> {
    create_private_dir(home).map_err(io_err(home))?;
    let logs = home.join("logs");
    if std::fs::symlink_metadata(&logs).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(OwnLogError::Symlink(logs));
    }
    create_private_dir(&logs).map_err(io_err(&logs))?;
    super::platform::set_mode(&logs, 0o700).map_err(io_err(&logs))?;
    let path = logs.join(OWN_LOG);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => return Err(OwnLogError::Symlink(path)),
        Ok(m) if !m.file_type().is_file() => return Err(OwnLogError::NotAFile(path)),
        _ => {}
    }
    // O_NOFOLLOW closes the gap between the check above and the open.
    let file = private_file().append(true).create(true).open(&path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => OwnLogError::Symlink(path.clone()),
        _ => io_err(&path)(e),
    })?;
    // Created 0600; an older file may be looser.
    super::platform::set_file_mode(&file, 0o600).map_err(io_err(&path))?;
    Ok(file)
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
