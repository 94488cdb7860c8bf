//! Gates in the engine itself: a cancel during `validating` ends the gate's real
//! process (checked by pid), and on paused time a check program's timeout and a
//! review's retries happen at their exact virtual times (a scripted runner stands in
//! for the processes; the engine, supervisor, core and clock are the real ones).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss::config;
use pitboss::core::decide::Outcome;
use pitboss::core::{Event, Input, RunState, SmallOutput, TaskStateName};
use pitboss::engine::{Ending, Engine, EngineConfig, World};
use pitboss::io::clock::{Clock, SystemClock, TokioClock};
use pitboss::io::runner::{AttemptEnd, AttemptFuture, AttemptJob, LocalRunner, Runner};
use pitboss::io::store::MemoryStore;
use serde_json::{json, Value};

const T0: u64 = 1_800_000_000_000;

/// An engine for `workflow` on `runner` and `clock`, with its store and output folder.
fn engine(workflow: &str, runner: Arc<dyn Runner>, clock: Arc<dyn Clock>, dir: &Path) -> (Engine, MemoryStore) {
    let wf = config::parse(workflow, "test.toml", dir).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let store =
        MemoryStore::starting_with(T0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let config = EngineConfig {
        state_dir: dir.to_path_buf(),
        output_dir: dir.join("output"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, World { clock, runner });
    engine.handle().send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    (engine, store)
}

fn events(store: &MemoryStore) -> Vec<(u64, Value)> {
    let records = store.records.lock().unwrap().clone();
    records.iter().map(|r| (r.ts.saturating_sub(T0), serde_json::to_value(&r.event).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_validating_ends_the_gates_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("output")).expect("output folder");
    let pidfile = dir.path().join("gate.pid");
    let gate = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
    let workflow = format!(
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo '{{}}'\"]\n\
         [[task]]\nid = \"t\"\ngates = [{{ command = [\"sh\", \"-c\", {}] }}]\n",
        common::toml_string(&gate)
    );
    let (engine, store) = engine(&workflow, Arc::new(LocalRunner::new()), Arc::new(SystemClock), dir.path());
    let handle = engine.handle();
    let run = tokio::spawn(engine.run(std::future::pending()));
    let seen = tokio::task::spawn_blocking(move || {
        common::wait_for(common::deadline(), || std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n')))
            .then(|| std::fs::read_to_string(&pidfile).ok())
            .flatten()
    });
    let pid: i32 = seen.await.unwrap().expect("the gate's process started").trim().parse().expect("a pid");
    let _guard = common::KillOnPanic::new(&[pid as u32]);
    assert!(common::alive(pid), "the gate runs");
    handle.send(Input::Cancel { task: "t".into(), reason: "operator".into() });
    let ended = tokio::time::timeout(common::deadline(), run).await.expect("the run ends after the cancel");
    let (state, ending) = ended.unwrap().expect("engine");
    assert_eq!(ending, Ending::Finished);
    assert_eq!(state.tasks[0].state.name(), TaskStateName::Cancelled);
    assert!(common::wait_for(common::deadline(), || !common::alive(pid)), "the gate's process {pid} was ended");
    let kinds: Vec<String> = events(&store).iter().map(|(_, e)| e["type"].as_str().unwrap().to_string()).collect();
    assert!(!kinds.iter().any(|k| k.starts_with("gate_")), "a stopped gate gives no verdict: {kinds:?}");
}

/// A runner whose processes answer from a script by name (`t` is the worker, `t.g1`
/// the first gate's process, `t.g1.r2` its second review try): a result after a
/// delay, or never.
struct Scripted {
    answers: HashMap<String, (u64, Option<Value>)>,
    started: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Runner for Scripted {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let (delay, answer) = self.answers.get(&job.spec.task).cloned().unwrap_or((0, Some(json!({}))));
        let started = self.started.clone();
        Box::pin(async move {
            let AttemptJob { spec, mut stop, on_spawn, .. } = job;
            started.lock().unwrap().push((spec.task.clone(), 0));
            on_spawn(4242);
            let work = async {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                match answer {
                    Some(result) => AttemptEnd::Outcome(Outcome::Success {
                        result,
                        exit_code: Some(0),
                        duration_ms: delay,
                        output: SmallOutput::default(),
                    }),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                end = work => end,
                why = async { stop.wait_for(|s| s.is_some()).await.ok().and_then(|s| *s) } => {
                    AttemptEnd::stopped(why.unwrap_or(pitboss::io::runner::Stop::Interrupt))
                }
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_that_hangs_fails_at_exactly_its_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answers = HashMap::from([("t".to_string(), (100, Some(json!({"ok": 1})))), ("t.g1".to_string(), (0, None))]);
    let runner = Scripted { answers, started: Arc::default() };
    let workflow = "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"w\"]\n\
                    [[task]]\nid = \"t\"\ngates = [{ command = [\"check\"], timeout = \"5s\" }]\n";
    let (engine, store) = engine(workflow, Arc::new(runner), Arc::new(TokioClock::starting_at(T0)), dir.path());
    let (state, _) = engine.run(std::future::pending()).await.expect("engine");
    let all = events(&store);
    let (at, failed) = all.iter().find(|(_, e)| e["type"] == "gate_failed").expect("the gate failed");
    assert_eq!(*at, 100 + 5_000, "at the attempt's end plus the gate's timeout");
    assert_eq!(failed["duration_ms"], 5_000);
    assert!(failed["error"].as_str().unwrap().contains("timed out after 5.0s"), "{failed}");
    assert_eq!(state.tasks[0].state.name(), TaskStateName::DeadLettered);
}

#[tokio::test(start_paused = true)]
async fn a_review_that_answers_nonsense_is_retried_then_could_not_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answers = HashMap::from([
        ("t".to_string(), (0, Some(json!({"ok": 1})))),
        ("t.g1".to_string(), (10, Some(json!("looks fine to me")))),
        ("t.g1.r2".to_string(), (10, Some(json!({"score": "high"})))),
    ]);
    let started = Arc::new(Mutex::new(Vec::new()));
    let runner = Scripted { answers, started: started.clone() };
    let workflow = "[defaults]\nretry = { max_attempts = 1 }\n\
                    [[pool]]\nname = \"p\"\ncommand = [\"w\"]\n[[pool]]\nname = \"rev\"\ncommand = [\"r\"]\n\
                    [[task]]\nid = \"t\"\npool = \"p\"\n\
                    gates = [{ review = \"rev\", retry = { max_attempts = 2, initial = \"3s\", jitter = false } }]\n";
    let (engine, store) = engine(workflow, Arc::new(runner), Arc::new(TokioClock::starting_at(T0)), dir.path());
    engine.run(std::future::pending()).await.expect("engine");
    let all = events(&store);
    let (at, error) = all.iter().find(|(_, e)| e["type"] == "gate_error").expect("the gate could not run");
    assert_eq!(*at, 10 + 3_000 + 10, "two tries with the review's backoff between");
    let reason = error["error"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "gate 1 (review) could not run: the reviewer on pool \"rev\" gave no usable answer in 2 tries"
        ),
        "{reason}"
    );
    assert!(!all.iter().any(|(_, e)| e["type"] == "gate_failed"), "no verdict");
    let names: Vec<String> = started.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, ["t", "t.g1", "t.g1.r2"]);
}

#[tokio::test(start_paused = true)]
async fn a_run_stopped_while_validating_runs_the_gate_again_on_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflow = "[[pool]]\nname = \"p\"\ncommand = [\"w\"]\n\
                    [[task]]\nid = \"t\"\ngates = [{ command = [\"check\"], timeout = \"1h\" }]\n";
    // First manager: the gate hangs; the run is stopped 10s in.
    let answers = HashMap::from([("t".to_string(), (100, Some(json!({"ok": 1})))), ("t.g1".to_string(), (0, None))]);
    let first = Scripted { answers, started: Arc::default() };
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let (engine, store) = engine(workflow, Arc::new(first), clock.clone(), dir.path());
    let stop = tokio::time::sleep(Duration::from_secs(10));
    let (state, ending) = engine
        .run(async move {
            stop.await;
            "test stop".to_string()
        })
        .await
        .expect("engine");
    assert_eq!(ending, Ending::Interrupted);
    assert_eq!(state.tasks[0].state.name(), TaskStateName::Validating, "a stopped gate gives no verdict");
    // The log folds to that state; a second manager runs the gate again, which passes.
    let records = store.records.lock().unwrap().clone();
    let mut folded = RunState::from_first(&records[0].event).expect("state");
    for r in &records[1..] {
        folded.apply(&r.event, r.ts).expect("the log folds");
    }
    assert_eq!(folded.tasks, state.tasks);
    let started = Arc::new(Mutex::new(Vec::new()));
    let second = Scripted { answers: HashMap::new(), started: started.clone() };
    let config = EngineConfig {
        state_dir: dir.path().to_path_buf(),
        output_dir: dir.path().join("output"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let world = World { clock, runner: Arc::new(second) };
    let resumed = Engine::new(folded, Box::new(store.clone()), config, world);
    resumed.handle().send(Input::Start { pid: 2, version: "test".into(), resumed: true });
    let (state, ending) = resumed.run(std::future::pending()).await.expect("engine");
    assert_eq!(ending, Ending::Finished);
    assert_eq!(state.tasks[0].state.name(), TaskStateName::Completed);
    assert_eq!(state.tasks[0].attempts, 1, "the attempt was not spent again");
    let names: Vec<String> = started.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, ["t.g1"], "only the gate ran again, not the worker");
}

/// A worker pool `p` and a reviewer pool `rev` whose breaker opens at 2 failures in a
/// minute; task `t` has one review gate tried twice (3s apart).
const REVIEWED: &str = "[defaults]\nretry = { max_attempts = 1 }\n\
    [[pool]]\nname = \"p\"\ncommand = [\"w\"]\n[[pool]]\nname = \"rev\"\ncommand = [\"r\"]\n\
    breaker = { failures = 2, window = \"1m\", cooldown = \"1h\", half_open = 1 }\n\
    [[task]]\nid = \"t\"\npool = \"p\"\n\
    gates = [{ review = \"rev\", min_score = 7, timeout = \"5s\", retry = { max_attempts = 2, initial = \"3s\", jitter = false } }]\n";

#[tokio::test(start_paused = true)]
async fn reviewer_failures_open_the_reviewer_pools_breaker() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The first try answers nonsense, the second hangs until the gate's timeout.
    let answers = HashMap::from([
        ("t".to_string(), (0, Some(json!({"ok": 1})))),
        ("t.g1".to_string(), (10, Some(json!("looks fine to me")))),
        ("t.g1.r2".to_string(), (0, None)),
    ]);
    let runner = Scripted { answers, started: Arc::default() };
    let (engine, store) = engine(REVIEWED, Arc::new(runner), Arc::new(TokioClock::starting_at(T0)), dir.path());
    let (state, _) = engine.run(std::future::pending()).await.expect("engine");
    let all = events(&store);
    let opened = all.iter().find(|(_, e)| e["type"] == "breaker_opened");
    let Some((_, opened)) = opened else { panic!("no breaker_opened: {all:?}") };
    assert_eq!(opened["pool"], "rev", "{opened}");
    let error = all.iter().find(|(_, e)| e["type"] == "gate_error").map(|(_, e)| e).expect("the gate could not run");
    assert_eq!(error["reviewer_failures"], json!(["worker", "timeout"]), "{error}");
    // The fold rebuilds the breaker from the log alone.
    let records = store.records.lock().unwrap().clone();
    let mut folded = RunState::from_first(&records[0].event).expect("state");
    for r in &records[1..] {
        folded.apply(&r.event, r.ts).expect("the log folds");
    }
    assert!(folded.pools[1].breaker.is_open(), "replay opens the reviewer's breaker");
    assert_eq!(folded.pools, state.pools);
    assert!(!folded.pools[0].breaker.is_open(), "the worker's pool is not blamed");
}

#[tokio::test(start_paused = true)]
async fn a_low_review_score_is_a_verdict_and_leaves_the_reviewer_pools_breaker_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let low = json!({"score": 2, "critique": "thin"});
    let answers = HashMap::from([
        ("t".to_string(), (0, Some(json!({"ok": 1})))),
        ("t.g1".to_string(), (10, Some(json!("nonsense")))),
        ("t.g1.r2".to_string(), (10, Some(low))),
    ]);
    let runner = Scripted { answers, started: Arc::default() };
    let (engine, store) = engine(REVIEWED, Arc::new(runner), Arc::new(TokioClock::starting_at(T0)), dir.path());
    let (state, _) = engine.run(std::future::pending()).await.expect("engine");
    let all = events(&store);
    let failed = all.iter().find(|(_, e)| e["type"] == "gate_failed").map(|(_, e)| e).expect("a low score fails");
    assert_eq!(failed["score"], 2);
    assert_eq!(failed["reviewer_failures"], json!(["worker"]), "only the nonsense try counts: {failed}");
    assert!(!all.iter().any(|(_, e)| e["type"] == "breaker_opened"), "one failure of two: {all:?}");
    assert_eq!(state.pools[1].breaker.recent_failures.len(), 1, "the nonsense answer was counted");
}
