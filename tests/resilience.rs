//! Resilience with real processes: circuit breakers, fallbacks, never-retried exit
//! codes and the balancer, checked against the event log and against what the
//! workers themselves record.

mod common;

use std::time::Duration;

use common::{finish_within, read_events, task, wait_for, KillOnPanic, Scratch};
use serde_json::Value;

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().lines().count()
}

/// Index of the first event matching `pred`.
fn position(events: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    events.iter().position(pred).unwrap_or_else(|| panic!("event not found in {events:#?}"))
}

#[test]
fn a_failing_pool_trips_its_breaker_then_one_probe_closes_it() {
    let s = Scratch::new();
    let d = s.path().display();
    // Each spawn leaves a line; the agent fails until `healthy` exists.
    let script = format!(
        "cat >/dev/null; echo spawn >> {d}/spawns; if [ -e {d}/healthy ]; then echo '{{\"ok\":1}}'; else exit 1; fi"
    );
    let mut wf = format!(
        "[run]\nmax_parallel = 1\n[defaults]\nretry = {{ max_attempts = 1 }}\n{}",
        common::sh_pool(
            "flaky",
            &script,
            "breaker = { failures = 3, window = \"1m\", cooldown = \"700ms\", half_open = 1 }"
        )
        .replace("concurrency = 4", "concurrency = 1")
    );
    for i in 0..8 {
        wf += &format!("[[task]]\nid = \"t{i}\"\n");
    }
    let file = s.write("workflow.toml", &wf);
    let manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let opened = || read_events(&s.run_dir()).iter().any(|e| e["type"] == "breaker_opened");
    assert!(wait_for(Duration::from_secs(20), opened), "the breaker never opened");
    // While open nothing spawns; the agent recovers meanwhile.
    assert_eq!(lines(&s.path().join("spawns")), 3);
    std::fs::write(s.path().join("healthy"), "").unwrap();
    let out = finish_within(manager, "the run after the pool recovered");
    assert_eq!(out.status.code(), Some(1), "three tasks were dead-lettered");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["counts"]["completed"], 5);
    assert_eq!(doc["counts"]["dead_lettered"], 3);

    let events = read_events(&s.run_dir());
    let open = position(&events, |e| e["type"] == "breaker_opened");
    let half = position(&events, |e| e["type"] == "breaker_half_opened");
    let closed = position(&events, |e| e["type"] == "breaker_closed");
    assert!(open < half && half < closed);
    assert!(events[open]["reason"].as_str().unwrap().contains("3 failed attempts within 1m"), "{}", events[open]);
    assert_eq!(events[closed]["reason"], "a probe attempt succeeded");
    let starts = |from: usize, to: usize| events[from..to].iter().filter(|e| e["type"] == "attempt_started").count();
    assert_eq!(starts(open, half), 0, "no attempt while open");
    assert_eq!(starts(half, closed), 1, "exactly one probe while half-open");
    // The workers agree with the log: one spawn per attempt, none hidden.
    let all_starts = events.iter().filter(|e| e["type"] == "attempt_started").count();
    assert_eq!(lines(&s.path().join("spawns")), all_starts);
    assert_eq!(all_starts, 8);
}

#[test]
fn tasks_behind_an_open_breaker_take_their_fallbacks() {
    let s = Scratch::new();
    let d = s.path().display();
    let bad = format!("cat >/dev/null; echo spawn >> {d}/bad-spawns; exit 1");
    let wf = format!(
        "[run]\nmax_parallel = 1\n[defaults]\nretry = {{ max_attempts = 1 }}\n{}{}\
         [[task]]\nid = \"a1\"\npool = \"bad\"\n[[task]]\nid = \"a2\"\npool = \"bad\"\n\
         [[task]]\nid = \"cached\"\npool = \"bad\"\nfallback = {{ result = {{ cached = true }} }}\n\
         [[task]]\nid = \"moved\"\npool = \"bad\"\nfallback = {{ pool = \"good\" }}\n\
         [[task]]\nid = \"after\"\npool = \"good\"\ndepends_on = [\"cached\", \"moved\"]\n",
        common::sh_pool("bad", &bad, "breaker = { failures = 2, window = \"1m\", cooldown = \"1h\" }")
            .replace("concurrency = 4", "concurrency = 1"),
        common::sh_pool("good", "cat >/dev/null; echo '{\"fresh\":true}'", ""),
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "a1")["state"], "dead_lettered");
    assert_eq!(task(&doc, "a2")["state"], "dead_lettered");
    let cached = task(&doc, "cached");
    assert_eq!(cached["state"], "completed");
    assert_eq!(cached["degraded"], true);
    assert_eq!(cached["result"], serde_json::json!({"cached": true}));
    let moved = task(&doc, "moved");
    assert_eq!(moved["state"], "completed");
    assert_eq!(moved["degraded"], true);
    assert_eq!(moved["worker"], "good");
    assert_eq!(moved["result"], serde_json::json!({"fresh": true}));
    assert_eq!(task(&doc, "after")["state"], "completed");
    // Only a1 and a2 ever ran on the bad pool.
    assert_eq!(lines(&s.path().join("bad-spawns")), 2);
    let events = read_events(&s.run_dir());
    let used: Vec<&str> =
        events.iter().filter(|e| e["type"] == "fallback_used").filter_map(|e| e["task"].as_str()).collect();
    assert_eq!(used, ["cached", "moved"]);
    assert!(events.iter().all(|e| e["type"] != "fallback_used" || e["reason"] == "breaker open on bad"));
}

