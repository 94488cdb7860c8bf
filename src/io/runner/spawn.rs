//! Running one attempt as a real process: its own process group, the task on stdin,
//! bounded capture of stdout and stderr, an early stop that ends the whole group
//! (SIGTERM, a grace period, then SIGKILL, grandchildren included, and on Linux the
//! descendants that left the group too: see [`super::orphans`]), and spawn errors
//! told apart so that permanent ones are not retried. Time limits are the engine's:
//! it asks for the stop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, watch};

use super::capture::Capture;
use super::env::{PoolEnv, RunEnv};
use super::orphans;
use super::process::Process;
use super::{millis as ms, AttemptEnd, AttemptSpec, CaptureFailed, OutputChunk, Remains, Stop, UsageReport};
use crate::core::decide::Outcome;
use crate::core::event::OutputStream;
use crate::core::protocol::{verdict, Verdict};
use crate::core::{FailureClass, SmallOutput};
pub use crate::io::platform::signal_group;
use crate::io::platform::{self, Signal};

/// Bytes of stdout kept in memory per attempt (the result is read from them).
pub const STDOUT_TAIL: usize = 1 << 20;
/// Bytes of stderr kept in memory per attempt (errors quote them).
pub const STDERR_TAIL: usize = 64 << 10;
/// How long to wait for output pipes to close after the attempt's processes are gone
/// (a descendant that escaped both the group and the tree, e.g. one that cleared its
/// environment after its parent died, could hold them for ever).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Bytes of an output stream's first read (see `pump`).
const FIRST_READ: usize = 512;
/// Bytes of each read once a stream has filled its first read.
const READ_BUF: usize = 64 * 1024;

/// Live-output tag for one stream of one attempt.
#[derive(Clone)]
struct LiveTag {
    tx: broadcast::Sender<OutputChunk>,
    task: Arc<str>,
    attempt: u32,
    stderr: bool,
}

/// What an attempt reports while it runs, besides its process id.
#[derive(Clone)]
pub struct Reports {
    /// It printed something.
    pub on_output: Arc<dyn Fn() + Send + Sync>,
    /// One of its streams could not be saved (reported once per stream).
    pub on_capture_failed: CaptureFailed,
    /// It printed a usage line (stdout), or one that was refused.
    pub on_usage: UsageReport,
}

/// Reads one output stream to its end: kept in `capture`, shown live, reported.
/// Awaited inside the attempt's own future, not spawned: a task per stream cost two
/// spawns, two joins and their wake-ups per attempt (benchmark P1), and the attempt's
/// future is polled whenever either pipe is ready anyway.
async fn pump(
    reader: Option<impl AsyncRead + Unpin>,
    capture: Arc<Mutex<Capture>>,
    live: Option<LiveTag>,
    stream: OutputStream,
    reports: Reports,
) {
    let Some(mut reader) = reader else { return };
    // read_buf fills spare capacity, so the buffer is never zeroed. It starts small:
    // most attempts print a line or nothing, and a 64 KiB buffer per stream cost each
    // attempt two large mallocs (each sweeping the allocator's fast bins, benchmark
    // P1). A read that fills it means more is coming: then it grows, once.
    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_READ);
    loop {
        if buf.len() == buf.capacity() && buf.capacity() < READ_BUF {
            buf.reserve_exact(READ_BUF - buf.len());
        }
        buf.clear();
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                // A last usage line without a newline counts too.
                let usage = capture.lock().map(|mut c| c.take_usage(true)).unwrap_or_default();
                for line in usage {
                    (reports.on_usage)(line);
                }
                break;
            }
            Ok(_) => {
                (reports.on_output)();
                // Secrets are replaced before the bytes are kept or shown.
                let (shown, failed, usage) = match capture.lock() {
                    Ok(mut c) => {
                        let shown = c.push_redacted(&buf);
                        (shown, c.take_failure(), c.take_usage(false))
                    }
                    Err(_) => continue,
                };
                if let Some(error) = failed {
                    (reports.on_capture_failed)(stream, error);
                }
                for line in usage {
                    (reports.on_usage)(line);
                }
                // Copy only when somebody watches; a flood is cut to its last 4 KiB
                // per read, which is all a pane can show.
                if let Some(tag) = live.as_ref().filter(|t| t.tx.receiver_count() > 0) {
                    let from = shown.len().saturating_sub(4096);
                    let _ = tag.tx.send(OutputChunk {
                        task: tag.task.clone(),
                        attempt: tag.attempt,
                        stderr: tag.stderr,
                        bytes: Arc::from(&shown[from..]),
                    });
                }
            }
        }
    }
}

