//! The process of a spawned attempt, and how it is started.
//!
//! On Linux, when nothing asks otherwise, the attempt is started with `posix_spawnp`
//! directly, from an environment built once per pool ([`Envp`]): std's `Command`
//! rebuilds the child's whole environment on every spawn as soon as one variable is
//! set (it reads the manager's environment into a sorted map, applies the changes,
//! then makes one C string per variable), and every attempt sets its marks
//! (`PITBOSS_*`). That was over a quarter of the manager's instructions in benchmark
//! P1. The direct start does what std's `posix_spawn` path does: the program looked
//! up on the manager's PATH, its own process group, an empty signal mask, SIGPIPE back
//! to its default, piped stdout and stderr, stdin piped or /dev/null.
//!
//! Everything else goes through tokio's `Command` as before: other systems, a working
//! directory, a `clean_env` pool or a changed PATH (where the lookup would have to
//! use the child's PATH), and a kernel without `pidfd_open`.

use std::process::ExitStatus;

use tokio::io::{AsyncRead, AsyncWrite};

/// A started attempt's process.
pub enum Process {
    /// Started by tokio's `Command`.
    Tokio(tokio::process::Child),
    /// Started by `posix_spawnp` (Linux).
    #[cfg(target_os = "linux")]
    Direct(linux::Child),
}

/// One of the attempt's output pipes.
pub type Output = Box<dyn AsyncRead + Send + Unpin>;
/// The attempt's stdin pipe.
pub type Input = Box<dyn AsyncWrite + Send + Unpin>;

impl Process {
    /// Its process id (0 once tokio has reaped it).
    pub fn id(&self) -> u32 {
        match self {
            Process::Tokio(child) => child.id().unwrap_or(0),
            #[cfg(target_os = "linux")]
            Process::Direct(child) => child.pid,
        }
    }

    /// Waits for it to exit and reaps it (again: the status once it has).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Process::Tokio(child) => child.wait().await,
            #[cfg(target_os = "linux")]
            Process::Direct(child) => child.wait().await,
        }
    }

    /// Its stdin, once.
    pub fn take_stdin(&mut self) -> Option<Input> {
        match self {
            Process::Tokio(child) => child.stdin.take().map(|p| Box::new(p) as Input),
            #[cfg(target_os = "linux")]
            Process::Direct(child) => child.stdin.take().map(|p| Box::new(p) as Input),
        }
    }

    /// Its stdout, once.
    pub fn take_stdout(&mut self) -> Option<Output> {
        match self {
            Process::Tokio(child) => child.stdout.take().map(|p| Box::new(p) as Output),
            #[cfg(target_os = "linux")]
            Process::Direct(child) => child.stdout.take().map(|p| Box::new(p) as Output),
        }
    }

    /// Its stderr, once.
    pub fn take_stderr(&mut self) -> Option<Output> {
        match self {
            Process::Tokio(child) => child.stderr.take().map(|p| Box::new(p) as Output),
            #[cfg(target_os = "linux")]
            Process::Direct(child) => child.stderr.take().map(|p| Box::new(p) as Output),
        }
    }
}

/// A pool's workers' environment, built once, for the direct start (Linux).
#[cfg(target_os = "linux")]
pub use linux::Envp;

/// Without the direct start there is nothing to build.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct Envp;

#[cfg(not(target_os = "linux"))]
impl Envp {
    /// Never built here.
    pub fn new(_vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> Option<Envp> {
        None
    }
}

#[cfg(target_os = "linux")]
pub mod linux {
    use std::ffi::{CStr, CString, OsString};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use tokio::io::unix::AsyncFd;
    use tokio::net::unix::pipe;

