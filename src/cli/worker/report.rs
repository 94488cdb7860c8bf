//! One job on a worker: checks it may run here, builds the attempt like a local
//! pool's (placeholders, the task JSON on stdin, marks in the environment), runs it
//! under the engine's supervision rules, streams its output, and delivers its end to
//! the manager — held and retried while the broker is away — before acking the job.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, oneshot, watch, OwnedSemaphorePermit};

use super::controls::Collected;
use super::slots::{Shared, Slot};
use crate::core::decide::Outcome;
use crate::core::protocol::{fill, TaskView};
use crate::core::spawn::file_stem;
use crate::core::{FailureClass, SmallOutput};
use crate::engine::supervise::{supervise, Limits, Reports};
use crate::io::broker::wire::{
    HandbackWhy, OutcomeStatus, OutputStream, RemoteOutcome, SpawnLines, StoppedRemains, MAX_OUTPUT_TEXT, MAX_TAIL,
};
use crate::io::broker::{AttemptMsg, BrokerErrorKind, Job, WorkerMsg};
use crate::io::clock::{wall_ms, SystemClock};
use crate::io::guardian::{MANAGER_PID_ENV, RUN_ID_ENV};
use crate::io::runner::{AttemptEnd, AttemptSpec, OutputChunk, Stop};

/// How often output is sent while an attempt prints.
const OUTPUT_EVERY: Duration = Duration::from_millis(200);
/// First and longest wait between tries to deliver a held message.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs one job to its delivered end. False when its end could not be delivered
/// before the worker gave up (at exit after a drain).
/// `room` is the job's place in the worker's window (slots + read-ahead), given back
/// when its process ended or it was answered without running.
pub(crate) async fn run_job(shared: Arc<Shared>, job: Job, room: Option<OwnedSemaphorePermit>) -> bool {
    let msg = match job.msg {
        Ok(msg) => msg,
        Err(e) => {
            // No key to answer with: ack it so it does not come back, and say so.
            eprintln!("pitboss worker: unreadable job {} of run {} acked: {e}", job.entry.id, job.entry.run);
            return deliver_ack(&shared, &job.entry).await;
        }
    };
    let handback = |reason| WorkerMsg::Handback {
        key: msg.key.clone(),
        dispatch: msg.dispatch.clone(),
        worker: shared.setup.worker.clone(),
        reason,
    };
    let lacks: Vec<&String> =
        msg.capabilities.iter().filter(|c| !shared.setup.args.capabilities.contains(*c)).collect();
    let early = if !lacks.is_empty() {
        eprintln!("pitboss worker: run {} pool {} needs capabilities {lacks:?}; handed back", msg.run, msg.pool);
        Some(HandbackWhy::LacksCapability)
    } else if wall_ms() > msg.deadline_ms.saturating_add(msg.lease_ms) {
        // A copy that waited past its deadline through an outage: the manager has
        // given up on it or republished it.
        Some(HandbackWhy::Expired)
    } else if shared.draining() {
        Some(HandbackWhy::Drain)
    } else {
        None
    };
    if let Some(reason) = early {
        return deliver(&shared, &msg.run, handback(reason)).await && deliver_ack(&shared, &job.entry).await;
    }
    // Held from here: the heartbeat keeps its delivery and brings its stops.
    let slot = shared.add(&job.entry, &msg);
    let end = match wait_for_slot(&shared, &slot).await {
        Some(permit) => {
            let end = run_attempt(&shared, &msg, &slot).await;
            // The slot is free once the process ended: a job read ahead starts, and
            // the next is read, while this end travels.
            drop(permit);
            drop(room);
            end
        }
        None => never_started(&shared, &msg, &slot),
    };
    let delivered = deliver(&shared, &msg.run, end).await && deliver_ack(&shared, &job.entry).await;
    shared.remove(&slot);
    delivered
}

