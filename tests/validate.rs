//! `pitboss validate` reports every kind of bad workflow as FILE:LINE:COL and exits 2.

mod common;

use common::{OutputWithin, Scratch};

/// Runs validate on `text`; returns (exit code, stderr).
fn validate(text: &str) -> (i32, String) {
    let s = Scratch::new();
    let file = s.write("wf.toml", text);
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "wf.toml");
    (out.status.code().unwrap_or(-1), stderr)
}

const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\ncapabilities = [\"write\"]\n";

fn assert_reports(text: &str, expected: &str) {
    let (code, stderr) = validate(text);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn toml_syntax_error() {
    assert_reports("[run\nname = \"x\"\n", "wf.toml:1:5: ");
}

#[test]
fn unknown_key() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\nretries = 3\n"),
        "wf.toml:7:1: unknown key `retries` in [[task]]",
    );
    assert_reports(
        &format!("{POOL}concurency = 3\n"),
        "wf.toml:5:1: unknown key `concurency` in [[pool]] (did you mean concurrency?)",
    );
}

#[test]
fn duplicate_ids() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\n[[task]]\nid = \"a\"\n"),
        "wf.toml:8:6: duplicate task id \"a\"",
    );
}

#[test]
fn unknown_dependency() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"nope\"]\n"),
        "wf.toml:7:15: task \"a\" depends on unknown task \"nope\"",
    );
}

#[test]
fn cycle_is_named() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"b\"]\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n"),
        "dependency cycle: a -> b -> a",
    );
}

#[test]
fn unknown_pool() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\npool = \"gpu\"\n"),
        "wf.toml:7:8: task \"a\" names unknown pool \"gpu\"",
    );
}

#[test]
fn unmatched_capability() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\nrequires = [\"fly\"]\n"),
        "wf.toml:7:13: task \"a\": no pool has all of the capabilities [\"fly\"]",
    );
}

#[test]
fn bad_duration() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ntimeout = \"10 minutes\"\n"),
        "wf.toml:7:11: bad duration \"10 minutes\"",
    );
}

#[test]
fn empty_command() {
    assert_reports("[[pool]]\nname = \"p\"\ncommand = []\n", "wf.toml:3:11: pool \"p\" has an empty command");
}

#[test]
fn a_preset_with_a_command_or_an_unknown_preset_is_refused() {
    let claude = "a pool with preset = \"claude\" has no `command`: the preset gives it";
    assert_reports(&format!("{POOL}preset = \"claude\"\n"), &format!("wf.toml:3:11: {claude}"));
    let unknown = "unknown preset \"gpt\": expected one of claude, codex, gemini, aider, llm";
    assert_reports("[[pool]]\nname = \"p\"\npreset = \"gpt\"\n", &format!("wf.toml:3:10: {unknown}"));
}

#[test]
fn a_consensus_that_cannot_run_is_refused_at_its_position() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\nconsensus = {{ replicas = 3 }}\n"),
        "wf.toml:7:13: consensus has no strategy",
    );
    assert_reports(
        &format!(
            "{POOL}[[task]]\nid = \"a\"\nconsensus = {{ replicas = 3, strategy = \"judge\", judge = \"nobody\" }}\n"
        ),
        "wf.toml:7:13: consensus: there is no pool \"nobody\" (the pools are p)",
    );
}

#[test]
fn several_problems_are_all_reported() {
    let (code, stderr) = validate(&format!(
        "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"x\"]\ntimeout = \"soon\"\n[[task]]\nid = \"a\"\npool = \"q\"\n"
    ));
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().filter(|l| l.starts_with("wf.toml:")).count(), 4, "{stderr}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let s = Scratch::new();
    let out = s.pitboss().args(["validate", "/nonexistent/wf.toml"]).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("/nonexistent/wf.toml:1:1: cannot read the workflow"), "{stderr}");
}

#[test]
fn valid_workflow_and_bundled_demo_pass() {
    let s = Scratch::new();
    let file = s.write("wf.toml", &format!("{POOL}[[task]]\nid = \"a\"\nrequires = [\"write\"]\n"));
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(0));
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/workflows/demo.toml");
    let out = s.pitboss().args(["validate", demo]).output_within("pitboss validate on the demo");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every workflow shipped in `assets/workflows` (the agents example with its presets,
/// the gates, planner… examples) is one `validate` accepts as it stands.
#[test]
fn every_bundled_workflow_validates() {
    let s = Scratch::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/workflows");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read assets/workflows") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = s.pitboss().arg("validate").arg(&path).output_within("pitboss validate on a bundled workflow");
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            seen.push(path);
        }
    }
    assert!(seen.iter().any(|p| p.ends_with("agents.toml")), "agents.toml is bundled: {seen:?}");
}

