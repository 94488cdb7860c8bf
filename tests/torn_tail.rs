//! What a crash leaves at the end of the log: cut the log of a finished run at every
//! byte offset inside its last three records (and fill a tail with NUL bytes); each
//! cut opens, recovers to the last whole record, saves the cut bytes, records the
//! repair and resumes to completion. A flipped byte in the middle is refused with the
//! line and seq named, and the log is left untouched.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{read_events, OutputWithin, Scratch};
use serde_json::Value;

const WORKFLOW: &str = r#"
[defaults]
retry = { initial = "5ms", max = "5ms" }
[[pool]]
name = "p"
command = ["sh", "-c", "cat >/dev/null; echo '{\"ok\":true}'"]
concurrency = 2
[[task]]
id = "a"
[[task]]
id = "b"
depends_on = ["a"]
[[task]]
id = "c"
depends_on = ["b"]
"#;

/// A finished run's folder; returns (scratch, the log's bytes).
fn finished_run() -> (Scratch, Vec<u8>) {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read(s.run_dir().join("events.jsonl")).unwrap();
    (s, log)
}

/// Byte offsets where each line starts, plus the end.
fn line_starts(log: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(log.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1));
    starts
}

/// Copies the run folder with the log replaced by `log`.
fn damaged_copy(s: &Scratch, name: &str, log: &[u8]) -> PathBuf {
    let dir = s.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("events.jsonl"), log).unwrap();
    dir
}

fn resume(s: &Scratch, dir: &Path) -> (i32, Value, String) {
    let out =
        s.pitboss().args(["resume", "--headless", "--json"]).arg(dir).output_within("pitboss resume of a damaged log");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Resumes a log cut at `cut` and checks recovery; `whole` is the number of whole
/// records before the cut.
fn check_cut(s: &Scratch, log: &[u8], cut_log: &[u8], whole: usize, tag: &str) {
    let dir = damaged_copy(s, tag, cut_log);
    let (code, doc, stderr) = resume(s, &dir);
    assert_eq!(code, 0, "{tag}: resume failed: {stderr}");
    for t in doc["tasks"].as_array().unwrap() {
        assert_eq!(t["state"], "completed", "{tag}: {t}");
    }
    // Every whole record before the cut is still there, byte for byte.
    let kept = &log[..line_starts(log)[whole]];
    let now = std::fs::read(dir.join("events.jsonl")).unwrap();
    assert!(now.starts_with(kept), "{tag}: records before the cut changed");
    let damaged = cut_log.len() > kept.len();
    let events = read_events(&dir);
    let repaired = events.iter().any(|e| e["type"] == "log_repaired");
    assert_eq!(repaired, damaged, "{tag}: log_repaired recorded iff bytes were cut");
    if damaged {
        let broken = std::fs::read(dir.join("events.jsonl.broken")).unwrap();
        assert_eq!(broken, &cut_log[kept.len()..], "{tag}: the cut bytes are saved");
    }
    // The repaired log is whole again: seq runs 1..=n.
    let text = String::from_utf8(now).unwrap();
    for (i, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{tag}: line {}: {e}", i + 1));
        assert_eq!(rec["seq"], (i + 1) as u64, "{tag}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `log` with the run id in its first record replaced by one made from `k`, and that
/// record sealed again. Copies of one run resumed at the same time must not share a
/// run id: `resume` ends every leftover worker marked with its run id, so one copy's
/// resume would kill the other copy's running workers (under load often enough to
/// spend a task's three attempts: why this test used to fail on a busy machine).
fn with_own_run_id(log: &[u8], k: usize) -> Vec<u8> {
    let first_end = log.iter().position(|&b| b == b'\n').unwrap();
    let first = std::str::from_utf8(&log[..first_end]).unwrap();
    let at = first.find("\"run_id\":\"").unwrap() + "\"run_id\":\"".len();
    let body = format!("{}{:032x}{}", &first[..at], k, &first[at + 32..first.rfind(",\"crc\":").unwrap()]);
    [seal(&body).into_bytes(), log[first_end..].to_vec()].concat()
}

#[test]
fn a_log_cut_anywhere_in_its_last_three_records_recovers_and_resumes() {
    let (s, log) = finished_run();
    let starts = line_starts(&log);
    let n = starts.len() - 1;
    assert!(n >= 8, "the run logged only {n} records");
    let first_cut = starts[n - 3];
    let cuts: Vec<usize> = (first_cut..log.len()).collect();
    // Resumes are independent processes: two at a time keeps both cores busy.
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&cut) = cuts.get(k) else { break };
                // A record is whole once all but its newline is there: recovery adds the newline.
                let whole = starts.iter().filter(|&&st| st > 0 && st - 1 <= cut).count();
                // Only the first line changes length, so the cut moves by the same amount.
                let own = with_own_run_id(&log, k + 1);
                let own_cut = cut.checked_add_signed(own.len() as isize - log.len() as isize).unwrap();
                check_cut(&s, &own, &own[..own_cut], whole, &format!("cut{cut}"));
            });
        }
    });
}

