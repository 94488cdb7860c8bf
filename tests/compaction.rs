//! Compaction (DESIGN §6), through the real binary: `pitboss compact DIR` moves the
//! live log into `archive/NNN.jsonl` after a snapshot of its last record, and every
//! reader still sees every record, byte for byte as before; a run resumed after it
//! goes on with the next seqs; a live run rolls its own log past a size; a kill -9 at
//! any step of a roll leaves a folder that opens to the same state; damage in an
//! archived segment is a hard error naming the segment and line.

mod common;

use std::path::Path;
use std::process::Output;

use common::{OutputWithin, Scratch};
use pitboss::io::journal::{self, LOG_FILE};
use pitboss::io::roll::{KILL_AT_ENV, ROLL_ENV};
use pitboss::io::segments::{self, ARCHIVE_DIR};
use pitboss::io::snapshot;
use serde_json::Value;

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Tasks `a`..; `flaky` fails its first attempt (one attempt allowed: a dead letter)
/// and succeeds once the marker file it leaves exists.
fn workflow(s: &Scratch, tasks: usize) -> String {
    let marker = s.path().join("flaky-ran");
    let flaky = format!(
        "cat >/dev/null; if [ -e {m} ]; then echo '{{\"ok\":true}}'; else touch {m}; exit 1; fi",
        m = marker.display()
    );
    let mut wf = String::from("[defaults]\nretry = { max_attempts = 1 }\n");
    wf += &common::sh_pool("p", "cat >/dev/null; echo '{\"ok\":true}'", "");
    wf += &common::sh_pool("f", &flaky, "");
    for i in 0..tasks {
        wf += &format!("[[task]]\nid = \"t{i:02}\"\n");
        if i > 0 {
            wf += &format!("depends_on = [\"t{:02}\"]\n", i - 1);
        }
    }
    wf += "[[task]]\nid = \"flaky\"\npool = \"f\"\n";
    wf
}

/// What the readers print: inspect (table and JSON), a task's history, events (text
/// and JSON), dead letters.
fn readings(s: &Scratch, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let runs: [&[&str]; 7] = [
        &["inspect"],
        &["inspect", "--json"],
        &["inspect", "t01", "--json"],
        &["inspect", "flaky"],
        &["events"],
        &["events", "--json"],
        &["dlq", "--json"],
    ];
    runs.iter()
        .map(|args| {
            let (sub, rest) = args.split_first().unwrap();
            let out = s.pitboss().arg(sub).arg(dir).args(rest).output_within(&format!("pitboss {args:?}"));
            assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", text(&out));
            (format!("{args:?}"), out.stdout)
        })
        .collect()
}