/// `report`, after writing a refused usage line's reason into `stderr`'s capture.
fn note_refused_usage(report: UsageReport, stderr: Arc<Mutex<Capture>>) -> UsageReport {
    Arc::new(move |line| {
        if let Err(why) = &line {
            if let Ok(mut c) = stderr.lock() {
                c.push(format!("pitboss: ignored a usage line: {why}\n").as_bytes());
            }
        }
        report(line)
    })
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
        Some(libc::ENOENT) => match missing_interpreter(program, spec.cwd.as_deref(), &spec.env) {
            Some(what) => what,
            None => format!("command {program:?} not found (not on PATH, or no such file)"),
        },
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

/// When exec said ENOENT for a program that does exist, the missing file is one it
/// needs to run: usually the interpreter its `#!` line names, which this names (and
/// spots a Windows line ending, whose CR becomes part of the interpreter's name).
/// `None` when the program itself is missing.
pub fn missing_interpreter(program: &str, cwd: Option<&Path>, env: &[(String, String)]) -> Option<String> {
    let file = locate(program, cwd, env)?;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&file).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let line = head[..n].split(|&b| b == b'\n').next().and_then(|first| first.strip_prefix(b"#!"));
    let line = line.map(String::from_utf8_lossy).unwrap_or_default();
    // The interpreter is the first word; a trailing CR stays in it, as the kernel reads it.
    let interpreter = line.trim_start_matches([' ', '\t']).split([' ', '\t']).next().unwrap_or_default();
    if interpreter.is_empty() || Path::new(interpreter).exists() {
        return Some(format!(
            "{program:?} exists, but a file it needs to run is missing (a binary's dynamic loader, or its \
             interpreter's own interpreter)"
        ));
    }
    let mut what = format!(
        "{program:?} exists, but the interpreter {:?} named on its first line (#!) does not",
        interpreter.trim_end_matches('\r')
    );
    if interpreter.ends_with('\r') {
        what.push_str(" (the line ends with a Windows CR: convert the file to Unix line endings)");
    }
    Some(what)
}

/// The file exec would run for `program`: itself when it names a path, else the
/// first match on PATH (the attempt's own PATH when it sets one).
fn locate(program: &str, cwd: Option<&Path>, env: &[(String, String)]) -> Option<PathBuf> {
    if program.contains('/') {
        let path = Path::new(program);
        let path = match cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        return path.is_file().then_some(path);
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))?;
    std::env::split_paths(&path_var).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Waits for the engine's stop request. If the engine drops its sender nobody can stop
