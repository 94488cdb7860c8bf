//! The run folder: `events.jsonl`, `manager.lock`, and `output/` with each attempt's
//! captured stdout and stderr. The folder is 0700 and its files 0600 whatever the
//! umask (logs and outputs may hold prompts and results). One manager at a time holds
//! the folder through an `flock` on `manager.lock`, which the kernel drops when the
//! manager dies, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fsutil::{create_private_dir, private_file};
use super::platform;

/// How long a lock whose recorded manager is dead is waited for (see [`RunDir::hold`]).
const STRAGGLER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

use platform::process_exists;

/// File holding the manager's lock and pid.
pub const LOCK_FILE: &str = "manager.lock";
/// Folder of captured attempt output.
pub const OUTPUT_DIR: &str = "output";

/// Run folder failures.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The folder cannot be used as it is: a file is in the way, or this user may not
    /// write there. Said in words with what to do; nothing was created or changed.
    #[error("{path}: {why}")]
    Unusable {
        /// The path that is wrong (the folder, or the file or folder in its way).
        path: PathBuf,
        /// What is wrong and what to do.
        why: String,
    },
    /// Another manager holds the folder.
    #[error(
        "{path} is in use by another pitboss manager (pid {pid}); act on the run in that manager, or stop it first"
    )]
    Held {
        /// The run folder.
        path: PathBuf,
        /// The holder's pid, as written in the lock file.
        pid: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io { path: path.to_path_buf(), source }
}

/// A run folder held by this process. Dropping it releases the lock.
pub struct RunDir {
    /// The folder.
    pub path: PathBuf,
    /// Locked (`flock` on Unix, `LockFileEx` on Windows) until dropped.
    _lock: File,
}

impl RunDir {
    /// Creates (if needed) and locks a run folder. A folder that cannot be used (a
    /// file in the way, no permission to write) is refused with what is wrong before
    /// anything is created, and its mode is never loosened: a folder this user may
    /// not write is not made writable behind their back.
    pub fn hold(path: &Path) -> Result<RunDir, RunDirError> {
        check_usable(path)?;
        create_private_dir(path).map_err(io_err(path))?;
        tighten(path)?;
        let path = std::fs::canonicalize(path).map_err(io_err(path))?;
        let lock_path = path.join(LOCK_FILE);
        let open = || {
            private_file()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .map_err(io_err(&lock_path))
        };
        let started = std::time::Instant::now();
        let mut lock = loop {
            let mut file = open()?;
            match file.try_lock() {
                Ok(()) => break file,
                Err(_) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let pid = pid.trim().to_string();
                    // A manager killed a moment ago can leave its lock with a worker it
                    // was starting (between fork and exec the child shares the open
                    // lock); the exec closes it within moments. Wait that out rather
                    // than refuse a resume right after a crash.
                    let holder_dead = pid.parse::<i32>().is_ok_and(|p| p > 0 && !process_exists(p));
                    if holder_dead && started.elapsed() < STRAGGLER_WAIT {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        continue;
                    }
                    let pid = if pid.is_empty() { "unknown".to_string() } else { pid };
                    return Err(RunDirError::Held { path, pid });
                }
            }
        };
        // Not synced: the pid is read only by a process that finds the lock held, that
        // is while this one lives, and the page cache shows it the write. After a
        // crash of the machine no lock is held, so a stale or empty pid is never read
        // (an fdatasync here cost every run's start 0.3–0.5 ms, benchmark P1).
        let write_pid = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, "{}", std::process::id())
        };
        write_pid(&mut lock).map_err(io_err(&lock_path))?;
        let output = path.join(OUTPUT_DIR);
        create_private_dir(&output).map_err(io_err(&output))?;
        Ok(RunDir { path, _lock: lock })
    }

    /// The folder for captured output.
    pub fn output_dir(&self) -> PathBuf {
        self.path.join(OUTPUT_DIR)
    }
}

/// The other way out, said after each refusal.
const ELSEWHERE: &str = "or choose another folder (--state-dir for a new run)";

