//! The two line readers of an attempt's stdout that work as the output arrives:
//!
//! - [`AgentLines`]: a preset's agent output (DESIGN §13) put through its
//!   [`AgentReader`]. Each raw line is kept as it was, and the protocol lines the
//!   reader makes of it follow it in the kept stream, so the capture, the live panes,
//!   the spawn reader and the verdict see them exactly as if the worker had printed
//!   them (the raw output stays viewable beside them).
//! - [`ControlLines`]: the control lines that must reach the engine while the attempt
//!   runs (`session`, `flag`, `usage`: a session id recorded only at the end would be
//!   lost with a manager that crashes mid-attempt), from any worker, preset or not.
//!
//! Both keep at most a bounded part of one line in memory: past it the line is passed
//! on unread.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::core::agents::{AgentReader, Preset};

/// Bytes of one agent line read (a `result` record carries the whole answer text;
/// a tool result can be larger and is passed on unread).
const AGENT_LINE_CAP: usize = 4 << 20;
/// Bytes of one control line read.
const CONTROL_LINE_CAP: usize = 64 << 10;

/// Reads a preset's agent output line by line (see the module notes).
pub struct AgentLines {
    reader: Box<dyn AgentReader>,
    line: Vec<u8>,
    overlong: bool,
}

impl AgentLines {
    /// A reader of `preset`'s output.
    pub fn new(preset: Preset) -> AgentLines {
        AgentLines { reader: preset.reader(), line: Vec::new(), overlong: false }
    }

    /// What one read returned → the bytes to keep: the same bytes, with the protocol
    /// lines of each completed line after its newline.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        while let Some(n) = memchr::memchr(b'\n', chunk) {
            out.extend_from_slice(&chunk[..=n]);
            self.add(&chunk[..n]);
            let lines = self.read_line();
            append(&mut out, lines);
            chunk = &chunk[n + 1..];
        }
        out.extend_from_slice(chunk);
        self.add(chunk);
        out
    }

    /// The agent exited (`None`: by a signal): the protocol lines left, after a
    /// newline ending an unfinished last line.
    pub fn end(&mut self, exit_code: Option<i32>) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.line.is_empty() || self.overlong {
            out.push(b'\n');
            let lines = self.read_line();
            append(&mut out, lines);
        }
        append(&mut out, self.reader.end(exit_code));
        out
    }

    fn add(&mut self, part: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + part.len() > AGENT_LINE_CAP {
            self.overlong = true;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(part);
    }

    fn read_line(&mut self) -> Vec<Value> {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.overlong) {
            return Vec::new();
        }
        self.reader.line(&String::from_utf8_lossy(&line))
    }
}

/// Writes protocol lines, one per line, a control line's `"pitboss"` key first (the
/// protocol's readers know a control line by its start, and `Value` sorts its keys).
fn append(out: &mut Vec<u8>, lines: Vec<Value>) {
    for line in lines {
        match (line.get("pitboss"), line.as_object()) {
            (Some(kind), Some(fields)) => {
                out.extend_from_slice(format!("{{\"pitboss\":{kind}").as_bytes());
                for (key, value) in fields.iter().filter(|(k, _)| k.as_str() != "pitboss") {
                    out.extend_from_slice(format!(",{}:{value}", Value::String(key.clone())).as_bytes());
                }
                out.push(b'}');
            }
            _ => out.extend_from_slice(line.to_string().as_bytes()),
        }
        out.push(b'\n');
    }
}

/// Where an attempt's control lines go as they are read (the engine records them).
#[derive(Clone)]
pub struct ControlSink(pub Arc<dyn Fn(Value) + Send + Sync>);

impl fmt::Debug for ControlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlSink")
    }
}

/// The control lines told to the engine as they arrive; progress lines are the live
/// panes' and spawn lines the planner reader's.
const TOLD: [&str; 3] = ["session", "flag", "usage"];

/// Finds `{"pitboss":"session"|"flag"|"usage",…}` lines in a stream as it is read.
pub struct ControlLines {
    sink: ControlSink,
    line: Vec<u8>,
    skip: bool,
}

impl ControlLines {
    /// A reader telling `sink` each line found.
    pub fn new(sink: ControlSink) -> ControlLines {
        ControlLines { sink, line: Vec::new(), skip: false }
    }

    /// Reads what one read returned.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while let Some(n) = memchr::memchr(b'\n', chunk) {
            self.add(&chunk[..n]);
            self.end_line();
            chunk = &chunk[n + 1..];
        }
        self.add(chunk);
    }

    /// The end of the stream (a last line without a newline).
    pub fn finish(&mut self) {
        self.end_line();
    }

    fn add(&mut self, part: &[u8]) {
        if self.skip {
            return;
        }
        self.line.extend_from_slice(part);
        let start = self.line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.line.len());
        let text = &self.line[start..];
        let prefix: &[u8] = b"{\"pitboss\"";
        let n = text.len().min(prefix.len());
        if text[..n] != prefix[..n] || self.line.len() > CONTROL_LINE_CAP {
            self.skip = true;
            self.line = Vec::new();
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.skip) || line.is_empty() {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&line) else { return };
        if value.get("pitboss").and_then(Value::as_str).is_some_and(|kind| TOLD.contains(&kind)) {
            (self.sink.0)(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[test]
    fn agent_lines_keep_the_raw_bytes_and_add_protocol_lines_after_each_line() {
        let mut lines = AgentLines::new(Preset::Claude);
        let first = br#"{"type":"system","subtype":"init","session_id":"S1","model":"m","claude_code_version":"v"}"#;
        let mut kept = lines.push(&first[..10]);
        assert_eq!(kept, &first[..10], "nothing added before the line ends");
        kept.extend(lines.push(&[&first[10..], b"\nnot json\n".as_slice()].concat()));
        let text = String::from_utf8(kept).unwrap();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got[0].as_bytes(), first);
        assert_eq!(got[1], r#"{"pitboss":"session","id":"S1"}"#, "the control line starts as the protocol says");
        assert!(got[2].contains("claude v started"), "{text}");
        assert_eq!(got[3], "not json");
        let end = String::from_utf8(lines.end(Some(0))).unwrap();
        assert!(end.contains(r#""status":"failed""#), "no result record: {end}");
    }

    #[test]
    fn an_overlong_line_is_passed_on_unread() {
        let mut lines = AgentLines::new(Preset::Claude);
        let mut big = br#"{"type":"system","subtype":"init","session_id":"S1","x":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', AGENT_LINE_CAP));
        big.extend(b"\"}\n");
        let kept = lines.push(&big);
        assert_eq!(kept, big, "kept as it was, nothing added");
        assert!(lines.line.is_empty());
    }

    #[test]
    fn control_lines_reach_the_sink_whole_and_other_lines_do_not() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let seen = seen.clone();
            ControlSink(Arc::new(move |v| seen.lock().unwrap().push(v)))
        };
        let mut control = ControlLines::new(sink);
        control.push(b"log {\"pitboss\":\"session\",\"id\":\"no\"}\n{\"pitboss\":\"sess");
        control.push(b"ion\",\"id\":\"S1\"}\n{\"pitboss\":\"progress\",\"pct\":1}\n");
        control.push(b"  {\"pitboss\":\"flag\",\"flag\":\"looping\"}");
        control.finish();
        assert_eq!(
            *seen.lock().unwrap(),
            [json!({"pitboss": "session", "id": "S1"}), json!({"pitboss": "flag", "flag": "looping"})]
        );
    }
}
