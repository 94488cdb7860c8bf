//! Where the control socket lives and how it is made private (DESIGN §12): created
//! 0600 before it listens (so no other user can ever connect, even for a moment), a
//! stale file of a crashed manager replaced (the run folder's lock proves nobody else
//! owns it), and a path over the `sun_path` limit (108 bytes, 104 on macOS) moved to
//! the runtime dir with a pointer file in the run folder.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::socket::{bind, listen, Backlog, UnixAddr};

use crate::io::posix::{unix_stream_socket, SUN_PATH_MAX};
use crate::launch::{CTL_SOCKET, CTL_SOCKET_POINTER};

/// A listening socket and the files to remove when the manager goes.
pub struct Bound {
    /// The listening socket (non-blocking, close-on-exec).
    pub listener: std::os::unix::net::UnixListener,
    /// The socket's path.
    pub path: PathBuf,
    /// The pointer file, when the socket is in the runtime dir.
    pub pointer: Option<PathBuf>,
}

/// The files a bound socket made.
pub struct Files {
    /// The socket's path.
    pub path: PathBuf,
    /// The pointer file, if any.
    pub pointer: Option<PathBuf>,
}

impl Files {
    /// Removes the socket (and the pointer) file.
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
        if let Some(pointer) = &self.pointer {
            let _ = fs::remove_file(pointer);
        }
    }
}

/// Binds the run folder's control socket. `run_id` names the socket in the runtime dir
/// when the folder's path is too long.
pub fn bind_for(dir: &Path, run_id: &str) -> Result<Bound, String> {
    let in_dir = dir.join(CTL_SOCKET);
    let pointer_file = dir.join(CTL_SOCKET_POINTER);
    // A pointer of a crashed manager would send clients to a dead socket.
    let _ = fs::remove_file(&pointer_file);
    if in_dir.as_os_str().len() <= SUN_PATH_MAX {
        let listener = listen_private(&in_dir)?;
        return Ok(Bound { listener, path: in_dir, pointer: None });
    }
    let runtime = runtime_dir()?;
    let path = runtime.join(format!("{run_id}.sock"));
    if path.as_os_str().len() > SUN_PATH_MAX {
        return Err(format!("no socket path short enough for {} (tried {})", dir.display(), path.display()));
    }
    let listener = listen_private(&path)?;
    let written = crate::io::fsutil::private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&pointer_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, path.to_string_lossy().as_bytes()));
    if let Err(e) = written {
        let _ = fs::remove_file(&path);
        return Err(format!("{}: {e}", pointer_file.display()));
    }
    Ok(Bound { listener, path, pointer: Some(pointer_file) })
}

/// `$XDG_RUNTIME_DIR/pitboss`, else `/tmp/pitboss-UID`: a 0700 folder of this user's
/// (one that is someone else's, or a link, is refused).
fn runtime_dir() -> Result<PathBuf, String> {
    let uid = nix::unistd::getuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(base) => PathBuf::from(base).join("pitboss"),
        None => PathBuf::from(format!("/tmp/pitboss-{uid}")),
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let meta = fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(format!("{} is not a folder of this user's; not putting the control socket there", dir.display()));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// socket, bind, chmod 0600, then listen: nobody can connect before the file is
/// private. A leftover file at `path` is replaced.
fn listen_private(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    let err = |what: &str, e: nix::Error| format!("control socket {}: {what}: {e}", path.display());
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_dir() => {
            return Err(format!("control socket {}: a folder is in the way", path.display()))
        }
        Ok(_) => fs::remove_file(path).map_err(|e| format!("control socket {}: {e}", path.display()))?,
        Err(_) => {}
    }
    let fd: OwnedFd = unix_stream_socket().map_err(|e| err("socket", e))?;
    let addr = UnixAddr::new(path).map_err(|e| err("address", e))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| err("bind", e))?;
    if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        let _ = fs::remove_file(path);
        return Err(format!("control socket {}: chmod: {e}", path.display()));
    }
    if let Err(e) = listen(&fd, Backlog::new(128).unwrap_or(Backlog::MAXCONN)) {
        let _ = fs::remove_file(path);
        return Err(err("listen", e));
    }
    Ok(std::os::unix::net::UnixListener::from(fd))
}
