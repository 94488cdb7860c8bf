//! Issue 14, time travel: a time-travel checkpoint copies every task, so a task must
//! copy cheaply. Its pool is the run's one copy of the pool's name (a clone shares
//! it), and the task stays small (rare parts are boxed).

use std::path::Path;
use std::sync::Arc;

use pitboss::config;
use pitboss::core::decide::dispatch;
use pitboss::core::{step, Event, Input, RunState, StepContext, Task};

#[test]
fn tasks_started_on_one_pool_share_its_name() {
    let text = "[run]\nname = \"share\"\n[[pool]]\nname = \"pool-a\"\ncommand = [\"agent\"]\nconcurrency = 4\n\
                [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
    let workflow = config::parse(text, "share.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "share".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let ctx = StepContext { now_ms: 1, jitter: 0.5 };
    step(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx).unwrap();
    dispatch(&mut state, ctx).unwrap();
    let (a, b) = (state.tasks[0].pool.clone().unwrap(), state.tasks[1].pool.clone().unwrap());
    assert_eq!(&*a, "pool-a");
    assert!(Arc::ptr_eq(&a, &b), "each task got its own copy of the pool's name");
    // A snapshot keeps the names as text and reads them back the same.
    let json = serde_json::to_vec(&state).unwrap();
    let restored = RunState::from_snapshot_json(&json).unwrap();
    assert_eq!(state.tasks, restored.tasks);
}

#[test]
fn a_task_stays_small() {
    // 250,000 tasks per checkpoint: every 8 bytes here is 2 MB per copy.
    assert!(std::mem::size_of::<Task>() <= 288, "Task grew to {} bytes", std::mem::size_of::<Task>());
}
