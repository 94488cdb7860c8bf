//! One persistent worker process: started with its stdout read for replies and its
//! stderr kept as its log, handed tasks and their answers matched to them, recycled,
//! and ended (politely or at once) with what it still had in flight failed.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::io::platform::{self, Signal};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot, watch};

use crate::io::clock::AwakeDeadline;

use super::super::control_lines::{is_control, recognise, ControlSink, Found, TOLD};
use super::super::env::PoolEnv;
use super::super::orphans;
use super::super::spawn::signal_group;
use super::super::{millis, AttemptEnd, Stop, UsageReport};
use super::{Queued, WorkerSpec};
use crate::core::decide::Outcome;
use crate::core::event::SMALL_OUTPUT;
use crate::core::protocol::{reply_verdict, Verdict};
use crate::core::usage::parse_usage;
use crate::core::workflow::Recycle;
use crate::core::{FailureClass, SmallOutput};

pub(super) struct InFlight {
    task: String,
    pub(super) started: Instant,
    /// How much the process had printed on stderr when the task was written to it.
    pub(super) stderr_from: u64,
    pub(super) deadline: AwakeDeadline,
    pub(super) stop: watch::Receiver<Option<Stop>>,
    pub(super) done: oneshot::Sender<AttemptEnd>,
    on_usage: UsageReport,
    on_control: Option<ControlSink>,
}

/// The last task a process answered, for its control lines printed after the reply.
struct Answered {
    task: String,
    on_usage: UsageReport,
    on_control: Option<ControlSink>,
}

pub(super) struct Worker {
    pub(super) pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    pub(super) in_flight: VecDeque<InFlight>,
    answered: u64,
    last: Option<Answered>,
    pub(super) draining: bool,
    stderr: Arc<Mutex<StderrTail>>,
    /// Ends when the process's stderr reaches EOF.
    stderr_done: Option<oneshot::Receiver<()>>,
    /// True once [`end`] reaped it (its pid may then belong to somebody else).
    reaped: bool,
}

/// A worker dropped before it was ended (the runtime was dropped mid-run, or an
/// ending was cut short) has its process group killed, so none outlives the pool.
impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            signal_group(self.pid, Signal::SIGKILL);
        }
        // Windows: closing its Job Object ends what is left of its tree.
        platform::release(self.pid);
    }
}

impl Worker {
    /// What the process printed on stderr since `from` (its last [`SMALL_OUTPUT`]
    /// bytes at most), as an attempt's output.
    pub(super) fn stderr_since(&self, from: u64) -> SmallOutput {
        let stderr = self.stderr.lock().ok().and_then(|tail| tail.since(from));
        SmallOutput { stdout: None, stderr }
    }
}

/// The end of a process's stderr, and how much it printed in all.
#[derive(Default)]
struct StderrTail {
    pub(super) bytes: VecDeque<u8>,
    pub(super) total: u64,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let keep = &chunk[chunk.len().saturating_sub(SMALL_OUTPUT)..];
        self.bytes.extend(keep);
        let over = self.bytes.len().saturating_sub(SMALL_OUTPUT);
        self.bytes.drain(..over);
    }

    /// The bytes printed since `from` that are still kept, or `None` if there are none.
    fn since(&self, from: u64) -> Option<String> {
        let new = self.total.saturating_sub(from).min(self.bytes.len() as u64) as usize;
        if new == 0 {
            return None;
        }
        let (a, b) = self.bytes.as_slices();
        let all: Vec<u8> = a.iter().chain(b).copied().collect();
        Some(String::from_utf8_lossy(&all[all.len() - new..]).into_owned())
    }
}

/// What a process's stdout reader reports.
pub(super) enum Line {
    Reply {
        slot: usize,
        pid: u32,
        value: Value,
    },
    /// A `usage`, `session` or `flag` line (or a torn usage line, as a string).
    Control {
        slot: usize,
        pid: u32,
        value: Value,
    },
    Closed {
        slot: usize,
        pid: u32,
    },
}

