//! The headless progress bar counts every task that reached an end, however it got
//! there: a result from a fallback (`degraded: true`), a fallback pool, a fallback
//! skip, a dead letter. The run is real; the bar's counter is fed the run's own log.

mod common;

use common::{sh_pool, task, Scratch};
use pitboss::cli::run::Progress;
use pitboss::core::RunState;
use pitboss::io::journal::{self, Record};

#[test]
fn the_progress_bar_counts_tasks_finished_by_a_fallback() {
    let s = Scratch::new();
    let mut wf = String::from("[defaults]\nretry = { max_attempts = 1 }\n");
    wf += &sh_pool("bad", "cat >/dev/null; exit 1", "");
    wf += &sh_pool("good", "cat >/dev/null; echo '{\"ok\":true}'", "");
    wf += "[[task]]\nid = \"by-result\"\npool = \"bad\"\nfallback = { result = { notes = \"none\" } }\n";
    wf += "[[task]]\nid = \"by-pool\"\npool = \"bad\"\nfallback = { pool = \"good\" }\n";
    wf += "[[task]]\nid = \"by-skip\"\npool = \"bad\"\nfallback = { skip = true }\n";
    wf += "[[task]]\nid = \"plain\"\npool = \"good\"\n";
    wf += "[[task]]\nid = \"dead\"\npool = \"bad\"\n";
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 1, "a skip and a dead letter: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "by-result")["degraded"], true, "{doc}");
    assert_eq!(task(&doc, "by-pool")["state"], "completed", "{doc}");
    assert_eq!(task(&doc, "by-pool")["degraded"], true, "{doc}");

    let mut records: Vec<Record> = Vec::new();
    journal::scan(&s.run_dir().join(journal::LOG_FILE), |rec, _| {
        records.push(rec);
        Ok(())
    })
    .expect("the run's log");
    // The reporter reads the engine's state after each batch: fold the log the same way.
    let mut state = RunState::from_first(&records[0].event).expect("first record");
    let total = state.tasks.len() as u64;
    let mut done = 0;
    for record in &records[1..] {
        state.apply(&record.event, record.ts).expect("the run's own records fold");
        let progress = Progress::of(&state);
        assert_eq!(progress.total, total);
        done = progress.terminal;
        assert!(done <= total, "counted {done} of {total} at seq {}", record.seq);
    }
    assert_eq!(done, total, "every task ended, but the bar shows {done}/{total}");
}