/// the attempt any more, so this waits for ever (the exit ends the select instead).
async fn wait_stop(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(stop) = *rx.borrow_and_update() {
            return stop;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Starts the process of an attempt: its own group, piped output, the task on stdin.
/// Leading its own group in the manager's session is also how the orphan reaper
/// tells it from an adopted orphan (`orphans`): keep it so.
fn start(spec: &AttemptSpec, base: &PoolEnv) -> std::io::Result<Process> {
    // Straight to posix_spawnp with the pool's environment built once, when it would
    // act as std does (see `process`).
    #[cfg(target_os = "linux")]
    if spec.cwd.is_none() && !spec.env.iter().any(|(k, _)| k == "PATH") && super::process::linux::available() {
        if let Some(envp) = base.envp() {
            return super::process::linux::spawn(&spec.argv, envp, &spec.env, spec.stdin.as_deref())
                .map(Process::Direct);
        }
    }
    // Its own group on Unix; on Windows `.cmd`/`.bat` resolved and run by cmd.exe.
    let mut cmd = platform::attempt_command(&spec.argv, spec.cwd.as_deref(), &spec.env)?;
    cmd.stdin(if spec.stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false);
    base.apply(&mut cmd);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    // No pre_exec hook on purpose: it would force fork() instead of posix_spawn (vfork),
    // and copying the manager's page tables on every spawn costs more than the
    // attempt. The guardian process (io/guardian.rs) ends workers of a dead manager.
    // Windows: started suspended and put in a kill-on-close Job Object before it runs
    // (a plain spawn on Unix). Without a job the attempt still runs, its tree less
    // surely ended.
    let (child, contained) = platform::spawn_contained(&mut cmd)?;
    if let Err(e) = contained {
        tracing::warn!("attempt {} of {}: no Job Object for its processes: {e}", spec.attempt, spec.task);
    }
    Ok(Process::Tokio(child))
}

/// Ends a stopped attempt politely (SIGTERM, then SIGKILL after the grace): its
/// group, and the descendants that left the group (found while the leader still
/// holds them as its tree).
async fn end_group(
    child: &mut Process,
    pid: u32,
    env: &[(String, String)],
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    let escaped = orphans::attempt_tree(pid, &orphans::attempt_marks(env));
    signal_group(pid, Signal::SIGTERM);
    orphans::signal_each(&escaped, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            orphans::signal_each(&escaped, Signal::SIGKILL);
            child.wait().await.ok()
        }
    }
}

/// Runs one attempt to its end. `on_spawn(pid)` is called once the process exists;
/// `reports` whenever it prints or a stream cannot be saved. The process group is gone when this returns,
/// whatever happened.
pub async fn run_attempt(
    spec: AttemptSpec,
    stop: watch::Receiver<Option<Stop>>,
    on_spawn: impl FnOnce(u32),
    reports: Reports,
) -> AttemptEnd {
    run_attempt_in(spec, Arc::default(), stop, on_spawn, reports).await
}

/// [`run_attempt`] with the run's environment rule and redaction (DESIGN §14): the
/// worker starts from its pool's environment, and its output is redacted as it is read.
pub async fn run_attempt_in(
    mut spec: AttemptSpec,
    env: Arc<RunEnv>,
    mut stop: watch::Receiver<Option<Stop>>,
    on_spawn: impl FnOnce(u32),
    reports: Reports,
) -> AttemptEnd {
    let started = Instant::now();
    let mut child = match start(&spec, &env.pool(&spec.pool)) {
        Ok(child) => child,
        Err(e) => return AttemptEnd::failed(classify_spawn(&e), describe_spawn(&e, &spec), started.elapsed()),
    };
    let pid = child.id();
    // Our own child until its leftovers are ended: the look for adopted orphans at
    // other attempts' ends need not check it.
    let _own = orphans::OwnLeader::new(pid);
    on_spawn(pid);

    // (A short stdin is written already, by a direct start: then there is no pipe.)
    if let (Some(bytes), Some(mut stdin)) = (spec.stdin.take(), child.take_stdin()) {
        // A worker that never reads stdin must not block us: write from a task and
        // ignore EPIPE.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let base = spec
        .file_base
        .clone()
        .unwrap_or_else(|| format!("{}.{}", crate::core::spawn::file_stem(&spec.task), spec.attempt));
    let capture = |stream: &str, cap| {
        let path = spec.output_dir.join(format!("{base}.{stream}"));
        let capture = Capture::new(path, cap).redacting(env.redactor());
        // A planner's spawn lines are read from stdout as it arrives (DESIGN §4).
        let capture = if stream == "stdout" { capture.reading_spawn_lines() } else { capture };
        // A preset's agent output is read as it arrives, and control lines told to
        // the engine at once (DESIGN §13).
        let capture = match (stream, spec.agent) {
            ("stdout", Some(preset)) => capture.reading_agent(preset),
            _ => capture,
        };
        let capture = match (stream, &spec.on_control) {
            ("stdout", Some(sink)) => capture.telling(sink.clone()),
            _ => capture,
        };
        Arc::new(Mutex::new(capture))
    };
    let (out, err) = (capture("stdout", STDOUT_TAIL), capture("stderr", STDERR_TAIL));
    // A refused usage line is said in the attempt's stderr, where the operator reads
    // its output (stdout would be taken for the result).
    let reports = Reports { on_usage: note_refused_usage(reports.on_usage.clone(), err.clone()), ..reports };
    let task_name: Arc<str> = Arc::from(spec.task.as_str());
    let live = |stderr: bool| {
        spec.live.clone().map(|tx| LiveTag { tx, task: task_name.clone(), attempt: spec.attempt, stderr })
    };
    // Both streams are read while the process runs, while a stop ends it (output
    // printed in the grace still counts), and after, until the pipes close.
    let (stdout_pipe, stderr_pipe) = (child.take_stdout(), child.take_stderr());
    let pumps = async {
        tokio::join!(
            pump(stdout_pipe, out.clone(), live(false), OutputStream::Stdout, reports.clone()),
            pump(stderr_pipe, err.clone(), live(true), OutputStream::Stderr, reports.clone()),
        )
    };
    tokio::pin!(pumps);
    let mut drained = false;

    let (status, stopped) = {
        let ended = async {
            tokio::select! {
                status = child.wait() => (status.map(Some), None),
                stop = wait_stop(&mut stop) => (Ok(end_group(&mut child, pid, &spec.env, spec.kill_grace).await), Some(stop)),
            }
        };
        tokio::pin!(ended);
        loop {
            tokio::select! {
                ended = &mut ended => break ended,
                _ = &mut pumps, if !drained => drained = true,
            }
        }
    };
    // The leader is gone; anything left of the attempt (background grandchildren, in
    // its group or escaped from it) goes too, so no pipe is held open past it.
    orphans::end_leftovers(pid, &spec.env);
    platform::release(pid);
    // Past the deadline the reading is dropped, as a task's abort did: what was kept
    // stays, the last usage line of an unfinished stream is not read.
    if !drained {
        let _ = tokio::time::timeout(DRAIN_DEADLINE, &mut pumps).await;
    }
    let exit_code = status.as_ref().ok().and_then(|s| s.and_then(|s| s.code()));
    if stopped.is_none() {
        if let Ok(mut c) = out.lock() {
            c.end_agent(exit_code);
        }
    }
    let (stdout, small_stdout) = out.lock().map(|mut c| c.finish()).unwrap_or_default();
    let spawn = out.lock().ok().and_then(|mut c| c.take_spawn());
    let (stderr, small_stderr) = err.lock().map(|mut c| c.finish()).unwrap_or_default();
    let output = SmallOutput { stdout: small_stdout, stderr: small_stderr };
    let duration_ms = ms(started.elapsed());
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let error = format!("could not wait for the worker: {e}");
            let (exit_code, signal) = (None, None);
            return AttemptEnd::Outcome(Outcome::Failure {
                class: FailureClass::Worker,
                error,
                exit_code,
                signal,
                duration_ms,
                output,
            });
        }
    };
    let exit_code = status.and_then(|s| s.code());
    let signal = status.and_then(|s| platform::exit_signal(&s));
    if let Some(stop) = stopped {
        return AttemptEnd::Stopped(stop, Remains { exit_code, signal, duration_ms, output });
    }
    match (judge(&stdout, &stderr, exit_code, signal, duration_ms, output), spawn) {
        // A failed attempt's subtasks are never taken.
        (outcome @ Outcome::Success { .. }, Some(spawn)) => AttemptEnd::Planned(outcome, spawn),
        (outcome, _) => AttemptEnd::Outcome(outcome),
    }
}

