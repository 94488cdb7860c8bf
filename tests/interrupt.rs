//! Stopping a manager: SIGINT/SIGTERM end every process group, record the
//! interruption, exit 130, and `resume` carries on; SIGKILL leaves a log that
//! `resume` finishes, with the attempts in flight handed back as `manager crashed`
//! (not spent).

mod common;

use std::process::Child;
use std::time::Duration;

use common::{alive, kill_pid, read_events, task, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

/// Workers record their pid and a background grandchild's pid, then hang until the
/// file `release` exists.
fn hanging_workflow(s: &Scratch) -> String {
    let d = s.path().display();
    let script = format!(
        "cat >/dev/null; echo $$ >> {d}/pids; sleep 1000 & echo $! >> {d}/pids; \
         if [ -e {d}/release ]; then echo '{{\"done\":true}}'; exit 0; fi; wait"
    );
    let mut wf = format!(
        "[run]\nkill_grace = \"2s\"\n[[pool]]\nname = \"p\"\nconcurrency = 3\ncommand = [\"sh\", \"-c\", {}]\n",
        common::toml_string(&script)
    );
    for i in 0..5 {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    wf
}

fn start(s: &Scratch, wf: &str) -> Child {
    s.spawn_run(&s.write("workflow.toml", wf))
}

fn recorded_pids(s: &Scratch) -> Vec<i32> {
    std::fs::read_to_string(s.path().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn resume_json(s: &Scratch) -> (i32, Value) {
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

#[test]
fn sigint_ends_every_process_group_exits_130_and_resume_finishes() {
    let s = Scratch::new();
    let mut manager = start(&s, &hanging_workflow(&s));
    let _guard = KillOnPanic::new(&[manager.id()]);
    // Three workers, each with a grandchild.
    let started = wait_for(Duration::from_secs(20), || recorded_pids(&s).len() >= 6);
    if !started {
        kill_pid(manager.id() as i32);
    }
    assert!(started, "workers did not start");
    unsafe { libc::kill(manager.id() as i32, libc::SIGINT) };
    let status = wait_within(&mut manager, "the manager after SIGINT");
    assert_eq!(status.code(), Some(130));
    let pids = recorded_pids(&s);
    let all_gone = wait_for(Duration::from_secs(5), || pids.iter().all(|p| !alive(*p)));
    pids.iter().for_each(|p| kill_pid(*p));
    assert!(all_gone, "a worker or grandchild outlived the manager: {pids:?}");

    let events = read_events(&s.run_dir());
    assert!(events.iter().any(|e| e["type"] == "run_interrupted" && e["reason"] == "SIGINT"));
    assert_eq!(events.iter().filter(|e| e["type"] == "attempt_interrupted").count(), 3);

    std::fs::write(s.path().join("release"), "").unwrap();
    let (code, doc) = resume_json(&s);
    assert_eq!(code, 0, "{doc}");
    for i in 0..5 {
        let t = task(&doc, &format!("t{i}"));
        assert_eq!(t["state"], "completed");
        assert_eq!(t["attempts"], 1, "an interrupted attempt is not spent: {t}");
    }
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
}

#[test]
fn sigkill_then_resume_finishes_and_spends_no_attempt() {
    let s = Scratch::new();
    let mut manager = start(&s, &hanging_workflow(&s));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(Duration::from_secs(20), || recorded_pids(&s).len() >= 6);
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    assert!(started, "workers did not start");
    let before = recorded_pids(&s);
    // The guardian ends the dead manager's workers and their grandchildren.
    let all_gone = wait_for(Duration::from_secs(5), || before.iter().all(|p| !alive(*p)));
    before.iter().for_each(|p| kill_pid(*p));
    assert!(all_gone, "workers outlived a SIGKILLed manager: {before:?}");

    std::fs::write(s.path().join("release"), "").unwrap();
    let (code, doc) = resume_json(&s);
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["counts"]["completed"], 5);

    let crashed: Vec<Value> = read_events(&s.run_dir())
        .into_iter()
        .filter(|e| e["type"] == "attempt_interrupted" && e["reason"] == "manager crashed")
        .collect();
    assert_eq!(crashed.len(), 3, "the three attempts in flight are handed back");
    let id = crashed[0]["task"].as_str().unwrap().to_string();
    let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg(&id).output_within("pitboss inspect TASK");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("manager crashed"), "{text}");
    assert_eq!(task(&doc, &id)["attempts"], 1, "a crash spends no attempt");
}

#[test]
fn a_second_manager_on_the_same_folder_is_refused_with_the_holders_pid() {
    let s = Scratch::new();
    let mut manager = start(&s, &hanging_workflow(&s));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(Duration::from_secs(20), || recorded_pids(&s).len() >= 2);
    let out = s.pitboss().args(["resume", "--headless"]).arg(s.run_dir()).output_within("a second manager (resume)");
    let run_again = s
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(s.path().join("workflow.toml"))
        .output_within("a second manager (run)");
    let replay =
        s.pitboss().args(["dlq", "replay", "--all"]).arg(s.run_dir()).output_within("dlq replay on a held run");
    unsafe { libc::kill(manager.id() as i32, libc::SIGTERM) };
    let status = wait_within(&mut manager, "the manager after SIGTERM");
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
    assert!(started);
    let pid = manager.id().to_string();
    for (what, out) in [("resume", &out), ("run", &run_again), ("dlq replay", &replay)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(&format!("pid {pid}")), "{what}: {stderr}");
    }
    assert_eq!(status.code(), Some(130));
}

#[test]
fn resume_ends_leftover_workers_when_the_guardian_died_too() {
    let s = Scratch::new();
    let mut manager = start(&s, &hanging_workflow(&s));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(Duration::from_secs(20), || recorded_pids(&s).len() >= 6);
    // Kill the guardian first (its pid is the manager's only other child), then the manager.
    let guardian = children_of(manager.id());
    guardian.iter().for_each(|p| kill_pid(*p));
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    let before = recorded_pids(&s);
    let survivors = before.iter().filter(|p| alive(**p)).count();
    std::fs::write(s.path().join("release"), "").unwrap();
    let (code, doc) = resume_json(&s);
    let all_gone = wait_for(Duration::from_secs(5), || before.iter().all(|p| !alive(*p)));
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
    assert!(started);
    assert_eq!(guardian.len(), 1, "exactly one guardian: {guardian:?}");
    assert!(survivors > 0, "without a guardian the workers should have survived the crash");
    assert!(all_gone, "resume left an earlier manager's workers alive: {before:?}");
    assert_eq!(code, 0, "{doc}");
}

/// Pids whose parent is `pid` and that are not workers (not in their own task group).
fn children_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if fields.get(1) == Some(&pid.to_string().as_str()) && String::from_utf8_lossy(&cmdline).contains("guardian") {
            out.push(entry.file_name().to_string_lossy().parse().unwrap());
        }
    }
    out
}
