//! The `security` and `perf` gates (issue 12), through the real binary, and a cancel
//! during a perf measurement in the engine itself (its process checked by pid).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{OutputWithin, Scratch};
use pitboss::config;
use pitboss::core::{Event, Input, RunState, TaskStateName};
use pitboss::engine::{Ending, Engine, EngineConfig, World};
use pitboss::io::clock::SystemClock;
use pitboss::io::runner::env::RunEnv;
use pitboss::io::runner::{LocalRunner, Runner};
use pitboss::io::store::MemoryStore;

const ONE_TRY: &str = "[defaults]\nretry = { max_attempts = 1 }\n";

/// A pool whose worker answers `result` (a JSON text) whatever it is asked.
fn answering(result: &str) -> String {
    common::sh_pool("p", &format!("cat >/dev/null; cat <<'EOF'\n{result}\nEOF"), "")
}

/// Events of `kind` in the run's log.
fn of_kind(s: &Scratch, kind: &str) -> Vec<serde_json::Value> {
    s.events().into_iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn a_security_gate_catches_an_aws_key_and_curl_pipe_sh() {
    let s = Scratch::new();
    let result = r#"{"files": [{"path": "setup.sh", "content": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\ncurl -fsSL https://get.example.com | sh\n"}]}"#;
    let wf = format!("{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ security = true }}]\n", answering(result));
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let t = common::task(&doc, "t");
    assert_eq!(t["state"], "dead_lettered", "{t}");
    let failed = of_kind(&s, "gate_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.starts_with("gate 1 (security) failed: 2 findings: "), "{error}");
    assert!(error.contains("secret/aws-access-key at /files/0/content:1:26"), "{error}");
    assert!(error.contains("code/curl-pipe-shell at /files/0/content:2:1"), "{error}");
    let critique = failed[0]["critique"].as_str().expect("the findings are the critique");
    assert!(critique.contains("secret/aws-access-key"), "{critique}");
    assert!(!critique.contains("AKIAIOSFODNN7EXAMPLE"), "a finding never shows the key: {critique}");
    // `inspect TASK` names the rules.
    let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg("t").output_within("pitboss inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gate 1 (security) failed"), "{text}");
    assert!(text.contains("secret/aws-access-key") && text.contains("code/curl-pipe-shell"), "{text}");
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
}

#[test]
fn a_clean_result_passes_the_security_gate_and_its_scanner() {
    let s = Scratch::new();
    let dir = s.path().display();
    // The external scanner gets {task, result} on stdin and exits 0.
    let scanner = format!("cat > {dir}/scanner.stdin; echo 'scanner: nothing found'");
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ security = {{ command = [\"sh\", \"-c\", {}] }} }}]\n",
        answering(r#"{"text": "SELECT name FROM users WHERE id = ?", "run": "curl -o out.tgz https://example.com/x"}"#),
        common::toml_string(&scanner)
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}\n{doc}", String::from_utf8_lossy(&out.stderr));
    let passed = of_kind(&s, "gate_passed");
    assert_eq!(passed.len(), 1, "{passed:?}");
    assert_eq!(passed[0]["kind"], "security");
    assert_eq!(passed[0]["critique"], "scanner: nothing found", "{}", passed[0]);
    let asked: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path().join("scanner.stdin")).expect("scanner stdin"))
            .expect("JSON");
    assert_eq!(asked["task"]["id"], "t", "{asked}");
    assert_eq!(asked["result"]["run"], "curl -o out.tgz https://example.com/x");
}

#[test]
fn a_failing_external_scanner_fails_the_security_gate() {
    let s = Scratch::new();
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ security = {{ command = [\"sh\", \"-c\", \"echo 'HIGH: weak hash'; exit 3\"] }} }}]\n",
        answering(r#"{"text": "fine"}"#)
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let failed = &of_kind(&s, "gate_failed")[0];
    assert!(failed["error"].as_str().unwrap().starts_with("gate 1 (security) failed: the scanner "), "{failed}");
    assert_eq!(failed["critique"], "HIGH: weak hash", "{failed}");
}

#[test]
fn the_runs_own_secret_value_in_a_result_is_a_finding() {
    let s = Scratch::new();
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ security = true }}]\n",
        common::sh_pool(
            "p",
            r#"cat >/dev/null; printf '{"note": "the key is %s"}\n' "$GATE_TEST_TOKEN""#,
            "secret_env = [\"GATE_TEST_TOKEN\"]"
        )
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("GATE_TEST_TOKEN", "tok-5f2c9a7e1b3d4c6a8e0f")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let failed = &of_kind(&s, "gate_failed")[0];
    assert!(failed["error"].as_str().unwrap().contains("secret/run-secret at /note"), "{failed}");
    let log = std::fs::read_to_string(s.run_dir().join("events.jsonl")).unwrap_or_default();
    assert!(!log.contains("tok-5f2c9a7e1b3d4c6a8e0f"), "the value is never recorded");
}

#[test]
fn a_perf_gate_fails_a_slow_command_with_its_numbers() {
    let s = Scratch::new();
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\n\
         gates = [{{ perf = {{ command = [\"sleep\", \"0.3\"], max_time = \"100ms\", runs = 1 }} }}]\n",
        answering("{}")
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let failed = of_kind(&s, "gate_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.starts_with("gate 1 (perf) failed: median "), "{error}");
    assert!(error.contains("over 1 run > max_time 100 ms"), "{error}");
}

#[test]
fn a_perf_gate_passes_a_fast_command() {
    let s = Scratch::new();
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\n\
         gates = [{{ perf = {{ command = [\"true\"], max_time = \"5s\", max_rss_mb = 1024, runs = 3 }} }}]\n",
        answering("{}")
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let passed = of_kind(&s, "gate_passed");
    assert_eq!(passed.len(), 1, "{passed:?}");
    let reason = passed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("over 3 runs ≤ max_time 5 s"), "{reason}");
    assert!(reason.contains("MiB ≤ max_rss_mb 1024"), "{reason}");
}

#[test]
fn a_perf_gate_fails_a_regression_over_its_baseline_file() {
    let s = Scratch::new();
    s.write("baseline.json", r#"{"median_ms": 50}"#);
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\n\
         gates = [{{ perf = {{ command = [\"sleep\", \"0.3\"], runs = 1, baseline = \"baseline.json\" }} }}]\n",
        answering("{}")
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let error = of_kind(&s, "gate_failed")[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("> 1.2 × the baseline 50 ms"), "{error}");
}

#[test]
fn a_perf_gate_compares_with_the_best_earlier_passing_run() {
    let s = Scratch::new();
    let dir = s.path().display();
    // Attempt 1 measures fast and passes the perf gate, then fails the next gate;
    // attempt 2 measures 10 times slower: a regression over attempt 1.
    let bench = format!("if [ -e {dir}/slow ]; then sleep 0.5; else touch {dir}/slow; sleep 0.05; fi");
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 2, initial = \"10ms\", jitter = false }}\n{}[[task]]\nid = \"t\"\n\
         gates = [{{ perf = {{ command = [\"sh\", \"-c\", {}], runs = 1 }} }}, {{ command = [\"sh\", \"-c\", \"[ $PITBOSS_ATTEMPT = 2 ]\"] }}]\n",
        answering("{}"),
        common::toml_string(&bench)
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let failed = of_kind(&s, "gate_failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["kind"], "command");
    let error = failed[1]["error"].as_str().unwrap();
    assert!(error.starts_with("gate 1 (perf) failed: median "), "{error}");
    assert!(error.contains("× the best earlier passing run"), "{error}");
}

#[test]
fn a_missing_perf_command_is_a_gate_error() {
    let s = Scratch::new();
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ perf = {{ command = [\"./no-such-bench\"], max_time = \"1s\" }} }}]\n",
        answering("{}")
    );
    let (code, _, _) = s.run_json(&wf);
    assert_eq!(code, 1);
    let errors = of_kind(&s, "gate_error");
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["error"].as_str().unwrap().contains("not found"), "{}", errors[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_perf_gate_ends_its_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("output")).expect("output folder");
    let pidfile = dir.path().join("bench.pid");
    let bench = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
    let workflow = format!(
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo '{{}}'\"]\n\
         [[task]]\nid = \"t\"\ngates = [{{ perf = {{ command = [\"sh\", \"-c\", {}], runs = 3 }} }}]\n",
        common::toml_string(&bench)
    );
    let wf = config::parse(&workflow, "test.toml", dir.path()).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let store =
        MemoryStore::starting_with(0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let config = EngineConfig {
        state_dir: dir.path().to_path_buf(),
        output_dir: dir.path().join("output"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let world = World { clock: Arc::new(SystemClock), runner: Arc::new(LocalRunner::new()) };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    let handle = engine.handle();
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    let run = tokio::spawn(engine.run(std::future::pending()));
    let seen = tokio::task::spawn_blocking(move || {
        common::wait_for(common::deadline(), || std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n')))
            .then(|| std::fs::read_to_string(&pidfile).ok())
            .flatten()
    });
    let pid: i32 = seen.await.unwrap().expect("the measured process started").trim().parse().expect("a pid");
    let _guard = common::KillOnPanic::new(&[pid as u32]);
    assert!(common::alive(pid), "the measured process runs");
    handle.send(Input::Cancel { task: "t".into(), reason: "operator".into() });
    let ended = tokio::time::timeout(common::deadline(), run).await.expect("the run ends after the cancel");
    let (state, ending) = ended.unwrap().expect("engine");
    assert_eq!(ending, Ending::Finished);
    assert_eq!(state.tasks[0].state.name(), TaskStateName::Cancelled);
    assert!(common::wait_for(common::deadline(), || !common::alive(pid)), "the measured process {pid} was ended");
    let records = store.records.lock().unwrap().clone();
    let kinds: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_value(&r.event).unwrap()["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!kinds.iter().any(|k| k.starts_with("gate_")), "a stopped gate gives no verdict: {kinds:?}");
}

#[test]
fn the_runner_hands_the_security_gate_every_pools_secret_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflow = "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nsecret_env = [\"A_TOKEN\"]\n\
                    [[pool]]\nname = \"b\"\ncommand = [\"true\"]\nsecret_env = [\"B_KEY\", \"UNSET_KEY\"]\n\
                    [[task]]\nid = \"t\"\npool = \"a\"\n";
    let wf = config::parse(workflow, "test.toml", dir.path()).unwrap_or_else(|e| panic!("workflow: {e}"));
    let manager = [("A_TOKEN", "value-of-a-0123456789"), ("B_KEY", "value-of-b-0123456789"), ("PATH", "/bin")];
    let env = RunEnv::new(&wf, manager.iter().map(|(k, v)| (k.into(), v.into())));
    let runner = LocalRunner::for_run(env);
    let mut secrets = runner.secret_values();
    secrets.sort();
    assert_eq!(
        secrets,
        [
            ("A_TOKEN".to_string(), "value-of-a-0123456789".to_string()),
            ("B_KEY".to_string(), "value-of-b-0123456789".to_string())
        ]
    );
}

#[test]
fn a_perf_command_never_sees_a_secret_looking_variable() {
    let s = Scratch::new();
    let bench = r#"if [ -n "$GATE_TEST_TOKEN$SOME_API_KEY" ]; then echo "leaked: a secret reached the benchmark"; exit 1; fi; [ -n "$PATH" ] && [ "$PITBOSS_GATE" = 1 ]"#;
    let wf = format!(
        "{ONE_TRY}{}[[task]]\nid = \"t\"\ngates = [{{ perf = {{ command = [\"sh\", \"-c\", {}], runs = 1 }} }}]\n",
        common::sh_pool("p", "cat >/dev/null; echo '{}'", "secret_env = [\"GATE_TEST_TOKEN\"]"),
        common::toml_string(bench)
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("GATE_TEST_TOKEN", "tok-5f2c9a7e1b3d4c6a8e0f")
        .env("SOME_API_KEY", "key-0123456789abcdef")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run");
    let failed = of_kind(&s, "gate_failed");
    assert_eq!(out.status.code(), Some(0), "{failed:?}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(of_kind(&s, "gate_passed")[0]["kind"], "perf");
}
