//! Attempts on remote workers through a broker (DESIGN §7, plan §5): the
//! [`BrokerRunner`] publishes each attempt (its task JSON as the job, never a command
//! line or environment), then waits for the worker's `started`, output and result, and
//! maps them to an [`AttemptEnd`]. Command gates (no pool) run here, on the
//! [`LocalRunner`].
//!
//! One task (the router) reads the link's notices and hands each message to the
//! attempt it answers, by key. What does not belong to a live attempt is a late or
//! duplicate result (reported, never applied), or broker news for the engine
//! ([`Input`]s: down, up, workers seen and gone). Results are acked, and their attempt
//! messages withdrawn, only once a record about their task is durable
//! ([`BrokerRunner::committed`]): a manager that dies before that reads them again.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{
    millis, AttemptEnd, AttemptFuture, AttemptJob, AttemptSpec, LocalRunner, OutputChunk, RemoteStart, Runner, Stop,
};
use crate::core::event::{Event, OutputStream as CoreStream, WorkerRef};
use crate::core::Input;
use crate::io::broker::link::{Link, LinkState, Notice};
use crate::io::broker::wire::StopWhy;
use crate::io::broker::{AttemptMsg, EntryId, InboundId, WorkerMsg};
use crate::io::journal::Record;
use route::{deliver, route, stop_why};

mod route;

/// After a stop, how long past the kill grace a started attempt's worker may take to
/// answer before the attempt counts as stopped anyway (two heartbeats and some).
const STOP_ANSWER: Duration = Duration::from_secs(12);

/// What a waiting attempt hears from the router.
enum Heard {
    Started(RemoteStart),
    Output(bool, String),
    /// Its `usage`, `session` and `flag` lines, told just before its end.
    Controls(Vec<Value>),
    End(AttemptEnd),
}

/// One attempt waiting on the broker.
struct Waiter {
    task: String,
    /// The current publication (answers to older ones count only as results).
    msg: AttemptMsg,
    /// Who started it, once someone did.
    started: Option<WorkerRef>,
    /// When that worker's last live heartbeat named it: a worker that still
    /// heartbeats its attempt is alive, whatever its registration says.
    beat: Option<tokio::time::Instant>,
    tx: mpsc::UnboundedSender<Heard>,
}

/// The router's book, shared with the attempts' futures.
#[derive(Default)]
struct Book {
    waiters: HashMap<String, Waiter>,
    /// Keys of attempts re-attached after a restart whose waiter is not there yet:
    /// their messages are held, not taken for late ones.
    expected: HashSet<String>,
    held: HashMap<String, Vec<(InboundId, WorkerMsg)>>,
    /// Every key this manager published or expected → (task, attempt).
    known: HashMap<String, (String, u32)>,
    /// Where each key's attempt message sits, to withdraw it once its outcome is durable.
    entries: HashMap<String, EntryId>,
    /// Per task: results to ack and entries to withdraw once a record about it is durable.
    pending: HashMap<String, (Vec<InboundId>, Vec<EntryId>)>,
}

impl Book {
    fn settle_later(&mut self, task: &str, key: &str, id: Option<InboundId>) {
        let entry = self.entries.remove(key);
        let (ids, entries) = self.pending.entry(task.to_string()).or_default();
        ids.extend(id);
        entries.extend(entry);
    }
}

/// Runs attempts on remote workers (see the module's notes).
pub struct BrokerRunner {
    local: LocalRunner,
    link: Arc<Link>,
    run: String,
    lease_ms: u64,
    book: Arc<Mutex<Book>>,
    state: watch::Receiver<LinkState>,
    router: JoinHandle<()>,
}

impl Drop for BrokerRunner {
    fn drop(&mut self) {
        self.router.abort();
    }
}

fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}

impl BrokerRunner {
    /// A runner over `link` (connected) for run `run`; `notices` are the link's. The
    /// receiver gives the broker news the engine must decide on. `broker` is the
    /// redacted URL recorded with outages.
    pub fn start(
        local: LocalRunner,
        link: Link,
        notices: mpsc::UnboundedReceiver<Notice>,
        run: String,
        broker: String,
        lease: Duration,
    ) -> (Arc<BrokerRunner>, mpsc::UnboundedReceiver<Input>) {
        let (inputs, inputs_rx) = mpsc::unbounded_channel();
        let book = Arc::new(Mutex::new(Book::default()));
        let state = link.state();
        let link = Arc::new(link);
        let ops = LinkOps(Arc::downgrade(&link));
        // Where the broker hands a dead worker's jobs on itself, an expired
        // registration leaves its attempts to it (the lease still checks them).
        let early_loss = !link.hands_on_dead_workers_jobs();
        let router = tokio::spawn(route(notices, Arc::clone(&book), inputs, broker, ops, lease, early_loss));
        let runner = BrokerRunner { local, link, run, lease_ms: millis(lease), book, state, router };
        (Arc::new(runner), inputs_rx)
    }