#[test]
fn a_task_whose_attempts_are_spent_takes_its_fallback_and_skip_spares_dependents() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 2, initial = \"5ms\" }}\n{}{}\
         [[task]]\nid = \"answer\"\npool = \"bad\"\nfallback = {{ result = \"unknown\" }}\n\
         [[task]]\nid = \"optional\"\npool = \"bad\"\nfallback = {{ skip = true }}\n\
         [[task]]\nid = \"uses-both\"\npool = \"good\"\ndepends_on = [\"answer\", \"optional\"]\n",
        common::sh_pool("bad", "cat >/dev/null; exit 1", ""),
        common::sh_pool("good", "cat", ""),
    );
    let (code, doc, _) = s.run_json(&wf);
    // `optional` ended skipped, so not every task completed.
    assert_eq!(code, 1);
    let answer = task(&doc, "answer");
    assert_eq!((answer["state"].as_str(), answer["attempts"].as_u64()), (Some("completed"), Some(2)));
    assert_eq!(answer["degraded"], true);
    assert_eq!(answer["result"], "unknown");
    assert_eq!(task(&doc, "optional")["state"], "skipped");
    assert_eq!(task(&doc, "optional")["degraded"], true);
    // The dependent ran and saw the fallback result and a null for the skipped task.
    let uses = task(&doc, "uses-both");
    assert_eq!(uses["state"], "completed");
    assert_eq!(uses["result"]["inputs"], serde_json::json!({"answer": "unknown", "optional": null}));
}

#[test]
fn exit_codes_listed_in_never_on_are_not_retried() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 5, initial = \"5ms\", never_on = [2, 64] }}\n{}\
         [[task]]\nid = \"usage-error\"\npayload = {{ code = 64 }}\n[[task]]\nid = \"flaky\"\npayload = {{ code = 1 }}\n",
        common::sh_pool("p", "exit $(sed -e 's/.*\"code\":\\([0-9]*\\).*/\\1/')", ""),
    );
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 1);
    let usage = task(&doc, "usage-error");
    assert_eq!(usage["attempts"], 1);
    assert!(usage["error"].as_str().unwrap().contains("exit code 64 is never retried"), "{usage}");
    assert_eq!(task(&doc, "flaky")["attempts"], 5);
}