// ---- Hardening (issue 11): numbers in range, plain messages, no placeholder in shell code.

/// Runs validate and asserts it refuses `text` with every one of `expected` (each a
/// whole `wf.toml:LINE:COL: message` line, in order among the lines).
fn assert_lines(text: &str, expected: &[&str]) {
    let (code, stderr) = validate(text);
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("wf.toml:")).collect();
    assert_eq!(lines, expected, "full stderr:\n{stderr}");
}

#[test]
fn huge_persistent_concurrency_is_refused_at_its_place() {
    // Today's main accepted it, then panicked with "capacity overflow" at run time.
    assert_lines(
        "[[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"agent\"]\nconcurrency = 9223372036854775807\n",
        &["wf.toml:5:15: concurrency must be at most 10000, got 9223372036854775807"],
    );
}

#[test]
fn every_number_has_a_range() {
    assert_lines(
        "[run]\nmax_parallel = 10001\nkill_grace = \"9999h\"\n\
         [[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"agent\"]\nper_worker = 20000\n\
         recycle = { max_tasks = 2000000000, max_rss_mb = 2000000 }\n\
         breaker = { failures = 4294967297, window = \"100000h\", cooldown = \"18446744073709551615ms\", half_open = 70000 }\n\
         [[task]]\nid = \"a\"\ntimeout = \"721h\"\n\
         retry = { max_attempts = 1001, multiplier = 101.0, never_on = [4294967299, -1, 64], initial = \"1000h\", max = \"1000h\" }\n",
        &[
            "wf.toml:2:16: run.max_parallel must be at most 10000, got 10001",
            "wf.toml:3:14: run.kill_grace must be at most 720h (30 days), got \"9999h\"",
            "wf.toml:8:14: per_worker must be at most 10000, got 20000",
            "wf.toml:9:25: recycle.max_tasks must be at most 1000000000, got 2000000000",
            "wf.toml:9:50: recycle.max_rss_mb must be at most 1048576, got 2000000",
            "wf.toml:10:24: breaker.failures must be at most 10000, got 4294967297",
            "wf.toml:10:45: breaker.window must be at most 720h (30 days), got \"100000h\"",
            "wf.toml:10:67: breaker.cooldown must be at most 720h (30 days), got \"18446744073709551615ms\"",
            "wf.toml:10:105: breaker.half_open must be at most 10000, got 70000",
            "wf.toml:13:11: timeout must be at most 720h (30 days), got \"721h\"",
            "wf.toml:14:26: retry.max_attempts must be at most 1000, got 1001",
            "wf.toml:14:45: retry.multiplier must be a number from 1.0 to 100.0, got 101",
            "wf.toml:14:64: retry.never_on: an exit code is 0 to 255, got 4294967299",
            "wf.toml:14:76: retry.never_on: an exit code is 0 to 255, got -1",
            "wf.toml:14:95: retry.initial must be at most 720h (30 days), got \"1000h\"",
            "wf.toml:14:110: retry.max must be at most 720h (30 days), got \"1000h\"",
        ],
    );
}

#[test]
fn floats_and_numbers_beyond_64_bits_where_a_whole_number_is_meant() {
    // A value of the wrong kind stops the file before any range is checked.
    assert_lines(
        "[run]\nmax_parallel = 1e12\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\nconcurrency = 2.5\n",
        &[
            "wf.toml:2:16: run.max_parallel must be a whole number, not 1e12",
            "wf.toml:6:15: concurrency must be a whole number, not 2.5",
        ],
    );
    assert_lines(
        "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\nconcurrency = 99999999999999999999\n",
        &["wf.toml:4:15: concurrency must be at most 10000, got 99999999999999999999"],
    );
}

/// Messages that leak the parser's internals (type names, private keys, serde words).
const INTERNALS: &[&str] =
    &["Raw", "$__toml", "i64", "i128", "f64", "struct", "sequence", "map,", "invalid type", "expected one of"];

