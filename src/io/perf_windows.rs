//! One run of a `perf` measurement on Windows (the module notes of [`super`] for the
//! rest). What differs from Unix:
//!
//! - **The tree** is a Job Object: the run starts suspended and is put in its own job
//!   before it runs (`platform::spawn_contained_std`); a timeout, a cancel, and the end
//!   of the leader terminate the job. A run that cannot have a job is refused (its
//!   tree could not be ended, nor its memory read).
//! - **Memory** has no `wait4`. The peak is the largest of: the job's
//!   `PeakProcessMemoryUsed` (committed memory, which Windows keeps for every process
//!   ever in the job), the peak working set of each process in the job, sampled every
//!   [`SAMPLE_EVERY`] while the run lasts, and the leader's own peak working set read
//!   through its handle after it exits. On Windows the first covers every process; under
//!   wine (8), which keeps no job peaks, only the samples count, so a peak held for
//!   less than [`SAMPLE_EVERY`] just before a process exits can be missed. When none of
//!   them gives a number the sample has no peak, and a `max_rss_mb` fails saying so.
//! - **The program** is found as an attempt's is (`PATH`, `PATHEXT`, a `.cmd` through
//!   `cmd.exe`: `platform::attempt_command_std`).

use super::*;

/// How often the processes of a run have their memory read (Windows module notes).
pub(super) const SAMPLE_EVERY: Duration = Duration::from_millis(10);

pub(super) fn run_once(spec: &PerfRun, _program: &str, shared: &Shared) -> Result<OneRun, RunEnd> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| RunEnd::Io("could not make an output pipe".into(), e))?;
    let writer2 = writer.try_clone().map_err(|e| RunEnd::Io("could not make an output pipe".into(), e))?;
    let mut cmd = platform::attempt_command_std(&spec.command, spec.cwd.as_deref(), &spec.env)
        .map_err(|e| RunEnd::Io("could not start".into(), e))?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    if spec.clear_env {
        cmd.env_clear();
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }

    let started = Instant::now();
    let mut child = {
        let mut group = shared.group.lock().unwrap_or_else(|p| p.into_inner());
        if shared.cancelled.load(Ordering::SeqCst) {
            return Err(RunEnd::Io("measurement cancelled".into(), std::io::ErrorKind::Interrupted.into()));
        }
        let (mut child, contained) = platform::spawn_contained_std(&mut cmd).map_err(|e| spawn_error(e, spec))?;
        if let Err(e) = contained {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunEnd::Io("could not put the command in a Job Object".into(), e));
        }
        *group = Some(child.id() as i32);
        child
    };
    drop(cmd); // our copies of the pipe's write end: EOF comes when the tree is gone
    let pid = child.id();

    let (tail_tx, tail_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tail_tx.send(read_tail(&mut reader));
    });

    // One thread samples the tree's memory and keeps the timeout (the real clock).
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (timed_out, timeout) = (timed_out.clone(), spec.timeout);
        std::thread::spawn(move || {
            let mut peak = None;
            loop {
                peak = peak.max(platform::tree_peak_kib(pid));
                match done_rx.recv_timeout(SAMPLE_EVERY) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if started.elapsed() >= timeout && !timed_out.swap(true, Ordering::SeqCst) {
                            platform::signal_group(pid, Signal::SIGKILL);
                        }
                    }
                    _ => return peak,
                }
            }
        })
    };

    let waited = child.wait();
    let wall = started.elapsed();
    let _ = done_tx.send(());
    let sampled = sampler.join().unwrap_or(None);
    // Read while the job is still ours: its peak, and the leader's through its handle.
    let peak = sampled.max(platform::tree_peak_kib(pid)).max(platform::peak_kib_of(&child));
    {
        // Under the lock, so a dropped future cannot signal the pid once it is released.
        let mut group = shared.group.lock().unwrap_or_else(|p| p.into_inner());
        *group = None;
        // Whatever the leader left in its job ends with it.
        platform::signal_group(pid, Signal::SIGKILL);
        platform::release(pid);
    }
    let status = waited.map_err(|e| RunEnd::Io("could not wait for the command".into(), e))?;
    let tail = tail_rx.recv_timeout(DRAIN_DEADLINE).unwrap_or_default();

    if timed_out.load(Ordering::SeqCst) {
        return Err(RunEnd::TimedOut);
    }
    if shared.cancelled.load(Ordering::SeqCst) {
        return Err(RunEnd::Io("measurement cancelled".into(), std::io::ErrorKind::Interrupted.into()));
    }
    if status.success() {
        return Ok(OneRun { wall_ms: wall.as_millis().try_into().unwrap_or(u64::MAX), max_rss_kb: peak });
    }
    Err(RunEnd::Failed { exit_code: status.code(), signal: None, tail })
}

fn spawn_error(e: std::io::Error, spec: &PerfRun) -> RunEnd {
    match e.kind() {
        std::io::ErrorKind::NotFound => match &spec.cwd {
            Some(cwd) if !cwd.is_dir() => RunEnd::Io(format!("working directory {} does not exist", cwd.display()), e),
            _ => RunEnd::NotFound,
        },
        std::io::ErrorKind::PermissionDenied => RunEnd::Io("not executable".into(), e),
        _ => RunEnd::Io("could not start".into(), e),
    }
}
