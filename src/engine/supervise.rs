//! One attempt from the engine's side: hands it to the runner, and enforces its time
//! limits on the engine's clock. The timeout and the stall watch live here, not in
//! each runner, so every runner (spawned, persistent, later remote) gets the same
//! rules, and tests drive them on paused time with a scripted runner.
//!
//! An attempt whose work already ended with an outcome is never turned into a timeout:
//! the runner's answer wins over a stop that arrived too late to matter. A biased
//! `select!` alone does not ensure that: it prefers an end that is *ready*, but after
//! the manager was paused (SIGSTOP, or too busy to poll) the worker's exit is known to
//! the kernel long before the runner's future has seen it (the SIGCHLD is still to be
//! handled, the output pipes still to be drained), while the deadline's timer is
//! ready at once. So when a limit fires, the supervisor first asks the kernel whether
//! the attempt's process has already exited, and if so lets the real end through.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::core::decide::Outcome;
use crate::core::event::WorkerRef;
use crate::core::text::human_ms;
use crate::core::FailureClass;
use crate::io::clock::Clock;
use crate::io::runner::{
    millis, AttemptEnd, AttemptJob, AttemptSpec, CaptureFailed, RemoteStart, Runner, Stop, UsageReport,
};

/// How often a stalled attempt is looked at again, to see whether it printed.
const STALL_RECHECK_MS: u64 = 1_000;

/// An attempt's time limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Ended as timed out after this long.
    pub timeout: Duration,
    /// Reported stalled after this long without output.
    pub stall_after: Option<Duration>,
    /// Ended as failed after this long without output.
    pub stall_kill_after: Option<Duration>,
}

/// What the supervisor reports while the attempt runs.
pub struct Reports {
    /// The attempt has a process (id), here or on a remote worker (named).
    pub on_spawn: Box<dyn FnOnce(u32, Option<WorkerRef>) + Send>,
    /// The attempt went quiet (`Some(quiet ms)`) or printed again (`None`).
    pub on_stall: Box<dyn Fn(Option<u64>) + Send + Sync>,
    /// One of its output streams could not be saved.
    pub on_capture_failed: CaptureFailed,
    /// It printed a usage line (DESIGN §13).
    pub on_usage: UsageReport,
}

