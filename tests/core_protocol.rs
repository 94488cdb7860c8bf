//! Reading an attempt's outcome from its output (`core::protocol`) at the edges: results
//! longer than the cap cut on a character boundary, error tails that say when lines
//! were left out, bare scalars as results, control lines around a value. Each call runs
//! on a thread with a deadline: these functions loop over their input, and a loop that
//! no longer ends must fail the test, not hang the suite.

use std::sync::mpsc;
use std::time::Duration;

use pitboss::core::protocol::{last_json, quote_tail, verdict, Verdict, TEXT_RESULT_CAP};
use serde_json::{json, Value};

/// `f()`, or a failure naming `what` if it has not returned within 10 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what} did not return within 10 s"))
}

fn completed(stdout: String) -> Verdict {
    within("verdict", move || verdict(stdout.as_bytes(), b"", Some(0)))
}

fn tail(stderr: String, stdout: String) -> String {
    within("quote_tail", move || quote_tail(&stderr, &stdout))
}

#[test]
fn a_long_text_result_keeps_its_end_cut_on_a_character_boundary() {
    // "é" takes two bytes at odd offsets, so the cut falls inside one and moves on.
    let text = format!("a{}b", "é".repeat(TEXT_RESULT_CAP));
    let Verdict::Completed(Value::String(result)) = completed(text.clone()) else { panic!("not a text result") };
    let kept = result.strip_prefix('…').expect("the cut is marked");
    assert!(text.ends_with(kept));
    assert_eq!(kept.len(), TEXT_RESULT_CAP - 1, "one byte past the cut, to the next boundary");
}

#[test]
fn a_text_result_at_the_cap_is_kept_whole() {
    let text = "x".repeat(TEXT_RESULT_CAP);
    assert_eq!(completed(text.clone()), Verdict::Completed(Value::String(text)));
}

#[test]
fn a_bare_scalar_on_the_last_line_is_the_result() {
    assert_eq!(completed("thinking…\n42\n".into()), Verdict::Completed(json!(42)));
    assert_eq!(completed("checking\ntrue".into()), Verdict::Completed(json!(true)));
}

#[test]
fn a_value_whose_last_line_looks_like_a_control_line_is_still_found() {
    let text = "log\n[\n{\"pitboss\":1}]".to_string();
    assert_eq!(within("last_json", move || last_json(&text)), Some(json!([{"pitboss": 1}])));
}

#[test]
fn control_lines_after_the_result_are_skipped() {
    let text = "{\"n\":1}\n{\"pitboss\":\"progress\"}\n{\"pitboss\":\"done\"}\n".to_string();
    assert_eq!(within("last_json", move || last_json(&text)), Some(json!({"n": 1})));
    let only_control = "{\"pitboss\":\"progress\"}\n".to_string();
    assert_eq!(within("last_json", move || last_json(&only_control)), None);
}

#[test]
fn an_error_tail_quotes_the_last_meaningful_line() {
    // Issue 15: the error is where a failing program says why, its last line, not
    // the log lines before it.
    let long_first = "a first line long enough to be worth leaving out";
    assert_eq!(tail(format!("{long_first}\nl2\nl3\nl4\n"), String::new()), ": l4");
    // Noise after it (progress bars, rulers, blank lines) is skipped.
    assert_eq!(tail("INFO start\nError: boom\n[####    ] 50%\n-----\n\n".into(), String::new()), ": Error: boom");
    // Without stderr, stdout speaks; with nothing meaningful in either, nothing is quoted.
    assert_eq!(tail(" \n".into(), "only stdout".into()), ": only stdout");
    assert_eq!(tail("99%\n".into(), "stdout says why".into()), ": stdout says why");
    assert_eq!(tail(String::new(), "\n\n".into()), "");
}

#[test]
fn an_error_tail_is_capped_at_300_characters_with_a_mark() {
    let line = "y".repeat(300);
    assert_eq!(tail(format!("x\n{line}"), String::new()), format!(": {line}"));
    let quoted = tail("z".repeat(600), String::new());
    assert_eq!(quoted, format!(": {}…", "z".repeat(300)));
}