/// Waits for a free slot (a job read ahead waits while every slot is busy). `None`
/// when the job must not start: the manager asked to stop it, the worker stops it
/// (exit), or the drain began: a job that never started goes back at once rather
/// than after the running ones.
async fn wait_for_slot(shared: &Shared, slot: &Slot) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let mut stop = slot.stop_rx.clone();
    let mut phase = shared.phase();
    tokio::select! {
        biased;
        _ = stop.wait_for(Option::is_some) => None,
        _ = super::drain::reached(&mut phase, super::drain::Phase::Draining) => None,
        permit = shared.free_slots.clone().acquire_owned() => permit.ok(),
    }
}

/// The answer for a job that was stopped before it started: `stopped` with nothing
/// left when the manager asked, else handed back (the manager dispatches it again).
fn never_started(shared: &Shared, msg: &AttemptMsg, slot: &Slot) -> WorkerMsg {
    let worker = shared.setup.worker.clone();
    let (key, dispatch) = (msg.key.clone(), msg.dispatch.clone());
    match *slot.asked.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(stop) => WorkerMsg::Stopped { key, dispatch, worker, stop, remains: StoppedRemains::default() },
        None => WorkerMsg::Handback { key, dispatch, worker, reason: HandbackWhy::Drain },
    }
}

/// Runs the attempt and gives the message that tells its end.
async fn run_attempt(shared: &Arc<Shared>, msg: &AttemptMsg, slot: &Arc<Slot>) -> WorkerMsg {
    let worker = shared.setup.worker.clone();
    let spec = match attempt_spec(shared, msg) {
        Ok(spec) => spec,
        Err(error) => {
            let outcome = Outcome::Failure {
                class: FailureClass::SpawnPermanent,
                error,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                output: SmallOutput::default(),
            };
            return result_msg(msg, worker, AttemptEnd::Outcome(outcome), &shared.setup.output_dir);
        }
    };
    let base = spec.file_base.clone().unwrap_or_default();
    let (live_tx, live_rx) = broadcast::channel(256);
    // Its usage, session and flag lines travel back with its end.
    let collected = Collected::default();
    let spec = AttemptSpec { live: Some(live_tx), on_control: Some(collected.sink()), ..spec };
    // `started` goes first: output waits until it is sent (or will never be).
    let (started_tx, started_rx) = watch::channel(false);
    let output = tokio::spawn(forward_output(shared.clone(), msg.run.clone(), msg.key.clone(), live_rx, started_rx));
    let (pid_tx, pid_rx) = oneshot::channel::<u32>();
    let started = {
        let (shared, msg) = (shared.clone(), msg.clone());
        tokio::spawn(async move {
            let _sent = SetOnDrop(started_tx);
            let Ok(pid) = pid_rx.await else { return };
            let started = WorkerMsg::Started {
                key: msg.key.clone(),
                dispatch: msg.dispatch.clone(),
                worker: shared.setup.worker.clone(),
                host: shared.setup.host.clone(),
                pid,
                started_ms: wall_ms(),
            };
            deliver(&shared, &msg.run, started).await;
        })
    };
    let limits = Limits {
        timeout: Duration::from_millis(msg.timeout_ms),
        stall_after: msg.stall_after_ms.map(Duration::from_millis),
        stall_kill_after: msg.stall_kill_after_ms.map(Duration::from_millis),
    };
    let reports = Reports {
        on_spawn: Box::new(move |pid, _| {
            let _ = pid_tx.send(pid);
        }),
        on_stall: Box::new(|_| {}),
        on_capture_failed: Arc::new(|stream, error| {
            eprintln!("pitboss worker: {stream:?} output not saved: {error}");
        }),
        on_usage: collected.usage_report(),
    };
    let end =
        supervise(shared.runner.clone(), Arc::new(SystemClock), spec, limits, slot.stop_rx.clone(), reports).await;
    // Output and `started` go before the end, so the manager sees them in order.
    let _ = started.await;
    let _ = output.await;
    let asked = *slot.asked.lock().unwrap_or_else(|p| p.into_inner());
    let drained = slot.drained.load(Ordering::Relaxed);
    let succeeded = matches!(end, AttemptEnd::Outcome(Outcome::Success { .. }) | AttemptEnd::Planned(..));
    // Only the manager's stops and this worker's own (drain, exit) end in a `Stopped`.
    let stopped_here = drained || matches!(end, AttemptEnd::Stopped(..));
    let message = match asked {
        // A success that beat the stop is a result all the same.
        _ if succeeded => result_msg(msg, worker, end, &shared.setup.output_dir),
        Some(stop) => WorkerMsg::Stopped {
            key: msg.key.clone(),
            dispatch: msg.dispatch.clone(),
            worker,
            stop,
            remains: remains(&end),
        },
        None if stopped_here => WorkerMsg::Handback {
            key: msg.key.clone(),
            dispatch: msg.dispatch.clone(),
            worker,
            reason: HandbackWhy::Drain,
        },
        None => result_msg(msg, worker, end, &shared.setup.output_dir),
    };
    for stream in ["stdout", "stderr"] {
        let _ = std::fs::remove_file(shared.setup.output_dir.join(format!("{base}.{stream}")));
    }
    with_controls(message, collected.take())
}

