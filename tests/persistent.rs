//! Persistent workers with real processes: one long-lived `sh` loop answering a JSON
//! line per task. The workers report their own pid in each result, so the tests see
//! how many processes really served the run.

mod common;

use std::collections::BTreeMap;

use common::{alive, read_events, task, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

/// A worker loop: one line in, one JSON line out, with its pid and how many tasks it
/// has answered. Each start is also recorded in `starts`.
fn loop_script(s: &Scratch, extra: &str) -> String {
    format!(
        "echo $$ >> {}/starts; n=0; while IFS= read -r line; do n=$((n+1)); {extra} \
         id=$(printf '%s' \"$line\" | sed -e 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/'); \
         printf '{{\"id\":\"%s\",\"pid\":%s,\"n\":%s}}\\n' \"$id\" $$ $n; done",
        s.path().display()
    )
}

fn workflow(s: &Scratch, tasks: usize, pool_extra: &str, script_extra: &str) -> String {
    let mut wf = format!(
        "[defaults]\nretry = {{ max_attempts = 3, initial = \"10ms\" }}\n[[pool]]\nname = \"p\"\nmode = \"persistent\"\n\
         command = [\"sh\", \"-c\", {}]\nconcurrency = 1\n{pool_extra}\n",
        common::toml_string(&loop_script(s, script_extra))
    );
    for i in 0..tasks {
        wf += &format!("[[task]]\nid = \"t{i:04}\"\n");
    }
    wf
}

fn pids_by_count(doc: &Value) -> BTreeMap<u64, usize> {
    let mut per_pid = BTreeMap::new();
    for t in doc["tasks"].as_array().unwrap() {
        *per_pid.entry(t["result"]["pid"].as_u64().expect("result has the worker pid")).or_insert(0) += 1;
    }
    per_pid
}

fn starts(s: &Scratch) -> Vec<i32> {
    std::fs::read_to_string(s.path().join("starts")).unwrap_or_default().lines().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn one_persistent_worker_handles_a_thousand_tasks() {
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&workflow(&s, 1000, "", ""));
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let per_pid = pids_by_count(&doc);
    assert_eq!(per_pid.len(), 1, "one process served every task: {per_pid:?}");
    assert_eq!(starts(&s).len(), 1);
    // Each reply went to its own task.
    for i in [0usize, 499, 999] {
        assert_eq!(task(&doc, &format!("t{i:04}"))["result"]["id"], format!("t{i:04}"));
    }
    // The process is gone once the run is.
    let pid = starts(&s)[0];
    assert!(wait_for(std::time::Duration::from_secs(10), || !alive(pid)), "worker {pid} outlived the run");
}

#[test]
fn recycle_after_max_tasks_restarts_the_worker_without_losing_a_task() {
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&workflow(&s, 1000, "recycle = { max_tasks = 100 }", ""));
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let per_pid = pids_by_count(&doc);
    assert_eq!(per_pid.len(), 10, "{per_pid:?}");
    assert!(per_pid.values().all(|n| *n == 100), "{per_pid:?}");
    assert_eq!(starts(&s).len(), 10, "9 restarts after the first start");
    assert!(doc["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "completed" && t["attempts"] == 1));
    for pid in starts(&s) {
        assert!(wait_for(std::time::Duration::from_secs(10), || !alive(pid)), "worker {pid} left behind");
    }
}

#[test]
fn a_crashed_persistent_worker_fails_only_its_task_in_flight_and_is_restarted() {
    let s = Scratch::new();
    // The first process dies on its 5th task; the next ones are fine.
    let crash = format!("if [ $n -eq 5 ] && [ $(wc -l < {}/starts) -eq 1 ]; then exit 7; fi;", s.path().display());
    let (code, doc, out) = s.run_json(&workflow(&s, 20, "", &crash));
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(starts(&s).len(), 2, "restarted once");
    let events = read_events(&s.run_dir());
    let failed: Vec<&Value> = events.iter().filter(|e| e["type"] == "attempt_failed").collect();
    assert_eq!(failed.len(), 1, "only the task in flight failed: {failed:?}");
    assert_eq!(failed[0]["task"], "t0004");
    assert!(failed[0]["error"].as_str().unwrap().contains("exited with this task in flight"), "{}", failed[0]);
    assert_eq!(task(&doc, "t0004")["attempts"], 2);
    assert!(doc["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "completed"));
}

#[test]
fn a_persistent_pool_command_may_not_name_task_placeholders() {
    let s = Scratch::new();
    let file = s.write(
        "wf.toml",
        "[[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"agent\", \"{payload.prompt}\"]\n\
         recycle = { max_tasks = 0 }\n[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\nrecycle = { max_tasks = 5 }\n",
    );
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("wf.toml:4:21: {payload.prompt} names a task"), "{text}");
    assert!(text.contains("recycle.max_tasks must be at least 1"), "{text}");
    assert!(text.contains("wf.toml:9:11: `recycle` only applies to mode = \"persistent\""), "{text}");
}

#[test]
fn a_task_that_times_out_restarts_its_worker_and_the_rest_complete() {
    let s = Scratch::new();
    // The worker hangs on t0002's first attempt only.
    let hang = format!(
        "case \"$line\" in *'\"id\":\"t0002\"'*) if [ $(wc -l < {}/starts) -eq 1 ]; then sleep 1000; fi;; esac;",
        s.path().display()
    );
    let wf = workflow(&s, 6, "", &hang)
        .replace("[[task]]\nid = \"t0002\"\n", "[[task]]\nid = \"t0002\"\ntimeout = \"400ms\"\n");
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    let failed: Vec<&Value> = events.iter().filter(|e| e["type"] == "attempt_failed").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0]["task"].as_str(), failed[0]["class"].as_str()), (Some("t0002"), Some("timeout")));
    assert_eq!(task(&doc, "t0002")["attempts"], 2);
    let first = starts(&s)[0];
    assert!(wait_for(std::time::Duration::from_secs(10), || !alive(first)), "the stuck worker was not ended");
}

