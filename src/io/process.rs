//! Running one attempt as a real process: its own process group, the task on stdin,
//! bounded capture of stdout and stderr, a timeout that ends the whole group
//! (SIGTERM, a grace period, then SIGKILL, grandchildren included), and spawn errors
//! told apart so that permanent ones are not retried.
//!
//! Capture is bounded twice: a tail kept in memory (enough to read the result and
//! quote errors) and a capped file per stream in the run folder. A worker that prints
//! gigabytes costs the manager at most the tail buffers.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, watch};

use crate::core::decide::Outcome;
use crate::core::event::SMALL_OUTPUT;
use crate::core::protocol::{verdict, Verdict};
use crate::core::{FailureClass, SmallOutput};

/// Bytes of stdout kept in memory per attempt (the result is read from them).
pub const STDOUT_TAIL: usize = 1 << 20;
/// Bytes of stderr kept in memory per attempt (errors quote them).
pub const STDERR_TAIL: usize = 64 << 10;
/// Bytes of each stream written to the attempt's file in the run folder.
pub const FILE_CAP: u64 = 16 << 20;
/// How long to wait for output pipes to close after the process group is gone (a
/// process that escaped the group with setsid could hold them forever).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Everything needed to start one attempt.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    /// Pool name (for messages).
    pub pool: String,
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// Program and arguments, placeholders already filled.
    pub argv: Vec<String>,
    /// Bytes for stdin, or `None` for /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Attempt timeout.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Folder for the capture files.
    pub output_dir: PathBuf,
    /// Where output is also sent as it arrives (the TUI's live panes), if anywhere.
    pub live: Option<broadcast::Sender<OutputChunk>>,
    /// Silence after which the attempt is reported stalled.
    pub stall_after: Option<Duration>,
    /// Silence after which the attempt is ended as failed.
    pub stall_kill_after: Option<Duration>,
}

/// A piece of an attempt's output as it arrives, for live views. Chunks are whatever
/// one read returned, not lines; views split them.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    /// Task id.
    pub task: Arc<str>,
    /// Attempt number.
    pub attempt: u32,
    /// True for stderr.
    pub stderr: bool,
    /// The bytes read.
    pub bytes: Arc<[u8]>,
}

/// Live-output tag for one stream of one attempt.
#[derive(Clone)]
struct LiveTag {
    tx: broadcast::Sender<OutputChunk>,
    task: Arc<str>,
    attempt: u32,
    stderr: bool,
}

impl AttemptEnd {
    /// A failure with no exit code, signal or output: the attempt could not start, or
    /// its process was ended for it (persistent workers).
    pub fn failed(class: FailureClass, error: String, duration: Duration) -> AttemptEnd {
        AttemptEnd::Outcome(Outcome::Failure {
            class,
            error,
            exit_code: None,
            signal: None,
            duration_ms: ms(duration),
            output: SmallOutput::default(),
        })
    }
}

/// Why the engine stops an attempt early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// An operator cancelled the task.
    Cancel,
    /// The manager is shutting down.
    Interrupt,
}

/// How an attempt ended, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// Ran to an outcome (success or failure, spawn failures included).
    Outcome(Outcome),
    /// Stopped by the engine; its process group is gone.
    Stopped(Stop),
}

/// A bounded capture of one stream. Output stays in memory until it passes
/// [`SMALL_OUTPUT`] bytes; only then is the attempt's file created (most attempts of a
/// busy fleet print a line or two, and a file per attempt would cost more than the
/// attempt). The file is capped at [`FILE_CAP`]; the in-memory tail at `tail_cap`.
struct Capture {
    tail: Vec<u8>,
    tail_cap: usize,
    path: PathBuf,
    file: Option<File>,
    spilled: bool,
    total: u64,
    written: u64,
    dropped: u64,
}