/// Refuses, before anything is created, a run folder that cannot work: a file where
/// the folder (or one above it) should be, or a folder this user cannot read and
/// write (a mode such as 0555, another owner). The nearest existing folder on the
/// way is what decides, since that is where `create` would fail.
pub fn check_usable(path: &Path) -> Result<(), RunDirError> {
    let mut existing = path;
    let meta = loop {
        match std::fs::metadata(existing) {
            Ok(meta) => break meta,
            // Missing, or under a file (ENOTDIR): look at what is above.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                match existing.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
                    // A relative path with nothing of it there yet: the current folder.
                    _ if existing != Path::new(".") => existing = Path::new("."),
                    _ => return Err(unusable(existing, explain_io(&e))),
                }
            }
            Err(e) => return Err(unusable(existing, explain_io(&e))),
        }
    };
    let whole = existing == path;
    if !meta.is_dir() {
        let why = if whole {
            format!("is a file, not a folder; a run needs a folder of its own: move the file away, {ELSEWHERE}")
        } else {
            format!("is a file, so {} cannot be made under it: move the file away, {ELSEWHERE}", path.display())
        };
        return Err(unusable(existing, why));
    }
    check_access(existing, &meta, whole, path)
}

/// Whether this user may use `existing` as the run folder (`whole`) or create `path`
/// in it, said with its mode and owner when not. Windows: its ACLs are not read here;
/// creating the folder or its files fails instead, with the system's own words.
#[cfg(unix)]
fn check_access(existing: &Path, meta: &std::fs::Metadata, whole: bool, path: &Path) -> Result<(), RunDirError> {
    use nix::unistd::{access, AccessFlags};
    use std::os::unix::fs::PermissionsExt;
    // The folder itself is read and written; a folder above it only gets a new entry.
    let needed = if whole {
        AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK
    } else {
        AccessFlags::W_OK | AccessFlags::X_OK
    };
    if let Err(errno) = access(existing, needed) {
        let mode = meta.permissions().mode() & 0o7777;
        let owner = std::os::unix::fs::MetadataExt::uid(meta);
        let what = match errno {
            nix::errno::Errno::EROFS => "is on a read-only file system".to_string(),
            _ if whole => format!("permission denied: this user (uid {}) cannot read and write it (mode {mode:04o}, owner uid {owner}); pitboss does not change a folder's permissions", nix::unistd::geteuid()),
            _ => format!("permission denied: this user (uid {}) cannot create {} in it (mode {mode:04o}, owner uid {owner})", nix::unistd::geteuid(), path.display()),
        };
        let fix = match errno {
            nix::errno::Errno::EROFS => ELSEWHERE.trim_start_matches("or ").to_string(),
            _ => format!("give this user access (as the owner: chmod u+rwx {}), {ELSEWHERE}", existing.display()),
        };
        return Err(unusable(existing, format!("{what}; {fix}")));
    }
    Ok(())
}

#[cfg(windows)]
fn check_access(_existing: &Path, _meta: &std::fs::Metadata, _whole: bool, _path: &Path) -> Result<(), RunDirError> {
    Ok(())
}

/// Takes group and other access off an existing run folder this user owns (logs and
/// outputs may hold prompts and results); never adds any, and leaves a folder owned
/// by someone else as it is (only its owner may change it).
fn tighten(path: &Path) -> Result<(), RunDirError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let mode = platform::mode_of(&meta);
    let mine = platform::owner_of(&meta) == platform::my_uid();
    if mine && mode & 0o077 != 0 {
        platform::set_mode(path, mode & 0o700).map_err(io_err(path))?;
    }
    Ok(())
}

fn unusable(path: &Path, why: String) -> RunDirError {
    RunDirError::Unusable { path: path.to_path_buf(), why }
}

/// An OS error in words, for the errors people meet when pointing pitboss at a folder.
pub fn explain_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            let uid = platform::my_uid().map_or_else(String::new, |uid| format!(" (uid {uid})"));
            format!("permission denied: this user{uid} may not look there")
        }
        Some(libc::ENOTDIR) => "a part of this path is a file, not a folder".to_string(),
        // From creating a folder: something else has its name.
        Some(libc::EEXIST) => "is a file (or something else that is not a folder)".to_string(),
        Some(libc::ELOOP) => "too many symbolic links (a loop?)".to_string(),
        Some(libc::EROFS) => "the file system is read-only".to_string(),
        Some(libc::ENOSPC) => "the disk is full".to_string(),
        _ => e.to_string(),
    }
}

/// True when some manager holds the folder right now (for read-only commands that
/// must not change a live run).
pub fn is_held(path: &Path) -> Option<String> {
    let file = OpenOptions::new().read(true).open(path.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => {
            let mut file = file;
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(pid.trim().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_holder_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunDir::hold(&run).unwrap();
        // flock locks belong to the open file description, so a second open in the
        // same process conflicts just as another process would.
        match RunDir::hold(&run) {
            Err(RunDirError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("second hold succeeded"),
        }
        assert_eq!(std::fs::metadata(&run).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(is_held(&run).is_some());
        drop(first);
        assert!(is_held(&run).is_none());
    }
}
