//! Quality gates (issue 12), through the real binary: `validate` places every gate
//! problem at its line and column; runs check results before they count.

mod common;

use common::{OutputWithin, Scratch};

const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n";

/// `pitboss validate` on `text` in a folder holding `files`; (exit code, stderr).
fn validate(text: &str, files: &[(&str, &str)]) -> (i32, String) {
    let s = Scratch::new();
    for (name, content) in files {
        s.write(name, content);
    }
    let file = s.write("wf.toml", text);
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&s.path().display().to_string(), "DIR");
    (out.status.code().unwrap_or(-1), stderr)
}

#[track_caller]
fn assert_reports(text: &str, files: &[(&str, &str)], expected: &[&str]) {
    let (code, stderr) = validate(text, files);
    assert_eq!(code, 2, "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn gates_of_every_kind_validate() {
    let text = format!(
        "[defaults]\ngates = [{{ command = [\"true\"] }}]\n{POOL}[[pool]]\nname = \"reviewer\"\ncommand = [\"echo\"]\n\
         [[task]]\nid = \"a\"\ngates = [\n  {{ schema = \"s.json\" }},\n  {{ command = [\"make\", \"test\"], timeout = \"5m\" }},\n\
         {{ review = \"reviewer\", min_score = 7, criteria = [\"clarity\"], timeout = \"1m\", retry = {{ max_attempts = 2 }} }},\n\
         {{ security = true }},\n  {{ security = {{ command = [\"scan\"] }} }},\n\
         {{ perf = {{ command = [\"./bench.sh\"], max_time = \"2s\", max_rss_mb = 256, runs = 3, max_regression = 1.2 }} }},\n]\n\
         [[task]]\nid = \"b\"\n"
    );
    let (code, stderr) = validate(&text, &[("s.json", r#"{"type":"object"}"#)]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn gate_problems_have_line_and_column() {
    let text = format!(
        "{POOL}[[task]]\nid = \"a\"\ngates = [\n\
         {{ schema = \"missing.json\" }},\n\
         {{ schema = \"bad.json\" }},\n\
         {{ schema = \"notschema.json\" }},\n\
         {{ review = \"ghost\" }},\n\
         {{ review = \"p\", min_score = 11 }},\n\
         {{ command = [\"x\"], min_score = 3 }},\n\
         {{ schema = \"s.json\", review = \"p\" }},\n\
         {{ perf = {{ command = [\"x\"], runs = 0, max_regression = 0.5 }} }},\n\
         {{ command = [] }},\n\
         ]\n"
    );
    let files = [("bad.json", "{\"type\": \n"), ("notschema.json", r#"{"type": 12}"#), ("s.json", "{}")];
    assert_reports(
        &text,
        &files,
        &[
            "wf.toml:7:12: cannot read the schema DIR/missing.json: there is no such file",
            "wf.toml:8:12: the schema DIR/bad.json is not JSON: EOF while parsing a value at line 2 column 0",
            "wf.toml:9:12: the schema DIR/notschema.json is not a valid JSON Schema",
            "wf.toml:10:12: review pool \"ghost\" is not defined",
            "wf.toml:11:29: min_score must be 0 to 10, got 11",
            "wf.toml:12:32: `min_score` only applies to a review gate",
            "wf.toml:13:1: a gate is one kind: this one has schema and review",
            "wf.toml:14:36: perf runs must be 1 to 100, got 0",
        ],
    );
    // The perf line has a second problem; an empty command a third.
    let (_, stderr) = validate(&text, &files);
    assert!(stderr.contains("perf max_regression must be 1.0 to 100.0, got 0.5"), "{stderr}");
}

#[test]
fn gate_entries_of_the_wrong_kind_say_so() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ngates = {{ schema = \"s.json\" }}\n"),
        &[],
        &["wf.toml:6:9: gates must be a list of tables, such as gates = [{ schema = \"out.json\" }]"],
    );
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ngates = [{{ bogus = 1 }}]\n"),
        &[],
        &["wf.toml:6:12: unknown key `bogus` in gates; the keys here are schema, command,"],
    );
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ngates = [{{ security = \"yes\" }}]\n"),
        &[],
        &["wf.toml:6:23: gates.security must be true, false or a table"],
    );
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ngates = [{{ command = [\"t\"] }}, {{ command = [] }}]\n"),
        &[],
        &["wf.toml:6:43: gate command is empty"],
    );
}

const FAST_RETRY: &str =
    "[defaults]\nretry = { max_attempts = 3, initial = \"20ms\", max = \"1s\", multiplier = 2.0, jitter = false }\n";

/// The task JSON attempt `n` of a worker read, saved by its script as `stdin.N`.
#[track_caller]
fn stdin_of(s: &Scratch, n: u32) -> serde_json::Value {
    let text = std::fs::read_to_string(s.path().join(format!("stdin.{n}"))).expect("the worker saved its stdin");
    serde_json::from_str(&text).expect("stdin is JSON")
}

/// Events of `kind` in the run's log.
fn of_kind(s: &Scratch, kind: &str) -> Vec<serde_json::Value> {
    s.events().into_iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn a_schema_failure_is_fed_back_and_attempt_two_passes() {
    let s = Scratch::new();
    s.write("title.json", r#"{"type":"object","required":["title"],"properties":{"title":{"type":"string"}}}"#);
    let dir = s.path().display();
    let script = format!(
        r#"cat > {dir}/stdin.$PITBOSS_ATTEMPT; if [ "$PITBOSS_ATTEMPT" = 1 ]; then echo '{{"title": 5}}'; else echo '{{"title": "fixed"}}'; fi"#
    );
    let wf = format!(
        "{FAST_RETRY}{}[[task]]\nid = \"notes\"\ngates = [{{ schema = \"title.json\" }}]\n",
        common::sh_pool("writer", &script, "")
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let t = common::task(&doc, "notes");
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["attempts"], 2);
    assert_eq!(t["result"]["title"], "fixed");
    // The verdict, in the log and in the second attempt's stdin; none in the first's.
    let failed = of_kind(&s, "gate_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"], "gate 1 (schema) failed: /title: 5 is not of type \"string\"");
    assert_eq!(failed[0]["then"], "retry");
    assert_eq!(of_kind(&s, "gate_passed")[0]["attempt"], 2);
    assert!(stdin_of(&s, 1).get("feedback").is_none());
    let feedback = &stdin_of(&s, 2)["feedback"];
    assert_eq!(feedback[0]["gate"], "schema", "{feedback}");
    assert_eq!(feedback[0]["verdict"], "failed");
    assert_eq!(feedback[0]["critique"], "/title: 5 is not of type \"string\"");
    // `inspect TASK` shows the path through validating and both verdicts.
    let run = s.run_dir();
    let out = s.pitboss().arg("inspect").arg(&run).arg("notes").output_within("pitboss inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "states: blocked → queued → running → validating → retry_wait → queued → running → validating → completed"
        ),
        "{text}"
    );
    assert!(text.contains("attempt 1 gate 1 (schema) failed"), "{text}");
    assert!(text.contains("attempt 2 gate 1 (schema) passed"), "{text}");
    let out = s.pitboss().arg("inspect").arg(&run).arg("notes").arg("--json").output_within("pitboss inspect --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect --json");
    let verdicts = &doc["task"]["verdicts"];
    assert_eq!(verdicts.as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(verdicts[0]["verdict"], "failed");
    assert_eq!(verdicts[1]["verdict"], "passed");
}

#[test]
fn a_review_critique_arrives_byte_exact_in_the_next_stdin() {
    let s = Scratch::new();
    let critique = "Line one: \"quoted\", a \\ backslash,\n\ttabbed — é ✓ {braces} $HOME `ticks`  ";
    s.write("review1.json", &serde_json::json!({"score": 3, "critique": critique}).to_string());
    let dir = s.path().display();
    let writer = format!(r#"cat > {dir}/stdin.$PITBOSS_ATTEMPT; echo '{{"text": "draft"}}'"#);
    let reviewer = format!(
        r#"cat > {dir}/review-stdin.$PITBOSS_ATTEMPT; if [ "$PITBOSS_ATTEMPT" = 1 ]; then cat {dir}/review1.json; else echo '{{"score": 9, "critique": "good"}}'; fi"#
    );
    let wf = format!(
        "{FAST_RETRY}{}{}[[task]]\nid = \"essay\"\npool = \"writer\"\n\
         gates = [{{ review = \"reviewer\", min_score = 7, criteria = [\"clarity\"] }}]\n",
        common::sh_pool("writer", &writer, ""),
        common::sh_pool("reviewer", &reviewer, "")
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::task(&doc, "essay")["attempts"], 2);
    // The reviewer was asked with {"review":{task, result, criteria}}.
    let asked: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path().join("review-stdin.1")).expect("review stdin"))
            .expect("JSON");
    assert_eq!(asked["review"]["task"]["id"], "essay", "{asked}");
    assert_eq!(asked["review"]["result"]["text"], "draft");
    assert_eq!(asked["review"]["criteria"][0], "clarity");
    let feedback = &stdin_of(&s, 2)["feedback"][0];
    assert_eq!(feedback["gate"], "review");
    assert_eq!(feedback["score"], 3);
    assert_eq!(feedback["critique"].as_str(), Some(critique), "byte-exact: {feedback}");
    let failed = &of_kind(&s, "gate_failed")[0];
    assert_eq!(failed["error"], "gate 1 (review) failed: score 3 is below 7");
    assert_eq!(of_kind(&s, "gate_passed")[0]["score"], 9);
}

#[test]
fn a_command_gate_runs_a_real_test_suite_in_the_workers_folder() {
    let s = Scratch::new();
    let work = s.path().join("work");
    std::fs::create_dir(&work).expect("work folder");
    let python = std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    // The worker writes code and its test into its cwd; attempt 1's code is wrong.
    let (script, gate) = if python {
        (
            r#"cat >/dev/null
if [ "$PITBOSS_ATTEMPT" = 1 ]; then printf 'def add(a, b):\n    return a - b\n' > calc.py
else printf 'def add(a, b):\n    # fixed: the sum, not the difference\n    return a + b\n' > calc.py; fi
printf 'import unittest\nfrom calc import add\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n' > test_calc.py
echo '{"files": ["calc.py", "test_calc.py"]}'"#,
            r#"["python3", "-m", "unittest", "-v", "test_calc"]"#,
        )
    } else {
        (
            r#"cat >/dev/null; if [ "$PITBOSS_ATTEMPT" = 1 ]; then echo 4 > answer; else echo 5 > answer; fi; echo '{}'"#,
            r#"["sh", "-c", "test \"$(cat answer)\" = 5 || { echo 'FAILED: answer is not 5'; exit 1; }"]"#,
        )
    };
    let wf = format!(
        "{FAST_RETRY}{}[[task]]\nid = \"code\"\ngates = [{{ command = {gate}, timeout = \"60s\" }}]\n",
        common::sh_pool("coder", script, &format!("cwd = {}", common::toml_string(&work.display().to_string())))
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::task(&doc, "code")["attempts"], 2);
    let failed = &of_kind(&s, "gate_failed")[0];
    assert!(failed["error"].as_str().unwrap().starts_with("gate 1 (command) failed: "), "{failed}");
    let critique = failed["critique"].as_str().expect("the test output is the critique");
    assert!(critique.contains("FAILED"), "{critique}");
    assert_eq!(of_kind(&s, "gate_passed")[0]["attempt"], 2);
}

#[test]
fn a_missing_check_command_is_a_gate_error_not_a_verdict() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"t\"\ngates = [{{ command = [\"./no-such-check\"] }}]\n",
        common::sh_pool("p", "cat >/dev/null; echo '{}'", "")
    );
    let (code, doc, _) = s.run_json(&wf);
    assert_eq!(code, 1);
    let t = common::task(&doc, "t");
    assert_eq!(t["state"], "dead_lettered");
    let error = t["error"].as_str().unwrap();
    assert!(error.starts_with("attempts spent (1/1): gate 1 (command) could not run: "), "{error}");
    assert!(error.contains("not found"), "{error}");
    assert_eq!(of_kind(&s, "gate_error").len(), 1);
    assert!(of_kind(&s, "gate_failed").is_empty(), "could not run is no verdict");
    assert_eq!(t["verdicts"][0]["verdict"], "error");
}

#[test]
fn the_bundled_gates_example_runs_with_zero_setup() {
    let s = Scratch::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/workflows/gates.toml");
    let out = s
        .pitboss()
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&example)
        .output_within("pitboss run gates.toml");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}\n{doc}", String::from_utf8_lossy(&out.stderr));
    let notes = common::task(&doc, "release-notes");
    assert_eq!(notes["attempts"], 3, "{notes}");
    let verdicts: Vec<(u64, String, String)> = notes["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| {
            (v["attempt"].as_u64().unwrap(), v["kind"].as_str().unwrap().into(), v["verdict"].as_str().unwrap().into())
        })
        .collect();
    let expected = [
        (1, "schema", "failed"),
        (2, "schema", "passed"),
        (2, "review", "failed"),
        (3, "schema", "passed"),
        (3, "review", "passed"),
    ];
    let expected: Vec<(u64, String, String)> =
        expected.iter().map(|(a, k, v)| (*a, k.to_string(), v.to_string())).collect();
    assert_eq!(verdicts, expected);
    // The third answer was written with both critiques.
    assert_eq!(notes["result"]["addressed"].as_array().map(Vec::len), Some(2), "{notes}");
    let code = common::task(&doc, "add-function");
    assert_eq!(code["attempts"], 2, "{code}");
    assert_eq!(code["verdicts"][0]["verdict"], "failed");
    // A security finding on the first script, none on the second.
    let backup = common::task(&doc, "backup-script");
    assert_eq!(backup["attempts"], 2, "{backup}");
    assert_eq!(backup["verdicts"][0]["verdict"], "failed");
    let reason = backup["verdicts"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("secret/aws-access-key at /script:1:26"), "{reason}");
    assert_eq!(backup["verdicts"][1]["verdict"], "passed");
    // A perf gate over max_time on the slow version, passed by the fast one.
    let lookup = common::task(&doc, "fast-lookup");
    assert_eq!(lookup["attempts"], 2, "{lookup}");
    let reason = lookup["verdicts"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("over 3 runs > max_time 300 ms"), "{reason}");
    assert_eq!(lookup["verdicts"][1]["verdict"], "passed");
}

#[test]
fn dead_letters_of_one_gate_are_one_dlq_group() {
    let s = Scratch::new();
    s.write("n.json", r#"{"type":"object","properties":{"n":{"type":"string"}}}"#);
    // Each task fails the schema with a different value: one group all the same.
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\ngates = [{{ schema = \"n.json\" }}]\n{}\
         [[task]]\nid = \"a\"\npayload = {{ n = 1 }}\n[[task]]\nid = \"b\"\npayload = {{ n = 22 }}\n",
        common::sh_pool("p", r#"cat >/dev/null; echo "{\"n\": $PITBOSS_TASK_ID}" | sed 's/a}/1}/; s/b}/[2]}/'"#, "")
    );
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.pitboss().arg("dlq").arg(s.run_dir()).arg("--json").output_within("pitboss dlq --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dlq --json");
    let letters = doc["dead_letters"].as_array().expect("dead letters");
    assert_eq!(letters.len(), 2, "{doc}");
    assert_ne!(letters[0]["reason"], letters[1]["reason"], "{doc}");
    assert_eq!(letters[0]["group"], "gate 1 (schema) failed", "{doc}");
    assert_eq!(letters[1]["group"], "gate 1 (schema) failed", "{doc}");
}

#[test]
fn a_persistent_reviewer_pool_answers_reviews_on_its_running_process() {
    let s = Scratch::new();
    let dir = s.path().display();
    // One process answers every review line; it counts the processes it was.
    let reviewer = format!(
        r#"echo $$ >> {dir}/reviewer.pids; while IFS= read -r line; do echo '{{"score": 8, "critique": "fine"}}'; done"#
    );
    let wf = format!(
        "{FAST_RETRY}{}{}[[task]]\nid = \"a\"\npool = \"writer\"\ngates = [{{ review = \"reviewer\" }}]\n\
         [[task]]\nid = \"b\"\npool = \"writer\"\ngates = [{{ review = \"reviewer\" }}]\n",
        common::sh_pool("writer", "cat >/dev/null; echo '{}'", ""),
        common::sh_pool("reviewer", &reviewer, "mode = \"persistent\"\nper_worker = 4")
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    for id in ["a", "b"] {
        let t = common::task(&doc, id);
        assert_eq!(t["verdicts"][0]["score"], 8, "{t}");
    }
    let pids = std::fs::read_to_string(s.path().join("reviewer.pids")).expect("the reviewer ran");
    assert_eq!(pids.lines().count(), 1, "one reviewer process served both reviews: {pids}");
}

#[test]
fn inspect_shows_a_validating_task_and_its_running_gate() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"t\"\n\
         gates = [{{ command = [\"sh\", \"-c\", \"sleep 2\"], timeout = \"1s\" }}]\n",
        common::sh_pool("p", "cat >/dev/null; echo '{}'", "")
    );
    let file = s.write("workflow.toml", &wf);
    let child = s.spawn_run(&file);
    let pid = child.id();
    let run = common::KillOnPanic::new(&[pid]);
    let mut seen = String::new();
    let found = common::wait_for(common::deadline(), || {
        let out = s.pitboss().arg("inspect").arg(s.run_dir()).output_within("pitboss inspect");
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        seen.contains("attempt 1: gate 1 (command) running")
    });
    let out = common::finish_within(child, "pitboss run");
    drop(run);
    assert!(found, "inspect never showed the running gate (pid {pid}):\n{seen}");
    assert!(seen.contains("1 validating"), "{seen}");
    assert_eq!(out.status.code(), Some(1), "the gate times out: a failed attempt");
}
