//! `pitboss fork DIR --at SEQ [--to NEWDIR]` (DESIGN §6), through the real binary:
//! the fork's log is the original's records 1..=SEQ byte for byte, then
//! `forked_from`; resumed, the fork runs what was running or pending at SEQ and
//! nothing that was done (each worker counts its runs in a file), without spending
//! an attempt; the original folder is not changed by a byte; the prefix may cross
//! archived segments; bad input is a plain error that leaves nothing behind.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A chain `a` → `b` → `c`, one pool each; every worker appends its task to `ran`,
/// keeps its input in `TASK.in` and prints 20 kB to stderr (so each attempt has an
/// output file in `output/`).
/// One attempt each: a spent attempt would show as attempt 2.
fn chain(s: &Scratch) -> String {
    let ran = s.path().join("ran");
    let mut wf = String::from("[defaults]\nretry = { max_attempts = 1 }\n");
    for t in ["a", "b", "c"] {
        let script = format!(
            "cat > {input}; echo {t} >> {ran}; head -c 20000 /dev/zero | tr '\\0' {t} >&2; echo '{{\"ok\":true}}'",
            ran = ran.display(),
            input = s.path().join(format!("{t}.in")).display()
        );
        wf += &common::sh_pool(&format!("p{t}"), &script, "");
    }
    wf += "[[task]]\nid = \"a\"\npool = \"pa\"\n";
    wf += "[[task]]\nid = \"b\"\npool = \"pb\"\ndepends_on = [\"a\"]\n";
    wf += "[[task]]\nid = \"c\"\npool = \"pc\"\ndepends_on = [\"b\"]\n";
    wf
}

/// How many times each task's worker ran.
fn runs(s: &Scratch) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(s.path().join("ran")).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        *counts.entry(line.to_string()).or_insert(0) += 1;
    }
    counts
}

/// The log's lines (the live log only: these runs are not compacted unless said).
fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.jsonl")).expect("log").lines().map(str::to_string).collect()
}

/// The seq of the first record of `kind` about `task`.
fn seq_of(dir: &Path, kind: &str, task: &str) -> u64 {
    lines(dir)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("record"))
        .find(|r| r["event"]["type"] == kind && r["event"]["task"] == task)
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} of {task}"))
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).expect("read file"));
            }
        }
    }
    files
}

fn fork(s: &Scratch, dir: &Path, at: u64, to: Option<&Path>) -> Output {
    let mut cmd = s.pitboss();
    cmd.arg("fork").arg(dir).args(["--at", &at.to_string()]);
    if let Some(to) = to {
        cmd.arg("--to").arg(to);
    }
    cmd.output_within("pitboss fork")
}

fn resume_json(s: &Scratch, dir: &Path) -> (Output, Value) {
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(dir).output_within("pitboss resume");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, doc)
}

#[test]
fn a_fork_runs_again_what_was_running_or_pending_and_leaves_the_original_alone() {
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&chain(&s));
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    assert_eq!(runs(&s), BTreeMap::from([("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]));
    // At b's spawn: a is done, b running, c waiting on it.
    let at = seq_of(&dir, "attempt_spawned", "b");
    let before = tree(&dir);
    let forked = s.path().join("forked");
    let out = fork(&s, &dir, at, Some(&forked));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&forked.display().to_string()) && said.contains("pitboss resume"), "{said}");

    // The prefix byte for byte, then forked_from, then b handed back.
    let original = lines(&dir);
    let copy = lines(&forked);
    assert_eq!(copy[..at as usize], original[..at as usize], "the prefix is copied as it was");
    let origin: Value = serde_json::from_str(&copy[at as usize]).unwrap();
    assert_eq!(origin["event"]["type"], "forked_from");
    assert_eq!(origin["event"]["run_id"], doc["run_id"]);
    assert_eq!(origin["event"]["seq"], at);
    let back: Value = serde_json::from_str(&copy[at as usize + 1]).unwrap();
    assert_eq!((&back["event"]["type"], &back["event"]["task"]), (&"attempt_interrupted".into(), &"b".into()));
    // a's output came along; b's (in flight at the fork) did not.
    assert!(forked.join("output/a.1.stderr").is_file(), "a's output is copied");
    assert!(dir.join("output/b.1.stderr").is_file() && !forked.join("output/b.1.stderr").exists());

    let (out, fork_doc) = resume_json(&s, &forked);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // a ran once in all (the original); b and c once more, in the fork.
    assert_eq!(runs(&s), BTreeMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 2)]));
    for t in ["a", "b", "c"] {
        let task = common::task(&fork_doc, t);
        assert_eq!(task["state"], "completed", "{t}: {fork_doc}");
        assert_eq!(task["attempts"], 1, "{t}: the handed-back attempt is not spent: {fork_doc}");
    }
    assert_ne!(fork_doc["run_id"], doc["run_id"], "the fork has a run id of its own");
    assert_eq!(tree(&dir), before, "the original folder is unchanged");
    let verify = s.pitboss().arg("verify").arg(&forked).output_within("pitboss verify");
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}

