//! The worker protocol (DESIGN §4), as pure functions: the task JSON a worker reads,
//! argv placeholders, and reading an attempt's outcome from what it printed.
//!
//! Reading rules, in order:
//! 1. an envelope `{"status":"completed","result":…}` or `{"status":"failed","error":…}`
//!    (the last one on stdout, else the last on stderr) decides, whatever the exit code;
//! 2. otherwise exit 0 is success, with the last JSON value on stdout as the result,
//!    or the trimmed text when there is none;
//! 3. otherwise the attempt failed; the error is the exit code (or the signal) and the
//!    last meaningful line of stderr (or stdout): see [`quote_tail`].
//!
//! `{"pitboss":…}` control lines (progress, spawn) are never taken as a result.

use serde_json::{Map, Value};

use crate::core::text::last_meaningful_line;
use crate::core::workflow::{lookup_payload, placeholder_spans};

/// Facts about an attempt needed to build its argv, stdin and task JSON.
#[derive(Debug, Clone, Copy)]
pub struct TaskView<'a> {
    /// Task id.
    pub id: &'a str,
    /// Task type.
    pub kind: &'a str,
    /// Payload.
    pub payload: &'a Value,
    /// Attempt number.
    pub attempt: u32,
    /// Run id.
    pub run_id: &'a str,
}

/// The task JSON of the worker protocol.
pub fn task_json(task: TaskView<'_>, inputs: Map<String, Value>) -> Value {
    serde_json::json!({
        "id": task.id,
        "type": task.kind,
        "payload": task.payload,
        "attempt": task.attempt,
        "inputs": inputs,
        "run_id": task.run_id,
    })
}

/// Why a template could not be filled for an attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// `{payload.KEY}` names a key this task's payload does not have (the workflow
    /// check cannot know every payload, e.g. one a replay edited).
    #[error("task {task:?} has no payload.{path} for {{{placeholder}}}")]
    MissingPayload {
        /// The task id.
        task: String,
        /// The dotted path after `payload.`.
        path: String,
        /// The whole placeholder, without its braces.
        placeholder: String,
    },
    /// A placeholder neither the core nor the caller's `extra` knows.
    #[error("unknown placeholder {{{0}}}")]
    Unknown(String),
}

/// The engine builds attempt specs with `String` errors; this lets `?` carry a
/// [`FillError`] there as its message.
impl From<FillError> for String {
    fn from(e: FillError) -> String {
        e.to_string()
    }
}

/// Fills the placeholders of one template (see [`placeholder_spans`]). `extra`
/// resolves names the core does not know (`pitboss`, `state_dir`). A missing payload
/// key is an error naming it.
pub fn fill(template: &str, task: TaskView<'_>, extra: &dyn Fn(&str) -> Option<String>) -> Result<String, FillError> {
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for (start, end) in placeholder_spans(template) {
        out.push_str(&template[last..start]);
        let name = &template[start + 1..end - 1];
        let value = match name {
            "id" => task.id.to_string(),
            "type" => task.kind.to_string(),
            "attempt" => task.attempt.to_string(),
            "run_id" => task.run_id.to_string(),
            "payload" => task.payload.to_string(),
            _ => match name.strip_prefix("payload.") {
                Some(path) => match lookup_payload(task.payload, path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => {
                        return Err(FillError::MissingPayload {
                            task: task.id.to_string(),
                            path: path.to_string(),
                            placeholder: name.to_string(),
                        })
                    }
                },
                None => extra(name).ok_or_else(|| FillError::Unknown(name.to_string()))?,
            },
        };
        out.push_str(&value);
        last = end;
    }
    out.push_str(&template[last..]);
    Ok(out)
}

/// What an attempt's output says about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Success with a result.
    Completed(Value),
    /// Failure with a message.
    Failed(String),
}

/// Reads an attempt's outcome from the ends of its stdout and stderr and its exit code
/// (`None` when a signal ended it).
pub fn verdict(stdout: &[u8], stderr: &[u8], exit_code: Option<i32>) -> Verdict {
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = String::from_utf8_lossy(stderr);
    let envelope = last_envelope(&stdout).or_else(|| last_envelope(&stderr));
    if let Some(env) = envelope {
        return env;
    }
    match exit_code {
        Some(0) => Verdict::Completed(last_json(&stdout).unwrap_or_else(|| Value::String(text_result(&stdout)))),
        Some(code) => Verdict::Failed(format!("exit code {code}{}", quote_tail(&stderr, &stdout))),
        None => Verdict::Failed(format!("killed by a signal{}", quote_tail(&stderr, &stdout))),
    }
}

/// The verdict on one JSON reply of a persistent worker that exited with nothing
/// else to say: what [`verdict`] says of the reply printed alone on stdout with exit
/// code 0, without printing and reading it back (that round trip was a few percent
/// of the manager's time at 25k tasks/s). A `{"status": …}` envelope decides; any
/// other value is the result itself (a control value, which readers route elsewhere,
/// is taken as text, as it would be on stdout).
pub fn reply_verdict(value: Value) -> Verdict {
    match value.get("status").and_then(Value::as_str) {
        Some("completed") => return Verdict::Completed(value.get("result").cloned().unwrap_or(Value::Null)),
        Some("failed") => {
            return Verdict::Failed(match value.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "the worker reported failure".to_string(),
            })
        }
        _ => {}
    }
    if is_control(&value) {
        return Verdict::Completed(Value::String(text_result(&value.to_string())));
    }
    Verdict::Completed(value)
}