#[test]
fn messages_name_no_internals_and_always_a_place() {
    let bad = [
        format!("{POOL}[[task]]\nid = \"a\"\nretry = 3\n"),
        format!("{POOL}[[task]]\nid = \"a\"\nretry = 1979-05-27\n"),
        format!("{POOL}[run]\nname = 1979-05-27T07:32:00Z\n"),
        format!("{POOL}[[run]]\nname = \"x\"\n"),
        "[pool]\nname = \"p\"\ncommand = [\"echo\"]\n".to_string(),
        format!("{POOL}[[task]]\nid = \"a\"\n[[task.retry]]\nmax_attempts = 2\n"),
        format!("{POOL}[[task]]\nid = \"a\"\ntimeout = 30\n"),
        format!("{POOL}[[task]]\nid = \"a\"\ndepends_on = \"b\"\n"),
        "[[pool]]\nname = \"p\"\ncommand = \"echo hi\"\n".to_string(),
        "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\nbreaker = true\n".to_string(),
        format!("{POOL}[[task]]\nid = \"a\"\nfallback = \"skip\"\n"),
        format!("{POOL}balancer = \"round-robin\"\n"),
        format!("{POOL}[[task]]\nid = \"a\"\nretry = {{ multiplier = \"2\" }}\n"),
        "task = 3\n".to_string(),
        format!("{POOL}[[task]]\nid = \"a\"\npayload = {{ when = 1979-05-27 }}\n"),
    ];
    for text in bad {
        let (code, stderr) = validate(&text);
        assert_eq!(code, 2, "{text}\n{stderr}");
        assert!(stderr.lines().all(|l| l.starts_with("wf.toml:")), "{text}\n{stderr}");
        for word in INTERNALS {
            assert!(!stderr.contains(word), "{word:?} leaks in:\n{stderr}\nfor:\n{text}");
        }
    }
}

#[test]
fn a_list_of_sections_where_one_section_is_meant_and_the_reverse() {
    assert_lines(
        &format!("{POOL}[[run]]\nname = \"x\"\n"),
        &["wf.toml:5:1: [[run]] makes a list of sections, but there is only one run section: write [run]"],
    );
    assert_lines(
        "[pool]\nname = \"p\"\ncommand = [\"echo\"]\n",
        &["wf.toml:1:1: [pool] is a single section, but pools are a list: write [[pool]] for each pool"],
    );
}

#[test]
fn placeholder_in_shell_code_is_refused_with_the_fix() {
    let fix = "pass it as an argument instead: [\"sh\", \"-c\", 'echo \"$1\"', \"_\", \"{payload.x}\"]";
    for command in [
        r#"["sh", "-c", "echo {payload.x}"]"#,
        r#"["/bin/bash", "-euc", "echo {payload.x}"]"#,
        r#"["env", "dash", "-c", "echo {payload.x}"]"#,
        r#"["/usr/bin/env", "-i", "zsh", "-c", "echo {payload.x}"]"#,
    ] {
        let (code, stderr) = validate(&format!(
            "[[pool]]\nname = \"p\"\ncommand = {command}\n[[task]]\nid = \"a\"\npayload = {{ x = \"hi\" }}\n"
        ));
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(stderr.contains("wf.toml:3:"), "{command}: {stderr}");
        assert!(stderr.contains("{payload.x} inside shell code"), "{command}: {stderr}");
        assert!(stderr.contains(fix), "{command}: {stderr}");
    }
    // The fix itself passes: the placeholder is an argument, the script reads "$1".
    let s = Scratch::new();
    let file = s.write(
        "wf.toml",
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", 'echo \"$1\"', \"_\", \"{payload.x}\"]\n\
         [[task]]\nid = \"a\"\npayload = { x = \"hi\" }\n",
    );
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn syntax_mistakes_in_plain_words() {
    assert_lines(
        "[run]\nname = release\n",
        &["wf.toml:2:8: not valid TOML: text must be in quotes, such as name = \"value\""],
    );
    assert_lines(
        "[run]\nname = \"a\"\nname = \"b\"\n",
        &["wf.toml:3:1: not valid TOML: `name` is written twice in this table"],
    );
    assert_lines(
        &format!("{POOL}[pool]\nname = \"q\"\n"),
        &["wf.toml:5:2: not valid TOML: [pool] is written twice; a section appears once (for a list, write [[pool]] every time)"],
    );
    let s = Scratch::new();
    let file = s.path().join("wf.toml");
    std::fs::write(&file, b"[run]\nname = \"\xff\"\n").expect("write");
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.ends_with(":1:1: the workflow is not UTF-8 text\n"), "{stderr}");
}

/// Pools without `command` run a broker's workers' command: `validate --broker URL`
/// checks the file as `run --broker URL` does; without it the refusal says so.
#[test]
fn pools_without_command_need_a_broker_and_validate_takes_one() {
    let text = "[[pool]]\nname = \"remote\"\n[[task]]\nid = \"a\"\n";
    assert_reports(text, "wf.toml:2:8: pool \"remote\" has no `command` (only a broker run may leave it out");
    let s = Scratch::new();
    let file = s.write("wf.toml", text);
    let out = s.pitboss().args(["validate", "--broker", "redis://127.0.0.1:6379"]).arg(&file).output_within("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 pools, 1 tasks)"));
    // A bad --broker is a usage error that never repeats a password.
    let out = s.pitboss().args(["validate", "--broker", "redis://u:hunter2@h"]).arg(&file).output_within("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--broker: the broker URL holds a password") && !stderr.contains("hunter2"), "{stderr}");
}
