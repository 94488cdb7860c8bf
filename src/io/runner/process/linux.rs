//! The direct start on Linux (see the parent module).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use libc::c_char;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::clone_start::{self, Candidates, Plan, Started};

/// The environment a pool's workers start from, as `NAME=value` C strings sorted
/// by name (the order std gives a child), each with the length of its name, ready
/// to be merged with an attempt's own variables in one pass.
#[derive(Debug)]
pub struct Envp(Vec<(usize, CString)>);

impl Envp {
    /// From whole variables; `None` if one holds a NUL byte (no C string can).
    pub fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Option<Envp> {
        let mut vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.dedup_by(|later, earlier| later.0 == earlier.0);
        let entries = vars
            .into_iter()
            .map(|(k, v)| {
                let mut bytes = k.into_vec();
                let name = bytes.len();
                bytes.push(b'=');
                bytes.extend_from_slice(&v.into_vec());
                Some((name, CString::new(bytes).ok()?))
            })
            .collect::<Option<Vec<(usize, CString)>>>()?;
        Some(Envp(entries))
    }

    /// This environment with `extra` merged in (an `extra` variable replaces the
    /// base's of the same name; of two with one name the last wins), sorted by
    /// name: one pass over the base, which is sorted already (sorting the whole
    /// list and comparing every name with every extra one per spawn was a tenth of
    /// the manager's time in benchmark P1).
    fn with(&self, extra: &[(usize, CString)]) -> Vec<*mut c_char> {
        let mut merged = Vec::with_capacity(self.0.len() + extra.len() + 1);
        let mut base = self.0.iter().peekable();
        for added in extra {
            while let Some(b) = base.next_if(|b| name(b) < name(added)) {
                merged.push(b.1.as_ptr() as *mut c_char);
            }
            base.next_if(|b| name(b) == name(added));
            merged.push(added.1.as_ptr() as *mut c_char);
        }
        merged.extend(base.map(|b| b.1.as_ptr() as *mut c_char));
        merged.push(std::ptr::null_mut());
        merged
    }
}

/// The name part of an entry.
fn name((len, entry): &(usize, CString)) -> &[u8] {
    &entry.as_bytes()[..*len]
}

/// An attempt's own variables as `NAME=value` C strings with their names' lengths,
/// sorted by name, one per name (the last given wins).
fn extra_vars(extra: &[(String, String)]) -> io::Result<Vec<(usize, CString)>> {
    let mut added: Vec<(usize, CString)> = Vec::with_capacity(extra.len());
    for (k, v) in extra.iter().rev() {
        if !added.iter().any(|e| name(e) == k.as_bytes()) {
            added.push((k.len(), c_string(&format!("{k}={v}"))?));
        }
    }
    added.sort_by(|a, b| name(a).cmp(name(b)));
    Ok(added)
}

/// A process started by [`spawn`].
pub struct Child {
    pub(super) pid: u32,
    /// Its pidfd, readable once it has exited; taken by `Drop` when it was never
    /// waited for.
    exit: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    pub(super) stdin: Option<pipe::Sender>,
    pub(super) stdout: Option<pipe::Receiver>,
    pub(super) stderr: Option<pipe::Receiver>,
}

impl Child {
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let exit = self.exit.as_ref().ok_or_else(|| io::Error::other("no pidfd"))?;
        loop {
            let mut ready = exit.readable().await?;
            if let Some(status) = reap(self.pid, libc::WNOHANG)? {
                self.status = Some(status);
                return Ok(status);
            }
            ready.clear_ready();
        }
    }
}

impl Drop for Child {
    /// A child never waited for is reaped when it ends, so no zombie stays (tokio
    /// does the same for its own children).
    fn drop(&mut self) {
        if self.status.is_some() || matches!(reap(self.pid, libc::WNOHANG), Ok(Some(_)) | Err(_)) {
            return;
        }
        let (pid, Some(exit)) = (self.pid, self.exit.take()) else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = exit.readable().await;
                let _ = reap(pid, libc::WNOHANG);
            });
        }
    }
}

