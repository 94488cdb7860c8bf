//! Recovery end to end (issue 16 item 3, 5, 6): the real `pitboss run --broker`, real
//! `pitboss worker` processes and a real broker. Every test body takes a
//! [`Broker`], so each broker is one row of `broker_suite!`: Redis (a private
//! `redis-server` per test) and RabbitMQ (the shared server, pool names unique per
//! test; a private node for the test that restarts the broker). A machine without
//! the service skips loudly (see broker_common); under `CI=true` it fails.
//!
//! Every process a test starts is held by [`Procs`] and killed by pid at the end,
//! also on panic. Waits poll the log or the marker files with a deadline.

mod broker_common;
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use broker_common::rows::{Broker, Cleaner, Rabbit, Redis};
use broker_common::wait_until;
use common::{deadline, read_events, Scratch};
use pitboss::io::broker::url::BrokerUrl;
use pitboss::io::broker::{open_worker_transport, WorkerScope};
use serde_json::Value;

/// One module of tests per broker: `broker_suite!(name, Type)`.
macro_rules! broker_suite {
    ($name:ident, $broker:ty) => {
        mod $name {
            use super::*;

            fn broker() -> Option<$broker> {
                <$broker>::start()
            }

            #[test]
            fn two_workers_run_each_of_200_tasks_exactly_once() {
                if let Some(b) = broker() {
                    each_task_once(&b);
                }
            }

            #[test]
            fn a_sigkilled_workers_task_completes_on_the_other_once_and_is_not_spent() {
                if let Some(b) = broker() {
                    worker_killed_mid_task(&b);
                }
            }

            #[test]
            fn a_broker_restarted_mid_run_loses_nothing() {
                if let Some(mut b) = <$broker>::start_own() {
                    broker_restarted(&mut b);
                }
            }

            #[test]
            fn a_sigkilled_manager_resumes_and_takes_the_results_written_meanwhile() {
                if let Some(b) = broker() {
                    manager_killed_and_resumed(&b);
                }
            }
        }
    };
}

broker_suite!(redis, Redis);
broker_suite!(rabbitmq, Rabbit);

/// Processes a test started, killed by pid (SIGKILL) and reaped on drop.
#[derive(Default)]
struct Procs(Vec<Child>);

impl Procs {
    fn hold(&mut self, child: Child) -> u32 {
        let pid = child.id();
        self.0.push(child);
        pid
    }

