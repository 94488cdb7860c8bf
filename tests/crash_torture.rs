//! Crash torture: a run of short tasks whose manager is SIGKILLed at random moments
//! and resumed each time. Every task must end completed exactly once, none lost, and
//! the duplicate side effects (each worker appends a line to a ledger) must be bounded
//! by the attempts that were in flight at the kills.
//!
//! Size it with PITBOSS_TORTURE_TASKS and PITBOSS_TORTURE_KILLS (defaults 400 and 12);
//! `scripts/crash-torture.sh` runs the long variant (1,000 tasks, 20 kills).
//! PITBOSS_TORTURE_SEED replays a failing run's kill points.
//!
//! Snapshots are taken every few records (PITBOSS_SNAPSHOT_EVERY), so kills land
//! while one is being written too: after each kill, opening the folder from its
//! snapshots gives exactly the state of the full fold of the log. The log also rolls
//! into the archive every few kilobytes (PITBOSS_ROLL_BYTES, DESIGN §6), so kills land
//! in the middle of a roll as well.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::{kill_pid, read_events, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use pitboss::cli::verify::canonical;
use pitboss::io::journal::LOG_FILE;
use pitboss::io::{roll, segments, snapshot};
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const CONCURRENCY: usize = 8;

#[test]
fn killed_at_random_moments_and_resumed_every_task_completes_exactly_once() {
    let tasks = env_or("PITBOSS_TORTURE_TASKS", 400) as usize;
    let kills = env_or("PITBOSS_TORTURE_KILLS", 12) as usize;
    let seed = env_or("PITBOSS_TORTURE_SEED", rand::random::<u32>() as u64);
    eprintln!("crash torture: {tasks} tasks, {kills} kills, PITBOSS_TORTURE_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let s = Scratch::new();
    let ledger = s.path().join("ledger");
    let script = format!(
        "cat >/dev/null; echo \"$PITBOSS_TASK_ID $PITBOSS_ATTEMPT\" >> {}; sleep 0.01; echo '{{\"ok\":true}}'",
        ledger.display()
    );
    let mut wf = format!(
        "[run]\nmax_parallel = {CONCURRENCY}\n[defaults]\nretry = {{ max_attempts = 3, initial = \"5ms\", max = \"20ms\" }}\n{}",
        common::sh_pool("p", &script, &format!("concurrency = {CONCURRENCY}")).replace("concurrency = 4\n", "")
    );
    // Ten chains: dependencies keep most tasks blocked at every kill.
    for i in 0..tasks {
        wf += &format!("[[task]]\nid = \"t{i:04}\"\n");
        if i >= 10 {
            wf += &format!("depends_on = [\"t{:04}\"]\n", i - 10);
        }
    }
    let file = s.write("workflow.toml", &wf);
    let ledger_lines = || std::fs::read_to_string(&ledger).unwrap_or_default().lines().count();

    // Each manager runs a random number of new attempts before it is killed, and the
    // attempts the previous kill interrupted must have completed (a task in flight at
    // three kills would rightly be a poison pill); the kills spread over about the
    // first half of the work.
    // Kills wait for the attempts the previous kill interrupted to complete.
    let min_gap = CONCURRENCY;
    let mut interrupted: Vec<String> = Vec::new();
    let slack = ((tasks / 2 / kills.max(1)).saturating_sub(min_gap) * 2).max(1);
    let mut killed = 0;
    let mut mid_write = 0;
    let mut mid_roll = 0;
    for k in 0..kills {
        let mut cmd = s.pitboss();
        if k == 0 {
            cmd.args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file);
        } else {
            cmd.args(["resume", "--headless"]).arg(s.run_dir());
        }
        // Snapshots every few records: many are being written when the kill comes.
        // The log rolls into the archive every few kilobytes, so kills land mid-roll too.
        cmd.env(snapshot::EVERY_ENV, "5").env(roll::ROLL_ENV, "20000");
        let mut manager = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let _guard = KillOnPanic::new(&[manager.id()]);
        // Kill it once its workers have made the chosen number of ledger entries.
        let target = ledger_lines() + min_gap + rng.random_range(0..slack);
        let reached = wait_for(Duration::from_secs(60), || {
            let done = ledger_lines() >= target && completed(&read_events(&s.run_dir()), &interrupted);
            done || manager.try_wait().ok().flatten().is_some()
        });
        assert!(reached, "manager {k} made no progress");
        kill_pid(manager.id() as i32);
        if wait_within(&mut manager, "a SIGKILLed manager").code().is_none() {
            killed += 1;
        }
        interrupted = in_flight(&read_events(&s.run_dir()));
        mid_roll += usize::from(mid_a_roll(&s.run_dir()));
        mid_write += usize::from(opens_to_the_full_fold(&s.run_dir(), k));
    }
    assert!(segments::archived(&s.run_dir(), None).unwrap().len() > 1, "the log rolled");
    assert_eq!(killed, kills, "the run ended before every kill happened");
    eprintln!("crash torture: {mid_write} kills left a snapshot half-written, {mid_roll} a roll of the log cut short");

    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("the last resume");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_completed: Vec<String> =
        doc["tasks"].as_array().unwrap().iter().filter(|t| t["state"] != "completed").map(|t| t.to_string()).collect();
    assert!(not_completed.is_empty(), "tasks not completed:\n{}", not_completed.join("\n"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let states = doc["tasks"].as_array().unwrap();
    assert_eq!(states.len(), tasks, "no task lost");
    assert!(states.iter().all(|t| t["state"] == "completed"), "every task completed");

    // Each task recorded completed exactly once.
    let events = read_events(&s.run_dir());
    let mut succeeded: BTreeMap<String, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "attempt_succeeded") {
        *succeeded.entry(e["task"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(succeeded.len(), tasks);
    assert!(succeeded.values().all(|&n| n == 1), "a task completed twice");

    // Attempts in flight at each kill are handed back as `manager crashed` by the next
    // manager (or dead-lettered, a poison pill): never more than the concurrency per kill.
    let mut crashed_per_manager = vec![0usize];
    for e in &events {
        match e["type"].as_str() {
            Some("manager_started") => crashed_per_manager.push(0),
            Some("attempt_interrupted") if e["reason"] == "manager crashed" => {
                *crashed_per_manager.last_mut().unwrap() += 1
            }
            Some("attempt_failed") if e["class"] == "manager_crashed" => *crashed_per_manager.last_mut().unwrap() += 1,
            _ => {}
        }
    }
    assert!(crashed_per_manager.iter().all(|&n| n <= CONCURRENCY), "{crashed_per_manager:?}");
    let crashed: usize = crashed_per_manager.iter().sum();

    // Side effects: every task ran at least once; extra runs only for crashed attempts.
    let ledger_text = std::fs::read_to_string(&ledger).unwrap();
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for line in ledger_text.lines() {
        *runs.entry(line.split(' ').next().unwrap()).or_default() += 1;
    }
    assert_eq!(runs.len(), tasks, "every task's worker ran");
    let duplicates = ledger_text.lines().count() - tasks;
    assert!(
        duplicates <= crashed,
        "{duplicates} duplicate side effects but only {crashed} attempts in flight at kills"
    );
    eprintln!(
        "crash torture: {killed} kills, {crashed} attempts in flight at kills, {duplicates} duplicate side effects"
    );
}

/// After kill `k`: the folder opens (newest usable snapshot and the tail) to the state
/// of the full fold of its log. Gives whether the kill left a snapshot half-written.
fn opens_to_the_full_fold(dir: &std::path::Path, k: usize) -> bool {
    let half_written = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".json.tmp"));
    let (full, scan) = segments::fold_all(dir).expect("the log folds");
    let opened = snapshot::open_state(dir).expect("the folder opens");
    // A kill during the first snapshot leaves none yet; any finished one is usable.
    if !snapshot::list(dir).is_empty() {
        assert!(opened.snapshot.is_some(), "kill {k}: no snapshot used ({:?})", opened.notes);
    }
    assert!(canonical(&opened.state) == canonical(&full), "kill {k}: the opened state is not the full fold");
    assert_eq!(opened.scan, scan, "kill {k}: the opened log differs");
    half_written
}

/// True when a kill cut a roll of the log short: its new file made, or the live log
/// linked into the archive and not yet replaced.
fn mid_a_roll(dir: &std::path::Path) -> bool {
    let live = segments::FileId::at(&dir.join(LOG_FILE)).ok();
    dir.join(roll::NEXT_FILE).exists() || segments::archived(dir, None).unwrap().iter().any(|a| Some(a.id) == live)
}

/// Tasks with an attempt started and not ended in the log.
fn in_flight(events: &[Value]) -> Vec<String> {
    let mut open = BTreeMap::new();
    for e in events {
        let task = e["task"].as_str().unwrap_or_default().to_string();
        match e["type"].as_str() {
            Some("attempt_started") => {
                open.insert(task, ());
            }
            Some("attempt_succeeded" | "attempt_failed" | "attempt_interrupted") => {
                open.remove(&task);
            }
            _ => {}
        }
    }
    open.into_keys().collect()
}

/// True when every task in `tasks` has a recorded success.
fn completed(events: &[Value], tasks: &[String]) -> bool {
    tasks.iter().all(|t| events.iter().any(|e| e["type"] == "attempt_succeeded" && e["task"] == t.as_str()))
}

/// A kill -9 that lands while a snapshot is being written (its temp file is on disk):
/// the folder still opens to the state of the full fold, and the run, resumed, ends
/// with every task completed once. The snapshots are large (a wide run) and taken
/// after every batch, so the writer is busy most of the time; kills are aimed at the
/// moments a temp file exists, and repeated until one lands.
#[test]
fn killed_while_a_snapshot_is_written_the_folder_opens_to_the_full_fold() {
    let s = Scratch::new();
    let tasks = 3000;
    let mut wf =
        common::sh_pool("p", "cat >/dev/null; echo '{\"ok\":true}'", "").replace("concurrency = 4", "concurrency = 8");
    for i in 0..tasks {
        wf += &format!("[[task]]\nid = \"t{i:05}\"\npayload = {{ pad = \"{}\" }}\n", "x".repeat(64));
    }
    let file = s.write("workflow.toml", &wf);
    let temp_exists = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with(".json.tmp")))
            .unwrap_or(false)
    };
    let mut landed = 0;
    for k in 0..20 {
        let mut cmd = s.pitboss();
        if k == 0 {
            cmd.args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file);
        } else {
            cmd.args(["resume", "--headless"]).arg(s.run_dir());
        }
        cmd.env(snapshot::EVERY_ENV, "1");
        let mut manager = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let _guard = KillOnPanic::new(&[manager.id()]);
        let aimed = wait_for(Duration::from_secs(30), || {
            temp_exists(&s.run_dir()) || manager.try_wait().ok().flatten().is_some()
        });
        assert!(aimed, "manager {k}: no snapshot was ever being written");
        kill_pid(manager.id() as i32);
        let status = wait_within(&mut manager, "a SIGKILLed manager");
        assert!(status.code().is_none() || status.code() == Some(0), "manager {k} failed: {status:?}");
        if status.code().is_some() {
            break; // the run finished first
        }
        landed += usize::from(opens_to_the_full_fold(&s.run_dir(), k));
        if landed >= 2 {
            break;
        }
    }
    assert!(landed >= 1, "no kill landed while a snapshot was being written");
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("the last resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let states = doc["tasks"].as_array().unwrap();
    assert_eq!(states.len(), tasks, "no task lost");
    assert!(states.iter().all(|t| t["state"] == "completed"), "every task completed");
    let mut succeeded: BTreeMap<String, usize> = BTreeMap::new();
    for e in read_events(&s.run_dir()).iter().filter(|e| e["type"] == "attempt_succeeded") {
        *succeeded.entry(e["task"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(succeeded.len(), tasks);
    assert!(succeeded.values().all(|&n| n == 1), "a task completed twice");
    eprintln!("crash torture: {landed} kill(s) landed while a snapshot was being written");
}