#[test]
fn sigint_ends_persistent_workers_and_the_run_resumes() {
    let s = Scratch::new();
    let hang = "sleep 1000;";
    let file = s.write("workflow.toml", &workflow(&s, 3, "", hang));
    let mut manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    assert!(wait_for(std::time::Duration::from_secs(20), || !starts(&s).is_empty()));
    let worker = starts(&s)[0];
    let spawned = || read_events(&s.run_dir()).iter().any(|e| e["type"] == "attempt_spawned");
    assert!(wait_for(std::time::Duration::from_secs(20), spawned));
    unsafe {
        libc::kill(manager.id() as i32, libc::SIGINT);
    }
    assert_eq!(wait_within(&mut manager, "the manager after SIGINT").code(), Some(130));
    assert!(wait_for(std::time::Duration::from_secs(10), || !alive(worker)), "worker outlived the manager");
    let events = read_events(&s.run_dir());
    assert!(events.iter().any(|e| e["type"] == "attempt_interrupted"), "the attempt in flight was handed back");
}

#[test]
fn a_persistent_pool_ends_its_workers_cleanly_at_the_end_of_a_run() {
    // Like a real agent, each worker takes a moment to shut down once its stdin
    // closes, and SIGTERM does not hurry it: a manager that does not wait for its
    // workers leaves them for the guardian to kill ("ended N leftover worker process").
    let s = Scratch::new();
    let script = format!("trap '' TERM; {}; sleep 0.3", loop_script(&s, ""));
    let mut wf = format!(
        "[[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 4\n",
        common::toml_string(&script)
    );
    for i in 0..200 {
        wf += &format!("[[task]]\nid = \"t{i:04}\"\n");
    }
    let (code, doc, out) = s.run_json(&wf);
    let left: Vec<i32> = starts(&s).into_iter().filter(|&p| alive(p)).collect();
    left.iter().for_each(|&p| common::kill_pid(p));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["counts"]["completed"], 200);
    assert!(!stderr.contains("leftover"), "the guardian found workers the manager left: {stderr}");
    let log = std::fs::read_to_string(s.path().join("home/logs/pitboss.log")).unwrap_or_default();
    assert!(!log.contains("leftover"), "{log}");
    // Ended by the manager, which waited for them: gone once it returned.
    assert!(left.is_empty(), "workers {left:?} outlived the manager");
}

#[test]
fn a_persistent_workers_stderr_is_shown_with_the_attempts_it_served() {
    let s = Scratch::new();
    // Each task logs a line on stderr before its reply; t0002 is answered with a failure.
    let extra = "printf 'log line %s for task %s\\n' $n \"$line\" | cut -c1-40 >&2; \
                 case \"$line\" in *t0002*) printf '{\"status\":\"failed\",\"error\":\"nope\"}\\n'; continue;; esac;";
    let wf = workflow(&s, 3, "", extra).replace("max_attempts = 3", "max_attempts = 1");
    let (code, _doc, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let history = |task: &str| {
        let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg(task).arg("--json").output_within("inspect");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
        doc["history"].as_array().cloned().unwrap_or_default()
    };
    let ended = |task: &str, kind: &str| {
        let found = history(task).into_iter().find(|r| r["event"]["type"] == kind);
        found.unwrap_or_else(|| panic!("no {kind} for {task}"))["event"].clone()
    };
    let ok = ended("t0001", "attempt_succeeded");
    let said = ok["output"]["stderr"].as_str().unwrap_or_else(|| panic!("no stderr kept with {ok}"));
    assert!(said.contains("log line 2 for task"), "{said}");
    assert!(!said.contains("log line 1 "), "another task's line shown with t0001: {said}");
    let failed = ended("t0002", "attempt_failed");
    assert!(failed["output"]["stderr"].as_str().is_some_and(|e| e.contains("log line 3 for task")), "{failed}");
    let text = s.pitboss().arg("inspect").arg(s.run_dir()).arg("t0001").output_within("inspect");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("stderr (last lines, from the log)") && text.contains("log line 2"), "{text}");
}
