//! `pitboss events DIR [--follow] [--json]`: the log, one line per record; `--follow`
//! keeps printing a live run's records as they are committed. Only reads.

use std::path::Path;

use serde_json::json;

use super::run::CmdResult;
use super::{logcheck, usage, EXIT_OK};
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{describe, iso};
use crate::io::journal::{self, Record, LOG_FILE};
use crate::io::rundir::is_held;

/// `pitboss events DIR [--follow] [--json]`.
pub fn events(dir: &Path, follow: bool, json_out: bool) -> CmdResult {
    let path = dir.join(LOG_FILE);
    let print = |rec: &Record| {
        if json_out {
            println!("{}", escape_json(&json!({"seq": rec.seq, "ts": rec.ts, "event": rec.event}).to_string()));
        } else {
            let text = describe(&rec.event).unwrap_or_else(|| rec.event.kind().to_string());
            println!("#{:<6} {}  {}", rec.seq, iso(rec.ts), escape_line(&text));
        }
    };
    let scan = journal::scan(&path, |rec, _| {
        print(&rec);
        Ok(())
    })
    .map_err(|e| usage(logcheck::explain(e)))?;
    // A log being created by a manager that is starting may be empty for a moment;
    // `--follow` waits for its records. Otherwise a log without a record is unusable.
    if scan.records == 0 && !(follow && is_held(dir).is_some()) {
        return Err(usage(logcheck::unusable(&path)));
    }
    if let Some(t) = &scan.torn {
        eprintln!("{}", logcheck::torn_note(t));
    }
    if follow {
        super::follow::follow(&path, scan.valid_len, scan.records, dir, &print).map_err(usage)?;
    }
    Ok(EXIT_OK)
}