impl Capture {
    fn new(path: PathBuf, tail_cap: usize) -> Capture {
        Capture { tail: Vec::new(), tail_cap, path, file: None, spilled: false, total: 0, written: 0, dropped: 0 }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.tail.extend_from_slice(chunk);
        if !self.spilled && self.total > SMALL_OUTPUT as u64 {
            // Everything so far is still in the tail: it starts the file.
            self.spilled = true;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)
                .ok();
            let head = std::mem::take(&mut self.tail);
            self.write_file(&head);
            self.tail = head;
        } else if self.spilled {
            self.write_file(chunk);
        }
        if self.tail.len() > 2 * self.tail_cap {
            // Amortised: trim only when twice over, so each byte moves at most once.
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
    }

    fn write_file(&mut self, bytes: &[u8]) {
        let room = FILE_CAP.saturating_sub(self.written);
        let keep = (bytes.len() as u64).min(room) as usize;
        self.dropped += (bytes.len() - keep) as u64;
        if keep == 0 {
            return;
        }
        if let Some(f) = &mut self.file {
            if f.write_all(&bytes[..keep]).is_err() {
                self.file = None;
            }
        }
        self.written += keep as u64;
    }

    /// Ends the capture: returns the tail, and the whole output if it stayed small.
    fn finish(&mut self) -> (Vec<u8>, Option<String>) {
        if self.dropped > 0 {
            if let Some(f) = &mut self.file {
                let _ =
                    writeln!(f, "\n[pitboss: output capped at {FILE_CAP} bytes; {} more bytes dropped]", self.dropped);
            }
        }
        self.file = None;
        if self.tail.len() > self.tail_cap {
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
        let tail = std::mem::take(&mut self.tail);
        let small = (!self.spilled && !tail.is_empty()).then(|| String::from_utf8_lossy(&tail).into_owned());
        (tail, small)
    }
}

/// When an attempt last printed anything, in ms since it started.
#[derive(Clone)]
struct LastOutput {
    started: Instant,
    at_ms: Arc<AtomicU64>,
}

impl LastOutput {
    fn touch(&self) {
        self.at_ms.store(ms(self.started.elapsed()), Ordering::Relaxed);
    }

    fn quiet(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.at_ms.load(Ordering::Relaxed)))
    }
}

async fn pump(
    mut reader: impl AsyncRead + Unpin,
    capture: Arc<Mutex<Capture>>,
    live: Option<LiveTag>,
    last_output: LastOutput,
) {
    // read_buf fills spare capacity, so the buffer is never zeroed.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                last_output.touch();
                if let Ok(mut c) = capture.lock() {
                    c.push(&buf);
                }
                // Copy only when somebody watches; a flood is cut to its last 4 KiB
                // per read, which is all a pane can show.
                if let Some(tag) = live.as_ref().filter(|t| t.tx.receiver_count() > 0) {
                    let from = buf.len().saturating_sub(4096);
                    let _ = tag.tx.send(OutputChunk {
                        task: tag.task.clone(),
                        attempt: tag.attempt,
                        stderr: tag.stderr,
                        bytes: Arc::from(&buf[from..]),
                    });
                }
            }
        }
    }
}

/// Watches an attempt's silence: reports it stalled (`Some(quiet ms)`) once it has
/// been quiet for `after`, active again (`None`) when output resumes, and resolves
/// (with the silence) when it has been quiet for `kill_after`. Never resolves without
/// a policy. It sleeps until the next threshold could be crossed; while flagged it
/// looks again at most once a second for output resuming.
async fn watch_stall(
    last: &LastOutput,
    after: Option<Duration>,
    kill_after: Option<Duration>,
    on_stall: &impl Fn(Option<u64>),
) -> Duration {
    if after.is_none() && kill_after.is_none() {
        return std::future::pending().await;
    }
    let mut flagged = false;
    loop {
        let quiet = last.quiet();
        if kill_after.is_some_and(|k| quiet >= k) {
            return quiet;
        }
        match after {
            Some(a) if quiet >= a && !flagged => {
                flagged = true;
                on_stall(Some(ms(quiet)));
            }
            Some(a) if quiet < a && flagged => {
                flagged = false;
                on_stall(None);
            }
            _ => {}
        }
        let until_flag = after.filter(|_| !flagged).map(|a| a.saturating_sub(quiet));
        let until_kill = kill_after.map(|k| k.saturating_sub(quiet));
        let recheck = if flagged { Some(Duration::from_secs(1)) } else { None };
        let next = [until_flag, until_kill, recheck].into_iter().flatten().min().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(next.max(Duration::from_millis(10))).await;
    }
}