/// Reaps `pid` if it has exited (`flags` WNOHANG) or once it does.
fn reap(pid: u32, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: plain syscall with an out-parameter we own.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
        if rc == pid as libc::pid_t {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if rc == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A pipe as (read end, write end), both close-on-exec, neither above fd 2 (so a
/// dup2 onto 0, 1 or 2 always makes a new descriptor without close-on-exec, even
/// in a manager started with those closed).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &on) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The most stdin [`spawn`] writes itself: `PIPE_BUF`, which a fresh pipe
/// (one page at the least) always takes whole without blocking.
pub const STDIN_AT_ONCE: usize = libc::PIPE_BUF;

fn write_all_now(fd: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a slice we own to a descriptor we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Whether the direct start can be used: a kernel with `pidfd_open` (5.3+, which
/// has `CLONE_PIDFD` too), asked once, on x86-64 or arm64 (the kernel signal
/// structure [`clone_start`] writes is theirs).
pub fn available() -> bool {
    static HAS_PIDFD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
        && *HAS_PIDFD.get_or_init(|| pidfd_open(std::process::id()).is_ok())
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

fn c_string(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data"))
}

/// Starts `argv` (looked up on the manager's PATH) leading its own process group,
/// with the environment `base` plus `extra` (an `extra` variable replaces the
/// base's of the same name; the last of two wins), stdout and stderr piped and
/// stdin piped or /dev/null ([`clone_start`]). Needs [`available`] and a tokio
/// runtime.
///
/// A `stdin` of at most [`STDIN_AT_ONCE`] bytes is written here and the pipe
/// closed (the child's `stdin` is then `None`): an empty pipe takes that much
/// without blocking, and the attempt saves the pipe's registration with the
/// reactor and a task of its own. Longer input is left to the caller.
pub fn spawn(argv: &[String], base: &Envp, extra: &[(String, String)], stdin: Option<&[u8]>) -> io::Result<Child> {
    let args = argv.iter().map(|a| c_string(a)).collect::<io::Result<Vec<CString>>>()?;
    let program = args.first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no program"))?;
    let candidates = Candidates::on_manager_path(program);
    let mut arg_ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut _).collect();
    arg_ptrs.push(std::ptr::null_mut());
    let extra = extra_vars(extra)?;
    let env_ptrs = base.with(&extra);

    let input = if stdin.is_some() { Some(pipe()?) } else { None };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let plan = Plan {
        candidates: &candidates,
        argv: &arg_ptrs,
        envp: &env_ptrs,
        stdin: input.as_ref().map(|(r, _)| r.as_raw_fd()),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
    };
    let Started { pid, pidfd } = clone_start::start(&plan)?;
    // The child's ends are its own now.
    drop((out_w, err_w));
    // SAFETY (I/O safety): the AsyncFd owns the pidfd, so the descriptor stays
    // open and the same for as long as it is registered.
    let exit = match unsafe { AsyncFd::register(pidfd) } {
        Ok(exit) => exit,
        Err(e) => {
            // Nothing to wait on without blocking: end it now and say why.
            // SAFETY: plain syscalls on our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = reap(pid, 0);
            return Err(e.into());
        }
    };
    let mut child = Child { pid, exit: Some(exit), status: None, stdin: None, stdout: None, stderr: None };
    if let (Some((r, w)), Some(bytes)) = (input, stdin) {
        drop(r);
        if bytes.len() <= STDIN_AT_ONCE {
            // Still blocking, and empty: the write is whole, at once. A worker
            // gone already (EPIPE) never reads it, as with the async write.
            write_all_now(&w, bytes);
        } else {
            nonblocking(&w)?;
            child.stdin = Some(pipe::Sender::from_owned_fd_unchecked(w)?);
        }
    }
    nonblocking(&out_r)?;
    child.stdout = Some(pipe::Receiver::from_owned_fd_unchecked(out_r)?);
    nonblocking(&err_r)?;
    child.stderr = Some(pipe::Receiver::from_owned_fd_unchecked(err_r)?);
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn an_attempts_variables_merge_into_the_pools_in_name_order_replacing_the_same_name() {
        let pool = Envp::new(
            [("AB", "1"), ("A", "2"), ("A_B", "3"), ("Z", "4")].into_iter().map(|(k, v)| (k.into(), v.into())),
        )
        .unwrap();
        let extra: Vec<(String, String)> = [("A_B", "x"), ("AA", "y"), ("A", "z"), ("A_B", "w"), ("ZZ", "v")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let extra = extra_vars(&extra).unwrap();
        let merged = pool.with(&extra);
        assert!(merged.last().unwrap().is_null());
        // SAFETY: every pointer but the last is one of the C strings above, alive here.
        let merged: Vec<&str> =
            merged[..merged.len() - 1].iter().map(|&p| unsafe { CStr::from_ptr(p) }.to_str().unwrap()).collect();
        // The order std gives (a map sorted by name).
        assert_eq!(merged, vec!["A=z", "AA=y", "AB=1", "A_B=w", "Z=4", "ZZ=v"]);
    }
}
