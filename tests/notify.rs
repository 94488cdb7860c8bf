//! `[[notify]]` hooks on real headless runs (DESIGN §12): the hook gets the matching
//! records as JSON on stdin; a hook that hangs or fails changes nothing about the run
//! (exit code, event log), is killed at its timeout with its process group, and is
//! written to `STATE_DIR/notify.log`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{alive, deadline, toml_string, wait_for, OutputWithin, Scratch};
use serde_json::Value;

/// One task that fails to a dead letter at its first attempt, one that completes.
fn workflow(notify: &str) -> String {
    let script = r#"if [ "$1" = bad ]; then echo broken >&2; exit 1; fi; echo '{"ok":true}'"#;
    format!(
        "[[pool]]\nname = \"w\"\ncommand = [\"sh\", \"-c\", {}, \"_\", \"{{id}}\"]\n\
         [[task]]\nid = \"bad\"\nretry = {{ max_attempts = 1 }}\n\
         [[task]]\nid = \"good\"\n\n{notify}",
        toml_string(script)
    )
}

fn hook_asset(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hooks").join(name).display().to_string()
}

fn notify_log(s: &Scratch) -> String {
    std::fs::read_to_string(s.run_dir().join("notify.log")).unwrap_or_default()
}

fn event_types(s: &Scratch) -> Vec<String> {
    let mut types: Vec<String> =
        s.events().iter().map(|e| e["type"].as_str().unwrap_or_default().to_string()).collect();
    // Two tasks run side by side: their records interleave differently from run to run.
    types.sort();
    types
}

#[test]
fn the_append_hook_gets_the_dead_letter_and_the_end_of_the_run() {
    let s = Scratch::new();
    let out = s.path().join("notes.jsonl");
    let notify = format!(
        "[[notify]]\non = [\"dead_lettered\", \"run_finished\"]\ncommand = [{}, {}]\n",
        toml_string(&hook_asset("append.sh")),
        toml_string(&out.display().to_string())
    );
    let (code, doc, output) = s.run_json(&workflow(&notify));
    assert_eq!(code, 1, "a dead letter: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(doc["tasks"].as_array().map(Vec::len), Some(2));
    let text = std::fs::read_to_string(&out).expect("the hook wrote its file");
    let mut docs: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON document a line")).collect();
    docs.sort_by_key(|d| d["record"]["seq"].as_u64());
    assert_eq!(docs.len(), 2, "{text}");
    assert_eq!(docs[0]["on"], "dead_lettered");
    assert_eq!(docs[0]["record"]["event"]["type"], "attempt_failed");
    assert_eq!(docs[0]["record"]["event"]["task"], "bad");
    assert_eq!(docs[0]["task"]["id"], "bad");
    assert_eq!(docs[0]["task"]["state"], "dead_lettered");
    assert_eq!(docs[0]["task"]["attempts"], 1);
    assert_eq!(docs[0]["task"]["pool"], "w");
    assert!(docs[0]["task"]["why"].is_string(), "{}", docs[0]);
    assert_eq!(docs[1]["on"], "run_finished");
    assert_eq!(docs[1]["record"]["event"]["type"], "run_finished");
    assert_eq!(docs[1]["record"]["event"]["success"], false);
    assert_eq!(docs[1]["task"], Value::Null);
    // The seq is the log's: the record the hook got is the record in the log.
    let log = std::fs::read_to_string(s.run_dir().join("events.jsonl")).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(docs[1]["record"]["seq"], last["seq"]);
    assert_eq!(notify_log(&s), "", "nothing failed");
}

#[test]
fn a_hook_that_hangs_is_killed_at_its_timeout_and_the_run_ends_as_without_it() {
    let s = Scratch::new();
    let pid_file = s.path().join("hook.pid");
    let script = format!("echo $$ > {}; sleep 1000", pid_file.display());
    let notify = format!(
        "[[notify]]\non = [\"run_finished\"]\ncommand = [\"sh\", \"-c\", {}]\ntimeout = \"1s\"\n",
        toml_string(&script)
    );
    let started = Instant::now();
    let (code, doc, output) = s.run_json(&workflow(&notify));
    let took = started.elapsed();
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(doc["tasks"].as_array().map(Vec::len), Some(2));
    // The hook sleeps 1000 s: the run waited for its 1 s timeout, not for it.
    assert!(took < Duration::from_secs(30), "the run took {took:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("the hook ran").trim().parse().expect("a pid");
    let gone = wait_for(deadline(), || !alive(pid));
    if !gone {
        kill_group(pid);
    }
    assert!(gone, "hook pid {pid} outlived the run");
    let log = notify_log(&s);
    assert!(log.contains("on=run_finished") && log.contains("timed out after 1s"), "{log}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("notification hook(s) failed"), "{stderr}");
}

#[test]
fn a_hook_that_fails_changes_nothing_about_the_run_and_is_logged() {
    let plain = Scratch::new();
    let (plain_code, _, _) = plain.run_json(&workflow(""));

    let s = Scratch::new();
    let script = "cat >/dev/null; echo HOOK-SAYS-OUT; echo 'HOOK-SAYS-ERR \u{1b}[2J' >&2; exit 1";
    let notify = format!(
        "[[notify]]\non = [\"attempt_failed\", \"completed\", \"dead_lettered\", \"run_finished\"]\n\
         command = [\"sh\", \"-c\", {}]\n",
        toml_string(script)
    );
    let (code, _, output) = s.run_json(&workflow(&notify));
    assert_eq!(code, plain_code, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(event_types(&s), event_types(&plain), "the same records, with or without hooks");
    let log = notify_log(&s);
    assert_eq!(log.lines().count(), 4, "one line per failed hook:\n{log}");
    for on in ["attempt_failed", "completed", "dead_lettered", "run_finished"] {
        assert!(log.contains(&format!("on={on} ")), "{on} missing:\n{log}");
    }
    assert!(log.contains("exited with code 1: HOOK-SAYS-ERR \\x1b[2J"), "escaped, never raw:\n{log}");
    let mode = std::fs::metadata(s.run_dir().join("notify.log")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // What a hook prints never reaches pitboss's own output.
    for stream in [&output.stdout, &output.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains("HOOK-SAYS"), "{}", String::from_utf8_lossy(stream));
    }
}

#[test]
fn notify_mistakes_are_reported_at_their_line_and_column() {
    let s = Scratch::new();
    let text = workflow("[[notify]]\non = [\"dead_letterd\"]\ncommand = []\nbogus = 1\n");
    let file = s.write("wf.toml", &text);
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "wf.toml");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wf.toml:13:1: unknown key `bogus` in [[notify]]"), "{stderr}");

    let file = s.write("wf2.toml", &workflow("[[notify]]\non = [\"dead_letterd\"]\ncommand = []\n"));
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "wf.toml");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wf.toml:11:7: notify: unknown name \"dead_letterd\" in `on`"), "{stderr}");
    assert!(stderr.contains("dead_lettered") && stderr.contains("run_finished"), "lists the valid names: {stderr}");
    assert!(stderr.contains("wf.toml:12:11: notify: `command` is empty"), "{stderr}");
}