/// Sends `signal` to a process group, ignoring "no such group".
pub fn signal_group(pgid: u32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), signal);
    }
}

fn classify_spawn(err: &std::io::Error) -> FailureClass {
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM) => FailureClass::SpawnResource,
        _ => FailureClass::SpawnPermanent,
    }
}

fn describe_spawn(err: &std::io::Error, spec: &AttemptSpec) -> String {
    let program = &spec.argv[0];
    let cwd = match &spec.cwd {
        Some(c) => c.display().to_string(),
        None => std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "?".into()),
    };
    let what = match err.raw_os_error() {
        Some(libc::ENOENT) if spec.cwd.as_ref().is_some_and(|c| !c.is_dir()) => {
            format!("working directory {cwd} does not exist")
        }
        Some(libc::ENOENT) => {
            format!("command {program:?} not found (not on PATH, or no such file)")
        }
        Some(libc::EACCES) => format!("command {program:?} is not executable (permission denied)"),
        Some(libc::E2BIG) => format!("argument list too long for {program:?}"),
        Some(libc::ENOEXEC) => {
            format!("{program:?} is not a program this system can run (missing #! line?)")
        }
        Some(libc::EMFILE | libc::ENFILE) => "too many open files".to_string(),
        Some(libc::EAGAIN) => "process limit reached (EAGAIN)".to_string(),
        _ => err.to_string(),
    };
    format!("pool {:?}: {what} [command {program:?}, cwd {cwd}]", spec.pool)
}