    /// SIGKILLs one of them now.
    fn kill(&mut self, pid: u32) {
        if let Some(child) = self.0.iter_mut().find(|c| c.id() == pid) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (with the test deadline) for `pid` to exit; its exit code.
    fn exit_code(&mut self, pid: u32) -> Option<i32> {
        let child = self.0.iter_mut().find(|c| c.id() == pid).expect("a held process");
        let mut code = None;
        let ended = wait_until(deadline(), || match child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        });
        assert!(ended, "process {pid} did not exit within {:?}", deadline());
        code
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The folder of one test: the workflow, the run's state, the tasks' marker files;
/// and its pool, named for this test alone (an AMQP pool queue is shared by every
/// run of that pool, so tests running at once would serve each other's jobs).
struct Setup {
    scratch: Scratch,
    marks: PathBuf,
    url: String,
    pool: String,
    cleaner: Cleaner,
}

impl Drop for Setup {
    fn drop(&mut self) {
        (self.cleaner)(self.run_id().as_deref(), &self.pool);
    }
}

/// The command each worker runs: appends its pid to `MARKS/ID.start`, waits while
/// `MARKS/ID.hold` exists (a task held mid-run), appends to `MARKS/ID.count` when it
/// completes, and prints its result. `{id}` is a separate argument (no placeholder
/// inside a `sh -c` script).
const SCRIPT: &str = r#"echo $$ >> "$1/$2.start"; while [ -e "$1/$2.hold" ]; do sleep 0.05; done; echo . >> "$1/$2.count"; printf '{"status":"completed","result":{"id":"%s"}}\n' "$2""#;

impl Setup {
    fn new(b: &dyn Broker) -> Setup {
        let scratch = Scratch::new();
        let marks = scratch.path().join("marks");
        std::fs::create_dir(&marks).unwrap();
        let pool = format!("p-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Setup { scratch, marks, url: b.url(), pool, cleaner: b.cleaner() }
    }

    /// The run's id, from its log's first record (read by hand: this runs in Drop,
    /// also while a test panics).
    fn run_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir().join("events.jsonl")).ok()?;
        let first: Value = serde_json::from_str(text.lines().next()?).ok()?;
        first["event"]["run_id"].as_str().map(str::to_string)
    }

    /// A workflow of `tasks` tasks `t0…` on the test's pool, with a short lease.
    fn workflow(&self, tasks: usize) -> PathBuf {
        let mut wf = format!(
            "[run]\nbroker = \"{}\"\nbroker_lease = \"2s\"\n[defaults]\ntimeout = \"2m\"\n\
             retry = {{ max_attempts = 1 }}\n[[pool]]\nname = \"{}\"\nconcurrency = 8\n",
            self.url, self.pool
        );
        for i in 0..tasks {
            wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
        }
        self.scratch.write("wf.toml", &wf)
    }

    fn dir(&self) -> PathBuf {
        self.scratch.path().join("run")
    }

    fn pitboss(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitboss"));
        cmd.env("PITBOSS_HOME", self.scratch.path())
            .env_remove("PITBOSS_BROKER_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// `pitboss run --headless --broker URL`, its stderr in `manager-N.err`.
    fn manager(&self, procs: &mut Procs, wf: &Path) -> u32 {
        let mut cmd = self.pitboss();
        cmd.args(["run", "--headless", "--broker", &self.url, "--state-dir"]).arg(self.dir()).arg(wf);
        procs.hold(self.stderr_to(&mut cmd, "manager").spawn().expect("pitboss run starts"))
    }

    /// `pitboss resume DIR --headless`.
    fn resume(&self, procs: &mut Procs) -> u32 {
        let mut cmd = self.pitboss();
        cmd.arg("resume").arg(self.dir()).arg("--headless");
        procs.hold(self.stderr_to(&mut cmd, "resume").spawn().expect("pitboss resume starts"))
    }

    /// `pitboss worker --broker URL --pool POOL --concurrency 4 -- sh -c SCRIPT`.
    fn worker(&self, procs: &mut Procs, n: usize) -> u32 {
        self.worker_ttl(procs, n, "2s")
    }

    /// A worker whose registration lives `ttl`.
    fn worker_ttl(&self, procs: &mut Procs, n: usize, ttl: &str) -> u32 {
        let mut cmd = self.pitboss();
        cmd.args(["worker", "--broker", &self.url, "--pool", &self.pool, "--concurrency", "4", "--ttl", ttl, "--"])
            .args(["sh", "-c", SCRIPT, "_"])
            .arg(&self.marks)
            .arg("{id}");
        procs.hold(self.stderr_to(&mut cmd, &format!("worker{n}")).spawn().expect("pitboss worker starts"))
    }

    fn stderr_to<'c>(&self, cmd: &'c mut Command, name: &str) -> &'c mut Command {
        let path = self.scratch.path().join(format!("{name}.err"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        cmd.stderr(file)
    }

    /// True once the worker whose stderr is `name.err` has said it serves its pool,
    /// which it says after registering.
    fn serving(&self, name: &str) -> bool {
        std::fs::read_to_string(self.scratch.path().join(format!("{name}.err")))
            .is_ok_and(|text| text.contains("serving pool"))
    }

    /// Every process's stderr, for a failure's message.
    fn stderrs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.scratch.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "err") {
                let body = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: String =
                    body.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                text.push_str(&format!("--- {}\n{tail}\n", path.display()));
            }
        }
        text
    }

    /// Lines in task `id`'s marker file `kind` (`start` or `count`).
    fn marks(&self, id: &str, kind: &str) -> usize {
        std::fs::read_to_string(self.marks.join(format!("{id}.{kind}"))).map(|t| t.lines().count()).unwrap_or(0)
    }