#[test]
fn a_hook_running_when_the_manager_is_killed_is_ended_by_the_guardian() {
    let s = Scratch::new();
    let pid_file = s.path().join("hook.pid");
    let script = format!("echo $$ > {0}.tmp; mv {0}.tmp {0}; sleep 1000", pid_file.display());
    let notify = format!(
        "[[notify]]\non = [\"run_finished\"]\ncommand = [\"sh\", \"-c\", {}]\ntimeout = \"10m\"\n",
        toml_string(&script)
    );
    let file = s.write("workflow.toml", &workflow(&notify));
    let mut manager = s.spawn_run(&file);
    let guard = common::KillOnPanic::new(&[manager.id()]);
    assert!(wait_for(deadline(), || pid_file.exists()), "the hook never started");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // The manager waits for the hook (10 minutes); kill it instead.
    common::kill_pid(manager.id() as i32);
    common::wait_within(&mut manager, "the killed manager");
    let gone = wait_for(deadline(), || !alive(pid));
    if !gone {
        kill_group(pid);
    }
    drop(guard);
    assert!(gone, "hook pid {pid} outlived its manager");
}

/// Test cleanup when the notifier failed: the hook leads its own process group.
fn kill_group(pid: i32) {
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[test]
fn a_new_runs_first_records_notify_too_and_a_resume_does_not_repeat_them() {
    let s = Scratch::new();
    let out = s.path().join("notes.jsonl");
    let notify = format!(
        "[[notify]]\non = [\"run_started\", \"manager_started\"]\ncommand = [{}, {}]\n",
        toml_string(&hook_asset("append.sh")),
        toml_string(&out.display().to_string())
    );
    let (code, _, _) = s.run_json(&workflow(&notify));
    assert_eq!(code, 1);
    let on = |text: &str| -> Vec<String> {
        let mut docs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        docs.sort_by_key(|d| d["record"]["seq"].as_u64());
        docs.iter().map(|d| d["on"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(on(&std::fs::read_to_string(&out).unwrap()), ["run_started", "manager_started"]);
    // A resume is a new manager of the same run: only its own records notify.
    let resumed = s.pitboss().args(["resume", "--headless"]).arg(s.run_dir()).output_within("pitboss resume");
    assert_eq!(resumed.status.code(), Some(1), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(on(&std::fs::read_to_string(&out).unwrap()), ["run_started", "manager_started", "manager_started"]);
}
