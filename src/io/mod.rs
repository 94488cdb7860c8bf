//! Adapters to the world: the event journal, the run folder and its lock, and worker
//! processes. Each is small and owns one resource.

pub mod guardian;
pub mod journal;
pub mod persistent;
pub mod process;
pub mod rundir;
pub mod signal;