async fn wait_stop(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(stop) = *rx.borrow_and_update() {
            return stop;
        }
        if rx.changed().await.is_err() {
            // The engine dropped its handle: nobody can stop us, wait for the exit.
            std::future::pending::<()>().await;
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// Runs one attempt to its end. `on_spawn(pid)` is called once the
/// process exists. The process group is gone when this returns, whatever happened.
pub async fn run_attempt(
    spec: AttemptSpec,
    mut stop: watch::Receiver<Option<Stop>>,
    on_spawn: impl FnOnce(u32),
    on_stall: impl Fn(Option<u64>),
) -> AttemptEnd {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .process_group(0)
        .stdin(if spec.stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    // No pre_exec hook on purpose: it would force fork() instead of posix_spawn (vfork),
    // and copying the manager's page tables on every spawn costs more than the
    // attempt. The guardian process (io/guardian.rs) ends workers of a dead manager.
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return AttemptEnd::failed(classify_spawn(&e), describe_spawn(&e, &spec), started.elapsed()),
    };
    let pid = child.id().unwrap_or(0);
    on_spawn(pid);

    if let (Some(bytes), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A worker that never reads stdin must not block us: write from a task and
        // ignore EPIPE.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let base = format!("{}.{}", spec.task, spec.attempt);
    let out = Arc::new(Mutex::new(Capture::new(spec.output_dir.join(format!("{base}.stdout")), STDOUT_TAIL)));
    let err = Arc::new(Mutex::new(Capture::new(spec.output_dir.join(format!("{base}.stderr")), STDERR_TAIL)));
    let task_name: Arc<str> = Arc::from(spec.task.as_str());
    let live = |stderr: bool| {
        spec.live.clone().map(|tx| LiveTag { tx, task: task_name.clone(), attempt: spec.attempt, stderr })
    };
    let last_output = LastOutput { started, at_ms: Arc::new(AtomicU64::new(0)) };
    let mut readers = Vec::new();
    if let Some(r) = child.stdout.take() {
        readers.push(tokio::spawn(pump(r, out.clone(), live(false), last_output.clone())));
    }
    if let Some(r) = child.stderr.take() {
        readers.push(tokio::spawn(pump(r, err.clone(), live(true), last_output.clone())));
    }

    enum Why {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Stalled(Duration),
        Stopped(Stop),
    }
    let why = tokio::select! {
        status = child.wait() => Why::Exited(status),
        _ = tokio::time::sleep(spec.timeout) => Why::TimedOut,
        quiet = watch_stall(&last_output, spec.stall_after, spec.stall_kill_after, &on_stall) => Why::Stalled(quiet),
        stop = wait_stop(&mut stop) => Why::Stopped(stop),
    };
    let status = match &why {
        Why::Exited(status) => status.as_ref().ok().copied(),
        _ => {
            signal_group(pid, Signal::SIGTERM);
            match tokio::time::timeout(spec.kill_grace, child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => {
                    signal_group(pid, Signal::SIGKILL);
                    child.wait().await.ok()
                }
            }
        }
    };
    // The leader is gone; anything left in its group (background grandchildren) goes too.
    signal_group(pid, Signal::SIGKILL);
    let drain = async {
        for r in readers.iter_mut() {
            let _ = r.await;
        }
    };
    if tokio::time::timeout(DRAIN_DEADLINE, drain).await.is_err() {
        for r in &readers {
            r.abort();
        }
    }
    let (stdout, small_stdout) = out.lock().map(|mut c| c.finish()).unwrap_or_default();
    let (stderr, small_stderr) = err.lock().map(|mut c| c.finish()).unwrap_or_default();
    let mut output = SmallOutput { stdout: small_stdout, stderr: small_stderr };
    let duration_ms = ms(started.elapsed());
    let exit_code = status.and_then(|s| s.code());
    let signal = status.and_then(|s| s.signal());
    match why {
        Why::Stopped(stop) => AttemptEnd::Stopped(stop),
        Why::TimedOut => AttemptEnd::Outcome(Outcome::Failure {
            class: FailureClass::Timeout,
            error: format!("timed out after {}; process group ended", crate::core::text::human_ms(ms(spec.timeout))),
            exit_code,
            signal,
            duration_ms,
            output,
        }),
        Why::Stalled(quiet) => AttemptEnd::Outcome(Outcome::Failure {
            class: FailureClass::Timeout,
            error: format!(
                "no output for {} (stall_kill_after); process group ended",
                crate::core::text::human_ms(ms(quiet))
            ),
            exit_code,
            signal,
            duration_ms,
            output,
        }),
        Why::Exited(Err(e)) => AttemptEnd::Outcome(Outcome::Failure {
            class: FailureClass::Worker,
            error: format!("could not wait for the worker: {e}"),
            exit_code: None,
            signal: None,
            duration_ms,
            output,
        }),
        Why::Exited(Ok(_)) => AttemptEnd::Outcome(match verdict(&stdout, &stderr, exit_code) {
            Verdict::Completed(result) => {
                // Output that is exactly the result is already in the log.
                let same =
                    output.stdout.as_deref().and_then(|o| serde_json::from_str::<serde_json::Value>(o.trim()).ok());
                if same.as_ref() == Some(&result) {
                    output.stdout = None;
                }
                Outcome::Success { result, exit_code, duration_ms, output }
            }
            Verdict::Failed(error) => {
                let error = match signal {
                    Some(sig) if exit_code.is_none() => format!("{error} (signal {sig})"),
                    _ => error,
                };
                Outcome::Failure { class: FailureClass::Worker, error, exit_code, signal, duration_ms, output }
            }
        }),
    }
}