/// Runs one attempt on `runner` to its end, under `limits`. `stop` carries the
/// engine's own stop requests (cancel, interrupt). Gives an outcome, or
/// `Stopped(Cancel|Interrupt)` for an attempt the engine stopped.
pub async fn supervise(
    runner: Arc<dyn Runner>,
    clock: Arc<dyn Clock>,
    spec: AttemptSpec,
    limits: Limits,
    mut stop: watch::Receiver<Option<Stop>>,
    reports: Reports,
) -> AttemptEnd {
    let remote = runner.is_remote(&spec);
    // Silence is measured on tokio's monotonic clock (the one the engine's clock sleeps
    // on), not from wall-clock readings: a suspend or a clock step is not silence.
    // Both readings are on the attempt's awake time: the time the manager spent
    // stopped (Ctrl-Z) since the attempt started is left out.
    let origin = tokio::time::Instant::now();
    let stopped_at_start = clock.stopped_ms();
    let last_output = Arc::new(AtomicU64::new(0));
    let on_output = {
        let (last_output, clock) = (last_output.clone(), clock.clone());
        Arc::new(move || last_output.store(awake_ms(origin, &*clock, stopped_at_start), Ordering::Relaxed))
    };
    // The attempt's process, once it has one (0 before), to ask whether it exited.
    let process = Arc::new(AtomicU32::new(0));
    // One report of where the attempt runs: a local process, or a remote worker's.
    let report_spawn = Arc::new(std::sync::Mutex::new(Some(reports.on_spawn)));
    let on_spawn = {
        let (process, report) = (process.clone(), report_spawn.clone());
        Box::new(move |pid: u32| {
            process.store(pid, Ordering::Relaxed);
            if let Some(report) = report.lock().unwrap_or_else(|p| p.into_inner()).take() {
                report(pid, None);
            }
        })
    };
    let (remote_tx, mut remote_started) = tokio::sync::oneshot::channel::<RemoteStart>();
    let on_remote_start = Box::new(move |start: RemoteStart| {
        let _ = remote_tx.send(start);
    });
    let (ask, asked_rx) = watch::channel(None);
    let job = AttemptJob {
        spec,
        stop: asked_rx,
        on_spawn,
        on_output,
        on_capture_failed: reports.on_capture_failed.clone(),
        on_remote_start,
        on_usage: reports.on_usage.clone(),
    };
    let mut work = runner.run(job);
    let mut asked: Option<(Stop, u64)> = None;
    // A remote attempt waits in the broker's queue first: that time is not the
    // task's, so its limits count from the worker's start (plan §12.5). Stops still
    // go through; the worker enforces its own copy of the limits meanwhile.
    if remote {
        let start = loop {
            tokio::select! {
                biased;
                end = &mut work => return limit_end(end, asked, limits),
                start = &mut remote_started => match start {
                    Ok(start) => break Some(start),
                    // The runner will never report a start: only its end matters now.
                    Err(_) => break None,
                },
                s = wait_stop(&mut stop), if asked.is_none() => {
                    let _ = ask.send(Some(s));
                    asked = Some((s, 0));
                }
            }
        };
        if let Some(start) = start {
            if let Some(report) = report_spawn.lock().unwrap_or_else(|p| p.into_inner()).take() {
                report(start.pid, Some(start.worker));
            }
        }
        // Silence too counts from the start.
        last_output.store(awake_ms(origin, &*clock, stopped_at_start), Ordering::Relaxed);
    }
    let started = clock.now_ms();
    // Time the manager spends stopped (Ctrl-Z) is not the attempt's: the deadline moves
    // out by as much, checked again whenever it fires.
    let first_deadline = started.saturating_add(millis(limits.timeout));
    let mut deadline = first_deadline;
    let stall = StallWatch { clock: clock.as_ref(), origin, stopped_at_start, last_output: &last_output, limits };
    // False once the process is known to have exited: its end is on the way, and no
    // limit applies to an attempt whose worker is done.
    let mut limits_apply = true;
    let end = loop {
        // Biased: an attempt that ended wins over a limit reached in the same instant.
        let request = tokio::select! {
            biased;
            end = &mut work => break end,
            s = wait_stop(&mut stop), if asked.is_none() => (s, 0),
            _ = clock.sleep_until(deadline), if asked.is_none() && limits_apply => (Stop::Timeout, 0),
            quiet = stall.watch(&*reports.on_stall), if asked.is_none() && limits_apply => (Stop::Stalled, quiet),
        };
        if request.0 == Stop::Timeout {
            let moved = first_deadline.saturating_add(clock.stopped_ms().saturating_sub(stopped_at_start));
            if moved > deadline {
                deadline = moved;
                continue;
            }
        }
        // A remote pid is another host's: only a local process can be asked about.
        if !remote && matches!(request.0, Stop::Timeout | Stop::Stalled) && exited(process.load(Ordering::Relaxed)) {
            limits_apply = false;
            continue;
        }
        let _ = ask.send(Some(request.0));
        asked = Some(request);
    };
    limit_end(end, asked, limits)
}

/// The attempt's end, with a stop for a time limit turned into the failure it is.
fn limit_end(end: AttemptEnd, asked: Option<(Stop, u64)>, limits: Limits) -> AttemptEnd {
    match end {
        AttemptEnd::Stopped(Stop::Timeout, remains) => AttemptEnd::Outcome(Outcome::Failure {
            class: FailureClass::Timeout,
            error: format!("timed out after {}; process group ended", human_ms(millis(limits.timeout))),
            exit_code: remains.exit_code,
            signal: remains.signal,
            duration_ms: remains.duration_ms,
            output: remains.output,
        }),
        AttemptEnd::Stopped(Stop::Stalled, remains) => {
            let quiet = asked.map_or(0, |(_, quiet)| quiet);
            AttemptEnd::Outcome(Outcome::Failure {
                class: FailureClass::Timeout,
                error: format!("no output for {} (stall_kill_after); process group ended", human_ms(quiet)),
                exit_code: remains.exit_code,
                signal: remains.signal,
                duration_ms: remains.duration_ms,
                output: remains.output,
            })
        }
        end => end,
    }
}

