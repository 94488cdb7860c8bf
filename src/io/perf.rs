//! Measuring a command for the `perf` gate (DESIGN §9): run it `runs` times, one after
//! another, and report the median wall time and the peak memory.
//!
//! - **Processes.** Each run is its own process group (stdin empty, stdout and stderr
//!   into one pipe of which the last [`TAIL_BYTES`] are kept). When the leader exits,
//!   whatever it left in its group is killed before the leader is reaped (so the group
//!   id cannot have been reused); on timeout the whole group is killed at once; if the
//!   future of [`measure`] is dropped (the task was cancelled), the running group is
//!   killed and no further run starts. No process outlives a measurement, except one
//!   that left the group on purpose (`setsid`).
//! - **Time** is wall time on the monotonic clock, from just before the spawn to the
//!   leader's exit. The timeout is per run, on the real clock, kept by a watchdog
//!   thread: a measurement must not be cut short by a paused or simulated engine clock.
//! - **Memory** is `ru_maxrss` from `wait4` on the leader: the largest resident set of
//!   the leader *and of every descendant that was waited for inside the tree* (the
//!   kernel folds a reaped child's peak into its parent's), which covers shells,
//!   `make`, test runners and interpreters that wait for their children. Not covered:
//!   a descendant still running when the leader exits (killed, never reaped by the
//!   tree), or one that detached. cgroup v2 `memory.peak` would cover those, but it
//!   needs a writable delegated cgroup, which containers and CI rarely grant; `wait4`
//!   works everywhere, without privileges. The peak of a measurement is the largest of
//!   its runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::platform::{self, Signal};

/// Bytes of a failed run's output kept for its error.
pub const TAIL_BYTES: usize = 4096;
/// How long to wait for the output pipe to close once the group is gone (a process
/// that escaped the group could hold it open for ever).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// What to measure.
#[derive(Debug, Clone)]
pub struct PerfRun {
    /// Program and arguments (no shell: pass `["sh", "-c", "…"]` for one).
    pub command: Vec<String>,
    /// Working directory; the manager's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables set on top of the inherited environment (the caller decides what
    /// that base is).
    pub env: Vec<(String, String)>,
    /// When true the process starts from `env` alone, not from the inherited
    /// environment (the `perf` gate passes the manager's without secret-looking
    /// variables).
    pub clear_env: bool,
    /// How many runs, one after another (0 is taken as 1).
    pub runs: u32,
    /// The limit of each run, after which its process group is killed.
    pub timeout: Duration,
}

/// The result of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfSample {
    /// Median wall time of the runs, in milliseconds (the mean of the middle two for
    /// an even number of runs).
    pub median_ms: u64,
    /// Largest peak resident set of any run, in KiB (see the module notes for what it
    /// covers); `None` when the system gave none to read.
    pub peak_rss_kb: Option<u64>,
    /// Runs measured.
    pub runs: u32,
}

/// Why a measurement has no sample. Every process it started is gone.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// The program does not exist (or is not on `PATH`).
    #[error("perf command {program:?} not found (not on PATH, or no such file)")]
    NotFound { program: String },
    /// A run passed the timeout; its process group was killed.
    #[error("perf command {program:?} timed out after {} on run {run} of {runs}; its process group was killed", crate::core::text::human_ms(after.as_millis().try_into().unwrap_or(u64::MAX)))]
    TimedOut { program: String, run: u32, runs: u32, after: Duration },
    /// A run exited with a failure; `tail` is the end of its output (stdout and
    /// stderr interleaved, not redacted or escaped: the caller does both).
    #[error("perf command {program:?} failed on run {run} of {runs} ({}): {tail}", exit_words(*exit_code, *signal))]
    Failed { program: String, run: u32, runs: u32, exit_code: Option<i32>, signal: Option<i32>, tail: String },
    /// Anything else the system refused: an empty command, a missing working
    /// directory, no pipe, no permission, a cancelled measurement.
    #[error("perf command {program:?}: {what}: {source}")]
    Io { program: String, what: String, source: std::io::Error },
}

fn exit_words(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "no exit status".to_string(),
    }
}