/// The end message carrying the attempt's control lines: a result's or a stop's. A
/// handback (a drain cut the attempt short) carries none: what it spent is not
/// counted (DESIGN-NOTES, issue 17, branch h17f).
fn with_controls(mut message: WorkerMsg, lines: Vec<Value>) -> WorkerMsg {
    match &mut message {
        WorkerMsg::Result { outcome, .. } => outcome.controls = lines,
        WorkerMsg::Stopped { remains, .. } => remains.controls = lines,
        _ => {}
    }
    message
}

/// The attempt as a local pool would run it: CMD with placeholders filled from the
/// job, the job's document on stdin, the run's marks in the environment (with this
/// worker's pid as the manager mark, which its guardian sweeps).
fn attempt_spec(shared: &Shared, msg: &AttemptMsg) -> Result<AttemptSpec, String> {
    let job = &msg.job;
    let text = |field: &str| job.get(field).and_then(Value::as_str);
    let null = Value::Null;
    let view = TaskView {
        id: text("id").unwrap_or(&msg.task),
        kind: text("type").unwrap_or(""),
        payload: job.get("payload").unwrap_or(&null),
        attempt: msg.attempt,
        run_id: &msg.run,
    };
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "pitboss".into());
    let state_dir = shared.setup.output_dir.display().to_string();
    let extra = |name: &str| match name {
        "pitboss" => Some(exe.clone()),
        "state_dir" => Some(state_dir.clone()),
        _ => None,
    };
    let argv = shared
        .setup
        .args
        .command
        .iter()
        .map(|t| fill(t, view, &extra))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("pool {:?} on worker {}: {e}", msg.pool, shared.setup.worker))?;
    let mut stdin = serde_json::to_vec(job).map_err(|e| e.to_string())?;
    stdin.push(b'\n');
    let env = vec![
        ("PITBOSS_TASK_ID".to_string(), msg.task.clone()),
        ("PITBOSS_ATTEMPT".to_string(), msg.attempt.to_string()),
        (RUN_ID_ENV.to_string(), msg.run.clone()),
        (MANAGER_PID_ENV.to_string(), std::process::id().to_string()),
        ("PITBOSS_POOL".to_string(), msg.pool.clone()),
        ("PITBOSS_STATE_DIR".to_string(), state_dir.clone()),
        ("PITBOSS_WORKER".to_string(), shared.setup.worker.clone()),
    ];
    Ok(AttemptSpec {
        pool: msg.pool.clone(),
        task: msg.task.clone(),
        attempt: msg.attempt,
        argv,
        stdin: Some(stdin),
        env,
        cwd: None,
        timeout: Duration::from_millis(msg.timeout_ms),
        kill_grace: Duration::from_millis(msg.kill_grace_ms),
        output_dir: shared.setup.output_dir.clone(),
        live: None,
        persistent: None,
        file_base: Some(format!("{}.{}", file_stem(&msg.run), file_stem(&msg.key))),
        reattach: false,
        agent: None,
        on_control: None,
    })
}

