//! Consensus with the real binary (DESIGN §10): replicas are real processes, the
//! bundled sim-agent answers, and once the majority is in, the replica still running
//! is ended (its process gone, by pid) and never charged. A manager stopped by a
//! signal (or killed) leaves no replica behind, and `resume` runs the round again.

mod common;

use std::time::Duration;

use common::{alive, deadline, kill_pid, task, toml_string, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use serde_json::{json, Value};

#[test]
fn the_majority_wins_and_the_outstanding_replica_is_gone() {
    let s = Scratch::new();
    let pidfile = s.path().join("slow.pid");
    let pitboss = env!("CARGO_BIN_EXE_pitboss");
    // Replica 1 runs on `slow`: it writes its pid and waits for ever. Replicas 0 and 2
    // run the sim-agent on `fast` once that pid is written, so the slow one surely
    // exists when the majority is reached.
    let fast = format!(
        "while [ ! -s {pid} ]; do sleep 0.02; done; exec {pitboss} sim-agent --role writer",
        pid = pidfile.display()
    );
    let slow = format!("echo $$ > {}.tmp && mv {0}.tmp {0}; exec sleep 1000", pidfile.display());
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"fast\"\ncommand = [\"sh\", \"-c\", {fast}]\n\
         [[pool]]\nname = \"slow\"\ncommand = [\"sh\", \"-c\", {slow}]\n\
         [[task]]\nid = \"q\"\npool = \"fast\"\n\
         consensus = {{ replicas = 3, strategy = \"majority\", key = \"/a\", pools = [\"fast\", \"slow\"] }}\n\
         payload = {{ latency_ms = 0, answers = [{{ a = 1, note = \"x\" }}] }}\n",
        fast = toml_string(&fast),
        slow = toml_string(&slow),
    );
    let (code, doc, out) = s.run_json(&wf);
    let pid: i32 = std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    let left_running = pid > 0 && alive(pid);
    if left_running {
        kill_pid(pid);
    }
    assert_eq!(code, 0, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(pid > 0, "the slow replica never wrote its pid");
    assert!(!left_running, "the outstanding replica (pid {pid}) is still running after the run");
    let q = task(&doc, "q");
    assert_eq!(q["state"], "completed", "{q}");
    assert_eq!(q["result"], json!({"a": 1, "note": "x"}));
    let events = s.events();
    let votes: Vec<&Value> = events.iter().filter(|e| e["type"] == "vote_cast").collect();
    let mut voters: Vec<u64> = votes.iter().map(|v| v["replica"].as_u64().unwrap()).collect();
    voters.sort_unstable();
    assert_eq!(voters, [0, 2], "only the two fast replicas vote: {votes:?}");
    assert!(votes.iter().all(|v| v["worker"] == "fast"), "{votes:?}");
    let reached = events.iter().find(|e| e["type"] == "consensus_reached").expect("consensus_reached");
    assert_eq!(reached["votes"], json!([0, 2]));
    assert_eq!(reached["winner"], 0);
    assert!(!events.iter().any(|e| e["type"] == "attempt_failed"), "the stopped replica is never charged");
}

#[test]
fn each_replica_has_its_own_output_files() {
    let s = Scratch::new();
    // More than the log keeps, so that each replica's stdout goes to its file.
    let script = "head -c 5000 /dev/zero | tr '\\0' x; echo; echo \"replica $PITBOSS_REPLICA\" >&2; echo '{\"a\": 1}'";
    let wf = format!(
        "[[pool]]\nname = \"w\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"q\"\nconsensus = {{ replicas = 2, strategy = \"unanimous\" }}\n",
        toml_string(script)
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "q")["result"], json!({"a": 1}));
    let files = s.run_dir().join("output");
    for r in 0..2 {
        let stdout = std::fs::read_to_string(files.join(format!("q.1.r{r}.stdout")))
            .unwrap_or_else(|e| panic!("replica {r}'s stdout file: {e}"));
        assert!(stdout.starts_with("xxxx"), "{stdout:.40}");
    }
    assert!(!files.join("q.1.stdout").exists(), "no file of a plain attempt");
}

/// Three replicas that record their pid and hang until the file `release` exists.
fn hanging_replicas(s: &Scratch) -> std::path::PathBuf {
    let d = s.path().display();
    let script = format!(
        "cat >/dev/null; echo $$ >> {d}/pids; if [ -e {d}/release ]; then echo '{{\"a\": 1}}'; exit 0; fi; exec sleep 1000"
    );
    let wf = format!(
        "[run]\nkill_grace = \"2s\"\n[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"q\"\nconsensus = {{ replicas = 3, strategy = \"majority\" }}\n",
        toml_string(&script)
    );
    s.write("workflow.toml", &wf)
}

fn recorded_pids(s: &Scratch) -> Vec<i32> {
    std::fs::read_to_string(s.path().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Stops a manager running three hanging replicas with `sig`; every replica must be
/// gone, and `resume` (replicas released) completes the task without spending an attempt.
fn stopped_with(sig: i32) -> (Vec<Value>, Value) {
    let s = Scratch::new();
    let mut manager = s.spawn_run(&hanging_replicas(&s));
    let _guard = KillOnPanic::new(&[manager.id()]);
    let started = wait_for(deadline(), || recorded_pids(&s).len() >= 3);
    unsafe { libc::kill(manager.id() as i32, sig) };
    wait_within(&mut manager, "the manager after its signal");
    assert!(started, "the replicas did not start");
    let pids = recorded_pids(&s);
    let all_gone = wait_for(Duration::from_secs(10), || pids.iter().all(|p| !alive(*p)));
    pids.iter().for_each(|p| kill_pid(*p));
    assert!(all_gone, "a replica outlived its manager: {pids:?}");
    std::fs::write(s.path().join("release"), "").expect("release");
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    recorded_pids(&s).iter().for_each(|p| kill_pid(*p));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{doc} {}", String::from_utf8_lossy(&out.stderr));
    let q = task(&doc, "q");
    assert_eq!(q["state"], "completed", "{q}");
    assert_eq!(q["attempts"], 1, "a stopped consensus attempt is not spent: {q}");
    (s.events(), doc)
}

#[test]
fn sigint_ends_every_replica_and_resume_finishes_the_round() {
    let (events, _) = stopped_with(libc::SIGINT);
    let interrupted: Vec<&Value> = events.iter().filter(|e| e["type"] == "attempt_interrupted").collect();
    assert_eq!(interrupted.len(), 1, "one attempt handed back, once: {interrupted:?}");
    assert_eq!(interrupted[0]["reason"], "run interrupted");
    assert_eq!(events.iter().filter(|e| e["type"] == "consensus_reached").count(), 1);
}

#[test]
fn sigkill_leaves_no_replica_and_resume_finishes_the_round() {
    let (events, _) = stopped_with(libc::SIGKILL);
    assert!(
        events.iter().any(|e| e["type"] == "attempt_interrupted" && e["reason"] == "manager crashed"),
        "the attempt in flight is handed back"
    );
    assert_eq!(events.iter().filter(|e| e["type"] == "consensus_reached").count(), 1);
}
