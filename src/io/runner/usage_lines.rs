//! Usage control lines (DESIGN §4, §13): `{"pitboss":"usage","cost_usd":…,
//! "input_tokens":…,"output_tokens":…}` on a worker's stdout, read as the output
//! arrives (like the planner's spawn lines, `spawn_lines`), so that the engine
//! records each as it is printed and the run's budget sees spend while attempts
//! run. Several lines in one attempt add up. A line whose numbers are wrong is
//! refused with the reason (the runner writes it into the attempt's output); it never
//! counts and never panics.
//!
//! Bounded: the lines are split by [`super::control_lines`] (bounded per line), and at
//! most [`LINES_CAP`] lines are taken per attempt.

use super::control_lines::Found;
use crate::core::usage::{parse_usage, Usage};

/// Usage lines taken from one attempt (each is an event in the log).
pub const LINES_CAP: usize = 1_000;

/// One usage line read: its numbers, or why it was refused.
pub type UsageLine = Result<Usage, String>;

/// Takes the usage lines among one stream's control lines (split by
/// [`super::control_lines`]) as they are read.
#[derive(Debug, Default)]
pub struct UsageLines {
    /// Lines taken so far.
    taken: usize,
    /// Read and not yet handed out.
    found: Vec<UsageLine>,
}

impl UsageLines {
    /// Reads one control line.
    pub fn line(&mut self, found: &Found) {
        match found {
            Found::Line { kind: "usage", value, .. } => self.found_line(parse_usage(value)),
            Found::Torn(_) if found.torn_names("usage") => {
                self.found_line(Err("a usage line is not valid JSON".into()))
            }
            _ => {}
        }
    }

    /// The usage lines read since the last call.
    pub fn take(&mut self) -> Vec<UsageLine> {
        std::mem::take(&mut self.found)
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
    use crate::io::runner::control_lines::{Splitter, LINE_CAP};

    fn read(chunks: &[&[u8]]) -> Vec<UsageLine> {
        let mut split = Splitter::new(LINE_CAP);
        let mut u = UsageLines::default();
        let mut got = Vec::new();
        for c in chunks {
            split.push(c, &mut |f| u.line(&f));
            got.extend(u.take());
        }
        split.finish(&mut |f| u.line(&f));
        got.extend(u.take());
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