/// Runs `spec` and measures it (see the module notes). The runs happen on a blocking
/// thread; dropping the returned future kills the running group.
pub async fn measure(spec: PerfRun) -> Result<PerfSample, PerfError> {
    let shared = Arc::new(Shared::default());
    let _end = EndOnDrop(shared.clone());
    let program = spec.command.first().cloned().unwrap_or_default();
    let inner = shared.clone();
    match tokio::task::spawn_blocking(move || measure_blocking(&spec, &inner)).await {
        Ok(result) => result,
        Err(e) => Err(PerfError::Io {
            program,
            what: "the measuring thread ended abnormally".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// What the async side and the measuring thread share: the running group, so that a
/// dropped future can kill it, and whether it was dropped.
#[derive(Default)]
struct Shared {
    group: Mutex<Option<i32>>,
    cancelled: AtomicBool,
}

struct EndOnDrop(Arc<Shared>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        // Under the lock: a run is either not spawned yet (and will see `cancelled`)
        // or its group is recorded and killed here.
        let group = self.0.group.lock().unwrap_or_else(|p| p.into_inner());
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(pgid) = *group {
            platform::signal_group(pgid as u32, Signal::SIGKILL);
        }
    }
}

fn measure_blocking(spec: &PerfRun, shared: &Shared) -> Result<PerfSample, PerfError> {
    let Some(program) = spec.command.first() else {
        return Err(PerfError::Io {
            program: String::new(),
            what: "no command given".into(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    };
    let runs = spec.runs.max(1);
    let mut times = Vec::with_capacity(runs as usize);
    let mut peak_rss_kb: Option<u64> = None;
    for run in 1..=runs {
        let one = run_once(spec, program, shared).map_err(|end| match end {
            RunEnd::TimedOut => PerfError::TimedOut { program: program.clone(), run, runs, after: spec.timeout },
            RunEnd::Failed { exit_code, signal, tail } => {
                PerfError::Failed { program: program.clone(), run, runs, exit_code, signal, tail }
            }
            RunEnd::NotFound => PerfError::NotFound { program: program.clone() },
            RunEnd::Io(what, source) => PerfError::Io { program: program.clone(), what, source },
        })?;
        times.push(one.wall_ms);
        peak_rss_kb = peak_rss_kb.max(one.max_rss_kb);
    }
    Ok(PerfSample { median_ms: median(&mut times), peak_rss_kb, runs })
}

fn median(times: &mut [u64]) -> u64 {
    times.sort_unstable();
    let n = times.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => times[n / 2],
        _ => (times[n / 2 - 1] + times[n / 2]) / 2,
    }
}

struct OneRun {
    wall_ms: u64,
    max_rss_kb: Option<u64>,
}

enum RunEnd {
    TimedOut,
    Failed { exit_code: Option<i32>, signal: Option<i32>, tail: String },
    NotFound,
    Io(String, std::io::Error),
}

#[cfg(unix)]
fn run_once(spec: &PerfRun, program: &str, shared: &Shared) -> Result<OneRun, RunEnd> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| RunEnd::Io("could not make an output pipe".into(), e))?;
    let writer2 = writer.try_clone().map_err(|e| RunEnd::Io("could not make an output pipe".into(), e))?;
    let mut cmd = std::process::Command::new(program);
    platform::own_group(&mut cmd);
    cmd.args(&spec.command[1..]).stdin(Stdio::null()).stdout(writer).stderr(writer2);
    if spec.clear_env {
        cmd.env_clear();
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }

    let started = Instant::now();
    let pid = {
        let mut group = shared.group.lock().unwrap_or_else(|p| p.into_inner());
        if shared.cancelled.load(Ordering::SeqCst) {
            return Err(RunEnd::Io("measurement cancelled".into(), std::io::ErrorKind::Interrupted.into()));
        }
        let child = cmd.spawn().map_err(|e| spawn_error(e, spec))?;
        // The std `Child` is not waited for through std: `wait4` below reaps it.
        let pid = child.id() as i32;
        *group = Some(pid);
        pid
    };
    drop(cmd); // our copies of the pipe's write end: EOF comes when the group is gone

    let (tail_tx, tail_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tail_tx.send(read_tail(&mut reader));
    });

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (timed_out, timeout) = (timed_out.clone(), spec.timeout);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                timed_out.store(true, Ordering::SeqCst);
                platform::signal_group(pid as u32, Signal::SIGKILL);
            }
        })
    };

    let exited = wait_exit_unreaped(pid);
    let wall = started.elapsed();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    // The leader is a zombie, so its pid (the group id) cannot be reused yet: end
    // whatever it left behind in its group, then reap it.
    platform::signal_group(pid as u32, Signal::SIGKILL);
    let reaped = reap(pid);
    *shared.group.lock().unwrap_or_else(|p| p.into_inner()) = None;
    exited.map_err(|e| RunEnd::Io("could not wait for the command".into(), e))?;
    let (status, max_rss_kb) = reaped.map_err(|e| RunEnd::Io("could not reap the command".into(), e))?;
    let tail = tail_rx.recv_timeout(DRAIN_DEADLINE).unwrap_or_default();

    if timed_out.load(Ordering::SeqCst) {
        return Err(RunEnd::TimedOut);
    }
    if shared.cancelled.load(Ordering::SeqCst) {
        return Err(RunEnd::Io("measurement cancelled".into(), std::io::ErrorKind::Interrupted.into()));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(OneRun { wall_ms: wall.as_millis().try_into().unwrap_or(u64::MAX), max_rss_kb: Some(max_rss_kb) });
    }
    let (exit_code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Err(RunEnd::Failed { exit_code, signal, tail })
}

