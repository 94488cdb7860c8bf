//! Windows in place of `socket.rs`: no control socket yet (a named pipe would be it,
//! DESIGN §15). Binding fails with a plain message, which the launcher prints as a
//! warning; the run itself goes on without `ctl`, `submit` or `events --follow`.

use std::path::{Path, PathBuf};

/// A bound listener and the files that name it (never made on Windows).
pub struct Bound {
    /// The listener.
    pub listener: super::local::Listener,
    /// The socket's path.
    pub path: PathBuf,
    /// The pointer file in the run folder.
    pub pointer: Option<PathBuf>,
}

/// The files to remove when the service ends.
pub struct Files {
    /// The socket's path.
    pub path: PathBuf,
    /// The pointer file in the run folder.
    pub pointer: Option<PathBuf>,
}

impl Files {
    /// Removes the files (none are made on Windows).
    pub fn remove(&self) {
        for path in std::iter::once(&self.path).chain(&self.pointer) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Always refused on Windows (module notes).
pub fn bind_for(_dir: &Path, _run_id: &str) -> Result<Bound, String> {
    Err("control socket: not available on Windows yet (pitboss ctl, submit and events --follow need it); the run goes on without it".to_string())
}
