//! The TUI's model files a task held at its spawn (a planner child over a limit,
//! recorded inside `tasks_spawned`, with no `task_held` of its own) among the held,
//! so the Held view lists what the header counts. Folded from the golden
//! `v1-planner` log, written by the real binary.
//!
//! It failed before a fix in `Fleet::apply` (src/tui/model.rs): a `resize` before
//! the loop that files joining tasks grew `history` first, so the loop never ran and
//! the header said "1 held for approval" while the Held view said "Nothing is held
//! for approval".

use pitboss::io::journal::Record;
use pitboss::tui::model::Fleet;

#[test]
fn a_child_held_at_its_spawn_is_in_the_held_view_as_the_header_counts_it() {
    let log = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1-planner/events.jsonl");
    let text = std::fs::read_to_string(log).expect("the golden planner log");
    let records: Vec<Record> = text.lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
    let fleet = Fleet::from_records(&records).expect("the TUI folds the log");
    let combine = fleet.state.task_index("plan/combine").expect("the spawned combine");
    assert_eq!(fleet.state.tasks[combine].state.name().to_string(), "awaiting_approval");
    let held: Vec<usize> = fleet.held().collect();
    assert_eq!(held, vec![combine], "the Held view's list misses the task held at its spawn");
}
