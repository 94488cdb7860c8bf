//! What bringing the task index up to a snapshot costs on a big run (issue 14, branch
//! h14t): the index of the run in RUN_DIR (a copy: this cuts and restores its log) is
//! built up to BACK records before the log's end, then brought up to the end as the
//! engine's next snapshot brings it. Prints the wall time of that extension and the
//! bytes it wrote; run under `valgrind --tool=callgrind --toggle-collect='*task_index*extend*'`
//! for its instruction count alone.
//!
//!     cargo build --release --example index_extend
//!     target/release/examples/index_extend /tmp/copy-of-run 4096

use std::io::Write;
use std::time::Instant;

use pitboss::io::journal::LOG_FILE;
use pitboss::io::task_index::{self, INDEX_FILE};
use pitboss::io::{segments, snapshot};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: index_extend RUN_DIR BACK")?);
    let back: u64 = args.next().ok_or("usage: index_extend RUN_DIR BACK")?.parse().map_err(|e| format!("{e}"))?;
    let opened = snapshot::open_state(&dir).map_err(|e| e.to_string())?;
    let (state, records) = (opened.state, opened.scan.records);
    let log = dir.join(LOG_FILE);
    let bytes = std::fs::read(&log).map_err(|e| e.to_string())?;
    // The live log cut after record `records - back` (a line boundary counted from the end).
    let mut cut = bytes.len();
    for _ in 0..back {
        cut = bytes[..cut - 1].iter().rposition(|&b| b == b'\n').ok_or("log too short")? + 1;
    }
    std::fs::write(&log, &bytes[..cut]).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(dir.join(INDEX_FILE));
    let old =
        segments::last_position(&dir, cut as u64, records - back).map_err(|e| e.to_string())?.ok_or("no record")?;
    task_index::extend(&dir, &state, old).map_err(|e| e.to_string())?;
    // The rest of the log back, as the engine appends it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(&bytes[cut..]))
        .map_err(|e| e.to_string())?;
    let at =
        segments::last_position(&dir, bytes.len() as u64, records).map_err(|e| e.to_string())?.ok_or("no record")?;
    let t = Instant::now();
    task_index::extend(&dir, &state, at).map_err(|e| e.to_string())?;
    let took = t.elapsed().as_secs_f64();
    let written = std::fs::metadata(dir.join(INDEX_FILE)).map_err(|e| e.to_string())?.len();
    let (index, _) = task_index::TaskIndex::open(&dir, &state.run_id, state.tasks.len())?;
    assert_eq!(index.at().seq, records, "the index reaches the log's end");
    println!("extend by {back} records: {took:.4} s, {written} bytes written (the whole index)");
    Ok(())
}
