//! What differs between operating systems, behind one small interface: file modes
//! and identities, process groups (Job Objects on Windows), stop signals. The rest of
//! pitboss calls these and never `cfg`s on the platform itself.
//!
//! Unix is the reference; `windows.rs` says, item by item, where Windows does less.

pub mod cmdline;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
#[cfg(windows)]
mod windows_pipe;
#[cfg(windows)]
pub use windows_pipe::*;
#[cfg(windows)]
mod windows_jobs;
#[cfg(windows)]
pub use windows_jobs::*;
#[cfg(windows)]
mod windows_private;
#[cfg(windows)]
pub use windows_private::*;