    /// The environment a pool's workers start from, as `NAME=value` C strings sorted
    /// by name (the order std gives a child), ready to be handed to `posix_spawnp`.
    #[derive(Debug)]
    pub struct Envp(Vec<CString>);

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
                    bytes.push(b'=');
                    bytes.extend_from_slice(&v.into_vec());
                    CString::new(bytes).ok()
                })
                .collect::<Option<Vec<CString>>>()?;
            Some(Envp(entries))
        }
    }

    /// The name part of a `NAME=value` entry.
    fn name_of(entry: &CStr) -> &[u8] {
        let bytes = entry.to_bytes();
        bytes.split(|&b| b == b'=').next().unwrap_or(bytes)
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

    fn cvt(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
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

    /// Whether this kernel has `pidfd_open` (5.3+), asked once.
    pub fn available() -> bool {
        static HAS_PIDFD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS_PIDFD.get_or_init(|| pidfd_open(std::process::id()).is_ok())
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

    /// posix_spawn's attributes and file actions, destroyed when dropped.
    struct Setup {
        attr: libc::posix_spawnattr_t,
        actions: libc::posix_spawn_file_actions_t,
    }

    impl Setup {
        fn new() -> io::Result<Box<Setup>> {
            // SAFETY: both are plain C structs initialised by their init functions
            // before use; boxed so their address stays put.
            let mut setup: Box<Setup> = Box::new(unsafe { std::mem::zeroed() });
            unsafe {
                cvt(libc::posix_spawnattr_init(&mut setup.attr))?;
                if let Err(e) = cvt(libc::posix_spawn_file_actions_init(&mut setup.actions)) {
                    libc::posix_spawnattr_destroy(&mut setup.attr);
                    return Err(e);
                }
            }
            Ok(setup)
        }
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            // SAFETY: both were initialised by `new`.
            unsafe {
                libc::posix_spawn_file_actions_destroy(&mut self.actions);
                libc::posix_spawnattr_destroy(&mut self.attr);
            }
        }
    }

    fn c_string(s: &str) -> io::Result<CString> {
        CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data"))
    }

    /// Starts `argv` (looked up on the manager's PATH) leading its own process group,
    /// with the environment `base` plus `extra` (an `extra` variable replaces the
    /// base's of the same name; the last of two wins), stdout and stderr piped and
    /// stdin piped or /dev/null. Needs [`available`] and a tokio runtime.
    ///
    /// A `stdin` of at most [`STDIN_AT_ONCE`] bytes is written here and the pipe
    /// closed (the child's `stdin` is then `None`): an empty pipe takes that much
    /// without blocking, and the attempt saves the pipe's registration with the
    /// reactor and a task of its own. Longer input is left to the caller.
    pub fn spawn(argv: &[String], base: &Envp, extra: &[(String, String)], stdin: Option<&[u8]>) -> io::Result<Child> {
        let args = argv.iter().map(|a| c_string(a)).collect::<io::Result<Vec<CString>>>()?;
        let program = args.first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no program"))?;
        let mut arg_ptrs: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr() as *mut _).collect();
        arg_ptrs.push(std::ptr::null_mut());

        let mut added: Vec<CString> = Vec::with_capacity(extra.len());
        for (k, v) in extra.iter().rev() {
            if !added.iter().any(|e| name_of(e) == k.as_bytes()) {
                added.push(c_string(&format!("{k}={v}"))?);
            }
        }
        let mut env: Vec<&CStr> =
            base.0.iter().map(|e| e.as_c_str()).filter(|e| !added.iter().any(|a| name_of(a) == name_of(e))).collect();
        env.extend(added.iter().map(|e| e.as_c_str()));
        env.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        let mut env_ptrs: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr() as *mut _).collect();
        env_ptrs.push(std::ptr::null_mut());

        let input = if stdin.is_some() { Some(pipe()?) } else { None };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut setup = Setup::new()?;
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer handed over lives until posix_spawnp returns (the
        // C strings above, the setup, the descriptors); the sigset is initialised by
        // sigemptyset before use.
        unsafe {
            let actions = &mut setup.actions as *mut libc::posix_spawn_file_actions_t;
            match &input {
                Some((r, _)) => cvt(libc::posix_spawn_file_actions_adddup2(actions, r.as_raw_fd(), 0))?,
                None => {
                    cvt(libc::posix_spawn_file_actions_addopen(actions, 0, c"/dev/null".as_ptr(), libc::O_RDONLY, 0))?
                }
            }
            cvt(libc::posix_spawn_file_actions_adddup2(actions, out_w.as_raw_fd(), 1))?;
            cvt(libc::posix_spawn_file_actions_adddup2(actions, err_w.as_raw_fd(), 2))?;
            let attr = &mut setup.attr as *mut libc::posix_spawnattr_t;
            let mut signals: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut signals);
            cvt(libc::posix_spawnattr_setsigmask(attr, &signals))?;
            // Rust ignores SIGPIPE in the manager; the worker gets the default back,
            // as std gives it.
            libc::sigaddset(&mut signals, libc::SIGPIPE);
            cvt(libc::posix_spawnattr_setsigdefault(attr, &signals))?;
            cvt(libc::posix_spawnattr_setpgroup(attr, 0))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            cvt(libc::posix_spawnattr_setflags(attr, flags as libc::c_short))?;
            cvt(libc::posix_spawnp(&mut pid, program.as_ptr(), actions, attr, arg_ptrs.as_ptr(), env_ptrs.as_ptr()))?;
        }
        // The child's ends are its own now.
        drop((out_w, err_w));
        let pid = pid as u32;
        // SAFETY (I/O safety): the AsyncFd owns the pidfd, so the descriptor stays
        // open and the same for as long as it is registered.
        let registered = |fd| unsafe { AsyncFd::register(fd) }.map_err(io::Error::from);
        let exit = match pidfd_open(pid).and_then(registered) {
            Ok(exit) => exit,
            Err(e) => {
                // Nothing to wait on without blocking: end it now and say why.
                // SAFETY: plain syscalls on our own child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                let _ = reap(pid, 0);
                return Err(e);
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
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::{spawn, Envp, STDIN_AT_ONCE};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn manager_env() -> Envp {
        Envp::new(std::env::vars_os()).unwrap()
    }

    async fn cat(input: &[u8]) -> Vec<u8> {
        let mut child = spawn(&argv(&["cat"]), &manager_env(), &[], Some(input)).unwrap();
        // Short input is written by the start itself, longer input by the caller.
        assert_eq!(child.stdin.is_some(), input.len() > STDIN_AT_ONCE);
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_vec();
            tokio::spawn(async move { stdin.write_all(&input).await });
        }
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).await.unwrap();
        assert!(child.wait().await.unwrap().success());
        out
    }

    #[tokio::test]
    async fn stdin_reaches_the_worker_whole_short_or_long() {
        assert_eq!(cat(b"{\"id\":\"t1\"}\n").await, b"{\"id\":\"t1\"}\n");
        let exact = vec![b'x'; STDIN_AT_ONCE];
        assert_eq!(cat(&exact).await, exact);
        let long: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(cat(&long).await, long);
    }

    #[tokio::test]
    async fn a_missing_program_is_the_errno_std_would_give() {
        let err = spawn(&argv(&["/no/such/program"]), &manager_env(), &[], None).err().unwrap();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = spawn(&argv(&["no-such-program-h14q"]), &manager_env(), &[], None).err().unwrap();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[tokio::test]
    async fn a_child_dropped_unwaited_is_reaped_once_it_ends() {
        let child = spawn(&argv(&["sh", "-c", "exec sleep 0.2"]), &manager_env(), &[], None).unwrap();
        let pid = child.pid as libc::pid_t;
        drop(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // A look that leaves a zombie in place (WNOWAIT): only the dropped
            // child's own reaping makes the pid unknown (ECHILD).
            // SAFETY: a zeroed siginfo_t is a valid out-parameter; WNOHANG never blocks.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            // SAFETY: as above.
            if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } < 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "pid {pid} never reaped");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