#[test]
fn a_fork_reads_its_prefix_across_archived_segments() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&chain(&s));
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    let at_b = seq_of(&dir, "attempt_spawned", "b");
    let archived = lines(&dir);
    let out = s.pitboss().arg("compact").arg(&dir).output_within("pitboss compact");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A resume appends to the new live log: the run's records now span two files.
    let (out, _) = resume_json(&s, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let live = lines(&dir);
    assert!(!live.is_empty(), "the resume wrote to the live log");
    let last = (archived.len() + live.len()) as u64;

    let across = s.path().join("across");
    let out = fork(&s, &dir, last, Some(&across));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let whole: Vec<String> = archived.iter().chain(&live).cloned().collect();
    assert_eq!(lines(&across)[..whole.len()], whole[..], "archive then live log, byte for byte");

    // A prefix inside the archive alone resumes like any fork.
    let inside = s.path().join("inside");
    let out = fork(&s, &dir, at_b, Some(&inside));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(lines(&inside)[..at_b as usize], archived[..at_b as usize]);
    let (out, doc) = resume_json(&s, &inside);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(common::task(&doc, "c")["state"], "completed", "{doc}");
    assert_eq!(runs(&s), BTreeMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 2)]));
}

#[test]
fn bad_forks_say_what_is_wrong_and_leave_nothing_behind() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&chain(&s));
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    let records = lines(&dir).len() as u64;
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(s.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    // Checks a refusal: exit 2, the words said, and the scratch folder as it was.
    let refused = |out: &Output, words: &[&str], before: &[std::ffi::OsString]| {
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{said}");
        for w in words {
            assert!(said.contains(w), "{w:?} not in {said:?}");
        }
        assert!(!said.contains("panicked"), "{said}");
        assert_eq!(listing(), before, "nothing is left behind: {said}");
    };
    let before = listing();
    refused(&fork(&s, &dir, records + 1, None), &["past the end", &format!("holds {records} record")], &before);
    refused(&fork(&s, &dir, 0, None), &["numbered from 1"], &before);
    refused(&fork(&s, &s.path().join("home"), 3, None), &["no event log here"], &before);
    let file = s.write("a-file", "not a folder");
    refused(&fork(&s, &dir, 3, Some(&file.join("fork"))), &["a-file"], &listing());
    let out = fork(&s, &dir, 3, Some(&file));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder", "an existing path is never written");

    // A record damaged before SEQ: the error names the file and the line.
    let damaged = s.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    let mut log = lines(&dir);
    log[2] = log[2].replacen("task_ready", "task_reaDy", 1);
    std::fs::write(damaged.join("events.jsonl"), log.join("\n") + "\n").unwrap();
    refused(&fork(&s, &damaged, records, None), &["events.jsonl:3"], &listing());
    // A prefix that ends before the damage is whole: a fork of it works.
    let out = fork(&s, &damaged, 2, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(s.path().join("damaged-fork-2").is_dir());
}

#[test]
fn a_fork_can_give_tasks_new_payloads() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&chain(&s));
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    let at = seq_of(&dir, "attempt_spawned", "b");
    let listing = || std::fs::read_dir(s.path()).unwrap().count();
    let before = listing();
    // A completed task never runs again: its edit is refused, and nothing is made.
    let out = s
        .pitboss()
        .arg("fork")
        .arg(&dir)
        .args(["--at", &at.to_string(), "--edit", r#"a={"x":1}"#])
        .output_within("pitboss fork --edit a");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--edit a: the task had completed"), "{}", text(&out));
    let out = s.pitboss().arg("fork").arg(&dir).args(["--at", "3", "--edit", "b={x"]).output_within("bad json");
    assert!(out.status.code() == Some(2) && text(&out).contains("not JSON"), "{}", text(&out));
    assert_eq!(listing(), before, "a refused fork leaves nothing behind");

    let forked = s.path().join("edited");
    let out = s
        .pitboss()
        .arg("fork")
        .arg(&dir)
        .args(["--at", &at.to_string(), "--to"])
        .arg(&forked)
        .args(["--edit", r#"b={"topic":"forked"}"#, "--edit", "c={}"])
        .output_within("pitboss fork --edit");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // b's edit is recorded after it is handed back; c's payload is already {}, so
    // nothing is recorded for it.
    let added: Vec<Value> = lines(&forked)[at as usize..].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = added.iter().map(|r| r["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["forked_from", "attempt_interrupted", "payload_edited"], "{added:?}");
    assert_eq!(added[2]["event"]["task"], "b");
    let (out, _) = resume_json(&s, &forked);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let input: Value = serde_json::from_str(&std::fs::read_to_string(s.path().join("b.in")).unwrap()).unwrap();
    assert_eq!(input["payload"], serde_json::json!({"topic":"forked"}), "b ran with its new payload: {input}");
}

/// A live run (its manager holds the folder) is forked while its worker runs, and the
/// fork resumed beside it: the original's worker goes on, and both runs finish.
#[test]
fn a_live_run_can_be_forked_and_both_go_on() {
    let s = Scratch::new();
    let go = s.path().join("go");
    let pids = s.path().join("pids");
    // The worker notes its pid and waits for `go` (the test's signal to finish).
    let script = format!(
        "cat >/dev/null; echo $$ >> {pids}; while [ ! -e {go} ]; do sleep 0.02; done; echo '{{\"ok\":true}}'",
        pids = pids.display(),
        go = go.display()
    );
    let wf = String::from("[defaults]\nretry = { max_attempts = 1 }\n")
        + &common::sh_pool("p", &script, "")
        + "[[task]]\nid = \"slow\"\n";
    let file = s.write("workflow.toml", &wf);
    let original = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[original.id()]);
    let dir = s.run_dir();
    let worker_pids = || std::fs::read_to_string(&pids).unwrap_or_default().lines().count();
    assert!(common::wait_for(common::deadline(), || worker_pids() == 1), "the original's worker never started");
    assert!(common::wait_for(common::deadline(), || s.events().iter().any(|e| e["type"] == "attempt_spawned")));
    let at = seq_of(&dir, "attempt_spawned", "slow");
    let forked = s.path().join("forked");
    let out = fork(&s, &dir, at, Some(&forked));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let resumed = s
        .pitboss()
        .args(["resume", "--headless", "--json"])
        .arg(&forked)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pitboss resume");
    let _guard2 = KillOnPanic::new(&[resumed.id()]);
    // The fork's worker started, so its resume is past its sweep of leftover workers.
    assert!(common::wait_for(common::deadline(), || worker_pids() == 2), "the fork's worker never started");
    let first: i32 = std::fs::read_to_string(&pids).unwrap().lines().next().unwrap().parse().unwrap();
    assert!(common::alive(first), "the fork's resume ended the original's worker");
    std::fs::write(&go, "").unwrap();
    for (child, what) in [(original, "original"), (resumed, "fork")] {
        let out = common::finish_within(child, what);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(common::task(&doc, "slow")["state"], "completed", "{what}: {doc}");
    }
}
