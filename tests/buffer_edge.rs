//! Record lines cut by the log readers' 1 MB read buffer (issue 14). The readers that
//! look at a line's first bytes before reading it (the task index's build, the sift
//! of `inspect TASK`) see, for a line that starts shortly before the buffer's end, only
//! the bytes up to that end: a head cut anywhere (inside `{"seq":`, its digits, the
//! event's type, the task's id) must be read whole, never guessed from. A line longer
//! than the buffer (a big result) crosses two edges. Every reader must still see every
//! record: the index built over such a log, `inspect TASK` through the index and by its
//! sift (the real binary; a debug build checks each answer against the whole fold),
//! and the fold itself. Each cut is placed exactly, from the first byte before the edge
//! to past the longest head a reader looks at.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{OutputWithin, Scratch};
use pitboss::core::{Event, RunState};
use pitboss::io::journal::{self, LOG_FILE};
use pitboss::io::log_lines::HEAD;
use pitboss::io::task_index::{self, extend, TaskIndex, INDEX_FILE};
use pitboss::io::{segments, snapshot};

/// The readers' read buffer.
const EDGE: u64 = 1 << 20;

const TASKS: [&str; 3] = ["a", "b", "c"];

fn workflow_text() -> String {
    let mut text = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n".to_string();
    for id in TASKS {
        text += &format!("[[task]]\nid = \"{id}\"\n");
    }
    text
}

fn first() -> Event {
    let workflow = pitboss::config::parse(&workflow_text(), "wf.toml", Path::new("/base")).expect("a valid workflow");
    Event::RunStarted { run_id: "r".into(), workflow: Arc::new(workflow) }
}

/// A log being laid out byte by byte, and the fold of what it holds.
struct Layout {
    bytes: Vec<u8>,
    seq: u64,
    state: RunState,
}

impl Layout {
    fn new() -> Layout {
        let first = first();
        let mut bytes = Vec::new();
        journal::encode(1, 1, &first, &mut bytes);
        Layout { bytes, seq: 1, state: RunState::from_first(&first).expect("folds") }
    }

    fn push(&mut self, event: Event) {
        self.seq += 1;
        self.state.apply(&event, self.seq).expect("a record the fold takes");
        journal::encode(self.seq, self.seq, &event, &mut self.bytes);
    }

    /// A record of the run's own (a note that changes nothing) sized so the next
    /// line starts at byte `at` (its length found by trying: the checksum's digits vary).
    fn pad_to(&mut self, at: u64) {
        let room = at as usize - self.bytes.len();
        let line_of = |reason_len: usize, last: char| {
            let reason: String = "x".repeat(reason_len) + &last.to_string();
            let event = Event::LogRepaired { cut_bytes: 0, line: 0, reason };
            let mut line = Vec::new();
            journal::encode(self.seq + 1, self.seq + 1, &event, &mut line);
            (line, event)
        };
        // The line's length less its checksum's digits (`,"crc":N}` ends it).
        let digits = |line: &[u8]| line.iter().rev().skip(2).take_while(|b| b.is_ascii_digit()).count();
        let (short, _) = line_of(0, 'a');
        let fixed = short.len() - digits(&short);
        // For each count of digits the checksum may have, the reason that fits, with
        // another last letter (another checksum) until the checksum has that many.
        for want in [10, 9, 8] {
            let Some(reason_len) = room.checked_sub(fixed + want) else { continue };
            for last in 'a'..='z' {
                let (line, event) = line_of(reason_len, last);
                if line.len() == room {
                    return self.push(event);
                }
            }
        }
        panic!("no filler of {room} bytes");
    }

    /// Task `id` through one attempt: ready, started, succeeded with a result of
    /// `result_len` bytes (a line longer than the read buffer when that is larger).
    fn task_runs(&mut self, id: &str, result_len: usize) {
        self.push(Event::TaskReady { task: id.into() });
        self.push(Event::AttemptStarted { task: id.into(), attempt: 1, pool: "p".into() });
        self.succeed(id, result_len);
    }

    fn succeed(&mut self, id: &str, result_len: usize) {
        let result = serde_json::json!({ "text": "r".repeat(result_len) });
        self.push(Event::AttemptSucceeded {
            task: id.into(),
            attempt: 1,
            result,
            exit_code: Some(0),
            duration_ms: 1,
            output: Default::default(),
        });
    }

