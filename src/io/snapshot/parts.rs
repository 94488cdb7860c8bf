//! Format 3 (issue 14): the snapshot in two lines of one file, parsed on two threads.
//!
//! ```text
//! {"v":3,"run_id":…,"seq":…,"start":…,"end":…,"record_crc":…,"workflow":{…}}
//! {"state":{…},"crc":C}
//! ```
//!
//! The first line is the head and the workflow (each task spec without its fields at
//! their usual value: `core::state::WorkflowOut`), the second the rest of the state
//! (`BodyOut`: no graph tables, rebuilt from the workflow at load). One seal covers
//! the whole file, both lines and the newline between them, exactly as format 2's
//! covers its one line (C is the CRC-32 of the file without its `,"crc":C` part): a
//! damaged part fails the seal like any damaged byte, and a part of another snapshot
//! cannot be joined to this one. A JSON document never holds a raw newline, so the
//! first newline tells the formats apart.
//!
//! Why two threads: the workflow of a big run is the larger half of the document
//! (250,000 specs), and building the graph needs only it; the tasks' states, results
//! and readiness counts need only the second line.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{finish_version, Sealing, Snapshot, Unusable, READABLE};
use crate::core::state::{BodyIn, BodyOut, Prepared, WorkflowIn, WorkflowOut};
use crate::core::RunState;
use crate::io::journal::LogPosition;

/// The format [`encode_to`] writes.
pub const FORMAT: u32 = 3;

#[derive(Serialize)]
struct HeadOut<'a> {
    v: u32,
    run_id: &'a str,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    workflow: WorkflowOut<'a>,
}

#[derive(Deserialize)]
struct HeadIn {
    v: u32,
    run_id: String,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    workflow: WorkflowIn,
}

#[derive(Serialize)]
struct BodyDocOut<'a> {
    state: BodyOut<'a>,
}

#[derive(Deserialize)]
struct BodyDocIn {
    state: BodyIn,
}

/// Writes the sealed format-3 document of `state` after the record at `at`.
pub fn encode_to(state: &RunState, at: LogPosition, out: impl Write) -> std::io::Result<()> {
    let head = HeadOut {
        v: FORMAT,
        run_id: &state.run_id,
        seq: at.seq,
        start: at.start,
        end: at.end,
        record_crc: at.crc,
        workflow: WorkflowOut(&state.workflow),
    };
    let mut sealing = Sealing { out, hasher: crc32fast::Hasher::new(), held: None };
    serde_json::to_writer(&mut sealing, &head).map_err(std::io::Error::other)?;
    sealing.write_all(b"\n")?;
    serde_json::to_writer(&mut sealing, &BodyDocOut { state: BodyOut(state) }).map_err(std::io::Error::other)?;
    sealing.seal()
}

/// What the head's thread gives: the head's fields and the workflow's graph built.
struct Head {
    run_id: String,
    at: LogPosition,
    prepared: Prepared,
}

/// The head part parsed and checked, its graph built.
fn head(parsed: Result<HeadIn, serde_json::Error>, version: impl FnOnce() -> Option<u32>) -> Result<Head, Unusable> {
    let head = match parsed {
        Ok(head) if READABLE.contains(&head.v) => head,
        Ok(head) => return Err(Unusable::Version(head.v)),
        Err(e) => return Err(finish_version(e, version())),
    };
    let prepared = RunState::prepare(head.workflow.0).map_err(Unusable::Unreadable)?;
    let at = LogPosition { seq: head.seq, start: head.start, end: head.end, crc: head.record_crc };
    Ok(Head { run_id: head.run_id, at, prepared })
}

/// The two parts joined into a snapshot.
fn join(head: Head, body: Result<BodyDocIn, serde_json::Error>) -> Result<Snapshot, Unusable> {
    let body = body.map_err(|e| Unusable::Unreadable(e.to_string()))?;
    let state = RunState::from_parts(head.prepared, body.state).map_err(Unusable::Unreadable)?;
    if state.run_id != head.run_id {
        return Err(Unusable::Unreadable("its run id and its state's disagree".into()));
    }
    Ok(Snapshot { run_id: head.run_id, at: head.at, state })
}

/// Reads a sealed format-3 file whose first newline is at `newline`: the head on a
/// thread of its own (with its graph), the body on this one, each from its own
/// handle on the file as a stream (neither part is held as text).
pub fn read(path: &Path, newline: u64) -> Result<Snapshot, Unusable> {
    let io = |e: std::io::Error| Unusable::Io(e.to_string());
    let head_file = File::open(path).map_err(io)?;
    let mut body_file = File::open(path).map_err(io)?;
    body_file.seek(SeekFrom::Start(newline + 1)).map_err(io)?;
    let (head, body) = std::thread::scope(|scope| {
        let head = scope.spawn(|| {
            let parsed = serde_json::from_reader(BufReader::with_capacity(1 << 16, (&head_file).take(newline)));
            head(parsed, || {
                let mut file = &head_file;
                file.seek(SeekFrom::Start(0)).ok()?;
                let v: Option<Version> = serde_json::from_reader(BufReader::new(file.take(newline))).ok();
                v.map(|v| v.v)
            })
        });
        let body: Result<BodyDocIn, _> = serde_json::from_reader(BufReader::with_capacity(1 << 16, &body_file));
        (head.join(), body)
    });
    let head = head.map_err(|_| Unusable::Unreadable("reading its workflow panicked".into()))??;
    join(head, body)
}

/// [`read`] on a document in memory.
pub fn decode(bytes: &[u8], newline: usize) -> Result<Snapshot, Unusable> {
    let (first, rest) = (&bytes[..newline], &bytes[newline + 1..]);
    let head = head(serde_json::from_slice(first), || serde_json::from_slice::<Version>(first).ok().map(|v| v.v))?;
    join(head, serde_json::from_slice(rest))
}

#[derive(Deserialize)]
struct Version {
    v: u32,
}