#[track_caller]
fn assert_same_readings(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) {
    for ((what, a), (_, b)) in before.iter().zip(after) {
        assert!(
            a == b,
            "{what} changed:\nbefore {}\nafter  {}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
}

fn pitboss_ok(s: &Scratch, args: &[&str], dir: &Path) -> Output {
    let (sub, rest) = args.split_first().unwrap();
    let out = s.pitboss().arg(sub).args(rest).arg(dir).output_within(&format!("pitboss {args:?}"));
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    out
}

/// The seqs of `events --json`, which must run 1, 2, 3… to the end.
fn event_seqs(s: &Scratch, dir: &Path) -> Vec<Value> {
    let out = s.pitboss().args(["events", "--json"]).arg(dir).output_within("pitboss events --json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let records: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (k, r) in records.iter().enumerate() {
        assert_eq!(r["seq"].as_u64(), Some(k as u64 + 1), "events out of order at {k}");
    }
    records
}

fn segment(dir: &Path, n: u64) -> std::path::PathBuf {
    dir.join(ARCHIVE_DIR).join(segments::segment_name(n))
}

#[test]
fn compact_keeps_every_reader_byte_identical_and_a_resumed_run_goes_on() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&workflow(&s, 4));
    assert_eq!(code, 1, "the flaky task ends dead-lettered: {}", text(&out));
    let dir = s.run_dir();
    let before = readings(&s, &dir);
    let records = event_seqs(&s, &dir).len() as u64;

    let out = pitboss_ok(&s, &["compact"], &dir);
    assert!(text(&out).contains("archive/001.jsonl"), "{}", text(&out));
    assert_eq!(std::fs::metadata(dir.join(LOG_FILE)).unwrap().len(), 0, "a new empty live log");
    assert_eq!(segments::first_seq(&segment(&dir, 1)).unwrap(), Some(1));
    // The newest snapshot is of the last record and holds the workflow: opening reads no record.
    let opened = snapshot::open_state(&dir).unwrap();
    assert_eq!((opened.snapshot, opened.folded, opened.scan.records), (Some(records), 0, records));
    assert_same_readings(&before, &readings(&s, &dir));
    assert!(text(&pitboss_ok(&s, &["verify"], &dir)).contains("1 archived segment(s)"));

    // Compacting again has nothing to move.
    let out = pitboss_ok(&s, &["compact"], &dir);
    assert!(text(&out).contains("nothing to compact"), "{}", text(&out));
    assert!(!segment(&dir, 2).exists());

    // A replay appends to the new live log, with the next seqs; compacting again
    // archives those as segment 2; the resumed run completes the task.
    pitboss_ok(&s, &["dlq", "replay", "--all"], &dir);
    assert_eq!(segments::first_seq(&dir.join(LOG_FILE)).unwrap(), Some(records + 1));
    pitboss_ok(&s, &["compact"], &dir);
    assert_eq!(segments::first_seq(&segment(&dir, 2)).unwrap(), Some(records + 1));
    // The replay's records had no snapshot: compact wrote one of the last record.
    let opened = snapshot::open_state(&dir).unwrap();
    assert!(
        opened.snapshot.is_some_and(|seq| seq > records) && opened.folded == 0,
        "{:?}",
        (opened.snapshot, opened.folded)
    );
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(&dir).output_within("pitboss resume");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(common::task(&doc, "flaky")["state"], "completed", "{doc}");
    let all = event_seqs(&s, &dir);
    assert!(all.len() as u64 > records + 2);
    assert_eq!(all.last().unwrap()["event"]["type"], "run_finished");
    pitboss_ok(&s, &["verify"], &dir);
    let (full, _) = segments::fold_all(&dir).unwrap();
    let opened = snapshot::open_state(&dir).unwrap();
    assert_eq!(pitboss::cli::verify::canonical(&opened.state), pitboss::cli::verify::canonical(&full));
}

#[test]
fn compact_is_refused_while_a_manager_holds_the_run() {
    let s = Scratch::new();
    let gate = s.path().join("go");
    let script = format!("cat >/dev/null; while [ ! -e {} ]; do sleep 0.02; done; echo '{{}}'", gate.display());
    let wf = common::sh_pool("p", &script, "") + "[[task]]\nid = \"a\"\n";
    let mut manager = s.spawn_run(&s.write("workflow.toml", &wf));
    let _guard = common::KillOnPanic::new(&[manager.id()]);
    let dir = s.run_dir();
    assert!(common::wait_for(common::deadline(), || pitboss::io::rundir::is_held(&dir).is_some()));
    let out = s.pitboss().arg("compact").arg(&dir).output_within("pitboss compact");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a live manager"), "{}", text(&out));
    assert!(!dir.join(ARCHIVE_DIR).exists(), "nothing was moved");
    std::fs::write(&gate, "").unwrap();
    assert!(common::wait_within(&mut manager, "the manager").success());
}

#[test]
fn a_live_run_rolls_its_own_log_and_every_record_is_kept_in_order() {
    let s = Scratch::new();
    let dir = s.run_dir();
    let file = s.write("workflow.toml", &workflow(&s, 30));
    let out = s
        .pitboss()
        .env(ROLL_ENV, "3000")
        .env(snapshot::EVERY_ENV, "4")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(&dir)
        .arg(&file)
        .output_within("pitboss run with a tiny roll size");
    assert_eq!(out.status.code(), Some(1), "only the flaky task fails, no log trouble: {}", text(&out));
    let segments = segments::archived(&dir, None).unwrap();
    assert!(segments.len() >= 2, "the log rolled more than once: {segments:?}");
    let all = event_seqs(&s, &dir);
    assert_eq!(all.last().unwrap()["event"]["type"], "run_finished");
    // Every file is a run of whole records continuing the seqs of the one before.
    let mut next = 1;
    for seg in &segments {
        assert_eq!(segments::first_seq(&seg.path).unwrap(), Some(next), "{}", seg.path.display());
        next += std::fs::read_to_string(&seg.path).unwrap().lines().count() as u64;
    }
    let live_lines = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap().lines().count() as u64;
    assert_eq!(next + live_lines - 1, all.len() as u64);
    pitboss_ok(&s, &["verify"], &dir);
    let (full, scan) = segments::fold_all(&dir).unwrap();
    let opened = snapshot::open_state(&dir).unwrap();
    assert_eq!(opened.scan, scan);
    assert_eq!(pitboss::cli::verify::canonical(&opened.state), pitboss::cli::verify::canonical(&full));
    assert!(opened.folded < all.len() as u64 / 2, "opened from a snapshot: {:?}", (opened.snapshot, opened.folded));
}