#[test]
fn round_robin_spreads_90_tasks_30_30_30_over_three_equal_pools() {
    let s = Scratch::new();
    let mut wf = "[run]\nmax_parallel = 3\n[balancer]\nstrategy = \"round-robin\"\n".to_string();
    for p in ["p0", "p1", "p2"] {
        wf += &common::sh_pool(p, "cat >/dev/null; echo \"{\\\"pool\\\":\\\"$PITBOSS_POOL\\\"}\"", "")
            .replace("concurrency = 4", "concurrency = 1");
    }
    for i in 0..90 {
        wf += &format!("[[task]]\nid = \"t{i}\"\n");
    }
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let mut per_pool = std::collections::BTreeMap::new();
    for t in doc["tasks"].as_array().unwrap() {
        // The worker reports where it really ran.
        *per_pool.entry(t["result"]["pool"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(per_pool.values().copied().collect::<Vec<i32>>(), [30, 30, 30], "{per_pool:?}");
}

#[test]
fn capability_routing_never_uses_a_pool_missing_a_capability() {
    let s = Scratch::new();
    let mut wf = "[balancer]\nstrategy = \"capability\"\n".to_string();
    for (name, caps) in [("writer", "[\"write\"]"), ("reviewer", "[\"review\"]"), ("both", "[\"write\", \"review\"]")] {
        wf += &common::sh_pool(name, "cat >/dev/null; echo '{}'", &format!("capabilities = {caps}"));
    }
    for i in 0..30 {
        let requires = if i % 2 == 0 { "[\"write\"]" } else { "[\"write\", \"review\"]" };
        wf += &format!("[[task]]\nid = \"t{i}\"\nrequires = {requires}\n");
    }
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 0);
    for (i, t) in doc["tasks"].as_array().unwrap().iter().enumerate() {
        let pool = t["worker"].as_str().unwrap();
        if i % 2 == 0 {
            assert!(pool == "writer" || pool == "both", "t{i} ran on {pool}");
        } else {
            assert_eq!(pool, "both", "t{i} needs write and review");
        }
    }
}

#[test]
fn a_silent_worker_is_flagged_stalled_in_time_and_killed_at_stall_kill_after() {
    let s = Scratch::new();
    let d = s.path().display();
    // `quiet` prints once, then nothing for a while, then its result; `mute` never prints.
    let script = format!(
        "cat >/dev/null; case $PITBOSS_TASK_ID in quiet) echo started; while [ ! -e {d}/release ]; do sleep 0.05; done; echo '{{\"ok\":1}}';; *) exec sleep 1000;; esac"
    );
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"quiet\"\n[[task]]\nid = \"mute\"\npool = \"strict\"\n",
        common::sh_pool("p", &script, "stall_after = \"300ms\""),
    ) + &common::sh_pool("strict", &script, "stall_after = \"200ms\"\nstall_kill_after = \"700ms\"");
    let wf = wf.replace("[[task]]\nid = \"quiet\"\n", "[[task]]\nid = \"quiet\"\npool = \"p\"\n");
    let file = s.write("workflow.toml", &wf);
    let manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let stalled = || {
        let events = read_events(&s.run_dir());
        events.iter().any(|e| e["type"] == "attempt_stalled" && e["task"] == "quiet")
    };
    assert!(wait_for(Duration::from_secs(20), stalled), "quiet was never flagged");
    std::fs::write(s.path().join("release"), "").unwrap();
    let out = finish_within(manager, "the run after quiet was released");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task(&doc, "quiet")["state"], "completed", "a stall is a warning, not a failure");
    let mute = task(&doc, "mute");
    assert_eq!(mute["state"], "dead_lettered");
    assert!(mute["error"].as_str().unwrap().contains("no output for"), "{mute}");

    // The exact times (flagged at stall_after, ended at stall_kill_after) are asserted
    // on paused time in tests/engine_time.rs; here only that real processes get them.
}

#[test]
fn least_connections_sends_work_to_the_idle_pool_when_one_is_busy() {
    let s = Scratch::new();
    let d = s.path().display();
    // Pinned tasks hold the `busy` pool until `release` exists; free tasks report their pool.
    let hold = format!("cat >/dev/null; while [ ! -e {d}/release ]; do sleep 0.02; done; echo '{{}}'");
    let report = "cat >/dev/null; echo \"{\\\"pool\\\":\\\"$PITBOSS_POOL\\\"}\"";
    let script =
        format!("if [ \"${{PITBOSS_TASK_ID#hold}}\" != \"$PITBOSS_TASK_ID\" ]; then {hold}; else {report}; fi");
    let mut wf = "[balancer]\nstrategy = \"least-connections\"\n".to_string();
    wf += &common::sh_pool("busy", &script, "");
    wf += &common::sh_pool("idle", &script, "");
    for i in 0..3 {
        wf += &format!("[[task]]\nid = \"hold{i}\"\npool = \"busy\"\n");
    }
    for i in 0..3 {
        // Free tasks become ready only once the three holds run.
        wf += &format!("[[task]]\nid = \"free{i}\"\ndepends_on = [\"gate\"]\n");
    }
    wf += "[[task]]\nid = \"gate\"\npool = \"idle\"\n";
    let file = s.write("workflow.toml", &wf);
    let manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let all_free_done = || {
        let events = read_events(&s.run_dir());
        events
            .iter()
            .filter(|e| e["type"] == "attempt_succeeded" && e["task"].as_str().unwrap().starts_with("free"))
            .count()
            == 3
    };
    assert!(wait_for(Duration::from_secs(20), all_free_done), "free tasks did not finish while busy was held");
    std::fs::write(s.path().join("release"), "").unwrap();
    let out = finish_within(manager, "the run after busy was released");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    for i in 0..3 {
        assert_eq!(task(&doc, &format!("free{i}"))["result"]["pool"], "idle", "free{i} went to the busy pool");
    }
}
