//! The Unix side of [`super`]: modes and inodes, process groups and signals.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;

pub use nix::sys::signal::Signal;
use nix::sys::signal::{kill, killpg};
use nix::unistd::Pid;

/// Open options for a private file: created 0600, refused through a symbolic link.
pub fn private_open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    options
}

/// A folder builder that creates 0700 folders.
pub fn private_dir_builder() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    builder
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets the permission bits of an open file.
pub fn set_file_mode(file: &File, mode: u32) -> std::io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// The permission bits (and file type bits) of `meta`.
pub fn mode_of(meta: &Metadata) -> u32 {
    meta.mode()
}

/// The owner of `meta`.
pub fn owner_of(meta: &Metadata) -> Option<u32> {
    Some(meta.uid())
}

/// This process's effective user.
pub fn my_uid() -> Option<u32> {
    Some(nix::unistd::geteuid().as_raw())
}

/// Which file an open file is: device and inode.
pub fn file_id(file: &File) -> std::io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Which file `path` names (not following a link): device and inode.
pub fn path_id(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Reads at `offset` without moving the file's own position (`pread`).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    file.read_at(buf, offset)
}

/// Makes the process `cmd` starts the leader of a group of its own.
pub fn own_group(cmd: &mut std::process::Command) {
    cmd.process_group(0);
}

/// [`own_group`] for tokio's command.
pub fn own_group_async(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
}

/// Starts `cmd` in a container its whole tree stays in, and says whether it is
/// contained. On Unix the process group set before exec (see [`own_group`]) is that
/// container, so this is the plain spawn: std keeps using `posix_spawn`.
pub fn spawn_contained(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(tokio::process::Child, std::io::Result<()>)> {
    Ok((cmd.spawn()?, Ok(())))
}

/// Forgets the container of `pid` (nothing to do on Unix).
pub fn release(_pid: u32) {}

/// Sends `signal` to a process group, ignoring "no such group".
pub fn signal_group(pgid: u32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), signal);
    }
}

/// Sends `signal` to one process, ignoring "no such process".
pub fn signal_pid(pid: u32, signal: Signal) {
    if pid > 1 {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }
}

/// True if a process with this pid exists (zombies included).
pub fn process_exists(pid: i32) -> bool {
    // Signal 0 checks existence and permission without sending anything.
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// The signal that ended a process, if one did.
pub fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    status.signal()
}

/// Ends this process at once, as a crash would (tests of crash safety).
pub fn kill_self() {
    let _ = nix::sys::signal::raise(Signal::SIGKILL);
}

/// The command of an attempt: `argv` as it is, leading a process group of its own.
pub fn attempt_command(
    argv: &[String],
    _cwd: Option<&Path>,
    _env: &[(String, String)],
) -> std::io::Result<tokio::process::Command> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).process_group(0);
    Ok(cmd)
}

/// Whether this process is in its terminal's foreground (not put in the background).
pub fn in_foreground() -> bool {
    // SAFETY: both calls only read process state; fd 0 is the terminal (or not: then
    // tcgetpgrp fails and the answer is "foreground", as for a terminal of our own).
    let (owner, ours) = unsafe { (libc::tcgetpgrp(0), libc::getpgrp()) };
    owner < 0 || owner == ours
}

/// Stops this process as Ctrl-Z would; returns once it is continued.
pub fn suspend_self() {
    let _ = nix::sys::signal::raise(Signal::SIGTSTP);
}

/// The signals that ask pitboss to stop, as tokio streams (SIGINT, SIGTERM).
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    /// The next stop request, by its signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Restores the default SIGPIPE (a closed reader ends the process quietly). Call it
/// before any thread exists.
pub fn default_sigpipe() {
    // SAFETY: called before any thread exists; SIG_DFL is always a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The signals that stop a manager.
fn stop_set() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Blocks SIGINT and SIGTERM in the calling thread and the threads it starts later.
pub fn block_stop_signals() {
    let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&stop_set()), None);
}

/// Unblocks them again (one pending is delivered now).
pub fn unblock_stop_signals() {
    let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK, Some(&stop_set()), None);
}

/// Starts the thread that takes the blocked stop signals with `sigwait` and calls
/// `deliver` with each one's name (no handler: nothing has to be async-signal-safe).
pub fn take_stop_signals(deliver: fn(&str)) -> std::io::Result<()> {
    std::thread::Builder::new().name("pitboss-signals".into()).spawn(move || loop {
        if let Ok(signal) = stop_set().wait() {
            deliver(signal.as_str());
        }
    })?;
    Ok(())
}

/// Ends the process with `code` at once: no destructor or exit handler runs.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and ends the process.
    unsafe { libc::_exit(code) }
}

/// The soft and hard limits on open files (`RLIMIT_NOFILE`); infinity reads as
/// `u64::MAX`.
pub fn open_file_limits() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some((rlim_u64(limit.rlim_cur), rlim_u64(limit.rlim_max)))
}

/// RLIM_INFINITY and any value past u64 read as u64::MAX.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, but not everywhere
fn rlim_u64(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        v as u64
    }
}

/// Sets the soft limit on open files; whether it worked.
pub fn set_open_file_limit(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: if hard == u64::MAX { libc::RLIM_INFINITY } else { hard as libc::rlim_t },
    };
    // SAFETY: setrlimit reads the struct we own.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

/// This host's name (as `hostname` prints it), or `None` if the system gives none.
pub fn host_name() -> Option<String> {
    crate::io::posix::host_name()
}

/// Resident memory of a process in KiB, if it can be read.
pub fn resident_kib(pid: u32) -> Option<u64> {
    crate::io::procs::resident_kib(pid)
}

/// A blocking client connection to the control socket (`ctl`, `submit`).
pub use std::os::unix::net::UnixStream as BlockingStream;