/// The run's records as `events --json` lines and the `inspect --json` document.
fn state_of(s: &Scratch, dir: &Path) -> (Vec<Value>, Vec<u8>) {
    let inspect = s.pitboss().args(["inspect", "--json"]).arg(dir).output_within("pitboss inspect --json");
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect));
    (event_seqs(s, dir), inspect.stdout)
}

#[test]
fn compact_killed_at_every_step_leaves_a_folder_that_opens_to_the_same_state() {
    for step in 1..=4 {
        let s = Scratch::new();
        let (code, _, out) = s.run_json(&workflow(&s, 3));
        assert_eq!(code, 1, "{}", text(&out));
        let dir = s.run_dir();
        let before = state_of(&s, &dir);
        let out = s.pitboss().env(KILL_AT_ENV, step.to_string()).arg("compact").arg(&dir).output_within("compact");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "step {step}: killed there: {}", text(&out));
        assert_eq!(state_of(&s, &dir), before, "step {step}: the folder reads the same after the kill");
        // Compacting again finishes the work; the records are all still there.
        pitboss_ok(&s, &["compact"], &dir);
        assert!(!dir.join(pitboss::io::roll::NEXT_FILE).exists(), "step {step}");
        assert_eq!(state_of(&s, &dir), before, "step {step}: after compacting again");
        pitboss_ok(&s, &["verify"], &dir);
        // And the run resumes from there.
        let out = s.pitboss().args(["resume", "--headless"]).arg(&dir).output_within("resume");
        assert_eq!(out.status.code(), Some(1), "step {step}: {}", text(&out));
        assert!(event_seqs(&s, &dir).len() > before.0.len(), "step {step}: resume appended");
    }
}

#[test]
fn a_manager_killed_while_rolling_its_log_resumes_with_every_record() {
    for step in 2..=4 {
        let s = Scratch::new();
        let dir = s.run_dir();
        let file = s.write("workflow.toml", &workflow(&s, 12));
        let out = s
            .pitboss()
            .env(ROLL_ENV, "2000")
            .env(snapshot::EVERY_ENV, "3")
            .env(KILL_AT_ENV, step.to_string())
            .args(["run", "--headless", "--state-dir"])
            .arg(&dir)
            .arg(&file)
            .output_within("pitboss run killed in its roll");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "step {step}: {}", text(&out));
        // Readers see a whole stream without repairing anything.
        let seen = event_seqs(&s, &dir);
        let opened = snapshot::open_state(&dir).unwrap();
        assert_eq!(opened.scan.records, seen.len() as u64, "step {step}");
        let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(&dir).output_within("resume after the kill");
        // The flaky task's one attempt may have been cut by the kill (then it runs again).
        assert!(matches!(out.status.code(), Some(0 | 1)), "step {step}: {}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        for i in 0..12 {
            assert_eq!(common::task(&doc, &format!("t{i:02}"))["state"], "completed", "step {step}");
        }
        let all = event_seqs(&s, &dir);
        assert_eq!(&all[..seen.len()], &seen[..], "step {step}: no record lost or changed");
        pitboss_ok(&s, &["verify"], &dir);
        assert!(!dir.join(pitboss::io::roll::NEXT_FILE).exists(), "step {step}: resume cleaned up");
    }
}

