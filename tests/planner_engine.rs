//! Held spawned tasks through the engine itself (real processes, the real core): a
//! headless engine does not stop while only held tasks are left; an operator's
//! approve (as the control socket and the TUI send it) runs the task, a reject
//! cancels it and skips what waits for it, and the run then finishes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pitboss::config;
use pitboss::core::{Event, Input, RunState, TaskStateName};
use pitboss::engine::{Ending, Engine, EngineConfig, World};
use pitboss::io::clock::SystemClock;
use pitboss::io::runner::LocalRunner;
use pitboss::io::store::MemoryStore;
use serde_json::Value;

fn engine(dir: &Path) -> (Engine, MemoryStore) {
    let spawn = r#"{"pitboss":"spawn","tasks":[{"id":"a","pool":"w"},{"id":"b","pool":"w"}]}"#;
    let planner = format!("cat >/dev/null; echo '{spawn}'; echo '{{\"planned\":true}}'");
    let ledger = dir.join("ledger");
    let worker = format!("cat >/dev/null; echo \"$PITBOSS_TASK_ID\" >> {}; echo '{{\"ok\":1}}'", ledger.display());
    let workflow = format!(
        "[planner]\nmax_children = 1\n{}{}[[task]]\nid = \"plan\"\npool = \"p\"\n[[task]]\nid = \"publish\"\npool = \"w\"\ndepends_on = [\"plan\"]\n",
        common::sh_pool("p", &planner, ""),
        common::sh_pool("w", &worker, ""),
    );
    let wf = config::parse(&workflow, "test.toml", dir).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let store =
        MemoryStore::starting_with(0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let config = EngineConfig {
        state_dir: dir.to_path_buf(),
        output_dir: dir.join("output"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    std::fs::create_dir_all(dir.join("output")).expect("output folder");
    let world = World { clock: Arc::new(SystemClock), runner: Arc::new(LocalRunner::new()) };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    engine.handle().send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    (engine, store)
}

fn kinds(store: &MemoryStore) -> Vec<(String, String)> {
    let records = store.records.lock().unwrap().clone();
    records
        .iter()
        .map(|r| {
            let e = serde_json::to_value(&r.event).unwrap();
            (e["type"].as_str().unwrap_or("").to_string(), e["task"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn ledger(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ledger")).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Runs the engine until `plan/b` is held and everything else that can run has; then
/// sends `answer` and returns how the run ended.
async fn held_then(answer: Input) -> (RunState, Ending, Vec<(String, String)>, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, store) = engine(dir.path());
    let handle = engine.handle();
    let run = tokio::spawn(engine.run(std::future::pending()));
    let watched = store.clone();
    let path = dir.path().to_path_buf();
    let blocked = tokio::task::spawn_blocking(move || {
        common::wait_for(common::deadline(), || {
            let k = kinds(&watched);
            k.iter().any(|(t, task)| t == "attempt_succeeded" && task == "plan/a") && ledger(&path).len() == 1
        })
    });
    assert!(blocked.await.unwrap(), "plan/a never ran: {:?}", kinds(&store));
    assert!(!run.is_finished(), "a blocked headless engine does not stop by itself");
    assert_eq!(ledger(dir.path()), ["plan/a"], "a held task's worker ran");
    handle.send(answer);
    let ended = tokio::time::timeout(common::deadline(), run).await.expect("the run ends after the answer");
    let (state, ending) = ended.unwrap().expect("engine");
    let ran = ledger(dir.path());
    (state, ending, kinds(&store), ran)
}

fn name(state: &RunState, id: &str) -> TaskStateName {
    state.tasks[state.task_index(id).expect("task")].state.name()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_held_child_runs_it_and_the_run_finishes() {
    let (state, ending, kinds, ran) = held_then(Input::Approve { task: "plan/b".into() }).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(name(&state, "plan/b"), TaskStateName::Completed);
    assert_eq!(name(&state, "publish"), TaskStateName::Completed);
    let at = |kind: &str, task: &str| kinds.iter().position(|(k, t)| k == kind && t == task);
    assert!(at("task_approved", "plan/b") < at("attempt_started", "plan/b"), "{kinds:?}");
    assert!(at("attempt_succeeded", "plan/b") < at("attempt_started", "publish"), "{kinds:?}");
    assert_eq!(ran, ["plan/a", "plan/b", "publish"]);
    let doc: Value = serde_json::to_value(state.tasks[state.task_index("plan/b").unwrap()].finding()).unwrap();
    assert_eq!(doc["rule"], "planner/max-children");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_a_held_child_cancels_it_skips_the_parents_dependents_and_the_run_finishes() {
    let (state, ending, _, ran) = held_then(Input::Reject { task: "plan/b".into(), reason: None }).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(name(&state, "plan/b"), TaskStateName::Cancelled);
    assert_eq!(name(&state, "publish"), TaskStateName::Skipped);
    assert_eq!(ran, ["plan/a"], "a rejected task or its parent's dependent ran");
}
