//! The process of a spawned attempt, and how it is started.
//!
//! On Linux, when nothing asks otherwise, the attempt is started directly
//! ([`linux::spawn`]): a `clone` with `CLONE_VM | CLONE_VFORK` as `posix_spawnp`
//! makes it, on a stack kept for the thread and with the pidfd from the clone
//! ([`clone_start`]), from an environment built once per pool ([`Envp`]). std's
//! `Command` rebuilds the child's whole environment on every spawn as soon as one
//! variable is set (it reads the manager's environment into a sorted map, applies
//! the changes, then makes one C string per variable), and every attempt sets its
//! marks (`PITBOSS_*`): that was over a quarter of the manager's instructions in
//! benchmark P1, glibc's per-call stack and setup another tenth. The direct start
//! does what std's `posix_spawn` path does: the program looked up on the manager's
//! PATH, its own process group, an empty signal mask, SIGPIPE back to its default,
//! piped stdout and stderr, stdin piped or /dev/null.
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
mod clone_start;
#[cfg(target_os = "linux")]
pub mod linux;

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
    async fn a_file_that_cannot_run_is_the_errno_std_would_give() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path.display().to_string()
        };
        let cases = [
            (file("not-executable", "#!/bin/sh\necho hi\n", 0o644), libc::EACCES),
            (file("no-interpreter-line", "echo hi\n", 0o755), libc::ENOEXEC),
            (dir.path().display().to_string(), libc::EACCES),
        ];
        for (path, errno) in cases {
            let direct = spawn(&argv(&[&path]), &manager_env(), &[], None).err().unwrap();
            let std = std::process::Command::new(&path).spawn().err().unwrap();
            assert_eq!(direct.raw_os_error(), std.raw_os_error(), "{path}");
            assert_eq!(direct.raw_os_error(), Some(errno), "{path}");
        }
    }

    /// The signals blocked on the calling thread, as a list.
    fn blocked_here() -> Vec<i32> {
        // SAFETY: a zeroed sigset_t is a valid out-parameter; reading the mask changes nothing.
        let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut now) };
        (1..65).filter(|&s| unsafe { libc::sigismember(&now, s) } == 1).collect()
    }

    #[test]
    fn the_caller_keeps_its_signal_mask_and_the_worker_starts_with_none_blocked() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // SAFETY: blocks one more signal on this test's own thread only.
        unsafe {
            let mut usr2: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut usr2);
            libc::sigaddset(&mut usr2, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &usr2, std::ptr::null_mut());
        }
        let before = blocked_here();
        assert!(before.contains(&libc::SIGUSR2));
        let printed = runtime.block_on(async {
            let mut child = spawn(&argv(&["grep", "^SigBlk", "/proc/self/status"]), &manager_env(), &[], None).unwrap();
            let mut out = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut out).await.unwrap();
            assert!(child.wait().await.unwrap().success());
            String::from_utf8(out).unwrap()
        });
        assert_eq!(blocked_here(), before, "the start changed the caller's mask");
        assert_eq!(printed, "SigBlk:\t0000000000000000\n");
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
