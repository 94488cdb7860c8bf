//! The one splitter and recogniser of control lines (DESIGN §4): every reader of a
//! worker's `{"pitboss":…}` lines (the planner's spawn lines, usage lines, the
//! `session`/`flag` lines told to the engine, a persistent worker's stdout) finds them
//! here, so they all agree on what a control line is:
//!
//! - a line whose first bytes, after white space, are `{"pitboss"` (a control line
//!   quoted inside a log line is log output);
//! - at most a cap of bytes kept while it is read: a longer one is reported as
//!   [`Found::Overlong`] and never held in memory;
//! - a JSON object whose `"pitboss"` is a string names its kind; anything else that
//!   starts like one is [`Found::Torn`], which a reader may refuse with a reason, and
//!   which never panics.
//!
//! [`ControlReaders`] splits one stream once and hands each line to the readers an
//! attempt's capture asked for.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::spawn_lines::SpawnLines;
use super::usage_lines::UsageLines;

/// How every control line starts (after white space).
pub const PREFIX: &[u8] = b"{\"pitboss\"";

/// Bytes of one control line kept while it is read when no spawn lines are read.
pub const LINE_CAP: usize = 64 << 10;

/// Where an attempt's `session` and `flag` control lines go as they are read (the
/// engine records them while the attempt runs: a session id recorded only at the end
/// would be lost with a manager that crashes mid-attempt).
#[derive(Clone)]
pub struct ControlSink(pub Arc<dyn Fn(Value) + Send + Sync>);

impl fmt::Debug for ControlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlSink")
    }
}

/// The control lines told to a [`ControlSink`] (usage lines have their own report,
/// progress lines are the live panes', spawn lines the planner reader's).
pub const TOLD: [&str; 2] = ["session", "flag"];

/// One control line as its readers see it.
#[derive(Debug)]
pub enum Found<'a> {
    /// A JSON object with a string `"pitboss"`: its kind, the object, and its bytes.
    Line { kind: &'a str, value: &'a Value, bytes: &'a [u8] },
    /// Starts like a control line but is not one (torn or not JSON): its bytes.
    Torn(&'a [u8]),
    /// Longer than the cap: passed over unread.
    Overlong,
}

impl Found<'_> {
    /// True when a torn line names `kind` (`"usage"`, `"spawn"`): a reader may say why
    /// it was refused rather than pass over it in silence.
    pub fn torn_names(&self, kind: &str) -> bool {
        let Found::Torn(bytes) = self else { return false };
        let quoted = format!("\"{kind}\"");
        bytes.windows(quoted.len()).any(|w| w == quoted.as_bytes())
    }
}

/// True when `line` starts, after white space, like a control line.
pub fn is_control(line: &[u8]) -> bool {
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    line[start..].starts_with(PREFIX)
}

/// Reads one whole line already known to start like a control line, and hands what
/// it is to `found`.
pub fn recognise(line: &[u8], found: impl FnOnce(Found)) {
    match serde_json::from_slice::<Value>(line) {
        Ok(value) => match value.get("pitboss").and_then(Value::as_str) {
            Some(kind) => found(Found::Line { kind, value: &value, bytes: line }),
            None => found(Found::Torn(line)),
        },
        Err(_) => found(Found::Torn(line)),
    }
}

/// Where the line being read stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Too short yet to tell whether it is a control line.
    Deciding,
    /// A control line, kept.
    Keep,
    /// A control line past the cap: the rest is passed over, and said at its end.
    Overlong,
    /// Anything else: not kept.
    Skip,
}

/// Splits a stream into its control lines as it is read, keeping at most `cap` bytes.
#[derive(Debug)]
pub struct Splitter {
    line: Vec<u8>,
    state: State,
    cap: usize,
}

impl Splitter {
    /// A splitter keeping at most `cap` bytes of one line.
    pub fn new(cap: usize) -> Splitter {
        Splitter { line: Vec::new(), state: State::Deciding, cap }
    }

    /// Reads what one read returned; `found` gets each control line it completes.
    pub fn push(&mut self, mut chunk: &[u8], found: &mut dyn FnMut(Found)) {
        while let Some(n) = memchr::memchr(b'\n', chunk) {
            self.add(&chunk[..n]);
            self.end_line(found);
            chunk = &chunk[n + 1..];
        }
        self.add(chunk);
    }

    /// The end of the stream: a last line without a newline counts too.
    pub fn finish(&mut self, found: &mut dyn FnMut(Found)) {
        self.end_line(found);
    }

    /// Bytes of the line being read that are kept.
    pub fn kept(&self) -> usize {
        self.line.len()
    }