/// Flips one byte inside line `line` (1-based) of `path`.
fn damage_line(path: &Path, line: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let start = bytes.split(|&b| b == b'\n').take(line - 1).map(|l| l.len() + 1).sum::<usize>();
    let i = start + bytes[start..].windows(7).position(|w| w == b"\"type\":").unwrap() + 8;
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damage_in_an_archived_segment_is_named_and_never_cut() {
    let s = Scratch::new();
    let (code, _, _) = s.run_json(&workflow(&s, 3));
    assert_eq!(code, 1);
    let dir = s.run_dir();
    pitboss_ok(&s, &["compact"], &dir);
    let seg = segment(&dir, 1);
    let sound = std::fs::read(&seg).unwrap();
    let lines = std::fs::read_to_string(&seg).unwrap().lines().count();
    // The last line of a segment: in the live log it would be a crash tail; here it is damage.
    damage_line(&seg, lines);
    let shown = format!("{}:{lines}:", seg.display());
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("verify");
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(text(&verify).contains(&shown) && text(&verify).contains("sealed"), "{}", text(&verify));
    let events = s.pitboss().arg("events").arg(&dir).output_within("events");
    assert_eq!(events.status.code(), Some(2), "{}", text(&events));
    assert!(text(&events).contains(&shown) && text(&events).contains("archived segment"), "{}", text(&events));
    // The snapshot's own record is damaged, so it is not used: resume refuses, cuts nothing.
    let bytes = std::fs::read(&seg).unwrap();
    let out = s.pitboss().args(["resume", "--headless"]).arg(&dir).output_within("resume");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&shown), "{}", text(&out));
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "the segment is never cut");
    assert!(!dir.join(journal::BROKEN_FILE).exists());
    // Damage the snapshot covers, record 1 (the workflow) itself: opening starts from
    // the snapshot, which holds the workflow, and never reads it.
    std::fs::write(&seg, &sound).unwrap();
    damage_line(&seg, 1);
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("verify");
    assert!(text(&verify).contains(&format!("{}:1:", seg.display())), "{}", text(&verify));
    pitboss_ok(&s, &["inspect"], &dir);
    pitboss_ok(&s, &["dlq"], &dir);
    let out = s.pitboss().args(["resume", "--headless"]).arg(&dir).output_within("resume");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // A segment gone missing: the live log no longer continues the archive.
    let s2 = Scratch::new();
    let (code, _, _) = s2.run_json(&workflow(&s2, 3));
    assert_eq!(code, 1);
    let dir2 = s2.run_dir();
    pitboss_ok(&s2, &["compact"], &dir2);
    pitboss_ok(&s2, &["dlq", "replay", "--all"], &dir2);
    pitboss_ok(&s2, &["compact"], &dir2);
    let out = s2.pitboss().args(["resume", "--headless"]).arg(&dir2).output_within("resume");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_file(segment(&dir2, 2)).unwrap();
    let events = s2.pitboss().arg("events").arg(&dir2).output_within("events");
    assert_eq!(events.status.code(), Some(2), "{}", text(&events));
    assert!(
        text(&events).contains("events.jsonl:1:") && text(&events).contains("segment is missing"),
        "{}",
        text(&events)
    );
}

#[test]
fn compact_refuses_a_log_with_a_torn_tail_and_a_folder_without_a_log() {
    let s = Scratch::new();
    let (code, _, _) = s.run_json(&workflow(&s, 2));
    assert_eq!(code, 1);
    let dir = s.run_dir();
    let log = dir.join(LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(b"{\"seq\":99,\"ts\"");
    std::fs::write(&log, &bytes).unwrap();
    let out = s.pitboss().arg("compact").arg(&dir).output_within("compact");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("damaged record") && text(&out).contains("pitboss resume"), "{}", text(&out));
    assert!(!dir.join(ARCHIVE_DIR).exists(), "nothing was moved");
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "nothing was cut");
    // `resume` cuts the tail (and records it); then compaction goes through.
    let out = s.pitboss().args(["resume", "--headless"]).arg(&dir).output_within("resume");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    pitboss_ok(&s, &["compact"], &dir);
    pitboss_ok(&s, &["verify"], &dir);

    let out = s.pitboss().arg("compact").arg(s.path().join("nowhere")).output_within("compact");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no event log here"), "{}", text(&out));
    assert!(!s.path().join("nowhere").exists(), "no folder made");
}