    /// Attempt keys that run on workers since before this manager: their messages are
    /// kept for them until the engine re-attaches.
    pub fn expect(&self, keys: impl IntoIterator<Item = (String, u32)>) {
        let mut book = lock(&self.book);
        for (task, attempt) in keys {
            let key = attempt_key(&task, attempt);
            book.expected.insert(key.clone());
            book.known.insert(key, (task, attempt));
        }
    }

    /// Called with each batch once it is durable: publishes the records for outside
    /// subscribers, and acks the results (and withdraws the attempt messages) of the
    /// tasks they are about.
    pub fn committed(&self, records: &[Record]) {
        let mut acks = Vec::new();
        let mut withdraw = Vec::new();
        {
            let mut book = lock(&self.book);
            for record in records {
                let Some(task) = record.event.task() else { continue };
                if let Some((ids, entries)) = book.pending.remove(task) {
                    acks.extend(ids);
                    withdraw.extend(entries);
                }
            }
        }
        for record in records {
            let mut line = Vec::new();
            crate::io::journal::encode(record.seq, record.ts, &record.event, &mut line);
            let text = String::from_utf8_lossy(&line);
            self.link.publish_event(Arc::from(text.trim_end()));
        }
        if !acks.is_empty() {
            self.link.ack(acks);
        }
        if !withdraw.is_empty() {
            self.link.withdraw(withdraw);
        }
        // After the acks and withdrawals above, so the data they remove is gone first.
        if records.iter().any(|r| matches!(r.event, Event::RunFinished { .. })) {
            self.link.ended();
        }
    }

    /// Ends the run on the broker: sends what is queued, stops advertising it, and with
    /// `clean` deletes its keys.
    pub async fn finish(self: Arc<Self>, clean: bool) {
        if let Ok(runner) = Arc::try_unwrap(self) {
            // Attempts and the router hold the link weakly: once the runner is gone,
            // this is its one owner.
            let link = Arc::clone(&runner.link);
            drop(runner);
            let Ok(link) = Arc::try_unwrap(link) else { return };
            if let Err(e) = link.finish(clean).await {
                tracing::warn!("broker: {e}");
            }
        }
    }

    /// Ends the local runner's persistent pools (command gates run there).
    pub async fn shutdown_local(&self) {
        self.local.shutdown().await;
    }

    /// The link's state now.
    pub fn link_up(&self) -> bool {
        self.state.borrow().is_up()
    }

    fn message(&self, spec: &AttemptSpec, key: &str) -> AttemptMsg {
        let job = match &spec.stdin {
            None => Value::Null,
            Some(bytes) => serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        };
        let now = crate::io::clock::wall_ms();
        let timeout_ms = millis(spec.timeout);
        AttemptMsg {
            run: self.run.clone(),
            pool: spec.pool.clone(),
            key: key.to_string(),
            task: spec.task.clone(),
            attempt: spec.attempt,
            replica: None,
            dispatch: new_dispatch(),
            job,
            timeout_ms,
            stall_after_ms: None,
            stall_kill_after_ms: None,
            kill_grace_ms: millis(spec.kill_grace),
            lease_ms: self.lease_ms,
            sent_ms: now,
            deadline_ms: now.saturating_add(timeout_ms).saturating_add(self.lease_ms),
            capabilities: Vec::new(),
        }
    }
}

/// The link as the router and the attempts hold it: weakly, so that the runner alone
/// owns it and can finish it at the end of the run.
#[derive(Clone)]
struct LinkOps(Weak<Link>);

impl LinkOps {
    fn publish(&self, jobs: Vec<AttemptMsg>) {
        if let Some(link) = self.0.upgrade() {
            link.publish(jobs);
        }
    }

    fn ack(&self, ids: Vec<InboundId>) {
        if let Some(link) = self.0.upgrade() {
            link.ack(ids);
        }
    }

    fn stop(&self, key: String, why: StopWhy) {
        if let Some(link) = self.0.upgrade() {
            link.stop(key, why);
        }
    }
}

/// `TASK.ATTEMPT`, or a replica's or judge's own file base.
fn attempt_key(task: &str, attempt: u32) -> String {
    format!("{}.{attempt}", crate::core::spawn::file_stem(task))
}

