//! `[[notify]]` hooks, fire-and-forget (DESIGN §12).
//!
//! The notifier is one more reader of the engine's committed records, beside the
//! front ends: it folds its own copy of the run's state ([`matching`]), and for each
//! record an entry's `on` matches it starts the entry's command with `{"on", "record",
//! "task"}` on stdin ([`hook`]). It never writes to the run: a hook's failure (it could
//! not start, exited non-zero, outlived its timeout) is a plain line in
//! `STATE_DIR/notify.log` and a count, never an event, a retry or a task's failure, so
//! a run's exit code and its log are the same with or without hooks.
//!
//! ```text
//! engine ─records─▶ Watcher (fold, match) ─Job─▶ lane queue (bounded) ─▶ hook process
//!                                                 └ full: oldest dropped, counted
//! ```
//!
//! Each entry is a *lane*: at most its `concurrency` hooks run at once, further jobs
//! wait in a queue of [`QUEUE`] (on overflow the oldest is dropped and logged), so a
//! slow webhook neither stalls a desktop notification nor grows without bound. The
//! engine hands records over an unbounded queue and never waits for this reader.
//! When the records end (the run stopped), jobs still queued may start until the
//! longest timeout of the entries has passed; every hook is killed at its own deadline,
//! so the notifier ends at most one timeout after the run.

mod hook;
pub mod matching;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::core::escape::escape_line;
use crate::core::text::iso;
use crate::core::workflow::NotifySpec;
use crate::core::RunState;
use crate::engine::fanout::Records;
use crate::io::clock::wall_ms;
use crate::io::fsutil::private_file;
use crate::io::guardian::{MANAGER_PID_ENV, RUN_ID_ENV};
use crate::io::journal::Record;
use matching::{Job, Watcher};

/// The file failures are written to, in the run folder.
pub const NOTIFY_LOG: &str = "notify.log";
/// Jobs one entry keeps waiting; past it the oldest waiting one is dropped.
pub const QUEUE: usize = 100;

/// What the notifier did over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Hooks started.
    pub started: u64,
    /// Hooks that could not start, exited non-zero or timed out.
    pub failed: u64,
    /// Jobs dropped: their queue was full, or the run ended before they could start.
    pub dropped: u64,
}

impl Report {
    /// One line for the operator when something went wrong, naming the log.
    pub fn note(&self, dir: &Path) -> Option<String> {
        let what = match (self.failed, self.dropped) {
            (0, 0) => return None,
            (failed, 0) => format!("{failed} notification hook(s) failed"),
            (0, dropped) => format!("{dropped} notification(s) were dropped"),
            (failed, dropped) => format!("{failed} notification hook(s) failed and {dropped} were dropped"),
        };
        Some(format!("{what}; see {}", dir.join(NOTIFY_LOG).display()))
    }
}

/// A run's hooks, ready to start once the engine exists.
pub struct Hooks {
    specs: Vec<NotifySpec>,
    state: RunState,
    first: Vec<Record>,
    dir: PathBuf,
}

impl Hooks {
    /// The hooks of the run in `dir` from `state` (the state the engine starts from),
    /// or `None` when its workflow has none. A new run's first record (`run_started`)
    /// was written before the engine started, so it is never published: it is read
    /// back here to be matched too.
    pub fn prepare(state: &RunState, resumed: bool, dir: &Path) -> Option<Hooks> {
        // The head: the specs of a lazily read run are not decoded for it (issue 14).
        if state.workflow.head().notify.is_empty() {
            return None;
        }
        let mut first = Vec::new();
        if !resumed {
            let _ = crate::io::segments::scan(dir, |record, _| {
                if first.is_empty() {
                    first.push(record);
                }
                Ok(())
            });
        }
        let specs = state.workflow.head().notify.clone();
        Some(Hooks { specs, state: state.clone(), first, dir: dir.to_path_buf() })
    }

    /// Starts the notifier on `records`: the engine's committed batches from the
    /// prepared state on.
    pub fn start(self, records: Records) -> Notifier {
        let dir = self.dir.clone();
        Notifier { task: start(self.specs, self.state, self.first, records, self.dir), dir }
    }
}

/// A running notifier.
pub struct Notifier {
    task: JoinHandle<Report>,
    dir: PathBuf,
}