/// Bytes of plain-text output kept as a result: the log stores results, so a worker
/// that prints a novel keeps its last pages (the capture file has the rest).
pub const TEXT_RESULT_CAP: usize = 16 * 1024;

/// A plain-text result: trimmed, and its last [`TEXT_RESULT_CAP`] bytes when longer
/// (agent presets use it for their answer text too).
pub fn text_result(stdout: &str) -> String {
    let text = stdout.trim();
    if text.len() <= TEXT_RESULT_CAP {
        return text.to_string();
    }
    let mut cut = text.len() - TEXT_RESULT_CAP;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &text[cut..])
}

/// Characters of an output line quoted in an error: enough for a stack trace's last
/// line, short enough for a table cell's hover and the log.
const QUOTED_LINE_CAP: usize = 300;

/// ": LINE", the last line of stderr that says something (else of stdout), for an
/// error message; empty when neither says anything. One line, the last: that is where
/// a failing program says why (a traceback's exception, a CLI's "error: …"); the lines
/// before it are mostly log noise, which made a summary start with "INFO loading…".
/// Blank lines, control lines and lines without a letter (progress bars) are skipped
/// (see [`last_meaningful_line`]). The whole output stays in the attempt's capture.
pub fn quote_tail(stderr: &str, stdout: &str) -> String {
    let Some(line) = last_meaningful_line(stderr).or_else(|| last_meaningful_line(stdout)) else {
        return String::new();
    };
    match line.char_indices().nth(QUOTED_LINE_CAP) {
        Some((cut, _)) => format!(": {}…", &line[..cut]),
        None => format!(": {line}"),
    }
}

fn is_control(v: &Value) -> bool {
    v.get("pitboss").is_some()
}

/// The last `{"status":…}` envelope in a stream, read line by line.
fn last_envelope(text: &str) -> Option<Verdict> {
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        if !line.starts_with('{') || !line.contains("\"status\"") {
            return None;
        }
        let v: Value = serde_json::from_str(line).ok()?;
        match v.get("status")?.as_str()? {
            "completed" => Some(Verdict::Completed(v.get("result").cloned().unwrap_or(Value::Null))),
            "failed" => Some(Verdict::Failed(match v.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "the worker reported failure".to_string(),
            })),
            _ => None,
        }
    })
}

/// The last JSON value printed: tries each line start from the end, so a value
/// spread over several lines (pretty-printed) is found too, and log lines before it
/// are ignored. At most `MAX_CANDIDATES` starts are tried to bound the work.
pub fn last_json(text: &str) -> Option<Value> {
    const MAX_CANDIDATES: usize = 256;
    // Control lines after the result (a final progress line) are not part of it.
    let mut trimmed = text.trim_end();
    loop {
        let last_line_start = trimmed.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let last_line = trimmed[last_line_start..].trim();
        let is_control_line = last_line.starts_with("{\"pitboss\"")
            && serde_json::from_str::<Value>(last_line).is_ok_and(|v| is_control(&v));
        if !is_control_line {
            break;
        }
        trimmed = trimmed[..last_line_start].trim_end();
    }
    let mut starts: Vec<usize> = vec![0];
    starts.extend(trimmed.match_indices('\n').map(|(i, _)| i + 1));
    starts
        .iter()
        .rev()
        .take(MAX_CANDIDATES)
        .filter(|&&s| trimmed[s..].trim_start().starts_with(['{', '[', '"']) || looks_scalar(&trimmed[s..]))
        .find_map(|&s| {
            let candidate = trimmed[s..].trim();
            let v: Value = serde_json::from_str(candidate).ok()?;
            (!is_control(&v)).then_some(v)
        })
}