/// Sends the attempt's output as it comes (already redacted by the runner), in
/// pieces of at most [`MAX_OUTPUT_TEXT`] bytes every [`OUTPUT_EVERY`]. Lossy by
/// design: a piece the broker does not take is dropped, the result carries the tails.
async fn forward_output(
    shared: Arc<Shared>,
    run: String,
    key: String,
    mut rx: broadcast::Receiver<OutputChunk>,
    mut started: watch::Receiver<bool>,
) {
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut tick = tokio::time::interval(OUTPUT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Ok(chunk) => pending[usize::from(chunk.stderr)].extend_from_slice(&chunk.bytes),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => open = false,
            },
            _ = tick.tick() => {}
        }
        if !*started.borrow() {
            if open {
                continue;
            }
            let _ = started.wait_for(|s| *s).await;
        }
        for (i, stream) in [OutputStream::Stdout, OutputStream::Stderr].into_iter().enumerate() {
            if pending[i].is_empty() {
                continue;
            }
            let bytes = std::mem::take(&mut pending[i]);
            for text in pieces(&String::from_utf8_lossy(&bytes), MAX_OUTPUT_TEXT) {
                let out = WorkerMsg::Output { key: key.clone(), worker: shared.setup.worker.clone(), stream, text };
                let _ = shared.transport.report(&run, out).await;
            }
        }
    }
}

