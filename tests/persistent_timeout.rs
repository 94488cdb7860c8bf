//! A task's timeout runs from its dispatch, also when it waits inside a persistent
//! pool for a process (more tasks than processes × `per_worker`, as after a live
//! concurrency raise). The engine, its supervisor, the pool and the clock are the
//! real ones, with a real `sh` worker: the pool's only process is stuck on one task,
//! and the task waiting behind it must time out by its own timeout, while the stuck
//! one still holds the process (then the test cancels the stuck one). Real time, not
//! paused: tokio's paused clock jumps ahead whenever the runtime waits for a real
//! process, which would make the order of the two ends a race.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pitboss::config;
use pitboss::core::{Event, Input, RunState};
use pitboss::engine::{Engine, EngineConfig, World};
use pitboss::io::clock::SystemClock;
use pitboss::io::runner::LocalRunner;
use pitboss::io::store::MemoryStore;
use serde_json::Value;

#[tokio::test]
async fn a_task_waiting_for_a_persistent_process_times_out_from_its_dispatch() {
    let dir = tempfile::tempdir().expect("temp dir");
    // One process, one task at a time; it never answers (a stuck agent).
    let workflow = "[run]\nkill_grace = \"100ms\"\n[defaults]\nretry = { max_attempts = 1 }\n\
                    [[pool]]\nname = \"p\"\nmode = \"persistent\"\nconcurrency = 1\n\
                    command = [\"sh\", \"-c\", \"while read -r line; do sleep 1000; done\"]\n\
                    [[task]]\nid = \"stuck\"\ntimeout = \"20s\"\n\
                    [[task]]\nid = \"behind\"\ntimeout = \"1s\"\n";
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let t0 = pitboss::io::clock::wall_ms();
    let store =
        MemoryStore::starting_with(t0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let world = World { clock: Arc::new(SystemClock), runner: Arc::new(LocalRunner::new()) };
    let config = EngineConfig {
        state_dir: dir.path().to_path_buf(),
        output_dir: dir.path().to_path_buf(),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    let handle = engine.handle();
    // Once `behind` has ended, the stuck task is cancelled, so the run ends.
    let mut feed = handle.subscribe();
    let canceller = handle.clone();
    tokio::spawn(async move {
        while let Some(batch) = feed.recv().await {
            let behind_ended =
                batch.iter().any(|r| matches!(&r.event, Event::AttemptFailed { task, .. } if task == "behind"));
            if behind_ended {
                canceller.send(Input::Cancel { task: "stuck".into(), reason: "test".into() });
            }
        }
    });
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    // A live raise: the engine now dispatches two tasks to a pool of one process.
    handle.send(Input::SetConcurrency { pool: "p".into(), concurrency: 2 });
    let ran = tokio::time::timeout(Duration::from_secs(60), engine.run(std::future::pending())).await;
    let records = store.records.lock().expect("records").clone();
    let events: Vec<(u64, Value)> =
        records.iter().map(|r| (r.ts - t0, serde_json::to_value(&r.event).expect("json"))).collect();
    let summary: Vec<String> = events.iter().map(|(t, e)| format!("{t} {} {}", e["type"], e["task"])).collect();
    ran.unwrap_or_else(|_| panic!("the run did not end within 60 s: {summary:#?}")).expect("engine failed");

    let started: Vec<&str> =
        events.iter().filter(|(_, e)| e["type"] == "attempt_started").filter_map(|(_, e)| e["task"].as_str()).collect();
    assert_eq!(started, ["stuck", "behind"], "both dispatched at once");
    let ends: Vec<(&str, &str)> = events
        .iter()
        .filter(|(_, e)| matches!(e["type"].as_str(), Some("attempt_failed" | "task_cancelled")))
        .map(|(_, e)| (e["task"].as_str().unwrap_or(""), e["class"].as_str().unwrap_or("cancelled")))
        .collect();
    assert_eq!(
        ends,
        [("behind", "timeout"), ("stuck", "cancelled")],
        "the waiting task timed out while the stuck one held the process: {summary:#?}"
    );
    let failed_at = events.iter().find(|(_, e)| e["type"] == "attempt_failed").map(|(t, _)| *t).unwrap_or(0);
    assert!(failed_at >= 1_000, "not before its timeout: {summary:#?}");
}
