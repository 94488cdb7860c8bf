//! `pitboss events DIR [--follow] [--json]`: the log, one line per record; `--follow`
//! keeps printing a live run's records as they are committed. Only reads.

use std::path::Path;

use serde_json::json;

use super::run::CmdResult;
use super::{usage, EXIT_OK};
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{describe, iso};
use crate::io::journal::{self, Record, LOG_FILE};

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
    .map_err(usage)?;
    if follow {
        super::follow::follow(&path, scan.valid_len, scan.records, dir, &print).map_err(usage)?;
    }
    Ok(EXIT_OK)
}
