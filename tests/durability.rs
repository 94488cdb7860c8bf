//! The operator's tools on a run folder: replaying a dead letter brings its skipped
//! dependents back and `resume` completes them all; `events --follow` tails a live run
//! and ends by itself when the run does; a poison pill is dead-lettered.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{kill_pid, read_events, task, wait_for, wait_within, KillOnPanic, Lines, OutputWithin, Scratch};
use serde_json::Value;

/// `flaky` fails until the file `fixed` exists; `after` and `last` depend on it.
fn flaky_workflow(s: &Scratch) -> String {
    let d = s.path().display();
    let script =
        format!("cat >/dev/null; if [ -e {d}/fixed ]; then echo '{{\"ok\":1}}'; else echo broken >&2; exit 3; fi");
    format!(
        "[defaults]\nretry = {{ max_attempts = 2, initial = \"5ms\" }}\n{}{}\
         [[task]]\nid = \"flaky\"\npool = \"p\"\n[[task]]\nid = \"after\"\ndepends_on = [\"flaky\"]\npool = \"ok\"\n\
         [[task]]\nid = \"last\"\ndepends_on = [\"after\"]\npool = \"ok\"\n[[task]]\nid = \"fine\"\npool = \"ok\"\n",
        common::sh_pool("p", &script, ""),
        common::sh_pool("ok", "cat >/dev/null; echo '{\"ok\":2}'", "")
    )
}

#[test]
fn a_replayed_dead_letter_and_its_skipped_dependents_complete_on_resume() {
    let s = Scratch::new();
    let (code, doc, _) = s.run_json(&flaky_workflow(&s));
    assert_eq!(code, 1);
    assert_eq!(task(&doc, "flaky")["state"], "dead_lettered");
    assert_eq!(task(&doc, "flaky")["attempts"], 2);
    assert_eq!(task(&doc, "after")["state"], "skipped");
    assert_eq!(task(&doc, "last")["state"], "skipped");
    assert!(!common::run_finished_success(&s.events()), "a dead letter is not a success");

    // The dead-letter list names the task, its reason and attempts.
    let out = s.pitboss().args(["dlq", "--json"]).arg(s.run_dir()).output_within("pitboss dlq --json");
    let dlq: Value = serde_json::from_slice(&out.stdout).unwrap();
    let letters = dlq.as_array().unwrap_or_else(|| dlq["dead_letters"].as_array().unwrap());
    assert_eq!(letters.len(), 1, "{dlq}");
    assert!(letters[0].to_string().contains("flaky") && letters[0].to_string().contains("broken"), "{dlq}");

    std::fs::write(s.path().join("fixed"), "").unwrap();
    let out = s.pitboss().args(["dlq", "replay"]).arg(s.run_dir()).arg("flaky").output_within("pitboss dlq replay");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    let requeued = events.iter().position(|e| e["type"] == "task_requeued" && e["task"] == "flaky");
    assert!(requeued.is_some(), "replay recorded");
    let revived: Vec<&str> =
        events.iter().filter(|e| e["type"] == "task_revived").filter_map(|e| e["task"].as_str()).collect();
    assert_eq!(revived, ["after", "last"]);

    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    for id in ["flaky", "after", "last", "fine"] {
        assert_eq!(task(&doc, id)["state"], "completed", "{id}");
    }
    // The new attempt continues the numbering: attempt 3 follows the dead letter's 2.
    assert_eq!(task(&doc, "flaky")["attempts"], 3);
    assert!(common::run_finished_success(&s.events()), "the resumed run records its success");
    // `fine` ran once, before the replay, and was not run again.
    let fine_attempts =
        read_events(&s.run_dir()).iter().filter(|e| e["type"] == "attempt_started" && e["task"] == "fine").count();
    assert_eq!(fine_attempts, 1);
}

