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
    let files = [
        ("bad.json", "{\"type\": \n"),
        ("notschema.json", r#"{"type": 12}"#),
        ("s.json", "{}"),
    ];
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
