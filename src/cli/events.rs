//! `pitboss events DIR [--follow] [--json]`: the log, one line per record; `--follow`
//! keeps printing a live run's records as they are committed. Only reads.

use std::cell::RefCell;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::run::CmdResult;
use super::{logcheck, usage, EXIT_OK};
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{describe, iso};
use crate::core::Event;
use crate::io::journal::{Record, LOG_FILE};
use crate::io::rundir::is_held;
use crate::io::segments;

/// Prints a record given as JSON (`{"seq", "ts", "event"}`, as the control socket
/// streams it) the way `events` prints one from the file.
pub fn print_value(line: &Value, json_out: bool) {
    if json_out {
        println!("{}", escape_json(&line.to_string()));
        return;
    }
    let seq = line["seq"].as_u64().unwrap_or(0);
    let ts = line["ts"].as_u64().unwrap_or(0);
    let text = match serde_json::from_value::<Event>(line["event"].clone()) {
        Ok(event) => describe(&event).unwrap_or_else(|| event.kind().to_string()),
        Err(_) => line["event"]["type"].as_str().unwrap_or("?").to_string(),
    };
    println!("#{:<6} {}  {}", seq, iso(ts), escape_line(&text));
}

/// `pitboss events DIR [--follow] [--json]`.
pub fn events(dir: &Path, follow: bool, json_out: bool) -> CmdResult {
    // A live manager streams the records itself (`subscribe`): no file tailing. Without
    // one (or if it went away before sending anything) the file is read and tailed.
    if follow && super::ctl::connect(dir).is_ok() {
        let mut printed = 0u64;
        let mut each = |line: &Value| {
            if line.get("seq").is_some() {
                printed += 1;
                print_value(line, json_out);
            }
        };
        match super::ctl::subscribe(dir, 0, &mut each) {
            Ok(_) => return Ok(EXIT_OK),
            Err(e) if printed > 0 => return Err(e),
            Err(_) => {}
        }
    }
    let path = dir.join(LOG_FILE);
    // Record by record into one buffer: a long log is never held, and a pipe gets
    // full blocks, not a write per line. Flushed after the file is read and after
    // every record `--follow` prints (someone is watching those).
    let out = RefCell::new(BufWriter::new(std::io::stdout()));
    let print = |rec: &Record| {
        let mut out = out.borrow_mut();
        // A closed stdout ends the process by SIGPIPE (main restores the default),
        // as `println!` did; any other write error has nowhere to be reported.
        let _ = if json_out {
            writeln!(out, "{}", escape_json(&json!({"seq": rec.seq, "ts": rec.ts, "event": rec.event}).to_string()))
        } else {
            let text = describe(&rec.event).unwrap_or_else(|| rec.event.kind().to_string());
            writeln!(out, "#{:<6} {}  {}", rec.seq, iso(rec.ts), escape_line(&text))
        };
    };
    let print_live = |rec: &Record| {
        print(rec);
        let _ = out.borrow_mut().flush();
    };
    let read = segments::read_from(dir, 0, None, |rec, _| {
        print(&rec);
        Ok(())
    })
    .map_err(|e| usage(logcheck::explain(e)))?;
    let scan = read.scan;
    // A log being created by a manager that is starting may be empty for a moment;
    // `--follow` waits for its records. Otherwise a log without a record is unusable.
    if scan.records == 0 && !(follow && is_held(dir).is_some()) {
        return Err(usage(logcheck::unusable(&path)));
    }
    let _ = out.borrow_mut().flush();
    if let Some(t) = &scan.torn {
        eprintln!("{}", logcheck::torn_note(t));
    }
    if follow {
        super::follow::follow(read.live, scan.valid_len, scan.records, dir, &print_live).map_err(usage)?;
    }
    Ok(EXIT_OK)
}
