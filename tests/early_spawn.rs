//! Attempts start once their `attempt_started` is written, before its fdatasync
//! (issue 14, P1; `src/engine/early.rs`). What that must keep, with real processes:
//! the record is in the log file before the worker runs (so a crash of the manager
//! alone never loses it), and a start lost with the machine (a log cut back to
//! before it) is run again uncharged, its leftover process ended by `resume`.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{alive, kill_pid, read_events, task, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use pitboss::io::snapshot;
use serde_json::Value;

/// Each worker looks for its own `attempt_started` in the log before it succeeds; a
/// worker that runs before its start is in the file fails (and is not retried).
#[test]
fn a_worker_finds_its_start_record_in_the_log_when_it_runs() {
    let s = Scratch::new();
    let script = "cat >/dev/null; \
        if grep -F '\"type\":\"attempt_started\"' \"$PITBOSS_STATE_DIR/events.jsonl\" \
             | grep -qF \"\\\"task\\\":\\\"$PITBOSS_TASK_ID\\\"\"; \
        then echo '{\"ok\":true}'; \
        else echo '{\"status\":\"failed\",\"error\":\"my attempt_started is not in the log\"}'; fi";
    let mut wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}",
        common::sh_pool("p", script, "").replace("concurrency = 4", "concurrency = 8")
    );
    for i in 0..40 {
        wf += &format!("[[task]]\nid = \"t{i:02}\"\n");
    }
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(doc["counts"]["completed"], 40, "{doc}");
    // The order in the log: every attempt's end after its start.
    let events = read_events(&s.run_dir());
    for (k, e) in events.iter().enumerate().filter(|(_, e)| e["type"] == "attempt_succeeded") {
        let started = events[..k].iter().any(|s| s["type"] == "attempt_started" && s["task"] == e["task"]);
        assert!(started, "{} ended before its start was recorded", e["task"]);
    }
}

/// Workers record their pid (and a grandchild's), then hang until `release` exists.
/// A worker that starts while a pid listed in `before` still runs (not a zombie)
/// notes it in `overlap`.
fn hanging_workflow(s: &Scratch) -> String {
    let d = s.path().display();
    let script = format!(
        "cat >/dev/null; for p in $(cat {d}/before 2>/dev/null); do \
           st=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null); \
           if [ -n \"$st\" ] && [ \"$st\" != Z ]; then echo $p >> {d}/overlap; fi; done; \
         echo $$ >> {d}/pids; sleep 1000 & echo $! >> {d}/pids; \
         if [ -e {d}/release ]; then echo '{{\"done\":true}}'; exit 0; fi; wait"
    );
    let mut wf = format!(
        "[run]\nkill_grace = \"2s\"\n[[pool]]\nname = \"p\"\nconcurrency = 3\ncommand = [\"sh\", \"-c\", {}]\n",
        common::toml_string(&script)
    );
    for i in 0..3 {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    wf
}

fn recorded_pids(s: &Scratch) -> Vec<i32> {
    std::fs::read_to_string(s.path().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Cuts the log back to just before its first `attempt_started` (what a crash of the
/// machine leaves when those records were written but not yet fdatasync'd), and
/// removes the snapshots (a snapshot is only ever taken of durable records).
fn lose_the_starts(dir: &std::path::Path) {
    let log = dir.join("events.jsonl");
    let mut offset = 0u64;
    let mut cut = None;
    for line in BufReader::new(std::fs::File::open(&log).unwrap()).split(b'\n') {
        let line = line.unwrap();
        if String::from_utf8_lossy(&line).contains("\"type\":\"attempt_started\"") {
            cut = Some(offset);
            break;
        }
        offset += line.len() as u64 + 1;
    }
    let cut = cut.expect("the log holds an attempt_started");
    std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(cut).unwrap();
    for (_, path) in snapshot::list(dir) {
        std::fs::remove_file(path).unwrap();
    }
}

/// The worst case of a start lost with the machine: the record is gone but its
/// processes survived (no guardian either). `resume` ends them before replay (and
/// before the re-runs start, which carry the same marks), the tasks read `queued` and
/// run again under the same attempt number, uncharged.
#[test]
fn a_start_lost_before_its_fdatasync_is_run_again_uncharged_and_its_processes_ended() {
    let s = Scratch::new();
    let mut manager = s.spawn_run(&s.write("workflow.toml", &hanging_workflow(&s)));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(Duration::from_secs(20), || recorded_pids(&s).len() >= 6);
    // The guardian first (it would end the workers), then the manager.
    let guardian = guardian_of(manager.id());
    guardian.iter().for_each(|p| kill_pid(*p));
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    let before = recorded_pids(&s);
    let survivors = before.iter().filter(|p| alive(**p)).count();
    lose_the_starts(&s.run_dir());
    let listed: String = before.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(s.path().join("before"), listed).unwrap();
    std::fs::write(s.path().join("release"), "").unwrap();
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let all_gone = wait_for(Duration::from_secs(5), || before.iter().all(|p| !alive(*p)));
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
    assert!(started, "workers did not start");
    assert_eq!(guardian.len(), 1, "exactly one guardian: {guardian:?}");
    assert!(survivors > 0, "without a guardian the workers should have survived the crash");
    assert!(all_gone, "resume left processes of lost starts alive: {before:?}");
    // Ended before the tasks ran again: never two runs of one attempt at once.
    let overlap = std::fs::read_to_string(s.path().join("overlap")).unwrap_or_default();
    assert!(overlap.is_empty(), "re-runs started while these earlier processes ran: {overlap}");
    assert_eq!(out.status.code(), Some(0), "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    for i in 0..3 {
        let id = format!("t{i}");
        assert_eq!(task(&doc, &id)["state"], "completed", "{doc}");
        // Not charged: the run that completed it is attempt 1 again.
        assert_eq!(task(&doc, &id)["attempts"], 1, "a lost start spent an attempt: {doc}");
        let starts: Vec<&Value> =
            events.iter().filter(|e| e["type"] == "attempt_started" && e["task"] == id.as_str()).collect();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert_eq!(starts[0]["attempt"], 1);
    }
    // Nothing in the log saw the lost attempts: nothing was handed back as crashed
    // (so the poison-pill count did not move; the rule in src/engine/early.rs).
    assert!(events.iter().all(|e| e["type"] != "attempt_interrupted"), "{events:#?}");
}

/// The manager's guardian: its child whose command line says so.
fn guardian_of(pid: u32) -> Vec<i32> {
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