/// True when `pid` is a child of this manager that has exited and not been reaped yet:
/// its end is certain, only not yet read. `WNOWAIT` leaves the exit status in place
/// for the runner (tokio) that waits for it; `WNOHANG` never blocks. A process that
/// runs, that is not our child (a persistent pool's reply pending, a remote worker)
/// or that was reaped already (its end is being read) gives false, and the limit
/// applies as usual.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn exited(pid: u32) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(nix::unistd::Pid::from_raw(raw)), flags) {
        Ok(WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)) => p.as_raw() == raw,
        _ => false,
    }
}

/// Without `waitid` (macOS): only the biased select protects a finished attempt.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn exited(_pid: u32) -> bool {
    false
}

/// Monotonic ms since `origin` less the time the manager spent stopped since then.
fn awake_ms(origin: tokio::time::Instant, clock: &dyn Clock, stopped_at_start: u64) -> u64 {
    millis(origin.elapsed()).saturating_sub(clock.stopped_ms().saturating_sub(stopped_at_start))
}

/// Waits for the engine's stop request; for ever once the engine dropped its sender.
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

/// An attempt's silence since its last output, in monotonic ms from `origin` (its
/// waits are on the engine's clock).
struct StallWatch<'a> {
    clock: &'a dyn Clock,
    /// When the attempt started, on tokio's monotonic clock.
    origin: tokio::time::Instant,
    /// The manager's stopped time when the attempt started ([`Clock::stopped_ms`]).
    stopped_at_start: u64,
    /// Awake ms after `origin` of the last output.
    last_output: &'a AtomicU64,
    limits: Limits,
}

impl StallWatch<'_> {
    /// The awake silence since the last output (a stop of the manager is not silence).
    fn quiet(&self) -> u64 {
        awake_ms(self.origin, self.clock, self.stopped_at_start)
            .saturating_sub(self.last_output.load(Ordering::Relaxed))
    }

    /// Reports the attempt stalled (`Some(quiet)`) once quiet for `stall_after`, active
    /// again (`None`) when output resumes, and resolves with the silence once quiet for
    /// `stall_kill_after`. Never resolves without a policy. Sleeps until the next
    /// threshold could be crossed; while flagged it looks again once a second.
    async fn watch(&self, on_stall: &(dyn Fn(Option<u64>) + Send + Sync)) -> u64 {
        let after = self.limits.stall_after.map(millis);
        let kill_after = self.limits.stall_kill_after.map(millis);
        if after.is_none() && kill_after.is_none() {
            return std::future::pending().await;
        }
        let mut flagged = false;
        loop {
            let quiet = self.quiet();
            if kill_after.is_some_and(|k| quiet >= k) {
                return quiet;
            }
            match after {
                Some(a) if quiet >= a && !flagged => {
                    flagged = true;
                    on_stall(Some(quiet));
                }
                Some(a) if quiet < a && flagged => {
                    flagged = false;
                    on_stall(None);
                }
                _ => {}
            }
            let until_flag = after.filter(|_| !flagged).map(|a| a.saturating_sub(quiet));
            let until_kill = kill_after.map(|k| k.saturating_sub(quiet));
            let recheck = flagged.then_some(STALL_RECHECK_MS);
            let next = [until_flag, until_kill, recheck].into_iter().flatten().min().unwrap_or(STALL_RECHECK_MS);
            self.clock.sleep_until(self.clock.now_ms().saturating_add(next.max(1))).await;
        }
    }
}
