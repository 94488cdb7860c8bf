//! Format 4 (issue 14): a JSON head line, then the specs and the tasks as binary rows
//! (`core::state::columns`), then a fixed footer, under the one seal of every format.
//!
//! ```text
//! {"v":4,"run_id":…,"seq":…,"start":…,"end":…,"record_crc":…,"n":N,"workflow":{…},"state":{…}}\n
//! <N spec rows><N task rows><footer: specs_len:u64 tasks_len:u64 n:u64 "PITBOSS4">,"crc":C}
//! ```
//!
//! The head is the workflow without its specs and the state's small fields; the rows
//! are what a quarter million tasks make big. C is the CRC-32 of the file without its
//! `,"crc":C` part and with a `}` after it, as for formats 1–3, so a damaged byte in any
//! part fails the seal and opening falls back as before. The footer says where the
//! task rows start, so that a reader reads the two sections on two threads, each as a
//! stream through a 64 KB buffer (no copy of the file is held, nothing per row is
//! allocated but the state's own texts). Every number of the body is checked before use
//! (lengths against their section, tags against their range, the footer against the
//! file), so a damaged file that still passes its seal is an error, never a panic.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Sealing, Snapshot, Unusable};
use crate::core::state::bytes::{Sink, Src};
use crate::core::state::{columns, Later, SmallIn, SmallOut, WorkflowIn, WorkflowShellOut};
use crate::core::RunState;
use crate::io::journal::LogPosition;

/// The format [`encode_to`] writes.
pub const FORMAT: u32 = 4;

/// What a format-4 head starts with (its version is written first).
pub const HEAD_START: &[u8] = b"{\"v\":4,";

const MAGIC: &[u8; 8] = b"PITBOSS4";
const FOOTER: usize = 32;

#[derive(Serialize)]
struct HeadOut<'a> {
    v: u32,
    run_id: &'a str,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    n: usize,
    workflow: WorkflowShellOut<'a>,
    state: SmallOut<'a>,
}

#[derive(Deserialize)]
struct HeadIn {
    run_id: String,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    n: usize,
    workflow: WorkflowIn,
    state: SmallIn,
}

/// Writes the sealed format-4 file of `state` after the record at `at`.
pub fn encode_to(state: &RunState, at: LogPosition, out: impl Write) -> std::io::Result<()> {
    let n = state.tasks.len();
    let head = HeadOut {
        v: FORMAT,
        run_id: &state.run_id,
        seq: at.seq,
        start: at.start,
        end: at.end,
        record_crc: at.crc,
        n,
        workflow: WorkflowShellOut(state.workflow.head()),
        state: SmallOut(state),
    };
    let mut sealing = Sealing { out, hasher: crc32fast::Hasher::new(), held: None };
    serde_json::to_writer(&mut sealing, &head).map_err(std::io::Error::other)?;
    sealing.write_all(b"\n")?;
    let mut sink = Sink::new(&mut sealing);
    let (specs_len, tasks_len) = columns::write_rows(state, &mut sink)?;
    sink.u64(specs_len)?;
    sink.u64(tasks_len)?;
    sink.u64(n as u64)?;
    for b in MAGIC {
        sink.u8(*b)?;
    }
    // The seal goes before a closing brace (held back by `Sealing`, as a JSON
    // document's is).
    sink.u8(b'}')?;
    sink.finish()?;
    sealing.seal()
}

/// Where the sections are, from the footer, checked against the file.
struct Layout {
    body: u64,
    specs_len: u64,
    tasks_len: u64,
    n: u64,
}

fn layout(footer: &[u8], newline: u64, mark: u64) -> Result<Layout, Unusable> {
    let bad = |why: &str| Unusable::Unreadable(format!("format-4 body: {why}"));
    if footer.len() != FOOTER || &footer[24..] != MAGIC {
        return Err(bad("no footer"));
    }
    let word = |i: usize| {
        let mut a = [0; 8];
        a.copy_from_slice(&footer[i * 8..i * 8 + 8]);
        u64::from_le_bytes(a)
    };
    let (specs_len, tasks_len, n) = (word(0), word(1), word(2));
    let body = newline + 1;
    let fits = specs_len.checked_add(tasks_len).and_then(|l| l.checked_add(body + FOOTER as u64)) == Some(mark);
    if !fits {
        return Err(bad("its sections do not add up to the file"));
    }
    Ok(Layout { body, specs_len, tasks_len, n })
}

fn head(text: &[u8], layout: &Layout) -> Result<HeadIn, Unusable> {
    let head: HeadIn = serde_json::from_slice(text).map_err(|e| Unusable::Unreadable(format!("format-4 head: {e}")))?;
    if head.n as u64 != layout.n {
        return Err(Unusable::Unreadable("format-4 body: its footer and head disagree on the tasks".into()));
    }
    Ok(head)
}

/// The specs' section read and the workflow's graph built (the head's thread).
fn specs_part(
    workflow: WorkflowIn,
    n: usize,
    src: &mut Src<impl Read>,
) -> Result<crate::core::state::Prepared, Unusable> {
    let WorkflowIn(mut workflow) = workflow;
    if !workflow.tasks.is_empty() {
        return Err(Unusable::Unreadable("format-4 head: specs in the head".into()));
    }
    workflow.tasks = columns::read_specs(n, src).map_err(|e| Unusable::Unreadable(format!("format-4 specs: {e}")))?;
    RunState::prepare(workflow).map_err(Unusable::Unreadable)
}

/// True when the specs are better read on first use (`core::state::lazy`): a finished
/// run's readers (`inspect`, `resume`, the TUI's first frame) need ids at most. A run
/// with work left decodes them at once (its engine needs the graph), on their thread.
fn lazy(small: &SmallIn) -> bool {
    small.all_terminal() && !small.has_edges()
}

