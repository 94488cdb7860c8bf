//! Usage control lines (DESIGN §4, §13): `{"pitboss":"usage","cost_usd":…,
//! "input_tokens":…,"output_tokens":…}` on a worker's stdout, read as the output
//! arrives (like the planner's spawn lines, `spawn_lines`), so that the engine
//! records each as it is printed and the run's budget sees spend while attempts
//! run. Several lines in one attempt add up. A line whose numbers are wrong is
//! refused with the reason (the runner writes it into the attempt's output); it never
//! counts and never panics.
//!
//! Bounded: only lines that start with `{"pitboss"` are kept while read, each at most
//! [`LINE_CAP`] bytes, and at most [`LINES_CAP`] lines are taken per attempt.

use serde_json::Value;

use crate::core::usage::{parse_usage, Usage};

/// Bytes of one control line kept while it is read.
pub const LINE_CAP: usize = 64 << 10;

/// Usage lines taken from one attempt (each is an event in the log).
pub const LINES_CAP: usize = 1_000;

const PREFIX: &[u8] = b"{\"pitboss\"";

/// One usage line read: its numbers, or why it was refused.
pub type UsageLine = Result<Usage, String>;

/// Finds usage lines in one stream as it is read.
#[derive(Debug, Default)]
pub struct UsageLines {
    line: Vec<u8>,
    /// None while the line is too short to tell; then whether it is kept.
    keep: Option<bool>,
    /// Lines taken so far.
    taken: usize,
    /// Read and not yet handed out.
    found: Vec<UsageLine>,
}

impl UsageLines {
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

    /// The usage lines read since the last call.
    pub fn take(&mut self) -> Vec<UsageLine> {
        std::mem::take(&mut self.found)
    }

    /// The end of the stream: a last line without a newline counts too.
    pub fn finish(&mut self) -> Vec<UsageLine> {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.take()
    }

    fn feed(&mut self, part: &[u8]) {
        if self.keep == Some(false) {
            return;
        }
        if self.line.len() + part.len() > LINE_CAP {
            // Far longer than any usage line: whatever it is, it is not kept.
            self.keep = Some(false);
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(part);
        if self.keep.is_none() {
            let start = self.line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.line.len());
            let text = &self.line[start..];
            if text.len() >= PREFIX.len() {
                let keep = text.starts_with(PREFIX);
                self.keep = Some(keep);
                if !keep {
                    self.line = Vec::new();
                }
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if self.keep.take() != Some(true) {
            return;
        }
        let value = match serde_json::from_slice::<Value>(&line) {
            Ok(value) => value,
            Err(_) if line.windows(7).any(|w| w == b"\"usage\"") => {
                self.found_line(Err("a usage line is not valid JSON".into()));
                return;
            }
            Err(_) => return,
        };
        if value.get("pitboss").and_then(Value::as_str) == Some("usage") {
            self.found_line(parse_usage(&value));
        }
    }

    fn found_line(&mut self, line: UsageLine) {
        self.taken += 1;
        if self.taken <= LINES_CAP {
            self.found.push(line);
        } else if self.taken == LINES_CAP + 1 {
            self.found.push(Err(format!("more than {LINES_CAP} usage lines; the rest are not counted")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::usage::Usd;

    fn read(chunks: &[&[u8]]) -> Vec<UsageLine> {
        let mut u = UsageLines::default();
        let mut got = Vec::new();
        for c in chunks {
            u.push(c);
            got.extend(u.take());
        }
        got.extend(u.finish());
        got
    }

    #[test]
    fn usage_lines_are_found_across_reads_and_others_ignored() {
        let got = read(&[
            b"log line\n{\"pitboss\":\"progress\",\"pct\":5}\n{\"pitboss\":\"us",
            b"age\",\"cost_usd\":0.5,\"input_tokens\":10,\"output_tokens\":2}\n  {\"pitboss\":\"usage\",\"cost_usd\":1}",
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().cost, Usd(500_000));
        assert_eq!(got[1].as_ref().unwrap().cost, Usd(1_000_000));
    }

    #[test]
    fn bad_usage_lines_are_refused_with_a_reason() {
        let got = read(&[b"{\"pitboss\":\"usage\",\"cost_usd\":-3}\n{\"pitboss\":\"usage\",\"cost_usd\":\n"]);
        assert_eq!(got.len(), 2);
        assert!(got[0].as_ref().unwrap_err().contains("negative"), "{got:?}");
        assert!(got[1].as_ref().unwrap_err().contains("not valid JSON"), "{got:?}");
    }

    #[test]
    fn a_flood_of_usage_lines_is_cut_with_one_note() {
        let line = b"{\"pitboss\":\"usage\",\"cost_usd\":0.01}\n".repeat(LINES_CAP + 50);
        let got = read(&[&line]);
        assert_eq!(got.len(), LINES_CAP + 1);
        assert!(got[LINES_CAP].as_ref().unwrap_err().contains("not counted"));
    }
}
