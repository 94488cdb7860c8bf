//! The manager's own trouble is never charged to a task: a manager paused (SIGSTOP,
//! the same as a laptop's sleep for the workers it could not watch) past a task's
//! timeout while the worker finished normally records the real end, and a manager
//! killed with SIGKILL while a task runs spends none of the task's attempts. Real
//! binary, real processes, `max_attempts = 1`, so any charge would dead-letter.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    alive, kill_pid, read_events, task, toml_string, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch,
};
use serde_json::Value;

/// A worker that records its pid in `DIR/ID.pid`, then waits for `DIR/go` and prints
/// a result.
fn gated_worker(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "cat >/dev/null; echo $$ > {d}/$PITBOSS_TASK_ID.pid; \
         while [ ! -e {d}/go ]; do sleep 0.02; done; echo '{{\"ok\":true}}'"
    )
}

/// The pid a worker of task `id` recorded, once it has.
fn worker_pid(dir: &Path, id: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(format!("{id}.pid"))).ok()?.trim().parse().ok()
}

/// The one-letter state of a process (`R`, `S`, `Z`…) from /proc, if it exists.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

fn signal(pid: u32, sig: i32) {
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn a_manager_paused_past_the_timeout_records_the_workers_real_end() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\ntimeout = \"1s\"\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {}]\n[[task]]\nid = \"a\"\n",
        toml_string(&gated_worker(s.path()))
    );
    let mut manager = s.spawn_run(&s.write("workflow.toml", &wf));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(common::deadline(), || worker_pid(s.path(), "a").is_some());
    assert!(started, "the attempt did not start");
    let pid = worker_pid(s.path(), "a").unwrap_or_default();
    let _worker_guard = KillOnPanic::new(&[pid as u32]);
    // The attempt started less than the timeout ago (the worker has not printed yet).
    let stopped_at = Instant::now();
    signal(manager.id(), libc::SIGSTOP);
    std::fs::write(s.path().join("go"), "").expect("write go");
    // The worker ends normally while its manager is paused: a zombie nobody reaped.
    let exited = wait_for(common::deadline(), || proc_state(pid) == Some('Z'));
    // And the timeout passes on every clock before the manager runs again.
    let timeout_passed = wait_for(Duration::from_secs(10), || stopped_at.elapsed() > Duration::from_millis(1500));
    signal(manager.id(), libc::SIGCONT);
    assert!(exited, "the worker {pid} did not exit while the manager was paused");
    assert!(timeout_passed);
    wait_within(&mut manager, "the manager after SIGCONT");

    let events = read_events(&s.run_dir());
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["task"] == "a" && matches!(e["type"].as_str(), Some("attempt_succeeded" | "attempt_failed")))
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["type"], "attempt_succeeded", "the real end is recorded, not a timeout: {}", ends[0]);
    assert_eq!(ends[0]["result"]["ok"], true);
}

#[test]
fn a_manager_killed_mid_task_spends_no_attempt_and_dependents_run_on_resume() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n",
        toml_string(&gated_worker(s.path()))
    );
    let mut manager = s.spawn_run(&s.write("workflow.toml", &wf));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(common::deadline(), || worker_pid(s.path(), "a").is_some());
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    assert!(started, "the attempt did not start");
    let pid = worker_pid(s.path(), "a").unwrap_or_default();
    // The guardian ends the dead manager's worker.
    let gone = wait_for(common::deadline(), || !alive(pid));
    kill_pid(pid);
    assert!(gone, "the worker {pid} outlived its SIGKILLed manager");

    std::fs::write(s.path().join("go"), "").expect("write go");
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    for id in ["a", "b"] {
        if let Some(p) = worker_pid(s.path(), id) {
            kill_pid(p);
        }
    }
    assert_eq!(out.status.code(), Some(0), "{doc} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "a")["state"], "completed", "{doc}");
    assert_eq!(task(&doc, "a")["attempts"], 1, "the crash spent no attempt: {doc}");
    assert_eq!(task(&doc, "b")["state"], "completed", "the dependent ran: {doc}");

    let events = read_events(&s.run_dir());
    let interrupted: Vec<&Value> = events.iter().filter(|e| e["type"] == "attempt_interrupted").collect();
    assert_eq!(interrupted.len(), 1, "{events:?}");
    assert_eq!(interrupted[0]["task"], "a");
    assert_eq!(interrupted[0]["reason"], "manager crashed");
    assert!(!events.iter().any(|e| e["type"] == "attempt_failed"), "nothing failed: {events:?}");
}
