//! The TUI's model on a run folder (issue 14, branch h-tuiopen), in process: open it
//! (snapshot + tail), read one task's history from disk, index the log for time travel
//! in the TUI's slices, then one step back (←) from the middle of a checkpoint's span.
//! Prints each wall time; `/usr/bin/time -f %M` around it gives the peak RSS.
//!
//!     cargo build --release --example tui_disk
//!     /usr/bin/time -f %M target/release/examples/tui_disk RUN_DIR t125000

use std::time::Instant;

use pitboss::tui::model::Fleet;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: tui_disk RUN_DIR TASK")?);
    let task = args.next().ok_or("usage: tui_disk RUN_DIR TASK")?;
    let t = Instant::now();
    let mut fleet = Fleet::open(&dir).map_err(|e| e.to_string())?;
    println!("open: {:.3} s ({} records)", t.elapsed().as_secs_f64(), fleet.records.len());
    let i = fleet.state.task_index(&task).ok_or(format!("no task {task}"))?;
    let t = Instant::now();
    let steps = fleet.history(i).len();
    println!("history of {task}: {:.3} s ({steps} steps)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let _ = fleet.history(i).len();
    println!("history again (kept): {:.6} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    fleet.travel_to(Some(fleet.records.len())).map_err(|e| e.to_string())?;
    while fleet.indexing().is_some() {
        fleet.index_some(20_000).map_err(|e| e.to_string())?;
    }
    println!(
        "index: {:.3} s ({} checkpoints, spacing {})",
        t.elapsed().as_secs_f64(),
        fleet.checkpoints(),
        fleet.checkpoint_spacing()
    );
    let spacing = fleet.checkpoint_spacing();
    let n = fleet.records.len() / 2 / spacing * spacing + spacing / 2;
    fleet.travel_to(Some(n + 1)).map_err(|e| e.to_string())?;
    let before = fleet.travel_folds();
    let t = Instant::now();
    fleet.travel_to(Some(n)).map_err(|e| e.to_string())?;
    println!(
        "one step back at record {n}: {:.3} s ({} records folded)",
        t.elapsed().as_secs_f64(),
        fleet.travel_folds() - before
    );
    fleet.travel_to(None).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let task_then = fleet.task_after(i, 0).map(|t| t.state.name());
    println!("task after its first step: {:.3} s ({task_then:?})", t.elapsed().as_secs_f64());
    Ok(())
}