/// Starts serving `specs` on `records` from `state`; `first` are records `state`
/// already holds that should still notify.
fn start(
    specs: Vec<NotifySpec>,
    state: RunState,
    first: Vec<Record>,
    records: Records,
    dir: PathBuf,
) -> JoinHandle<Report> {
    // The marks the guardian sweeps for: a hook outliving a crashed manager is ended
    // with its workers.
    let env = vec![
        (RUN_ID_ENV.to_string(), state.run_id.clone()),
        (MANAGER_PID_ENV.to_string(), std::process::id().to_string()),
        ("PITBOSS_STATE_DIR".to_string(), dir.display().to_string()),
    ];
    let watcher = Watcher::new(&specs, state);
    let lanes = specs.into_iter().map(|spec| Lane { spec, queue: VecDeque::new(), running: 0 }).collect();
    let log = NotifyLog { path: dir.join(NOTIFY_LOG) };
    let run = Run { lanes, env, log, hooks: JoinSet::new(), report: Report::default(), closing: None };
    tokio::spawn(run.serve(watcher, first, records))
}

impl Notifier {
    /// Waits for the notifier to end (the records end first: the engine stopped) and
    /// says on stderr what failed, if anything.
    pub async fn finish(self) -> Report {
        let report = self.task.await.unwrap_or_default();
        if let Some(note) = report.note(&self.dir) {
            eprintln!("pitboss: {note}");
        }
        report
    }
}

/// One `[[notify]]` entry's hooks.
struct Lane {
    spec: NotifySpec,
    queue: VecDeque<Job>,
    running: usize,
}

struct Run {
    lanes: Vec<Lane>,
    env: Vec<(String, String)>,
    log: NotifyLog,
    hooks: JoinSet<(usize, Job, Result<(), String>)>,
    report: Report,
    /// Once the records ended: after this nothing new starts.
    closing: Option<Instant>,
}

impl Run {
    async fn serve(mut self, mut watcher: Watcher, first: Vec<Record>, mut records: Records) -> Report {
        for record in &first {
            for job in watcher.observe_folded(record) {
                self.submit(job);
            }
        }
        let mut open = true;
        loop {
            let closing = self.closing;
            tokio::select! {
                // Finished hooks first, so a slot is free before the next record's jobs.
                biased;
                Some(done) = self.hooks.join_next(), if !self.hooks.is_empty() => {
                    if let Ok((lane, job, outcome)) = done {
                        self.lanes[lane].running -= 1;
                        if let Err(why) = outcome {
                            self.report.failed += 1;
                            self.log.write(&self.lanes[lane].spec, &job, &why);
                        }
                        self.start_waiting(lane);
                    }
                }
                batch = records.recv(), if open => match batch {
                    Some(batch) => {
                        for record in batch.iter() {
                            let (jobs, trouble) = watcher.observe(record);
                            if let Some(why) = trouble {
                                self.log.line(&why);
                            }
                            for job in jobs {
                                self.submit(job);
                            }
                        }
                    }
                    None => {
                        open = false;
                        let longest = self.lanes.iter().map(|l| l.spec.timeout_ms).max().unwrap_or(0);
                        self.closing = Some(Instant::now() + Duration::from_millis(longest));
                    }
                },
                () = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() && self.waiting() > 0 => {
                    self.drop_waiting();
                }
            }
            if !open && self.hooks.is_empty() && self.waiting() == 0 {
                return self.report;
            }
        }
    }

    fn waiting(&self) -> usize {
        self.lanes.iter().map(|l| l.queue.len()).sum()
    }

    /// Starts `job` now if its lane has room, else queues it (dropping the oldest
    /// waiting job of a full queue).
    fn submit(&mut self, job: Job) {
        let lane = job.entry;
        let Some(l) = self.lanes.get_mut(lane) else { return };
        if l.queue.len() >= QUEUE {
            if let Some(old) = l.queue.pop_front() {
                self.report.dropped += 1;
                let why = format!("dropped: {QUEUE} notifications were waiting for this hook");
                self.log.write(&self.lanes[lane].spec, &old, &why);
            }
        }
        self.lanes[lane].queue.push_back(job);
        self.start_waiting(lane);
    }

    /// Starts waiting jobs of `lane` while it has room (and the run is not past its
    /// closing time).
    fn start_waiting(&mut self, lane: usize) {
        let now = Instant::now();
        if self.closing.is_some_and(|c| now >= c) {
            return;
        }
        while self.lanes[lane].running < self.lanes[lane].spec.concurrency {
            let Some(job) = self.lanes[lane].queue.pop_front() else { return };
            let spec = &self.lanes[lane].spec;
            let timeout = Duration::from_millis(spec.timeout_ms);
            let deadline = match self.closing {
                Some(closing) => (now + timeout).min(closing),
                None => now + timeout,
            };
            let argv = spec.command.clone();
            let env = self.env.clone();
            let input = job.input.to_string().into_bytes();
            self.lanes[lane].running += 1;
            self.report.started += 1;
            self.hooks.spawn(async move {
                let outcome = hook::run(hook::Hook { argv: &argv, env: &env, input, deadline, timeout }).await;
                (lane, job, outcome)
            });
        }
    }