    /// How many bytes of `event`'s line come before its task's id, were it the record
    /// after the next (the next being a filler): a cut there leaves a head that ends
    /// where the id starts.
    fn id_at(&self, event: &Event) -> u64 {
        let mut line = Vec::new();
        journal::encode(self.seq + 2, self.seq + 2, event, &mut line);
        line.windows(8).position(|w| w == b"\"task\":\"").expect("a task's record") as u64 + 8
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Writes the log to `dir` (the live log), a snapshot of its end and the task
    /// index up to it.
    fn write(&self, dir: &Path) {
        std::fs::write(dir.join(LOG_FILE), &self.bytes).expect("log written");
        let at = segments::last_position(dir, self.len(), self.seq).unwrap().expect("a last record");
        snapshot::write(dir, &self.state, at).expect("snapshot written");
        extend(dir, &self.state, at).expect("index written");
    }
}

/// Each task's seqs and the run's own, as a decode of every line finds them.
fn truth(dir: &Path, state: &RunState) -> Vec<Vec<u64>> {
    let mut slots = vec![Vec::new(); TASKS.len() + 1];
    segments::scan(dir, |rec, _| {
        if rec.seq > 1 {
            let slot = rec.event.task().map_or(TASKS.len(), |id| state.task_index(id).expect("a task of the run"));
            slots[slot].push(rec.seq);
        }
        Ok(())
    })
    .expect("scanned");
    slots
}

/// The same, through the index (every record read at its offset and checked).
fn through_index(dir: &Path) -> Result<Vec<Vec<u64>>, String> {
    let (mut index, _) = TaskIndex::open(dir, "r", TASKS.len())?;
    let mut slots = Vec::new();
    for (i, id) in TASKS.iter().enumerate() {
        slots
            .push(index.records(dir, &[(i, id)])?.iter().filter(|r| r.event.task().is_some()).map(|r| r.seq).collect());
    }
    slots.push(index.records(dir, &[])?.iter().map(|r| r.seq).collect());
    Ok(slots)
}

/// The index built over the log, from its start, and the fold of it: every record
/// where a decode of every line puts it, and the fold's state the layout's.
fn assert_read_whole(dir: &Path, layout: &Layout, what: &str) {
    let want = truth(dir, &layout.state);
    assert_eq!(want.iter().map(Vec::len).sum::<usize>() as u64, layout.seq - 1, "{what}: every record scanned");
    assert_eq!(through_index(dir), Ok(want), "{what}: the index");
    let (folded, scan) = segments::fold_all(dir).expect("folds");
    assert_eq!(scan.records, layout.seq, "{what}: the fold's records");
    assert_eq!(folded.tasks, layout.state.tasks, "{what}: the fold's tasks");
    // The shared reader the TUI's history and `inspect TASK` use.
    let read = task_index::read(dir, &layout.state, &[0, 1, 2], true).expect("the index answers");
    assert_eq!(read.through, layout.seq, "{what}");
    assert_eq!(read.records.len() as u64, layout.seq - 1, "{what}: every record through the index");
}

/// A short record line of task `a` starting `cut` bytes before the buffer's edge, for
/// every cut from the edge itself to past the longest head read, then a line longer
/// than the buffer starting as far before the next edge.
#[test]
fn a_line_cut_at_the_read_buffers_edge_is_read_whole_by_every_reader() {
    let cuts: Vec<u64> = (0..=80).chain([120, 200, HEAD as u64 - 1, HEAD as u64, HEAD as u64 + 1]).collect();
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        let mut layout = Layout::new();
        layout.pad_to(EDGE - cut);
        layout.task_runs("a", 10);
        if cut % 16 == 0 {
            // The long line starts `cut` bytes before the second edge, crosses it and
            // the third.
            layout.push(Event::TaskReady { task: "b".into() });
            layout.push(Event::AttemptStarted { task: "b".into(), attempt: 1, pool: "p".into() });
            layout.pad_to(2 * EDGE - cut);
            layout.succeed("b", EDGE as usize + 4096);
            assert!(layout.len() > 3 * EDGE, "the long line crosses two edges");
        }
        layout.task_runs("c", 10);
        layout.write(dir.path());
        assert_read_whole(dir.path(), &layout, &format!("cut {cut}"));
    }
}

/// `inspect TASK` (the real binary), through the index and by its sift, on a log with
/// a line across each of several edges: a head cut where its task id starts, in its
/// type, and a long line over two edges. The sift runs from the log's start (no index)
/// and from where an index ends (an index of the first record only), so its edges fall
/// at both places.
#[test]
fn inspect_task_sees_every_record_of_lines_across_the_edge() {
    for origin_after_first in [false, true] {
        let s = Scratch::new();
        let dir = s.run_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let mut layout = Layout::new();
        // Where the sift starts: the log's first byte, or the line after the first
        // record (where an index of it alone ends).
        let origin = if origin_after_first { layout.len() } else { 0 };
        // The first edge right where task a's id starts: a head that names no task.
        let cut = layout.id_at(&Event::TaskReady { task: "a".into() });
        layout.pad_to(origin + EDGE - cut);
        layout.task_runs("a", 10);
        layout.push(Event::TaskReady { task: "b".into() });
        layout.pad_to(origin + 2 * EDGE - 40);
        layout.push(Event::AttemptStarted { task: "b".into(), attempt: 1, pool: "p".into() });
        layout.pad_to(origin + 3 * EDGE - 70);
        layout.succeed("b", EDGE as usize + 100);
        layout.pad_to(origin + 5 * EDGE - 55);
        layout.task_runs("c", 10);
        layout.write(&dir);
        if origin_after_first {
            // An index of the first record only: the rest is sifted from there.
            std::fs::remove_file(dir.join(INDEX_FILE)).unwrap();
            let first_end = std::fs::read(dir.join(LOG_FILE)).unwrap().iter().position(|&b| b == b'\n').unwrap() + 1;
            let at = segments::last_position(&dir, first_end as u64, 1).unwrap().expect("the first record");
            let first_state = RunState::from_first(&first()).unwrap();
            extend(&dir, &first_state, at).unwrap();
        }
        let inspect = |id: &str, index_only: bool| {
            let mut cmd = s.pitboss();
            cmd.env("PITBOSS_INSPECT_PREFILTER_ONLY", "1");
            if index_only {
                cmd.env("PITBOSS_INSPECT_INDEX_ONLY", "1");
            }
            let out = cmd.arg("inspect").arg(&dir).arg(id).output_within("pitboss inspect TASK");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "inspect {id}: {}", String::from_utf8_lossy(&out.stderr));
            text
        };
        for id in TASKS {
            let indexed = inspect(id, true);
            std::fs::rename(dir.join(INDEX_FILE), dir.join("idx.aside")).unwrap();
            let sifted = inspect(id, false);
            std::fs::rename(dir.join("idx.aside"), dir.join(INDEX_FILE)).unwrap();
            assert_eq!(indexed, sifted, "origin after the first record: {origin_after_first}, task {id}");
        }
    }
}
