//! Windows in place of `socket.rs`: the control socket is a named pipe
//! (pipe_windows.rs). Its name is new for each manager, `\\.\pipe\pitboss-PID-RANDOM`
//! (unguessable, so nobody can make it first to keep the manager out), and the run
//! folder's pointer file names it, as a Unix socket moved out of a long folder path is
//! named: `ctl`, `submit`, `attach DIR` and `mcp DIR` read it there.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

use super::local::Listener;
use crate::launch::CTL_SOCKET_POINTER;

/// A listening pipe and the files that name it.
pub struct Bound {
    /// The listener.
    pub listener: Listener,
    /// The pipe's name.
    pub path: PathBuf,
    /// The pointer file in the run folder.
    pub pointer: Option<PathBuf>,
}

/// The files to remove when the service ends.
pub struct Files {
    /// The pipe's name (nothing to remove: the pipe goes with its last handle).
    pub path: PathBuf,
    /// The pointer file in the run folder.
    pub pointer: Option<PathBuf>,
}

impl Files {
    /// Removes the pointer file.
    pub fn remove(&self) {
        tracing::debug!("control pipe {} closing", self.path.display());
        if let Some(pointer) = &self.pointer {
            let _ = fs::remove_file(pointer);
        }
    }
}

/// Creates the run folder's control pipe and writes its name to the pointer file.
pub fn bind_for(dir: &Path, _run_id: &str) -> Result<Bound, String> {
    let pointer_file = dir.join(CTL_SOCKET_POINTER);
    // A pointer of a crashed manager would send clients to a pipe that is gone.
    let _ = fs::remove_file(&pointer_file);
    let name = pipe_name();
    let listener = Listener::create(&name).map_err(|e| format!("control pipe {}: {e}", name.to_string_lossy()))?;
    let written = crate::io::fsutil::private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&pointer_file)
        .and_then(|mut f| f.write_all(name.to_string_lossy().as_bytes()));
    if let Err(e) = written {
        return Err(format!("{}: {e}", pointer_file.display()));
    }
    Ok(Bound { listener, path: PathBuf::from(name), pointer: Some(pointer_file) })
}

/// `\\.\pipe\pitboss-PID-RANDOM`: 64 random bits (from a CSPRNG seeded by the OS).
fn pipe_name() -> OsString {
    let random: u64 = rand::rng().random();
    OsString::from(format!(r"\\.\pipe\pitboss-{}-{random:016x}", std::process::id()))
}
