//! The peer of `benches/readers_1m.sh` (issue 14): the time to merely parse a run's
//! log, `serde_json::Value` over every line of every segment (`archive/NNN.jsonl`
//! oldest first, then `events.jsonl`), nothing folded or kept. The readers of the run
//! (`resume`, `inspect`, the TUI) are measured as ratios to this.
//!
//!     cargo build --release --example parse_log
//!     target/release/examples/parse_log RUN_DIR      # prints "N records"

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The log's files in reading order: archived segments by number, then the live log.
fn segments(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut archived: Vec<(u64, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("archive")) {
        for entry in entries {
            let path = entry?.path();
            let number = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok());
            if let (Some(n), Some("jsonl")) = (number, path.extension().and_then(|e| e.to_str())) {
                archived.push((n, path));
            }
        }
    }
    archived.sort();
    let mut files: Vec<PathBuf> = archived.into_iter().map(|(_, p)| p).collect();
    files.push(dir.join("events.jsonl"));
    Ok(files)
}

fn parse(path: &Path) -> Result<usize, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut records = 0;
    for (n, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        records += value.is_object() as usize;
    }
    Ok(records)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: parse_log RUN_DIR");
        return ExitCode::from(2);
    };
    let files = match segments(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    let mut records = 0;
    for file in &files {
        match parse(file) {
            Ok(n) => records += n,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("{records} records");
    ExitCode::SUCCESS
}
