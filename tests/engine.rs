//! The engine end to end: real workflows, real worker processes, the real binary.

mod common;

use std::time::Duration;

use common::{alive, kill_pid, run_finished_success, sh_pool, task, wait_for, OutputWithin, Scratch};
use serde_json::Value;

const FAST_RETRY: &str =
    "[defaults]\nretry = { max_attempts = 3, initial = \"50ms\", max = \"1s\", multiplier = 2.0, jitter = false }\n";

#[test]
fn diamond_join_receives_both_parents_results() {
    let s = Scratch::new();
    // `cat` echoes the task JSON, so each result shows the inputs the task received.
    let wf = format!(
        "{}{}\
         [[task]]\nid = \"top\"\npayload = {{ n = 1 }}\n\
         [[task]]\nid = \"left\"\ndepends_on = [\"top\"]\n\
         [[task]]\nid = \"right\"\ndepends_on = [\"top\"]\n\
         [[task]]\nid = \"join\"\ndepends_on = [\"left\", \"right\"]\n",
        FAST_RETRY,
        sh_pool("p", "cat", "")
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let join = task(&doc, "join");
    assert_eq!(join["state"], "completed");
    let inputs = &join["result"]["inputs"];
    assert_eq!(inputs["left"]["id"], "left", "{join}");
    assert_eq!(inputs["right"]["id"], "right", "{join}");
    // The parents in turn received the top task's result.
    assert_eq!(inputs["left"]["inputs"]["top"]["payload"]["n"], 1, "{join}");
    assert_eq!(doc["counts"]["completed"], 4);
    assert!(run_finished_success(&s.events()), "run_finished says every task completed");
}

#[test]
fn fails_twice_then_completes_on_attempt_three_with_growing_delays() {
    let s = Scratch::new();
    let script = r#"cat >/dev/null; if [ "$PITBOSS_ATTEMPT" -lt 3 ]; then echo "flaky $PITBOSS_ATTEMPT" >&2; exit 1; fi; echo '{"ok":true}'"#;
    let wf = format!("{FAST_RETRY}{}[[task]]\nid = \"flaky\"\n", sh_pool("p", script, ""));
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let t = task(&doc, "flaky");
    assert_eq!(t["state"], "completed");
    assert_eq!(t["attempts"], 3);
    assert_eq!(t["result"]["ok"], true);
    let delays: Vec<u64> = s
        .events()
        .iter()
        .filter(|e| e["type"] == "attempt_failed")
        .map(|e| e["delay_ms"].as_u64().expect("delay recorded"))
        .collect();
    assert_eq!(delays, vec![50, 100], "recorded delays grow");
}

#[test]
fn always_failing_worker_is_dead_lettered_and_dependents_skipped() {
    let s = Scratch::new();
    let wf = format!(
        "{FAST_RETRY}{}[[task]]\nid = \"bad\"\n[[task]]\nid = \"child\"\ndepends_on = [\"bad\"]\n\
         [[task]]\nid = \"grandchild\"\ndepends_on = [\"child\"]\n[[task]]\nid = \"fine\"\n",
        sh_pool("p", r#"cat >/dev/null; case "$PITBOSS_TASK_ID" in bad) echo nope >&2; exit 3;; esac; echo '{}'"#, "")
    );
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 1);
    let bad = task(&doc, "bad");
    assert_eq!(bad["state"], "dead_lettered");
    assert_eq!(bad["attempts"], 3);
    assert!(bad["error"].as_str().unwrap().contains("attempts spent (3/3): exit code 3: nope"), "{bad}");
    assert_eq!(task(&doc, "child")["state"], "skipped");
    assert_eq!(task(&doc, "grandchild")["state"], "skipped");
    assert_eq!(task(&doc, "fine")["state"], "completed");
    assert!(!run_finished_success(&s.events()), "run_finished says not every task completed");
}

#[test]
fn timeout_kills_a_term_ignoring_worker_and_its_grandchild() {
    let s = Scratch::new();
    let pidfile = s.path().join("grandchild.pid");
    // Both ignore SIGTERM (an ignored signal stays ignored across exec).
    let script = format!("trap '' TERM; sleep 1000 & echo $! > {}; wait", pidfile.display());
    let wf = format!(
        "[run]\nkill_grace = \"200ms\"\n[defaults]\ntimeout = \"500ms\"\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"stuck\"\n",
        sh_pool("p", &script, "stdin = \"none\"")
    );
    let (code, doc, _) = s.run_json(&wf);
    let grandchild: i32 = std::fs::read_to_string(&pidfile).expect("grandchild pid").trim().parse().unwrap();
    let worker = s
        .events()
        .iter()
        .find(|e| e["type"] == "attempt_spawned")
        .and_then(|e| e["pid"].as_i64())
        .expect("spawn recorded") as i32;
    let gone = wait_for(Duration::from_secs(5), || !alive(grandchild) && !alive(worker));
    if !gone {
        kill_pid(grandchild);
        kill_pid(worker);
    }
    assert!(gone, "worker {worker} or grandchild {grandchild} outlived the timeout");
    assert_eq!(code, 1);
    let t = task(&doc, "stuck");
    assert_eq!(t["state"], "dead_lettered");
    assert!(t["error"].as_str().unwrap().contains("timed out after 500ms"), "{t}");
}

#[test]
fn missing_command_dead_letters_at_once_naming_it() {
    let s = Scratch::new();
    let wf = "[[pool]]\nname = \"ghost\"\ncommand = [\"pitboss-no-such-agent\", \"-p\"]\n[[task]]\nid = \"a\"\n";
    let (code, doc, _) = s.run_json(wf);
    assert_eq!(code, 1);
    let a = task(&doc, "a");
    assert_eq!(a["state"], "dead_lettered");
    assert_eq!(a["attempts"], 1, "a permanent error is not retried");
    let error = a["error"].as_str().unwrap();
    assert!(error.contains("\"pitboss-no-such-agent\" not found"), "{error}");
    assert!(error.contains("pool \"ghost\""), "{error}");
}

#[test]
fn not_executable_command_is_permanent() {
    let s = Scratch::new();
    s.write("agent.sh", "#!/bin/sh\necho hi\n"); // no execute bit
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"./agent.sh\"]\n[[task]]\nid = \"a\"\n";
    let (code, doc, _) = s.run_json(wf);
    assert_eq!(code, 1);
    let error = task(&doc, "a")["error"].as_str().unwrap().to_string();
    assert!(error.contains("not executable"), "{error}");
    assert_eq!(task(&doc, "a")["attempts"], 1);
}

#[test]
fn failed_envelope_on_stderr_with_exit_zero_is_a_failure() {
    let s = Scratch::new();
    let script =
        r#"cat >/dev/null; echo '{"partial":true}'; echo '{"status":"failed","error":"rate limited"}' >&2; exit 0"#;
    let wf = format!("[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"a\"\n", sh_pool("p", script, ""));
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 1);
    let a = task(&doc, "a");
    assert_eq!(a["state"], "dead_lettered");
    assert!(a["error"].as_str().unwrap().ends_with("rate limited"), "{a}");
}