/// The outcome of a process that exited by itself, from its output and exit status.
fn judge(
    stdout: &[u8],
    stderr: &[u8],
    exit_code: Option<i32>,
    signal: Option<i32>,
    duration_ms: u64,
    mut output: SmallOutput,
) -> Outcome {
    match verdict(stdout, stderr, exit_code) {
        Verdict::Completed(result) => {
            // Output that is exactly the result is already in the log.
            let same = output.stdout.as_deref().and_then(|o| serde_json::from_str::<serde_json::Value>(o.trim()).ok());
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn sh(script: &str, dir: &Path, grace: Duration) -> AttemptSpec {
        AttemptSpec {
            pool: "p".into(),
            task: "t".into(),
            attempt: 1,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            stdin: None,
            env: vec![],
            cwd: None,
            timeout: Duration::from_secs(60),
            kill_grace: grace,
            output_dir: dir.to_path_buf(),
            live: None,
            persistent: None,
            file_base: None,
            reattach: false,
            agent: None,
            on_control: None,
        }
    }

    fn reports(on_output: Arc<dyn Fn() + Send + Sync>) -> Reports {
        Reports { on_output, on_capture_failed: Arc::new(|_, _| {}), on_usage: Arc::new(|_| {}) }
    }

    /// `run_attempt`, failing the test past a deadline instead of hanging (a broken
    /// reader leaves the worker blocked on its pipe), its process group ended by pid.
    async fn run_within_deadline(
        spec: AttemptSpec,
        stop: watch::Receiver<Option<Stop>>,
        reports: Reports,
    ) -> AttemptEnd {
        let pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = pid.clone();
        let on_spawn = move |p| seen.store(p, std::sync::atomic::Ordering::SeqCst);
        let run = run_attempt(spec, stop, on_spawn, reports);
        match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(end) => end,
            Err(_) => {
                let pid = pid.load(std::sync::atomic::Ordering::SeqCst);
                if pid > 0 {
                    signal_group(pid, Signal::SIGKILL);
                }
                panic!("the attempt (pid {pid}) did not end within 60 s");
            }
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn output_printed_in_the_grace_after_a_stop_is_read_as_it_comes() {
        // More than a pipe holds, printed on SIGTERM: unless the streams are read while
        // the stop waits out the grace, the worker blocks and is killed at its end.
        let dir = tempfile::tempdir().unwrap();
        let script = "trap 'head -c 300000 /dev/zero | tr \"\\0\" x; echo; echo bye; exit 3' TERM; \
                      echo ready; while :; do sleep 0.05; done";
        let (stop_tx, stop) = watch::channel(None);
        // The first output says the trap is set: the stop is asked for then.
        let on_output = Arc::new(move || {
            stop_tx.send_if_modified(|s| s.replace(Stop::Cancel).is_none());
        });
        let end = run_within_deadline(sh(script, dir.path(), Duration::from_secs(20)), stop, reports(on_output)).await;
        let AttemptEnd::Stopped(Stop::Cancel, remains) = end else { panic!("{end:?}") };
        assert_eq!((remains.exit_code, remains.signal), (Some(3), None));
        let kept = std::fs::read_to_string(dir.path().join("t.1.stdout")).unwrap();
        assert!(kept.starts_with("ready\n") && kept.ends_with("x\nbye\n"), "{} bytes", kept.len());
        assert_eq!(kept.len(), "ready\n".len() + 300_000 + "\nbye\n".len());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_stream_past_its_first_read_is_read_in_big_reads_and_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (live, mut chunks) = broadcast::channel(4096);
        let spec =
            AttemptSpec { live: Some(live), ..sh("head -c 400000 /dev/zero | tr '\\0' y", dir.path(), Duration::ZERO) };
        let (_stop_tx, stop) = watch::channel(None);
        let end = run_within_deadline(spec, stop, reports(Arc::new(|| {}))).await;
        assert!(matches!(end, AttemptEnd::Outcome(_)), "{end:?}");
        assert_eq!(std::fs::read(dir.path().join("t.1.stdout")).unwrap(), vec![b'y'; 400_000]);
        // A read bigger than the first read's buffer shows as a chunk past its size.
        let mut biggest = 0;
        while let Ok(chunk) = chunks.try_recv() {
            biggest = biggest.max(chunk.bytes.len());
        }
        assert!(biggest > FIRST_READ, "every read was at most {biggest} bytes");
    }

    #[test]
    fn a_missing_interpreter_is_named_and_a_windows_line_end_spotted() {
        let dir = tempfile::tempdir().unwrap();
        let bad = script(dir.path(), "bad", "#! /no/such/interp -e\nx\n");
        let said = missing_interpreter(&bad, None, &[]).unwrap();
        assert!(said.contains("interpreter \"/no/such/interp\" named on its first line"), "{said}");
        let crlf = script(dir.path(), "crlf", "#!/bin/sh\r\necho\r\n");
        let said = missing_interpreter(&crlf, None, &[]).unwrap();
        assert!(said.contains("\"/bin/sh\"") && said.contains("Windows CR"), "{said}");
        // Found through the attempt's own PATH, by a bare name.
        let path = vec![("PATH".to_string(), dir.path().display().to_string())];
        assert!(missing_interpreter("bad", None, &path).is_some());
    }

    #[test]
    fn no_interpreter_blamed_when_the_program_is_missing_or_its_interpreter_exists() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(missing_interpreter(&dir.path().join("nope").display().to_string(), None, &[]), None);
        let fine = script(dir.path(), "fine", "#!/bin/sh\necho\n");
        assert!(missing_interpreter(&fine, None, &[]).is_some_and(|m| !m.contains("/bin/sh")));
        // A program that exists is never "not found": what it needs is.
        let plain = script(dir.path(), "plain", "echo\n");
        assert!(missing_interpreter(&plain, None, &[]).is_some_and(|m| m.contains("dynamic loader")));
    }
}
