//! A preset's agent output (DESIGN §13) put through its [`AgentReader`], line by line
//! as it arrives: the protocol lines the reader makes of each line are kept in the
//! attempt's stream, so the capture, the live panes, the spawn and control readers
//! and the verdict see them exactly as if the worker had printed them.
//!
//! What becomes of the raw lines depends on the preset: an agent printing JSON events
//! (claude, codex, gemini: [`raw_is_events`]) has them written as printed to the
//! attempt's raw file (`TASK.ATTEMPT.stdout.raw` beside its `.stdout`), for
//! debugging, and only the reader's lines are kept and shown: a live pane of
//! stream-json is unreadable. A text agent's lines (aider, llm) are its answer, and
//! stay in the stream with the reader's lines after each.
//!
//! At most a bounded part of one line is read: past it the line is passed on unread.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::capture::FILE_CAP;
use crate::core::agents::{AgentReader, Preset};
use crate::io::fsutil::private_file;

/// Bytes of one agent line read (a `result` record carries the whole answer text;
/// a tool result can be larger and is passed on unread).
const AGENT_LINE_CAP: usize = 4 << 20;

/// Reads a preset's agent output line by line (see the module notes).
pub struct AgentLines {
    reader: Box<dyn AgentReader>,
    line: Vec<u8>,
    overlong: bool,
    /// Where the raw lines go when they are not kept in the stream.
    raw: Option<RawFile>,
}

/// True for a preset whose agent prints JSON events rather than text (see the module
/// notes): its raw lines go to the raw file, not to the stream.
pub fn raw_is_events(preset: Preset) -> bool {
    matches!(preset, Preset::Claude | Preset::Codex | Preset::Gemini)
}

impl AgentLines {
    /// A reader of `preset`'s output, the raw lines kept in the stream.
    pub fn new(preset: Preset) -> AgentLines {
        AgentLines { reader: preset.reader(), line: Vec::new(), overlong: false, raw: None }
    }

    /// A reader of `preset`'s output whose raw lines go to `raw` when the preset
    /// prints events ([`raw_is_events`]), else kept in the stream.
    pub fn for_preset(preset: Preset, raw: PathBuf) -> AgentLines {
        let mut lines = AgentLines::new(preset);
        if raw_is_events(preset) {
            lines.raw = Some(RawFile { path: raw, file: None, written: 0, dropped: false, failure: None });
        }
        lines
    }

    /// What one read returned → the bytes to keep: the protocol lines of each
    /// completed line, after the line itself unless it went to the raw file.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(if self.raw.is_some() { 0 } else { chunk.len() });
        if let Some(raw) = &mut self.raw {
            raw.write(chunk);
        }
        while let Some(n) = memchr::memchr(b'\n', chunk) {
            if self.raw.is_none() {
                out.extend_from_slice(&chunk[..=n]);
            }
            self.add(&chunk[..n]);
            let lines = self.read_line();
            append(&mut out, lines);
            chunk = &chunk[n + 1..];
        }
        if self.raw.is_none() {
            out.extend_from_slice(chunk);
        }
        self.add(chunk);
        out
    }

    /// The agent exited (`None`: by a signal): the protocol lines left, after a
    /// newline ending an unfinished last line (kept in the stream).
    pub fn end(&mut self, exit_code: Option<i32>) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.line.is_empty() || self.overlong {
            if self.raw.is_none() {
                out.push(b'\n');
            }
            let lines = self.read_line();
            append(&mut out, lines);
        }
        append(&mut out, self.reader.end(exit_code));
        if let Some(raw) = &mut self.raw {
            raw.close();
        }
        out
    }

    /// The first error writing the raw file, once.
    pub fn take_failure(&mut self) -> Option<String> {
        self.raw.as_mut().and_then(|raw| raw.failure.take())
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

/// The raw file of an agent's output: created at its first byte, capped at
/// [`FILE_CAP`] like the attempt's other files.
struct RawFile {
    path: PathBuf,
    file: Option<File>,
    written: u64,
    dropped: bool,
    /// The first error creating or writing it (the capture reports it).
    failure: Option<String>,
}

impl RawFile {
    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.failure.is_some() || self.written >= FILE_CAP {
            self.dropped |= self.written >= FILE_CAP && !bytes.is_empty();
            return;
        }
        if self.file.is_none() {
            match private_file().create(true).append(true).open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) => {
                    self.failure = Some(format!("cannot create {}: {e}", self.path.display()));
                    return;
                }
            }
        }
        let keep = (bytes.len() as u64).min(FILE_CAP - self.written) as usize;
        self.dropped |= keep < bytes.len();
        if let Some(Err(e)) = self.file.as_mut().map(|f| f.write_all(&bytes[..keep])) {
            self.file = None;
            self.failure = Some(format!("cannot write {}: {e}", self.path.display()));
        }
        self.written += keep as u64;
    }

    fn close(&mut self) {
        if let (true, Some(f)) = (self.dropped, &mut self.file) {
            let _ = writeln!(f, "\n[pitboss: agent output capped at {FILE_CAP} bytes]");
        }
        self.file = None;
    }
}

#[cfg(test)]
mod tests {
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
    fn an_event_agent_keeps_only_the_reader_lines_and_its_raw_lines_in_the_raw_file() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("t.1.stdout.raw");
        let mut lines = AgentLines::for_preset(Preset::Claude, raw.clone());
        let first = br#"{"type":"system","subtype":"init","session_id":"S1","model":"m","claude_code_version":"v"}"#;
        let mut kept = lines.push(&[first.as_slice(), b"\n"].concat());
        kept.extend(lines.end(Some(0)));
        let text = String::from_utf8(kept).unwrap();
        assert!(!text.contains("subtype"), "no raw line in the stream: {text}");
        assert!(text.starts_with(r#"{"pitboss":"session","id":"S1"}"#), "{text}");
        assert_eq!(std::fs::read(&raw).unwrap(), [first.as_slice(), b"\n"].concat(), "the raw file has it as printed");
        // A text agent's lines are its answer: they stay in the stream, and no raw file.
        let mut text_agent = AgentLines::for_preset(Preset::Llm, dir.path().join("u.1.stdout.raw"));
        assert_eq!(text_agent.push(b"the answer\n"), b"the answer\n");
        assert!(!dir.path().join("u.1.stdout.raw").exists());
    }
}
