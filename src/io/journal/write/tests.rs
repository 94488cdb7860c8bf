//! Tests of the journal's writing side.

use super::*;

fn ev(task: &str) -> Event {
    Event::TaskReady { task: task.into() }
}

#[test]
fn a_big_batch_does_not_keep_its_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let big = Event::TaskReady { task: "x".repeat(4 * BUF_KEEP) };
    let mut journal = Journal::create(dir.path(), 0, &big).unwrap();
    assert!(journal.buf_capacity() <= BUF_KEEP, "kept {} bytes", journal.buf_capacity());
    journal.append(0, &[ev("a")]).unwrap();
    assert!(journal.buf_capacity() <= BUF_KEEP);
}
