//! Adapters to the world: the event journal, the run folder and its lock, and worker
//! processes. Each is small and owns one resource; `fsutil` and `dirs` hold the rules
//! every adapter shares (private files, pitboss's own folders).

pub mod dirs;
pub mod fsutil;
pub mod guardian;
pub mod journal;
pub mod persistent;
pub mod process;
pub mod rundir;