pub(super) fn start_worker(
    spec: &WorkerSpec,
    base: &PoolEnv,
    slot: usize,
    lines: &mpsc::UnboundedSender<Line>,
) -> Result<Worker, String> {
    let mut cmd = platform::attempt_command(&spec.argv, spec.cwd.as_deref(), &spec.env)
        .map_err(|e| format!("pool {:?}: cannot start persistent worker {:?}: {e}", spec.pool, spec.argv[0]))?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(false);
    base.apply(&mut cmd);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    // Windows: in its Job Object before it runs (module notes of io::platform).
    let (mut child, contained) = platform::spawn_contained(&mut cmd).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => {
                super::super::spawn::missing_interpreter(&spec.argv[0], spec.cwd.as_deref(), &spec.env)
            }
            _ => None,
        };
        format!(
            "pool {:?}: cannot start persistent worker {:?}: {}",
            spec.pool,
            spec.argv[0],
            why.unwrap_or(e.to_string())
        )
    })?;
    let pid = child.id().unwrap_or(0);
    if let Err(e) = contained {
        tracing::warn!("pool {:?}: no Job Object for persistent worker {pid}: {e}", spec.pool);
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let tx = lines.clone();
    tokio::spawn(async move {
        if let Some(out) = stdout {
            let mut reader = BufReader::new(out);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if is_control(&line) => {
                        recognise(trim(&line), |found| {
                            let value = match found {
                                Found::Line { kind, value, .. } if kind == "usage" || TOLD.contains(&kind) => {
                                    value.clone()
                                }
                                Found::Torn(_) if found.torn_names("usage") => Value::from("not valid JSON"),
                                _ => return,
                            };
                            let _ = tx.send(Line::Control { slot, pid, value });
                        });
                    }
                    Ok(_) => {
                        let Ok(value) = serde_json::from_slice::<Value>(trim(&line)) else { continue };
                        let _ = tx.send(Line::Reply { slot, pid, value });
                    }
                }
            }
        }
        let _ = tx.send(Line::Closed { slot, pid });
    });
    // stderr is the worker's log: drained so it never blocks; its tail is kept.
    let tail = Arc::new(Mutex::new(StderrTail::default()));
    let (done_tx, stderr_done) = oneshot::channel();
    if let Some(mut err) = stderr {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n @ 1..) = err.read(&mut buf).await {
                if let Ok(mut t) = tail.lock() {
                    t.push(&buf[..n]);
                }
            }
            let _ = done_tx.send(());
        });
    }
    let stdin = child.stdin.take();
    Ok(Worker {
        pid,
        child,
        stdin,
        in_flight: VecDeque::new(),
        answered: 0,
        last: None,
        draining: false,
        stderr: tail,
        stderr_done: Some(stderr_done),
        reaped: false,
    })
}

fn trim(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map(|i| i + 1).unwrap_or(0);
    &line[..end]
}

pub(super) async fn assign(w: &mut Worker, queued: Queued) {
    let Queued { job, deadline } = queued;
    let mut line = job.line;
    line.push(b'\n');
    let written = match w.stdin.as_mut() {
        Some(stdin) => stdin.write_all(&line).await.is_ok(),
        None => false,
    };
    let stderr_from = w.stderr.lock().map(|t| t.total).unwrap_or(0);
    let flight = InFlight {
        task: job.task,
        started: Instant::now(),
        stderr_from,
        deadline,
        stop: job.stop,
        done: job.done,
        on_usage: job.on_usage,
        on_control: job.on_control,
    };
    if written {
        (job.on_start)(w.pid);
        w.in_flight.push_back(flight);
    } else {
        // The process is going away; its reader will report it closed.
        let _ = flight.done.send(AttemptEnd::failed(
            FailureClass::Worker,
            "persistent worker closed its stdin".into(),
            Duration::ZERO,
        ));
    }
}

pub(super) fn answer(w: &mut Worker, value: Value) {
    let by_id = value.get("id").and_then(Value::as_str).and_then(|id| w.in_flight.iter().position(|f| f.task == id));
    let Some(flight) = by_id.map(|i| w.in_flight.remove(i)).unwrap_or_else(|| w.in_flight.pop_front()) else {
        return; // A reply nobody asked for.
    };
    w.answered += 1;
    let elapsed = flight.started.elapsed();
    let output = w.stderr_since(flight.stderr_from);
    let outcome = match reply_verdict(value) {
        Verdict::Completed(result) => {
            Outcome::Success { result, exit_code: None, duration_ms: millis(elapsed), output }
        }
        Verdict::Failed(error) => Outcome::Failure {
            class: FailureClass::Worker,
            error,
            exit_code: None,
            signal: None,
            duration_ms: millis(elapsed),
            output,
        },
    };
    let _ = flight.done.send(AttemptEnd::Outcome(outcome));
    w.last = Some(Answered { task: flight.task, on_usage: flight.on_usage, on_control: flight.on_control });
}