#[test]
fn a_tail_of_nul_bytes_is_cut_and_the_run_resumes() {
    let (s, log) = finished_run();
    let starts = line_starts(&log);
    let n = starts.len() - 1;
    // A crash after the file grew but before the data landed: the last two records are zeros.
    let mut damaged = log.clone();
    for b in &mut damaged[starts[n - 2]..] {
        *b = 0;
    }
    check_cut(&s, &log, &damaged, n - 2, "nul");
}

#[test]
fn a_flipped_byte_in_the_middle_is_refused_naming_line_and_seq() {
    let (s, log) = finished_run();
    let starts = line_starts(&log);
    let line = 3; // 1-based: a record with valid records after it
    let mut damaged = log.clone();
    let at = starts[line - 1] + (starts[line] - starts[line - 1]) / 2;
    damaged[at] ^= 0x01;
    let dir = damaged_copy(&s, "flipped", &damaged);
    let (code, _, stderr) = resume(&s, &dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("events.jsonl:{line}:")), "names the line: {stderr}");
    assert!(stderr.contains("seq"), "names the seq: {stderr}");
    assert!(stderr.contains("--truncate-at"), "offers the way out: {stderr}");
    assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), damaged, "a refused log is not touched");
    assert!(!dir.join("events.jsonl.broken").exists());

    // The explicit way out: cut the log before the damaged record, then resume.
    let out = s
        .pitboss()
        .args(["resume", "--headless", "--json", "--truncate-at", &line.to_string()])
        .arg(&dir)
        .output_within("pitboss resume --truncate-at");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "completed"), "{doc}");
}

/// A record with a valid checksum in a newer log format is not damage: `inspect` and
/// `resume` refuse with "written by a newer pitboss", and the log is left whole.
#[test]
fn a_record_from_a_newer_pitboss_is_refused_not_cut() {
    let (s, log) = finished_run();
    let text = String::from_utf8(log).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let last = lines.pop().unwrap();
    assert!(last.contains(",\"v\":1,"), "records carry their format version: {last}");
    // Re-seal the last record as format 2, with a checksum that matches.
    let body = last[..last.rfind(",\"crc\":").unwrap()].replace(",\"v\":1,", ",\"v\":2,");
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(body.as_bytes());
    hasher.update(b"}");
    lines.push(format!("{body},\"crc\":{}}}", hasher.finalize()));
    let newer = lines.join("\n") + "\n";
    let path = s.run_dir().join("events.jsonl");
    std::fs::write(&path, &newer).unwrap();
    for args in [vec!["inspect"], vec!["resume", "--headless"]] {
        let out = s.pitboss().args(&args).arg(s.run_dir()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("events.jsonl:{}: written by a newer pitboss", lines.len())), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer, "the log was changed");
    assert!(!s.run_dir().join("events.jsonl.broken").exists(), "a newer record was cut as damage");
}

/// `body` (a record without its checksum part) sealed with a matching checksum.
fn seal(body: &str) -> String {
    String::from_utf8(common::seal(body.as_bytes())).expect("text in, text out")
}

/// A well-formed record of an event type this build does not know, in today's format
/// version and with a valid checksum, is what a newer pitboss writes: `resume`,
/// `inspect` and `events` refuse it naming the version, and never cut it as damage,
/// whether it is the last record or valid records follow it.
#[test]
fn an_unknown_event_type_from_a_newer_pitboss_is_refused_not_cut() {
    let (s, log) = finished_run();
    let n = line_starts(&log).len() - 1;
    let unknown = |seq: usize| {
        seal(&format!(
            "{{\"seq\":{seq},\"ts\":1,\"v\":1,\"event\":{{\"type\":\"some_future_event\",\"task\":\"a\",\"attempt\":1,\"index\":0}}"
        ))
    };
    let at_tail = [log.clone(), format!("{}\n", unknown(n + 1)).into_bytes()].concat();
    // In the middle: the unknown record, then the run's own last record renumbered.
    let text = String::from_utf8(log.clone()).unwrap();
    let last = text.lines().last().unwrap();
    let body = last[..last.rfind(",\"crc\":").unwrap()].replacen(
        &format!("{{\"seq\":{n},"),
        &format!("{{\"seq\":{},", n + 1),
        1,
    );
    let before_last = &log[..line_starts(&log)[n - 1]];
    let in_middle = [before_last.to_vec(), format!("{}\n{}\n", unknown(n), seal(&body)).into_bytes()].concat();
    for (tag, bytes, line) in [("tail", at_tail, n + 1), ("middle", in_middle, n)] {
        let dir = damaged_copy(&s, tag, &bytes);
        for args in [vec!["resume", "--headless", "--json"], vec!["inspect"], vec!["events"]] {
            let out = s.pitboss().args(&args).arg(&dir).output_within("a command on a log with an unknown event type");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{tag} {args:?}: {err}");
            let expected = format!("events.jsonl:{line}: written by a newer pitboss");
            assert!(err.contains(&expected), "{tag} {args:?}: {err}");
            assert!(err.contains("some_future_event"), "{tag} {args:?}: names the unknown type: {err}");
            assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), bytes, "{tag} {args:?}: the log changed");
            assert!(!dir.join("events.jsonl.broken").exists(), "{tag} {args:?}: cut as damage");
        }
    }
}