/// The specs' section checked and kept as bytes, decoded on first use.
fn later_part(workflow: WorkflowIn, n: usize, rows: Vec<u8>) -> Result<Later, Unusable> {
    let WorkflowIn(workflow) = workflow;
    if !workflow.tasks.is_empty() {
        return Err(Unusable::Unreadable("format-4 head: specs in the head".into()));
    }
    Later::read(workflow, n, rows).map_err(|e| Unusable::Unreadable(format!("format-4 specs: {e}")))
}

fn join_later(meta: Meta, later: Later, tasks: Result<Tasks, Unusable>) -> Result<Snapshot, Unusable> {
    let Meta { run_id, at, small } = meta;
    let state = RunState::from_later(later, small, tasks?).map_err(Unusable::Unreadable)?;
    if state.run_id != run_id {
        return Err(Unusable::Unreadable("its run id and its state's disagree".into()));
    }
    Ok(Snapshot { run_id, at, state })
}

/// The head's fields less its workflow (which goes to the specs' thread).
struct Meta {
    run_id: String,
    at: LogPosition,
    small: SmallIn,
}

fn split(head: HeadIn) -> (Meta, WorkflowIn) {
    let HeadIn { run_id, seq, start, end, record_crc, n: _, workflow, state } = head;
    let at = LogPosition { seq, start, end, crc: record_crc };
    (Meta { run_id, at, small: state }, workflow)
}

fn join(
    meta: Meta,
    prepared: crate::core::state::Prepared,
    tasks: Result<Tasks, Unusable>,
) -> Result<Snapshot, Unusable> {
    let Meta { run_id, at, small } = meta;
    let state = RunState::from_columns(prepared, small, tasks?).map_err(Unusable::Unreadable)?;
    if state.run_id != run_id {
        return Err(Unusable::Unreadable("its run id and its state's disagree".into()));
    }
    Ok(Snapshot { run_id, at, state })
}

type Tasks = columns::TaskRows;

fn tasks_part(n: usize, src: &mut Src<impl Read>) -> Result<Tasks, Unusable> {
    columns::read_tasks(n, src).map_err(|e| Unusable::Unreadable(format!("format-4 tasks: {e}")))
}

/// Reads a sealed format-4 file whose first newline is at `newline` and whose seal
/// starts at `mark`: the specs (and the graph) on a thread of their own, the tasks on
/// this one.
pub fn read(path: &Path, newline: u64, mark: u64) -> Result<Snapshot, Unusable> {
    let io = |e: std::io::Error| Unusable::Io(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let mut footer = vec![0; FOOTER];
    file.seek(SeekFrom::Start(mark.checked_sub(FOOTER as u64).ok_or(Unusable::Checksum)?)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    let layout = layout(&footer, newline, mark)?;
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    (&file).take(newline).read_to_end(&mut text).map_err(io)?;
    let head = head(&text, &layout)?;
    drop(text);
    let n = head.n;
    let (meta, workflow) = split(head);
    let mut specs_file = File::open(path).map_err(io)?;
    specs_file.seek(SeekFrom::Start(layout.body)).map_err(io)?;
    file.seek(SeekFrom::Start(layout.body + layout.specs_len)).map_err(io)?;
    if lazy(&meta.small) {
        let (later, tasks) = std::thread::scope(|scope| {
            let specs = scope.spawn(|| {
                let mut rows = Vec::new();
                (&specs_file).take(layout.specs_len).read_to_end(&mut rows).map_err(io)?;
                if rows.len() as u64 != layout.specs_len {
                    return Err(Unusable::Unreadable("format-4 specs: the section ends before its length".into()));
                }
                later_part(workflow, n, rows)
            });
            let tasks = tasks_part(n, &mut Src::new(&file, layout.tasks_len));
            (specs.join(), tasks)
        });
        let later = later.map_err(|_| Unusable::Unreadable("reading its specs panicked".into()))??;
        return join_later(meta, later, tasks);
    }
    let (prepared, tasks) = std::thread::scope(|scope| {
        let specs = scope.spawn(|| specs_part(workflow, n, &mut Src::new(specs_file, layout.specs_len)));
        let tasks = tasks_part(n, &mut Src::new(&file, layout.tasks_len));
        (specs.join(), tasks)
    });
    let prepared = prepared.map_err(|_| Unusable::Unreadable("reading its specs panicked".into()))??;
    join(meta, prepared, tasks)
}

/// [`read`] on a file in memory.
pub fn decode(bytes: &[u8], newline: usize, mark: usize) -> Result<Snapshot, Unusable> {
    let footer = bytes.get(mark.checked_sub(FOOTER).ok_or(Unusable::Checksum)?..mark).ok_or(Unusable::Checksum)?;
    let layout = layout(footer, newline as u64, mark as u64)?;
    let head = head(&bytes[..newline], &layout)?;
    let n = head.n;
    let (meta, workflow) = split(head);
    let body = layout.body as usize;
    let split = body + layout.specs_len as usize;
    let specs = &bytes[body..split];
    let tasks = &bytes[split..split + layout.tasks_len as usize];
    if lazy(&meta.small) {
        let later = later_part(workflow, n, specs.to_vec())?;
        return join_later(meta, later, tasks_part(n, &mut Src::new(tasks, tasks.len() as u64)));
    }
    let prepared = specs_part(workflow, n, &mut Src::new(specs, specs.len() as u64))?;
    let tasks = tasks_part(n, &mut Src::new(tasks, tasks.len() as u64));
    join(meta, prepared, tasks)
}