    /// The run ended and the longest timeout has passed: what still waits is dropped.
    fn drop_waiting(&mut self) {
        for lane in 0..self.lanes.len() {
            while let Some(job) = self.lanes[lane].queue.pop_front() {
                self.report.dropped += 1;
                self.log.write(&self.lanes[lane].spec, &job, "dropped: the run ended before it could start");
            }
        }
    }
}

/// `STATE_DIR/notify.log`: one plain line per failure, created (0600) at the first.
struct NotifyLog {
    path: PathBuf,
}

impl NotifyLog {
    fn write(&self, spec: &NotifySpec, job: &Job, why: &str) {
        let program = spec.command.first().map_or("", String::as_str);
        let task = job.task.as_deref().map(|t| format!(" task={t}")).unwrap_or_default();
        self.line(&format!("on={} seq={}{task} {program}: {why}", job.on, job.seq));
    }

    fn line(&self, text: &str) {
        let line = format!("{} {}\n", iso(wall_ms()), escape_line(text));
        let written =
            private_file().append(true).create(true).open(&self.path).and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;
    use crate::core::Event;

    fn state() -> RunState {
        let text = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n";
        let workflow = crate::config::parse(text, "wf.toml", Path::new("/")).expect("valid");
        RunState::new("r".into(), Arc::new(workflow))
    }

    fn spec(script: &str, timeout_ms: u64) -> NotifySpec {
        NotifySpec {
            on: vec!["run_finished".into()],
            command: vec!["sh".into(), "-c".into(), script.into()],
            timeout_ms,
            concurrency: 1,
        }
    }

    /// Feeds `n` matching records in one batch, ends the stream, and waits (bounded)
    /// for the notifier to end.
    async fn notify_n(spec: NotifySpec, n: u64, dir: &Path) -> Report {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = start(vec![spec], state(), Vec::new(), rx, dir.to_path_buf());
        let notifier = Notifier { task, dir: dir.to_path_buf() };
        let batch: Vec<Record> =
            (0..n).map(|seq| Record { seq, ts: 1, event: Event::RunFinished { success: true } }).collect();
        tx.send(Arc::from(batch)).expect("notifier listens");
        drop(tx);
        tokio::time::timeout(Duration::from_secs(60), notifier.finish()).await.expect("the notifier ends")
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_job_and_the_end_of_the_run_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let n = QUEUE as u64 + 5;
        let report = notify_n(spec("cat >/dev/null; sleep 5", 300), n, dir.path()).await;
        // One runs (concurrency 1), QUEUE wait, 4 are pushed out by newer ones; the
        // run's end gives the waiting ones the 300 ms timeout, then drops them.
        assert!(report.started >= 1 && report.started <= 3, "{report:?}");
        assert_eq!(report.started + report.dropped, n, "{report:?}");
        assert_eq!(report.failed, report.started, "each hook timed out: {report:?}");
        let log = std::fs::read_to_string(dir.path().join(NOTIFY_LOG)).unwrap();
        assert_eq!(log.matches("notifications were waiting for this hook").count(), 4, "{log}");
        assert!(
            log.contains("on=run_finished seq=1 sh: dropped: 100 notifications were waiting"),
            "oldest first:\n{log}"
        );
        assert!(log.contains("dropped: the run ended before it could start"), "{log}");
        assert!(log.contains("timed out after 300ms"), "{log}");
    }

    #[tokio::test]
    async fn hooks_of_one_entry_run_at_most_its_concurrency_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger");
        // Each hook notes its start and end; with concurrency 1 they never overlap.
        let script = format!("cat >/dev/null; echo start >> {0}; sleep 0.05; echo end >> {0}", ledger.display());
        let mut one = spec(&script, 10_000);
        one.on = vec!["run_finished".into()];
        let report = notify_n(one, 4, dir.path()).await;
        assert_eq!(report, Report { started: 4, failed: 0, dropped: 0 });
        let text = std::fs::read_to_string(&ledger).unwrap();
        assert_eq!(text, "start\nend\n".repeat(4));
    }
}