    fn add(&mut self, part: &[u8]) {
        if matches!(self.state, State::Skip | State::Overlong) || part.is_empty() {
            return;
        }
        if self.line.len() + part.len() > self.cap {
            self.state = State::Overlong;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(part);
        if self.state == State::Deciding {
            let start = self.line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.line.len());
            let text = &self.line[start..];
            let n = text.len().min(PREFIX.len());
            if text[..n] != PREFIX[..n] {
                self.state = State::Skip;
                self.line = Vec::new();
            } else if n == PREFIX.len() {
                self.state = State::Keep;
            }
        }
    }

    fn end_line(&mut self, found: &mut dyn FnMut(Found)) {
        let line = std::mem::take(&mut self.line);
        match std::mem::replace(&mut self.state, State::Deciding) {
            State::Keep => recognise(&line, found),
            State::Overlong => found(Found::Overlong),
            State::Deciding | State::Skip => {}
        }
    }
}

/// The control-line readers of one stream, fed by one splitter.
#[derive(Debug)]
pub struct ControlReaders {
    splitter: Splitter,
    /// Planner spawn lines (a worker's stdout).
    pub spawn: Option<SpawnLines>,
    /// Usage lines (a worker's stdout).
    pub usage: Option<UsageLines>,
    /// Where `session` and `flag` lines go as they arrive.
    pub sink: Option<ControlSink>,
}

impl Default for ControlReaders {
    fn default() -> Self {
        ControlReaders { splitter: Splitter::new(LINE_CAP), spawn: None, usage: None, sink: None }
    }
}

impl ControlReaders {
    /// True when some reader wants the lines.
    pub fn reading(&self) -> bool {
        self.spawn.is_some() || self.usage.is_some() || self.sink.is_some()
    }

    /// Also reads spawn and usage lines; a spawn line may be as long as the spawn cap.
    pub fn with_spawn_and_usage(&mut self) {
        self.spawn = Some(SpawnLines::default());
        self.usage = Some(UsageLines::default());
        self.splitter.cap = self.splitter.cap.max(super::spawn_lines::SPAWN_CAP);
    }

    /// Reads what one read returned.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.reading() {
            let ControlReaders { splitter, spawn, usage, sink } = self;
            splitter.push(chunk, &mut |found| hand(&found, spawn, usage, sink));
        }
    }

    /// The end of the stream.
    pub fn finish(&mut self) {
        let ControlReaders { splitter, spawn, usage, sink } = self;
        splitter.finish(&mut |found| hand(&found, spawn, usage, sink));
    }
}

/// Hands one control line to each reader.
fn hand(found: &Found, spawn: &mut Option<SpawnLines>, usage: &mut Option<UsageLines>, sink: &Option<ControlSink>) {
    if let Some(spawn) = spawn {
        spawn.line(found);
    }
    if let Some(usage) = usage {
        usage.line(found);
    }
    if let (Some(sink), Found::Line { kind, value, .. }) = (sink, found) {
        if TOLD.contains(kind) {
            (sink.0)((*value).clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut s = Splitter::new(cap);
        let mut got = Vec::new();
        let mut note = |f: Found| {
            got.push(match f {
                Found::Line { kind, .. } => format!("line {kind}"),
                Found::Torn(b) => format!("torn {}", String::from_utf8_lossy(b)),
                Found::Overlong => "overlong".into(),
            })
        };
        for c in chunks {
            s.push(c, &mut note);
        }
        s.finish(&mut note);
        got
    }

    #[test]
    fn control_lines_are_found_across_reads_only_at_the_start_of_a_line() {
        let got = split(
            LINE_CAP,
            &[
                b"log {\"pitboss\":\"usage\"}\n  {\"pitb",
                b"oss\":\"session\",\"id\":\"S\"}\n{\"x\":1}\n{\"pitboss\":\"flag\"}",
            ],
        );
        assert_eq!(got, ["line session", "line flag"]);
    }

    #[test]
    fn garbage_is_torn_or_passed_over_never_a_panic() {
        let got = split(LINE_CAP, &[b"{\"pitboss\":\"usage\",\n{\"pitboss\":3}\n{\"pitboss\"\xff\xfe\n\n\n{\"pit"]);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|g| g.starts_with("torn")), "{got:?}");
    }

    #[test]
    fn a_line_past_the_cap_is_not_kept_and_said_once() {
        let mut s = Splitter::new(64);
        let mut got = Vec::new();
        s.push(b"{\"pitboss\":\"usage\",\"x\":\"", &mut |f| got.push(format!("{f:?}")));
        for _ in 0..100 {
            s.push(&[b'a'; 50], &mut |f| got.push(format!("{f:?}")));
            assert!(s.kept() <= 64);
        }
        s.push(b"\"}\n{\"pitboss\":\"flag\"}\n", &mut |f| got.push(format!("{f:?}")));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], "Overlong");
        assert!(got[1].contains("flag"), "the next line is read again: {got:?}");
    }
}
