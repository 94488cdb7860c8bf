//! The TUI's first detail view of a task on a run folder (issue 14, branch h14t), in
//! process: open the model (snapshot + tail), then read one task's history, the read
//! the detail view's first frame waits for. Prints each wall time and how the history
//! was read; run under `valgrind --tool=callgrind --toggle-collect='*Fleet*history*'`
//! for the history read's instruction count alone.
//!
//!     cargo build --release --example tui_history
//!     target/release/examples/tui_history RUN_DIR t125000

use std::time::Instant;

use pitboss::tui::model::Fleet;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: tui_history RUN_DIR TASK")?);
    let task = args.next().ok_or("usage: tui_history RUN_DIR TASK")?;
    let t = Instant::now();
    let fleet = Fleet::open(&dir).map_err(|e| e.to_string())?;
    println!("open: {:.3} s ({} records)", t.elapsed().as_secs_f64(), fleet.records.len());
    let i = fleet.state.task_index(&task).ok_or(format!("no task {task}"))?;
    let t = Instant::now();
    let history = fleet.history(i);
    let took = t.elapsed().as_secs_f64();
    let seqs: Vec<usize> = history.iter().map(|s| s.record + 1).collect();
    println!("history of {task}: {took:.4} s ({} steps, seqs {seqs:?})", history.len());
    Ok(())
}