fn looks_scalar(line: &str) -> bool {
    let l = line.trim();
    !l.contains('\n') && (l == "true" || l == "false" || l == "null" || l.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    mod reply {
        use super::*;
        use proptest::prelude::*;

        /// Any JSON value, with the keys that matter here (`status`, `result`,
        /// `error`, `pitboss`) and the status words likely among the others.
        fn json() -> impl Strategy<Value = Value> {
            let key = prop_oneof![
                Just("status".to_string()),
                Just("result".to_string()),
                Just("error".to_string()),
                Just("pitboss".to_string()),
                "[a-z\"{} \n]{0,6}",
            ];
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
                prop_oneof![Just("completed".to_string()), Just("failed".to_string()), "[ -~\n\u{e9}]{0,12}"]
                    .prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 5, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((key.clone(), inner), 0..5)
                        .prop_map(|entries| Value::Object(entries.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn a_reply_gets_the_verdict_it_would_printed_alone(value in json()) {
                let printed = verdict(value.to_string().as_bytes(), b"", Some(0));
                prop_assert_eq!(reply_verdict(value), printed);
            }
        }

        #[test]
        fn envelopes_and_plain_values() {
            let cases = [
                json!({"status": "completed", "result": {"n": 1}}),
                json!({"status": "failed", "error": {"code": 3}}),
                json!({"status": "failed"}),
                json!({"status": "other", "x": 1}),
                json!({"pitboss": "progress"}),
                json!("text"),
                json!(1.5),
            ];
            for value in cases {
                assert_eq!(
                    reply_verdict(value.clone()),
                    verdict(value.to_string().as_bytes(), b"", Some(0)),
                    "{value}"
                );
            }
        }
    }

    #[test]
    fn last_json_after_log_lines_without_newline() {
        let out = b"starting\nworking 50%\n{\"ok\":true}";
        assert_eq!(verdict(out, b"", Some(0)), Verdict::Completed(json!({"ok": true})));
    }

    #[test]
    fn pretty_printed_result_is_found() {
        let out = b"log line\n{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n";
        assert_eq!(verdict(out, b"", Some(0)), Verdict::Completed(json!({"a": 1, "b": [1, 2]})));
    }

    #[test]
    fn text_result_when_no_json() {
        assert_eq!(verdict(b"hello world\n", b"", Some(0)), Verdict::Completed(json!("hello world")));
    }

    #[test]
    fn progress_lines_are_not_results() {
        let out = b"{\"x\":1}\n{\"pitboss\":\"progress\",\"pct\":50}\n";
        assert_eq!(verdict(out, b"", Some(0)), Verdict::Completed(json!({"x": 1})));
    }

    #[test]
    fn failed_envelope_on_stderr_beats_exit_zero() {
        let err = b"{\"status\":\"failed\",\"error\":\"rate limited\"}\n";
        assert_eq!(verdict(b"{\"ok\":1}", err, Some(0)), Verdict::Failed("rate limited".into()));
    }

    #[test]
    fn completed_envelope_beats_exit_code() {
        let out = b"{\"status\":\"completed\",\"result\":{\"n\":3}}\n";
        assert_eq!(verdict(out, b"", Some(1)), Verdict::Completed(json!({"n": 3})));
    }

    #[test]
    fn nonzero_exit_quotes_stderr() {
        let v = verdict(b"", b"line1\nboom: no credits\n", Some(3));
        assert_eq!(v, Verdict::Failed("exit code 3: boom: no credits".into()));
    }

    #[test]
    fn the_error_is_the_last_meaningful_line_not_the_first_log_line() {
        let stderr = b"INFO starting agent v2\nINFO loading model\nTraceback (most recent call last):\n  File \"a.py\", line 3\nValueError: bad input\n[##########] 100%\n\n";
        assert_eq!(verdict(b"", stderr, Some(1)), Verdict::Failed("exit code 1: ValueError: bad input".into()));
        // Nothing on stderr says anything: stdout's last line, else the code alone.
        assert_eq!(
            verdict(b"fatal: no repo\n", b"....\n", Some(128)),
            Verdict::Failed("exit code 128: fatal: no repo".into())
        );
        assert_eq!(verdict(b"", b"=====\n", Some(2)), Verdict::Failed("exit code 2".into()));
        assert_eq!(verdict(b"", b"oom\n", None), Verdict::Failed("killed by a signal: oom".into()));
        let long = format!("E{}\n", "x".repeat(1000));
        let Verdict::Failed(error) = verdict(b"", long.as_bytes(), Some(1)) else { panic!("not a failure") };
        assert_eq!(error.chars().count(), "exit code 1: ".len() + QUOTED_LINE_CAP + 1, "{error}");
    }

    #[test]
    fn fill_placeholders_whole_and_embedded() {
        let payload = json!({"prompt": "say \"hi\"; rm -rf /", "n": 3});
        let t = TaskView { id: "t1", kind: "WRITE", payload: &payload, attempt: 2, run_id: "r" };
        let extra = |n: &str| (n == "pitboss").then(|| "/bin/pb".to_string());
        assert_eq!(fill("{payload.prompt}", t, &extra).unwrap(), "say \"hi\"; rm -rf /");
        assert_eq!(fill("--n={payload.n}/{attempt}", t, &extra).unwrap(), "--n=3/2");
        assert_eq!(fill("{pitboss}", t, &extra).unwrap(), "/bin/pb");
        assert_eq!(fill(r#"echo {"ok":true} {} {1}"#, t, &extra).unwrap(), r#"echo {"ok":true} {} {1}"#);
        let missing = fill("{payload.missing}", t, &extra).unwrap_err();
        assert!(matches!(&missing, FillError::MissingPayload { path, .. } if path == "missing"), "{missing:?}");
        assert_eq!(missing.to_string(), r#"task "t1" has no payload.missing for {payload.missing}"#);
        let unknown = fill("{nope}", t, &extra).unwrap_err();
        assert_eq!(unknown, FillError::Unknown("nope".into()));
        assert_eq!(unknown.to_string(), "unknown placeholder {nope}");
    }
}