/// A control line of a process: told for the task it names (`"task"`) in flight, or
/// answered last (a worker that prints its spend just after its reply: the spend is
/// that task's, recorded after its end); else for the oldest in flight; none in
/// flight, for the last answered. A process that answered nothing yet has nobody to
/// charge: false is returned (the caller says so in the log). A refused usage line is
/// said in the process's stderr, which the task's output records.
pub(super) fn tell(w: &Worker, value: Value) -> bool {
    let name = value.get("task").and_then(Value::as_str);
    let last = w.last.as_ref().map(|l| (&l.on_usage, &l.on_control));
    let front = w.in_flight.front().map(|f| (&f.on_usage, &f.on_control));
    let named = name.and_then(|id| match w.in_flight.iter().find(|f| f.task == id) {
        Some(f) => Some((&f.on_usage, &f.on_control)),
        None => last.filter(|_| w.last.as_ref().is_some_and(|l| l.task == id)),
    });
    let Some((on_usage, on_control)) = named.or(front).or(last) else { return false };
    let usage = match &value {
        Value::String(torn) => Some(Err(format!("a usage line is {torn}"))),
        _ if value.get("pitboss").and_then(Value::as_str) == Some("usage") => Some(parse_usage(&value)),
        _ => None,
    };
    match usage {
        Some(line) => {
            if let (Err(why), Ok(mut tail)) = (&line, w.stderr.lock()) {
                tail.push(format!("pitboss: ignored a usage line: {why}\n").as_bytes());
            }
            on_usage(line);
        }
        None => {
            if let Some(sink) = on_control {
                (sink.0)(value);
            }
        }
    }
    true
}

pub(super) fn should_recycle(w: &Worker, recycle: &Recycle) -> bool {
    if recycle.max_tasks.is_some_and(|n| w.answered >= n) {
        return true;
    }
    recycle.max_rss_mb.is_some_and(|limit| rss_mb(w.pid).is_some_and(|rss| rss > limit))
}

/// Resident set size of a process in MiB.
fn rss_mb(pid: u32) -> Option<u64> {
    Some(crate::io::platform::resident_kib(pid)? / 1024)
}

/// A failure of a persistent task, with what its process printed on stderr meanwhile.
pub(super) fn failure(class: FailureClass, error: String, elapsed: Duration, output: SmallOutput) -> AttemptEnd {
    AttemptEnd::Outcome(Outcome::Failure {
        class,
        error,
        exit_code: None,
        signal: None,
        duration_ms: millis(elapsed),
        output,
    })
}

/// How long an ended process's stderr may stay open (a descendant that left its
/// group could hold it) before its tasks are failed without the rest of it.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

/// Ends a process and fails what it still had in flight (with what it printed on
/// stderr meanwhile, read to its end). Politely (`polite`: stdin EOF, a grace
/// period to exit by itself, then signals) when it is being recycled, has exited or
/// the run ended; at once with SIGTERM, grace, SIGKILL when it may be stuck.
pub(super) async fn end(mut w: Worker, spec: &WorkerSpec, why: &str, polite: bool) -> String {
    // Its descendants that left its group, found while it still holds them.
    let escaped = orphans::attempt_tree(w.pid, &[]);
    drop(w.stdin.take());
    let exited_by_itself = if polite { tokio::time::timeout(spec.kill_grace, w.child.wait()).await.ok() } else { None };
    let status = match exited_by_itself {
        Some(status) => status.ok(),
        None => {
            signal_group(w.pid, Signal::SIGTERM);
            orphans::signal_each(&escaped, Signal::SIGTERM);
            match tokio::time::timeout(spec.kill_grace, w.child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => {
                    signal_group(w.pid, Signal::SIGKILL);
                    w.child.wait().await.ok()
                }
            }
        }
    };
    // Anything left in its group or its tree goes too; after that the pid is not ours
    // to signal.
    signal_group(w.pid, Signal::SIGKILL);
    orphans::signal_each(&escaped, Signal::SIGKILL);
    w.reaped = true;
    if let Some(done) = w.stderr_done.take().filter(|_| !w.in_flight.is_empty()) {
        let _ = tokio::time::timeout(STDERR_DRAIN, done).await;
    }
    for f in std::mem::take(&mut w.in_flight) {
        let error = format!("persistent worker (pid {}) {why} with this task in flight", w.pid);
        let output = w.stderr_since(f.stderr_from);
        let _ = f.done.send(failure(FailureClass::Worker, error, f.started.elapsed(), output));
    }
    status.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stderr_tail_gives_what_was_printed_since_a_mark_within_its_bound() {
        let mut tail = StderrTail::default();
        tail.push(b"first\n");
        let mark = tail.total;
        assert_eq!(tail.since(mark), None);
        tail.push(b"second\n");
        assert_eq!(tail.since(mark).as_deref(), Some("second\n"));
        assert_eq!(tail.since(0).as_deref(), Some("first\nsecond\n"));
        // A flood keeps only the last SMALL_OUTPUT bytes.
        tail.push(&vec![b'x'; 3 * SMALL_OUTPUT]);
        tail.push(b"end");
        let kept = tail.since(mark).unwrap();
        assert_eq!(kept.len(), SMALL_OUTPUT);
        assert!(kept.ends_with("xend"));
    }
}