#[test]
fn events_follow_tails_a_live_run_and_ends_with_it() {
    let s = Scratch::new();
    let d = s.path().display();
    let script = format!("cat >/dev/null; while [ ! -e {d}/release ]; do sleep 0.02; done; echo '{{\"ok\":1}}'");
    let wf = format!("{}[[task]]\nid = \"held\"\n", common::sh_pool("p", &script, ""));
    let file = s.write("workflow.toml", &wf);
    let mut manager = s.spawn_run(&file);
    let _manager_guard = KillOnPanic::new(&[manager.id()]);
    let log = s.run_dir().join("events.jsonl");
    assert!(wait_for(Duration::from_secs(20), || log.exists()), "no log");
    let mut follower =
        s.pitboss().args(["events", "--follow", "--json"]).arg(s.run_dir()).stdout(Stdio::piped()).spawn().unwrap();
    let _follower_guard = KillOnPanic::new(&[follower.id()]);
    let lines = Lines::new(follower.stdout.take().expect("piped stdout"));
    let mut seen = Vec::new();
    // Read until the worker is running, then let it finish.
    while let Some(line) = lines.next_within("events --follow, before the attempt started") {
        let rec: Value = serde_json::from_str(&line).expect("one JSON record per line");
        seen.push(rec["event"]["type"].as_str().unwrap_or_default().to_string());
        if rec["event"]["type"] == "attempt_started" {
            break;
        }
    }
    std::fs::write(s.path().join("release"), "").unwrap();
    while let Some(line) = lines.next_within("events --follow, until the run ended") {
        let rec: Value = serde_json::from_str(&line).unwrap();
        seen.push(rec["event"]["type"].as_str().unwrap_or_default().to_string());
    }
    // stdout closed: the follower ended by itself once the manager let go of the run.
    let status = wait_within(&mut follower, "events --follow after the run ended");
    assert!(status.success());
    assert_eq!(wait_within(&mut manager, "the held run after release").code(), Some(0));
    assert_eq!(seen.first().map(String::as_str), Some("run_started"));
    assert_eq!(seen.last().map(String::as_str), Some("run_finished"));
    assert!(seen.iter().any(|t| t == "attempt_succeeded"), "{seen:?}");
    assert_eq!(seen.len(), read_events(&s.run_dir()).len(), "every record printed once");
}

#[test]
fn a_task_in_flight_during_three_crashes_is_dead_lettered_as_a_poison_pill() {
    let s = Scratch::new();
    let d = s.path().display();
    // The worker records its pid and hangs: every manager dies with it in flight.
    let script = format!("cat >/dev/null; echo $$ >> {d}/pids; exec sleep 1000");
    let wf = format!(
        "{}[[task]]\nid = \"pill\"\n[[task]]\nid = \"next\"\ndepends_on = [\"pill\"]\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let pids = || std::fs::read_to_string(s.path().join("pids")).unwrap_or_default().lines().count();
    for crash in 1..=3 {
        let mut cmd = s.pitboss();
        if crash == 1 {
            cmd.args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file);
        } else {
            cmd.args(["resume", "--headless"]).arg(s.run_dir());
        }
        let mut manager = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let _guard = KillOnPanic::new(&[manager.id()]);
        assert!(wait_for(Duration::from_secs(20), || pids() == crash), "attempt {crash} never started");
        kill_pid(manager.id() as i32);
        wait_within(&mut manager, "a SIGKILLed manager");
    }
    let out = s
        .pitboss()
        .args(["resume", "--headless", "--json"])
        .arg(s.run_dir())
        .output_within("the resume after three crashes");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task(&doc, "pill")["state"], "dead_lettered");
    assert!(task(&doc, "pill")["error"].as_str().unwrap_or_default().contains("poison pill"), "{doc}");
    assert_eq!(task(&doc, "next")["state"], "skipped");
    assert_eq!(pids(), 3, "no fourth attempt");
    // The workers of every crashed manager are gone.
    for pid in std::fs::read_to_string(s.path().join("pids")).unwrap().lines() {
        let pid: i32 = pid.parse().unwrap();
        assert!(wait_for(Duration::from_secs(10), || !common::alive(pid)), "worker {pid} outlived its manager");
    }
}

#[test]
fn a_log_that_is_a_symlink_is_refused() {
    let s = Scratch::new();
    let (code, _, _) = s.run_json(&flaky_workflow(&s));
    assert_eq!(code, 1);
    let elsewhere = s.path().join("elsewhere.jsonl");
    std::fs::rename(s.run_dir().join("events.jsonl"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, s.run_dir().join("events.jsonl")).unwrap();
    let before = std::fs::read(&elsewhere).unwrap();
    let out =
        s.pitboss().args(["resume", "--headless"]).arg(s.run_dir()).output_within("pitboss resume on a symlinked log");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read(&elsewhere).unwrap(), before, "the link's target is untouched");
}

#[test]
fn inspect_json_has_the_shape_of_run_json() {
    let s = Scratch::new();
    let (_, run_doc, _) = s.run_json(&flaky_workflow(&s));
    let out = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("pitboss inspect --json");
    let inspect_doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&inspect_doc), keys(&run_doc));
    assert_eq!(inspect_doc["tasks"], run_doc["tasks"]);
    assert_eq!(inspect_doc["counts"], run_doc["counts"]);
}
