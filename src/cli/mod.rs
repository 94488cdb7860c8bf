//! Command-line front ends over the engine: headless runs, validation, the bundled
//! sim-agent, and the read-only views of a run folder (inspect, events, dlq).

pub mod follow;
pub mod history;
pub mod report;
pub mod run;
pub mod sim_agent;

use std::path::PathBuf;

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
    if let Some(h) = std::env::var_os("PITBOSS_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    directories::ProjectDirs::from("dev", "pitboss", "pitboss")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".pitboss"))
}
