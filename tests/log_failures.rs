//! When the event log cannot record the run, the run stops and says so; it never
//! reports success for what it could not record, and never loses what it had:
//!
//! - the log removed, or another file renamed over it, under a live run: exit 2
//!   naming the problem, and a copy of what the run recorded is saved beside it;
//! - the disk full (a file size limit, `RLIMIT_FSIZE`, makes writes fail with `EFBIG`
//!   at a chosen size without root): a run stops with exit 2 and `--json` still
//!   prints the document, with the error and the state `resume` carries on from;
//!   a `resume` that cannot save a damaged tail leaves the log as it was and no
//!   `.broken` file behind.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{finish_within, read_events, task, wait_for, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

/// Two tasks whose workers wait for the file `release`, so the test decides when
/// the next records are appended.
fn held_workflow(s: &Scratch) -> std::path::PathBuf {
    let d = s.path().display();
    let script = format!("cat >/dev/null; while [ ! -e {d}/release ]; do sleep 0.02; done; echo '{{\"ok\":1}}'");
    let wf = format!("{}[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n", common::sh_pool("p", &script, ""));
    s.write("workflow.toml", &wf)
}

/// Starts a headless `--json` run of `workflow` with stdout and stderr piped.
fn start(s: &Scratch, workflow: &Path) -> std::process::Child {
    s.pitboss()
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(workflow)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pitboss")
}

/// Waits until both attempts of [`held_workflow`] are recorded as started.
fn wait_for_attempts(s: &Scratch) {
    let started = || read_events(&s.run_dir()).iter().filter(|e| e["type"] == "attempt_started").count() == 2;
    assert!(wait_for(common::deadline(), started), "the attempts never started");
}

#[test]
fn a_log_removed_under_a_live_run_stops_it_with_exit_2_and_nothing_is_lost() {
    let s = Scratch::new();
    let workflow = held_workflow(&s);
    let manager = start(&s, &workflow);
    let _guard = KillOnPanic::new(&[manager.id()]);
    wait_for_attempts(&s);
    let log = s.run_dir().join("events.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::fs::write(s.path().join("release"), "").unwrap();

    let out = finish_within(manager, "a run whose log was removed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a run that could not record its end must not succeed: {stderr}");
    let expected = format!("the event log {} was removed while the run was writing it", log.display());
    assert!(stderr.contains(&expected), "names the problem: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json prints a document even now");
    assert_eq!(doc["resumable"], false, "{doc}");
    assert!(doc["error"].as_str().unwrap_or_default().contains("was removed"), "{doc}");
    assert!(!log.exists(), "the run did not write a new log behind the operator's back");

    // What the run recorded was kept: put it back and the run carries on to its end.
    let saved = s.run_dir().join("events.jsonl.rescued");
    assert!(stderr.contains(&saved.display().to_string()), "says where the records are: {stderr}");
    std::fs::rename(&saved, &log).unwrap();
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task(&doc, "a")["state"], "completed");
    assert_eq!(task(&doc, "b")["state"], "completed");
}

#[test]
fn a_log_replaced_under_a_live_run_stops_it_with_exit_2() {
    let s = Scratch::new();
    let workflow = held_workflow(&s);
    let manager = start(&s, &workflow);
    let _guard = KillOnPanic::new(&[manager.id()]);
    wait_for_attempts(&s);
    let log = s.run_dir().join("events.jsonl");
    // The most misleading replacement: a copy of the log itself, valid records and all.
    let copy = s.run_dir().join("copy.jsonl");
    std::fs::copy(&log, &copy).unwrap();
    let replacement = std::fs::read(&copy).unwrap();
    std::fs::rename(&copy, &log).unwrap();
    std::fs::write(s.path().join("release"), "").unwrap();

    let out = finish_within(manager, "a run whose log was replaced");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!("the event log {} was replaced while the run was writing it", log.display());
    assert!(stderr.contains(&expected), "names the problem: {stderr}");
    assert_eq!(std::fs::read(&log).unwrap(), replacement, "the file put there is not written to");
}

/// `cmd` with writes to regular files limited to `bytes` (beyond it they fail with
/// `EFBIG`, as on a full disk; `SIGXFSZ` is ignored so the write fails instead of
/// killing the process). Inherited by what it starts.
fn with_file_size_limit(cmd: &mut Command, bytes: u64) -> &mut Command {
    unsafe {
        cmd.pre_exec(move || {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = bytes.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        })
    }
}

#[test]
fn a_run_stopped_by_a_full_disk_exits_2_and_json_gives_the_error_and_the_resumable_state() {
    let s = Scratch::new();
    let mut wf = common::sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    for k in 0..40 {
        wf.push_str(&format!("[[task]]\nid = \"t{k}\"\n"));
    }
    let file = s.write("workflow.toml", &wf);
    // Room for the first record and about half the rest of the run, measured on an
    // unhindered run of the same workflow.
    let calibration = s.path().join("calibration");
    let out = s
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(&calibration)
        .arg(&file)
        .output_within("the calibration run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let whole = std::fs::read(calibration.join("events.jsonl")).unwrap();
    let first = whole.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
    let limit = first + (whole.len() as u64 - first) / 2;
    let mut cmd = s.pitboss();
    cmd.args(["run", "--headless", "--json", "--state-dir"]).arg(s.run_dir()).arg(&file);
    let out = with_file_size_limit(&mut cmd, limit).output_within("a run on a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write the event log"), "{stderr}");
    assert!(stderr.contains("pitboss resume"), "says how to carry on: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json must print a document on a disk-full stop ({e}); stdout: {:?}; stderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc["resumable"], true, "{doc}");
    assert!(doc["error"].as_str().unwrap_or_default().contains("cannot write the event log"), "{doc}");
    let tasks = doc["tasks"].as_array().expect("the tasks as recorded");
    assert_eq!(tasks.len(), 40);
    let completed = tasks.iter().filter(|t| t["state"] == "completed").count();
    assert!(completed < 40, "the limit stopped the run before its end: {doc}");

    // With room again, the run carries on from where the log stops.
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "completed"), "{doc}");
}

#[test]
fn a_resume_that_cannot_save_the_damaged_tail_changes_nothing() {
    let s = Scratch::new();
    let wf = format!(
        "{}[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n",
        common::sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "")
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let log = s.run_dir().join("events.jsonl");
    let whole = std::fs::read(&log).unwrap();
    // A torn last record, longer than the room the disk has left.
    let torn = &whole[..whole.len() - 40];
    std::fs::write(&log, torn).unwrap();
    let broken = s.run_dir().join("events.jsonl.broken");

    let mut cmd = s.pitboss();
    cmd.args(["resume", "--headless", "--json"]).arg(s.run_dir());
    let out = with_file_size_limit(&mut cmd, 16).output_within("pitboss resume on a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("events.jsonl.broken"), "names the file it could not write: {stderr}");
    assert!(stderr.contains("left as it was"), "says the log is intact: {stderr}");
    assert_eq!(std::fs::read(&log).unwrap(), torn, "the log is not cut when its tail cannot be saved");
    assert!(!broken.exists(), "no empty or partial .broken file is left behind");

    // With room again the same resume repairs and finishes.
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cut_from = torn.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(std::fs::read(&broken).unwrap(), &torn[cut_from..], "the cut bytes are saved");
}