#[cfg(unix)]
fn spawn_error(e: std::io::Error, spec: &PerfRun) -> RunEnd {
    match e.raw_os_error() {
        Some(libc::ENOENT) => match &spec.cwd {
            Some(cwd) if !cwd.is_dir() => RunEnd::Io(format!("working directory {} does not exist", cwd.display()), e),
            _ => RunEnd::NotFound,
        },
        Some(libc::EACCES) => RunEnd::Io("not executable".into(), e),
        _ => RunEnd::Io("could not start".into(), e),
    }
}

/// The last [`TAIL_BYTES`] of everything read until end of file, as text.
fn read_tail(reader: &mut impl Read) -> String {
    let mut tail: Vec<u8> = Vec::with_capacity(TAIL_BYTES * 2);
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > TAIL_BYTES * 2 {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let from = tail.len().saturating_sub(TAIL_BYTES);
    String::from_utf8_lossy(&tail[from..]).trim().to_string()
}

#[cfg(unix)]
/// Waits until `pid` has exited, leaving it a zombie (`WNOWAIT`).
fn wait_exit_unreaped(pid: i32) -> std::io::Result<()> {
    loop {
        // SAFETY: `info` is a plain C struct that waitid fills; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a plain system call on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(unix)]
/// Reaps `pid`: its wait status and peak resident set in KiB (leader and the
/// descendants it waited for).
fn reap(pid: i32) -> std::io::Result<(libc::c_int, u64)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `usage` is a plain C struct that wait4 fills; zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a plain system call on our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok((status, max_rss_kb(&usage)));
        }
        let e = std::io::Error::last_os_error();
        if rc == -1 && e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Err(e);
    }
}

#[cfg(unix)]
/// `ru_maxrss` in KiB: Linux reports KiB, macOS bytes.
fn max_rss_kb(usage: &libc::rusage) -> u64 {
    let raw = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    if cfg!(target_os = "macos") {
        raw / 1024
    } else {
        raw
    }
}

#[cfg(windows)]
#[path = "perf_windows.rs"]
mod windows_run;
#[cfg(windows)]
use windows_run::run_once;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [30, 10, 20]), 20);
        assert_eq!(median(&mut [40, 10, 20, 30]), 25);
        assert_eq!(median(&mut []), 0);
    }

    #[test]
    fn the_tail_keeps_the_end() {
        let text = format!("{}END", "x".repeat(TAIL_BYTES * 3));
        let tail = read_tail(&mut text.as_bytes());
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with("END"));
    }
}