#[test]
fn result_is_last_json_after_log_lines_without_trailing_newline() {
    let s = Scratch::new();
    let script = r#"cat >/dev/null; echo "warming up"; echo '{"pitboss":"progress","pct":50}'; printf '{"answer":42}'"#;
    let wf = format!("{}[[task]]\nid = \"a\"\n", sh_pool("p", script, ""));
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 0);
    assert_eq!(task(&doc, "a")["result"], serde_json::json!({"answer": 42}));
}

#[test]
fn payload_reaches_argv_as_one_element_never_through_a_shell() {
    let s = Scratch::new();
    let marker = s.path().join("pwned");
    let wf = format!(
        "[[pool]]\nname = \"p\"\ncommand = [\"printf\", \"%s\", \"{{payload.prompt}}\"]\nstdin = \"none\"\n\
         [[task]]\nid = \"a\"\npayload = {{ prompt = {} }}\n",
        common::toml_string(&format!("hi; touch {}", marker.display()))
    );
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 0);
    assert_eq!(task(&doc, "a")["result"], Value::String(format!("hi; touch {}", marker.display())));
    assert!(!marker.exists());
}

#[test]
fn the_log_is_private_and_checksummed() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    // More than 4 KiB of output, so that it goes to a capture file.
    let script = "cat >/dev/null; head -c 10000 /dev/zero | tr '\\0' x; echo; echo '{}'";
    let wf = format!("{}[[task]]\nid = \"a\"\n", sh_pool("p", script, ""));
    // A permissive umask must not loosen the log's mode.
    let file = s.write("workflow.toml", &wf);
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "umask 000; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_pitboss"),
            "run",
            "--headless",
            "--state-dir",
        ])
        .arg(s.run_dir())
        .arg(&file)
        .env("PITBOSS_HOME", s.path().join("home"))
        .output_within("pitboss run under umask 000");
    assert_eq!(out.status.code(), Some(0));
    let meta = std::fs::metadata(s.run_dir().join("events.jsonl")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_meta = std::fs::metadata(s.run_dir()).unwrap();
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);
    let output = std::fs::read_dir(s.run_dir().join("output")).unwrap().next().unwrap().unwrap();
    assert_eq!(output.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(s.run_dir().join("events.jsonl")).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert_eq!(first["seq"], 1);
    assert!(first["crc"].is_u64());
    assert_eq!(first["event"]["type"], "run_started");
    assert_eq!(first["event"]["workflow"]["tasks"][0]["id"], "a", "the first record holds the workflow");

    // The checksum is checked: change record 2's timestamp by one. The line is still
    // valid JSON and a valid event, so only the checksum can tell.
    let log = s.run_dir().join("events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert!(lines.len() > 2, "record 2 must have records after it: {text}");
    let ts_digit = lines[1].find("\"ts\":").unwrap() + "\"ts\":".len();
    let digit = lines[1].as_bytes()[ts_digit];
    let changed = if digit == b'9' { '8' } else { (digit + 1) as char };
    lines[1].replace_range(ts_digit..ts_digit + 1, &changed.to_string());
    let edited: Value = serde_json::from_str(&lines[1]).expect("the edited record is still JSON");
    assert_eq!(edited["seq"], 2);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    // Opening trusts a snapshot for the records it covers (issue 14; `pitboss verify`
    // reads them all): without snapshots, opening reads the whole log.
    for (_, snap) in pitboss::io::snapshot::list(&s.run_dir()) {
        std::fs::remove_file(snap).unwrap();
    }
    let out = s.pitboss().arg("inspect").arg(s.run_dir()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("events.jsonl:2: record seq 2 is corrupt (checksum mismatch)"), "{stderr}");
}