    /// The pids task `id`'s command had, in the order it started.
    fn start_pids(&self, id: &str) -> Vec<i32> {
        let text = std::fs::read_to_string(self.marks.join(format!("{id}.start"))).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    fn hold(&self, id: &str) {
        std::fs::write(self.marks.join(format!("{id}.hold")), "").unwrap();
    }

    fn release(&self, id: &str) {
        std::fs::remove_file(self.marks.join(format!("{id}.hold"))).unwrap();
    }

    /// Polls the run's log until `done` holds of it; panics with the log's tail and
    /// every stderr past the deadline.
    #[track_caller]
    fn wait_log(&self, what: &str, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        let held = wait_until(deadline(), || {
            events = read_events(&self.dir());
            done(&events)
        });
        if !held {
            let tail: Vec<String> = events.iter().rev().take(20).map(Value::to_string).collect();
            panic!(
                "{what}: not within {:?}\nlog tail (newest first):\n{}\n{}",
                deadline(),
                tail.join("\n"),
                self.stderrs()
            );
        }
        events
    }

    #[track_caller]
    fn wait_marks(&self, what: &str, done: impl Fn(&Setup) -> bool) {
        assert!(wait_until(deadline(), || done(self)), "{what}: not within {:?}\n{}", deadline(), self.stderrs());
    }
}

/// True while `pid` runs (a zombie has ended).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn per_task(events: &[Value], kind: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for e in of(events, kind) {
        *n.entry(e["task"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    n
}

fn finished(events: &[Value]) -> bool {
    events.iter().any(|e| e["type"] == "run_finished")
}

/// Each of `tasks` tasks succeeded once in the log, and its command completed once.
#[track_caller]
fn assert_each_once(s: &Setup, events: &[Value], tasks: usize) {
    let succeeded = per_task(events, "attempt_succeeded");
    assert_eq!(succeeded.len(), tasks, "tasks that succeeded: {succeeded:?}\n{}", s.stderrs());
    let twice: Vec<_> = succeeded.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let runs: Vec<(usize, usize)> = (0..tasks).map(|i| (i, s.marks(&format!("t{i}"), "count"))).collect();
    let wrong: Vec<_> = runs.iter().filter(|(_, n)| *n != 1).collect();
    assert!(wrong.is_empty(), "(task, completed runs of its command) not once: {wrong:?}");
}

/// (a) 2 workers × 200 trivial tasks: each command ran once, one success each.
fn each_task_once(b: &dyn Broker) {
    let s = Setup::new(b);
    let mut procs = Procs::default();
    let wf = s.workflow(200);
    s.worker(&mut procs, 1);
    s.worker(&mut procs, 2);
    // Both registered before the run starts: 200 trivial tasks can finish before a
    // worker that is slow to start (a loaded box) has registered at all, and then
    // "both took part" would test the start-up race, not the sharing.
    s.wait_marks("both workers registered", |s| s.serving("worker1") && s.serving("worker2"));
    let manager = s.manager(&mut procs, &wf);
    assert_eq!(procs.exit_code(manager), Some(0), "{}", s.stderrs());
    let events = read_events(&s.dir());
    assert!(finished(&events), "{}", s.stderrs());
    assert_each_once(&s, &events, 200);
    for i in 0..200 {
        assert_eq!(s.marks(&format!("t{i}"), "start"), 1, "t{i}'s command started more than once");
    }
    // Both workers took part.
    let workers: std::collections::HashSet<&str> =
        of(&events, "attempt_spawned").iter().filter_map(|e| e["worker"].as_str()).collect();
    assert_eq!(workers.len(), 2, "workers that ran tasks: {workers:?}");
}

/// (b) kill -9 the worker running a held task: the task completes on the other
/// worker, once, its attempt not spent. On Redis the manager's lease takes it back
/// (`worker_lost` + `attempt_interrupted`) and publishes it again; on RabbitMQ the
/// broker hands the dead worker's delivery on by itself, and the manager must not
/// take it back too (both copies would run). The other worker starts once the
/// manager has logged the first one lost, so on RabbitMQ the lease has run out.
fn worker_killed_mid_task(b: &dyn Broker) {
    let s = Setup::new(b);
    let mut procs = Procs::default();
    let wf = s.workflow(4);
    s.hold("t0");
    let first = s.worker(&mut procs, 1);
    let manager = s.manager(&mut procs, &wf);
    // t0 runs on the first worker (the only one), held there.
    s.wait_marks("t0 started on the first worker", |s| s.marks("t0", "start") == 1);
    // The others' results are in first: a command that completed but whose worker
    // died before writing its result runs again (at-least-once), which is not what
    // this test is about.
    s.wait_log("t1..t3 succeeded", |e| per_task(e, "attempt_succeeded").len() == 3);
    // On RabbitMQ a worker acks a job after its result is confirmed: killed between
    // the two, the job is handed on and runs again.
    s.wait_marks("t1..t3 acked", |_| b.unacked(&s.pool).is_none_or(|n| n == 1));
    procs.kill(first);
    // Its command dies with it (the worker's guardian ends it, a moment later):
    // released before that, it could still complete there.
    let pid = s.start_pids("t0")[0];
    s.wait_marks("the killed worker's command ended", |_| !alive(pid));
    s.release("t0");
    let gone =
        of(&s.wait_log("t0 spawned", |e| !of(e, "attempt_spawned").is_empty()), "attempt_spawned")[0]["worker"].clone();
    s.wait_log("the first worker lost", |e| of(e, "worker_lost").iter().any(|l| l["worker"] == gone));
    s.worker(&mut procs, 2);
    s.wait_log("the run finished", finished);
    assert_eq!(procs.exit_code(manager), Some(0), "{}", s.stderrs());
    let events = read_events(&s.dir());
    assert_each_once(&s, &events, 4);
    assert_eq!(s.marks("t0", "start"), 2, "t0 started on both workers");
    let lost = of(&events, "worker_lost");
    let interrupted = of(&events, "attempt_interrupted");
    if b.redelivers() {
        assert!(!lost.iter().any(|e| e["task"] == "t0"), "the broker moved t0; the lease took it too: {lost:?}");
        assert!(interrupted.is_empty(), "{interrupted:?}");
    } else {
        assert!(lost.iter().any(|e| e["task"] == "t0"), "worker_lost for t0: {lost:?}");
        assert!(interrupted.iter().any(|e| e["task"] == "t0" && e["attempt"] == 1), "{interrupted:?}");
    }
    let success = of(&events, "attempt_succeeded").into_iter().find(|e| e["task"] == "t0").unwrap();
    assert_eq!(success["attempt"], 1, "the lost attempt was not spent: {success}");
}

/// (c) the broker restarts mid-run: the run finishes with nothing lost. Some jobs
/// must sit in the broker unread when it restarts: a phantom worker (registered for
/// 30 s, reading nothing) doubles the slots the manager sees while one real worker
/// holds four tasks across the restart and delivers their results afterwards; a
/// third comes after the restart. A restarted Redis is empty: the manager
/// republishes what is unfinished. A restarted RabbitMQ still has them: nothing is
/// republished, and the third worker reads them from the queue.
fn broker_restarted(b: &mut dyn Broker) {
    let s = Setup::new(b);
    let mut procs = Procs::default();
    let tasks = 12;
    let wf = s.workflow(tasks);
    for i in 0..tasks {
        s.hold(&format!("t{i}"));
    }
    s.worker(&mut procs, 2);
    s.wait_marks("the second worker registered", |s| s.serving("worker2"));
    let manager = s.manager(&mut procs, &wf);
    s.wait_marks("four tasks running on the second worker", |s| {
        (0..tasks).filter(|i| s.marks(&format!("t{i}"), "start") >= 1).count() >= 4
    });
    phantom_worker(&s);
    s.wait_log("eight attempts published", |e| of(e, "attempt_started").len() >= 8);
    b.bounce();
    let events = s.wait_log("broker_up after the restart", |e| !of(e, "broker_up").is_empty());
    for i in 0..tasks {
        s.release(&format!("t{i}"));
    }
    s.worker(&mut procs, 3);
    assert_eq!(procs.exit_code(manager), Some(0), "{}", s.stderrs());
    let up = of(&events, "broker_up")[0].clone();
    let events = read_events(&s.dir());
    assert!(finished(&events), "{}", s.stderrs());
    let succeeded = per_task(&events, "attempt_succeeded");
    assert_eq!(succeeded.len(), tasks, "{succeeded:?}\n{}", s.stderrs());
    assert!(succeeded.values().all(|n| *n == 1), "recorded twice: {succeeded:?}");
    let republished = up["republished"].as_u64().unwrap_or(0);
    if b.bounce_empties() {
        assert!(republished >= 4, "the unread jobs were republished: {up}");
    } else {
        assert_eq!(republished, 0, "the broker kept the jobs; nothing to republish: {up}");
    }
    // At-least-once: a job may run again, but every task completed.
    assert!((0..tasks).all(|i| s.marks(&format!("t{i}"), "count") >= 1), "a task never completed");
}

/// Registers a worker of the test's pool with 4 slots for 30 s that never reads a
/// job, and returns once the manager has logged it (on RabbitMQ a registration
/// reaches only a manager already listening, hence sent again until heard).
fn phantom_worker(s: &Setup) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let id = format!("phantom:{}:beef", std::process::id());
    let url = BrokerUrl::parse(&s.url).expect("the test's broker URL");
    let scope = WorkerScope { worker: id.clone(), pool: s.pool.clone() };
    let transport = open_worker_transport(&url, None, scope).expect("a worker transport");
    let mut registration = broker_common::suite::registration(&id, &s.pool);
    registration.concurrency = 4;
    registration.ttl_ms = 30_000;
    rt.block_on(transport.connect()).expect("the phantom connects");
    let mut sent: Option<std::time::Instant> = None;
    s.wait_log("the phantom worker registered", |e| {
        if sent.is_none_or(|at| at.elapsed() > std::time::Duration::from_millis(300)) {
            rt.block_on(transport.register(&registration)).expect("the phantom registers");
            sent = Some(std::time::Instant::now());
        }
        of(e, "worker_registered").iter().any(|r| r["worker"] == id.as_str())
    });
}

/// (d) kill -9 the manager while workers run; they finish during the gap; `pitboss
/// resume --headless` takes those results, once each.
fn manager_killed_and_resumed(b: &dyn Broker) {
    let s = Setup::new(b);
    let mut procs = Procs::default();
    let tasks = 12;
    let wf = s.workflow(tasks);
    for i in 0..tasks {
        s.hold(&format!("t{i}"));
    }
    s.worker(&mut procs, 1);
    s.worker(&mut procs, 2);
    let manager = s.manager(&mut procs, &wf);
    // Eight run (2 workers × 4 slots), held; the rest wait in the queue.
    s.wait_log("eight attempts spawned", |e| of(e, "attempt_spawned").len() >= 8);
    procs.kill(manager);
    for i in 0..tasks {
        s.release(&format!("t{i}"));
    }
    // The workers finish what they hold while no manager runs.
    s.wait_marks("the held tasks completed during the gap", |s| {
        (0..tasks).filter(|i| s.marks(&format!("t{i}"), "count") >= 1).count() >= 8
    });
    let resumed = s.resume(&mut procs);
    assert_eq!(procs.exit_code(resumed), Some(0), "{}", s.stderrs());
    let events = read_events(&s.dir());
    assert!(finished(&events), "{}", s.stderrs());
    assert_each_once(&s, &events, tasks);
    let interrupted = of(&events, "attempt_interrupted");
    assert!(interrupted.is_empty(), "a re-attached attempt was handed back: {interrupted:?}");
}
