//! Adapters to the world: the event journal and the store trait over it, the run
//! folder and its lock, worker runners, the clock, signals. Each is small, owns one
//! resource, and what the engine needs of it is a trait the engine is given; `fsutil`
//! and `dirs` hold the rules every adapter shares (private files, pitboss's folders).

pub mod broker;
pub mod clock;
pub mod dirs;
pub mod fdlimit;
pub mod fork;
pub mod fsutil;
#[cfg_attr(windows, path = "guardian_windows.rs")]
pub mod guardian;
pub mod journal;
pub mod log_lines;
pub mod logfile;
pub mod perf;
pub mod platform;
// Unix-only (Windows has its own arms in `platform`).
#[cfg(unix)]
pub mod posix;
#[cfg(unix)]
pub mod procs;
pub mod roll;
pub mod rundir;
pub mod runner;
pub mod segments;
pub mod signal;
pub mod snapshot;
pub mod store;
pub mod task_index;
pub mod watch;
pub mod workspace;