/// A fresh publication id.
fn new_dispatch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Runner for BrokerRunner {
    fn secret_values(&self) -> Vec<(String, String)> {
        self.local.secret_values()
    }

    fn is_remote(&self, spec: &AttemptSpec) -> bool {
        !spec.pool.is_empty()
    }

    fn run(&self, job: AttemptJob) -> AttemptFuture {
        if job.spec.pool.is_empty() {
            return self.local.run(job);
        }
        let AttemptJob { spec, mut stop, on_spawn: _, on_output, on_capture_failed, on_remote_start, on_usage } = job;
        let key = spec.file_base.clone().unwrap_or_else(|| attempt_key(&spec.task, spec.attempt));
        let msg = self.message(&spec, &key);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let held = {
            let mut book = lock(&self.book);
            book.expected.remove(&key);
            book.known.insert(key.clone(), (spec.task.clone(), spec.attempt));
            let waiter = Waiter { task: spec.task.clone(), msg: msg.clone(), started: None, beat: None, tx };
            book.waiters.insert(key.clone(), waiter);
            book.held.remove(&key).unwrap_or_default()
        };
        if !spec.reattach {
            self.link.publish(vec![msg]);
        }
        let ops = LinkOps(Arc::downgrade(&self.link));
        let (book, mut state) = (Arc::clone(&self.book), self.state.clone());
        Box::pin(async move {
            // Messages written while this manager was away come first.
            for (id, msg) in held {
                deliver(&book, &ops, id, msg);
            }
            let mut on_remote_start = Some(on_remote_start);
            let mut asked: Option<(Stop, tokio::time::Instant)> = None;
            let mut started = false;
            let end = loop {
                let answer_by = asked.map(|(_, at)| at + spec.kill_grace + STOP_ANSWER);
                tokio::select! {
                    biased;
                    heard = rx.recv() => match heard {
                        Some(Heard::Started(start)) => {
                            started = true;
                            if let Some(report) = on_remote_start.take() {
                                report(start);
                            }
                        }
                        Some(Heard::Output(stderr, text)) => {
                            on_output();
                            if let Some(live) = &spec.live {
                                let _ = live.send(OutputChunk {
                                    task: Arc::from(spec.task.as_str()),
                                    attempt: spec.attempt,
                                    stderr,
                                    bytes: Arc::from(text.into_bytes().into_boxed_slice()),
                                });
                            }
                        }
                        Some(Heard::Controls(lines)) => replay(lines, &on_usage, spec.on_control.as_ref()),
                        Some(Heard::End(end)) => break end,
                        // The router is gone (the run is ending): as if interrupted.
                        None => break AttemptEnd::stopped(asked.map_or(Stop::Interrupt, |(s, _)| s)),
                    },
                    s = wait_stop(&mut stop), if asked.is_none() => {
                        ops.stop(key.clone(), stop_why(s));
                        if !started {
                            // Never started: take it off the queue; a worker that took it
                            // meanwhile finds the stop, and its answer is a late one.
                            let mut b = lock(&book);
                            b.waiters.remove(&key);
                            b.settle_later(&spec.task, &key, None);
                            break AttemptEnd::stopped(s);
                        }
                        asked = Some((s, tokio::time::Instant::now()));
                    }
                    () = sleep_until_opt(answer_by) => {
                        // No answer while the broker is down proves nothing: wait on.
                        if !state.borrow_and_update().is_up() {
                            let _ = state.changed().await;
                            asked = asked.map(|(s, _)| (s, tokio::time::Instant::now()));
                            continue;
                        }
                        lock(&book).waiters.remove(&key);
                        break AttemptEnd::stopped(asked.map_or(Stop::Interrupt, |(s, _)| s));
                    }
                }
            };
            write_tails(&spec, &end_tails(&mut rx), &on_capture_failed);
            end
        })
    }
}

/// Tells a remote attempt's control lines to the attempt's readers, in the order its
/// worker read them, as a local attempt's readers are told while it runs: usage lines
/// become `usage_recorded`, session and flag lines go to the engine's sink. The lines
/// are checked again here (the worker sends only lines it accepted; anything else came
/// from somewhere else and is said in the log, never counted).
fn replay(lines: Vec<Value>, on_usage: &super::UsageReport, sink: Option<&super::control_lines::ControlSink>) {
    for line in lines {
        match line.get("pitboss").and_then(Value::as_str) {
            Some("usage") => match crate::core::usage::parse_usage(&line) {
                Ok(usage) => on_usage(Ok(usage)),
                Err(why) => tracing::warn!("broker: a remote usage line refused: {why}"),
            },
            Some("session" | "flag") => {
                if let Some(sink) = sink {
                    (sink.0)(line);
                }
            }
            _ => {}
        }
    }
}

/// Tails of a result's output that were too big for the log: the router leaves them
/// in the channel right after the end.
fn end_tails(rx: &mut mpsc::UnboundedReceiver<Heard>) -> Vec<(bool, String)> {
    let mut tails = Vec::new();
    while let Ok(heard) = rx.try_recv() {
        if let Heard::Output(stderr, text) = heard {
            tails.push((stderr, text));
        }
    }
    tails
}

/// Writes result tails to `output/TASK.ATTEMPT.stdout|stderr`.
fn write_tails(spec: &AttemptSpec, tails: &[(bool, String)], failed: &super::CaptureFailed) {
    let base = spec.file_base.clone().unwrap_or_else(|| attempt_key(&spec.task, spec.attempt));
    for (stderr, text) in tails {
        let (ext, stream) = if *stderr { ("stderr", CoreStream::Stderr) } else { ("stdout", CoreStream::Stdout) };
        let path = spec.output_dir.join(format!("{base}.{ext}"));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            failed(stream, format!("{}: {e}", path.display()));
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

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
