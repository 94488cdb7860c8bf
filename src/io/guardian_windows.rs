//! Windows in place of `guardian.rs`: no guardian process. Each attempt runs in a Job
//! Object made with kill-on-close whose only handle the manager holds
//! (`io::platform::windows`), so when the manager dies, however it dies, Windows
//! closes the handle and ends every worker tree itself. The marks in the workers'
//! environment are still set (a worker's reports read them); `sweep` has nothing to
//! find, because no worker outlives its manager's jobs.

use std::path::{Path, PathBuf};

/// Environment variable holding the pid of the manager that started a worker.
pub const MANAGER_PID_ENV: &str = "PITBOSS_MANAGER_PID";
/// Environment variable holding the run id.
pub const RUN_ID_ENV: &str = "PITBOSS_RUN_ID";
/// The run id a `pitboss worker`'s guardian watches: every run.
pub const ANY_RUN: &str = "*";

/// Guardian failures (none happen on Windows; the type keeps the callers the same).
#[derive(Debug, thiserror::Error)]
pub enum GuardianError {
    /// The guardian process could not be started.
    #[error("{exe}: {source}")]
    Spawn {
        /// The binary that was to run `guardian`.
        exe: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The manager's handle on its guardian: nothing to hold on Windows.
pub struct Guardian;

// The manager ends with `drop(guardian)` on every system (on Unix that lets the
// guardian go); a Drop here keeps that line free of a Windows `cfg`.
impl Drop for Guardian {
    fn drop(&mut self) {}
}

impl Guardian {
    /// No process to start: the Job Objects do the guardian's work.
    pub fn start(_exe: &Path, _run_id: &str) -> Result<Guardian, GuardianError> {
        Ok(Guardian)
    }

    /// As [`Guardian::start`], for a `pitboss worker`.
    pub fn start_worker(exe: &Path) -> Result<Guardian, GuardianError> {
        Guardian::start(exe, ANY_RUN)
    }
}

/// `pitboss guardian` (started only by a Unix manager): nothing to watch here.
pub fn main(_run_id: &str, _manager_pid: u32) -> u8 {
    0
}

/// Nothing outlives its manager's jobs, so nothing to end.
pub fn sweep(_run_id: &str, _manager_pid: Option<u32>) -> Result<usize, GuardianError> {
    Ok(0)
}