/// Sets its flag when dropped, however the task holding it ends.
struct SetOnDrop(watch::Sender<bool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// `text` cut into pieces of at most `max` bytes, on character boundaries.
pub(crate) fn pieces(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    out
}

/// The result message of an attempt that ran to an outcome.
fn result_msg(msg: &AttemptMsg, worker: String, end: AttemptEnd, dir: &Path) -> WorkerMsg {
    let base = format!("{}.{}", file_stem(&msg.run), file_stem(&msg.key));
    let (outcome, spawn) = match end {
        AttemptEnd::Outcome(o) => (o, None),
        AttemptEnd::Planned(o, tasks) => (
            o,
            Some(match tasks {
                Ok(tasks) => SpawnLines::Tasks(tasks),
                Err(why) => SpawnLines::Refused(why),
            }),
        ),
        // A local runner never loses its worker; kept whole for the match.
        AttemptEnd::Lost { reason, .. } => (
            Outcome::Failure {
                class: FailureClass::SpawnResource,
                error: reason,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                output: SmallOutput::default(),
            },
            None,
        ),
        AttemptEnd::Stopped(_, r) => (
            Outcome::Failure {
                class: FailureClass::Timeout,
                error: "stopped".into(),
                exit_code: r.exit_code,
                signal: r.signal,
                duration_ms: r.duration_ms,
                output: r.output,
            },
            None,
        ),
    };
    let mut remote = match outcome {
        Outcome::Success { result, exit_code, duration_ms, output } => RemoteOutcome {
            status: OutcomeStatus::Success,
            result: Some(result),
            class: None,
            error: None,
            exit_code,
            signal: None,
            duration_ms,
            stdout: output.stdout,
            stderr: output.stderr,
            tail_stdout: None,
            tail_stderr: None,
            spawn: None,
            controls: Vec::new(),
        },
        Outcome::Failure { class, error, exit_code, signal, duration_ms, output } => RemoteOutcome {
            status: OutcomeStatus::Failure,
            result: None,
            class: serde_json::to_value(class).ok().and_then(|v| v.as_str().map(str::to_string)),
            error: Some(error),
            exit_code,
            signal,
            duration_ms,
            stdout: output.stdout,
            stderr: output.stderr,
            tail_stdout: None,
            tail_stderr: None,
            spawn: None,
            controls: Vec::new(),
        },
    };
    remote.spawn = spawn;
    // Output too big for the small fields: its end, from the (redacted) capture file.
    if remote.stdout.is_none() {
        remote.tail_stdout = tail(&dir.join(format!("{base}.stdout")));
    }
    if remote.stderr.is_none() {
        remote.tail_stderr = tail(&dir.join(format!("{base}.stderr")));
    }
    WorkerMsg::Result { key: msg.key.clone(), dispatch: msg.dispatch.clone(), worker, outcome: remote }
}

/// The last [`MAX_TAIL`] bytes of a capture file, when it has any.
fn tail(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    let from = len.saturating_sub(MAX_TAIL as u64 - 4);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    // Start on a character: skip continuation bytes the cut landed in.
    let skip = bytes.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count();
    let text = String::from_utf8_lossy(&bytes[skip..]).into_owned();
    Some(pieces(&text, MAX_TAIL).pop().unwrap_or_default())
}

/// What a stopped attempt left, from whatever end supervision gave.
fn remains(end: &AttemptEnd) -> StoppedRemains {
    let (exit_code, signal, duration_ms, output) = match end {
        AttemptEnd::Lost { .. } => return StoppedRemains::default(),
        AttemptEnd::Stopped(_, r) => (r.exit_code, r.signal, r.duration_ms, &r.output),
        AttemptEnd::Outcome(o) | AttemptEnd::Planned(o, _) => match o {
            Outcome::Success { exit_code, duration_ms, output, .. } => (*exit_code, None, *duration_ms, output),
            Outcome::Failure { exit_code, signal, duration_ms, output, .. } => {
                (*exit_code, *signal, *duration_ms, output)
            }
        },
    };
    let (stdout, stderr) = (output.stdout.clone(), output.stderr.clone());
    StoppedRemains { exit_code, signal, duration_ms, stdout, stderr, controls: Vec::new() }
}

/// Sends a durable message, holding it and retrying while the broker is away, until
/// it is taken or the worker gives up (after a drain). A refusal (ACL) or a message
/// the broker rejects is reported and dropped: retrying cannot help.
pub(crate) async fn deliver(shared: &Shared, run: &str, msg: WorkerMsg) -> bool {
    let mut wait = RETRY_FIRST;
    let mut give_up = shared.give_up.clone();
    loop {
        match shared.transport.report(run, msg.clone()).await {
            Ok(()) => return true,
            Err(e) if e.kind() == BrokerErrorKind::Unreachable || e.kind() == BrokerErrorKind::DataLost => {
                shared.note_down(&e);
            }
            Err(e) => {
                eprintln!("pitboss worker: a message for run {run} was refused: {e}");
                return false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = give_up.wait_for(|g| *g) => return false,
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Acks a job after its end was written; retried like [`deliver`]. A lost ack only
/// means the manager's lease takes the job back, and its result is already recorded.
async fn deliver_ack(shared: &Shared, entry: &crate::io::broker::EntryId) -> bool {
    let mut wait = RETRY_FIRST;
    let mut give_up = shared.give_up.clone();
    loop {
        match shared.transport.ack_job(entry.clone()).await {
            Ok(()) => return true,
            Err(e) if e.is_transient() => shared.note_down(&e),
            Err(e) => {
                eprintln!("pitboss worker: ack of job {} refused: {e}", entry.id);
                return true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = give_up.wait_for(|g| *g) => return true,
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Maps a manager's stop word to the runner's stop.
pub(crate) fn stop_for(why: crate::io::broker::StopWhy) -> Stop {
    use crate::io::broker::StopWhy;
    match why {
        StopWhy::Cancel | StopWhy::Superseded => Stop::Cancel,
        StopWhy::Interrupt => Stop::Interrupt,
        StopWhy::Timeout => Stop::Timeout,
        StopWhy::Stalled => Stop::Stalled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_stay_under_the_limit_on_character_boundaries() {
        let text = "é".repeat(10);
        let parts = pieces(&text, 5);
        assert!(parts.iter().all(|p| p.len() <= 5), "{parts:?}");
        assert_eq!(parts.concat(), text);
        assert!(pieces("", 5).is_empty());
    }
}
