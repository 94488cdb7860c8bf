//! The planner's control lines (DESIGN §4, §11): `{"pitboss":"spawn","tasks":[…]}` on
//! a worker's stdout, read as the output arrives (the in-memory tail is bounded and
//! would lose early lines). Several lines in one attempt add up, in order. Only lines
//! that start with `{"pitboss"` are kept while they are read, and at most
//! [`SPAWN_CAP`] bytes of spawn JSON per attempt: past it the spawn is refused with a
//! reason, never kept in memory.

use serde_json::Value;

/// Bytes of spawn lines one attempt may print.
pub const SPAWN_CAP: usize = 1 << 20;

const PREFIX: &[u8] = b"{\"pitboss\"";

/// What a spawn line's reading came to: the tasks of every spawn line in order, or
/// why they cannot be taken.
pub type SpawnTasks = Result<Vec<Value>, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Too short yet to tell whether it is a control line.
    Deciding,
    /// A control line, kept.
    Keep,
    /// Anything else: not kept.
    Skip,
}

/// Finds spawn lines in one stream as it is read.
#[derive(Debug)]
pub struct SpawnLines {
    line: Vec<u8>,
    state: Line,
    used: usize,
    seen: bool,
    tasks: Vec<Value>,
    error: Option<String>,
}

impl Default for SpawnLines {
    fn default() -> Self {
        SpawnLines { line: Vec::new(), state: Line::Deciding, used: 0, seen: false, tasks: Vec::new(), error: None }
    }
}

impl SpawnLines {
    /// Reads what one read returned.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(n) => {
                    self.feed(&chunk[..n]);
                    self.end_line();
                    chunk = &chunk[n + 1..];
                }
                None => {
                    self.feed(chunk);
                    chunk = &[];
                }
            }
        }
    }

    fn feed(&mut self, part: &[u8]) {
        if self.state == Line::Skip || self.error.is_some() {
            return;
        }
        if self.used + self.line.len() + part.len() > SPAWN_CAP {
            self.seen = true;
            self.error = Some(format!(
                "the attempt printed more than {} KiB of spawn lines; spawn fewer or smaller tasks",
                SPAWN_CAP / 1024
            ));
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(part);
        if self.state == Line::Deciding {
            let start = self.line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.line.len());
            let text = &self.line[start..];
            if text.len() >= PREFIX.len() {
                self.state = if text.starts_with(PREFIX) { Line::Keep } else { Line::Skip };
                if self.state == Line::Skip {
                    self.line = Vec::new();
                }
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let state = std::mem::replace(&mut self.state, Line::Deciding);
        if state != Line::Keep || self.error.is_some() {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&line) else {
            if line.windows(7).any(|w| w == b"\"spawn\"") {
                self.seen = true;
                self.error = Some("a spawn line is not valid JSON".to_string());
            }
            return;
        };
        if value.get("pitboss").and_then(Value::as_str) != Some("spawn") {
            return;
        }
        self.seen = true;
        self.used += line.len();
        match value.get("tasks") {
            Some(Value::Array(tasks)) => self.tasks.extend(tasks.iter().cloned()),
            _ => self.error = Some("a spawn line's \"tasks\" must be a list of tasks".to_string()),
        }
    }

    /// The end of the stream: `None` when no spawn line was printed.
    pub fn finish(&mut self) -> Option<SpawnTasks> {
        if !self.line.is_empty() {
            self.end_line();
        }
        if !self.seen {
            return None;
        }
        Some(match self.error.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.tasks)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(chunks: &[&[u8]]) -> Option<SpawnTasks> {
        let mut s = SpawnLines::default();
        for c in chunks {
            s.push(c);
        }
        s.finish()
    }

    #[test]
    fn spawn_lines_add_up_in_order_across_reads() {
        let got = read(&[
            b"log\n{\"pitboss\":\"spa",
            b"wn\",\"tasks\":[{\"id\":\"a\"}]}\n{\"pitboss\":\"progress\"}\n",
            b"{\"pitboss\":\"spawn\",\"tasks\":[{\"id\":\"b\"}]}",
        ]);
        assert_eq!(got, Some(Ok(vec![json!({"id": "a"}), json!({"id": "b"})])));
    }

    #[test]
    fn no_spawn_line_is_none_and_progress_is_not_a_spawn() {
        assert_eq!(read(&[b"{\"pitboss\":\"progress\",\"pct\":5}\n{\"x\":1}\n"]), None);
    }

    #[test]
    fn bad_spawn_lines_are_refused_with_a_reason() {
        let bad = read(&[b"{\"pitboss\":\"spawn\",\"tasks\":{}}\n"]).unwrap().unwrap_err();
        assert!(bad.contains("must be a list"), "{bad}");
        let torn = read(&[b"{\"pitboss\":\"spawn\",\"tasks\":[\n"]).unwrap().unwrap_err();
        assert!(torn.contains("not valid JSON"), "{torn}");
    }

    #[test]
    fn more_than_the_cap_is_refused_without_keeping_it() {
        let mut s = SpawnLines::default();
        s.push(b"{\"pitboss\":\"spawn\",\"tasks\":[");
        let filler = vec![b' '; 64 * 1024];
        for _ in 0..40 {
            s.push(&filler);
        }
        assert!(s.line.len() <= SPAWN_CAP);
        let err = s.finish().unwrap().unwrap_err();
        assert!(err.contains("more than 1024 KiB"), "{err}");
    }
}
