//! Command-line front ends over the engine: headless runs, validation, the bundled
//! sim-agent, and the read-only views of a run folder (inspect, events, dlq).

pub mod clean;
pub mod compact;
pub mod ctl;
pub mod dlq;
pub mod events;
pub mod follow;
pub mod fork;
pub mod inspect;
pub mod logcheck;
pub mod report;
pub mod run;
pub mod sim_agent;
pub mod verify;
pub mod worker;

use std::path::{Path, PathBuf};

use crate::core::RunState;
use crate::io::journal::{self, LOG_FILE};

/// Exit code: every task completed.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run ended with a task dead-lettered, cancelled or skipped.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage, invalid workflow, or the run could not be started.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted; the run is resumable.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Base folder for runs: `$PITBOSS_HOME`, else the platform data dir.
pub fn home() -> PathBuf {
    crate::io::dirs::home()
}

/// A failure of bad usage (or a run that cannot start): exit code 2 with `msg`.
pub fn usage(msg: impl std::fmt::Display) -> (u8, String) {
    (EXIT_USAGE, msg.to_string())
}

/// Folds a run folder's log, noting a damaged tail (only `resume` cuts it).
pub fn load(dir: &Path) -> Result<RunState, (u8, String)> {
    let (state, scan) = replay(&dir.join(LOG_FILE))?;
    if let Some(t) = &scan.torn {
        eprintln!("{}", logcheck::torn_note(t));
    }
    Ok(state)
}

/// Folds a log; a log that exists but cannot be used is named for what is wrong.
pub fn replay(log: &Path) -> Result<(RunState, journal::Scan), (u8, String)> {
    journal::replay(log).map_err(|e| usage(logcheck::explain(e)))
}
