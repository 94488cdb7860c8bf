//! Issue 14: a clone of a `RunState` (a snapshot, a time-travel checkpoint) shares the
//! graph tables that only a growing DAG changes, and a growth after the clone copies
//! them for the grown state alone, leaving the clone as it was.

use std::path::Path;

use pitboss::config;
use pitboss::core::{Event, RunState};

fn state() -> RunState {
    let toml = "[run]\nname = \"g\"\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n\
                [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n";
    let workflow = config::parse(toml, "g.toml", Path::new(".")).expect("test workflow is valid");
    RunState::from_first(&Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) })
        .expect("state")
}

#[test]
fn a_clone_shares_the_graph_tables_instead_of_copying_them() {
    let state = state();
    let clone = state.clone();
    assert!(std::ptr::eq(&state.dependents, &clone.dependents), "dependents copied");
    assert!(std::ptr::eq(&state.dependencies, &clone.dependencies), "dependencies copied");
    assert!(std::ptr::eq(&state.eligible, &clone.eligible), "eligible copied");
}

#[test]
fn a_submit_after_a_clone_grows_only_the_grown_state() {
    let mut grown = state();
    let before = grown.clone();
    let mut c = grown.workflow.tasks[0].clone();
    c.id = "c".into();
    c.depends_on = vec!["b".into()];
    let tasks = vec![c];
    grown.apply(&Event::TasksSubmitted { source: "test".into(), tasks }, 1).expect("submit applies");

    let c = grown.task_index("c").expect("the grown state knows c");
    assert_eq!(grown.dependencies[c], vec![1]);
    assert_eq!(grown.dependents[1], vec![c]);
    assert_eq!(grown.eligible.len(), 3);
    // One list of eligible pools for every task with the same set (h-mem, then a
    // table of distinct sets): built once for the workflow, and reused by a submitted
    // task like its neighbour.
    assert_eq!(grown.eligible.distinct(), 1, "a list per task, or for the submitted task");
    assert_eq!(grown.eligible[c], [0]);

    assert_eq!(before.task_index("c"), None, "the clone's index grew");
    assert_eq!(before.dependents.len(), 2);
    assert!(before.dependents[1].is_empty(), "the clone's edges grew");
    assert_eq!(before.eligible.len(), 2);
    let reread = RunState::from_snapshot_json(&serde_json::to_vec(&before).expect("serializes")).expect("reads");
    assert_eq!(reread.dependents, before.dependents);
    assert_eq!(reread.eligible, before.eligible, "written and read as a list of lists");
    let text = serde_json::to_string(&before).expect("serializes");
    assert!(text.contains(r#""eligible":[[0],[0]]"#), "{text}");
}
