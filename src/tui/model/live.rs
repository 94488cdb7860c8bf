//! A running attempt's live output, as the panes show it: its last lines (stdout and
//! stderr as they arrived) and its `{"pitboss":"progress"}` reports. The reports are
//! kept twice: the latest one alone (the dashboard's bar) and in order among the lines
//! (the detail's output pane draws each where it arrived, as a bar), so neither pane
//! ever shows a report as raw JSON.

use std::collections::VecDeque;

use crate::core::escape::escape_line;

/// Lines of live output kept per running task (and at most as many progress reports).
pub const LIVE_LINES: usize = 200;

/// Longest partial line kept: a flood without newlines must not grow without bound.
const MAX_PARTIAL: usize = 4096;

/// A running attempt's live view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Attempt the lines belong to.
    pub attempt: u32,
    /// Last lines, oldest first (stdout and stderr interleaved as they arrived), not
    /// counting progress reports.
    pub lines: VecDeque<String>,
    /// A partial last line still being written.
    pub partial: String,
    /// Whole lines received for this attempt (more than `lines` keeps), progress
    /// reports not counted.
    pub received: u64,
    /// Latest `{"pitboss":"progress"}` report: percent and message.
    pub progress: Option<(f64, String)>,
    /// The progress reports among the lines, oldest first. A report that follows
    /// another with no line between replaces it (the bar moves in place), so a worker
    /// that reports often does not push its lines out of the pane.
    pub reports: VecDeque<ProgressMark>,
    /// Entries `reports` has had (a report replaced in place counts once): with
    /// `received`, the length of the output as the detail's pane shows it.
    pub reports_received: u64,
    /// When output last arrived (ms since the epoch).
    pub last_output_ms: u64,
    /// When the attempt started (ms since the epoch; from its record).
    pub started_ms: u64,
}

/// A progress report placed among an attempt's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressMark {
    /// Whole lines received before it (so it sits before line number `after`).
    pub after: u64,
    /// Percent done, 0 to 100.
    pub pct: f64,
    /// The worker's message (escaped).
    pub msg: String,
}

impl Live {
    /// Adds what the attempt printed: whole lines join the lines (progress reports
    /// the reports), the rest waits for its newline.
    pub(super) fn push(&mut self, bytes: &[u8], now_ms: u64) {
        self.last_output_ms = now_ms;
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(nl) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=nl).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            match progress_of(line) {
                Some((pct, msg)) => self.report(pct, escape_line(&msg).into_owned()),
                // Escaped once here, not at every frame: the panes show it as it is.
                None => {
                    self.lines.push_back(escape_line(line).into_owned());
                    self.received += 1;
                }
            }
            self.trim();
        }
        if self.partial.len() > MAX_PARTIAL {
            let cut = self.partial.len() - MAX_PARTIAL;
            let cut = (cut..self.partial.len()).find(|&i| self.partial.is_char_boundary(i)).unwrap_or(0);
            self.partial.drain(..cut);
        }
    }

    fn report(&mut self, pct: f64, msg: String) {
        self.progress = Some((pct, msg.clone()));
        let mark = ProgressMark { after: self.received, pct, msg };
        match self.reports.back_mut() {
            // No line since the last report: the bar moves in place.
            Some(last) if last.after == self.received => *last = mark,
            _ => {
                self.reports.push_back(mark);
                self.reports_received += 1;
            }
        }
    }

    /// Keeps at most `LIVE_LINES` lines and as many reports, always dropping the
    /// oldest entry of the two: what is left is a suffix of the output, so a pane can
    /// number its entries from the end.
    fn trim(&mut self) {
        while self.lines.len() > LIVE_LINES || self.reports.len() > LIVE_LINES {
            let first_line = self.received - self.lines.len() as u64;
            let report_first = self.reports.front().is_some_and(|m| m.after <= first_line || self.lines.is_empty());
            if report_first {
                self.reports.pop_front();
            } else {
                self.lines.pop_front();
            }
        }
        // Reports before the first line kept belong to lines already dropped.
        let first_line = self.received - self.lines.len() as u64;
        while self.reports.front().is_some_and(|m| m.after < first_line) {
            self.reports.pop_front();
        }
    }
}

/// A `{"pitboss":"progress","pct":N,"msg":"…"}` line's percent (clamped to 0..=100)
/// and message; `None` for any other line.
pub fn progress_of(line: &str) -> Option<(f64, String)> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') || !trimmed.contains("\"pitboss\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
    if value.get("pitboss")?.as_str()? != "progress" {
        return None;
    }
    let pct = value.get("pct").and_then(|p| p.as_f64()).unwrap_or(0.0).clamp(0.0, 100.0);
    let msg = value.get("msg").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    Some((pct, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_recognised() {
        assert_eq!(progress_of(r#"{"pitboss":"progress","pct":40,"msg":"drafting"}"#), Some((40.0, "drafting".into())));
        assert_eq!(progress_of(r#"{"pitboss":"other"}"#), None);
        assert_eq!(progress_of("plain text"), None);
    }

    #[test]
    fn reports_sit_among_the_lines_where_they_arrived() {
        let mut live = Live::default();
        live.push(b"one\n{\"pitboss\":\"progress\",\"pct\":10,\"msg\":\"a\"}\n", 1);
        live.push(b"{\"pitboss\":\"progress\",\"pct\":20,\"msg\":\"b\"}\ntwo\n", 2);
        assert_eq!(live.lines, ["one", "two"]);
        // Two reports in a row: the second replaced the first, after line one.
        assert_eq!(live.reports.len(), 1);
        assert_eq!((live.reports[0].after, live.reports[0].pct, live.reports[0].msg.as_str()), (1, 20.0, "b"));
        assert_eq!((live.received, live.reports_received), (2, 1));
        assert_eq!(live.progress, Some((20.0, "b".into())));
    }

    #[test]
    fn a_long_run_keeps_a_suffix_of_lines_and_reports() {
        let mut live = Live::default();
        for k in 0..1000 {
            live.push(format!("line {k}\n{{\"pitboss\":\"progress\",\"pct\":{}}}\n", k % 100).as_bytes(), k);
        }
        assert!(live.lines.len() <= LIVE_LINES && live.reports.len() <= LIVE_LINES);
        assert_eq!(live.lines.back().map(String::as_str), Some("line 999"));
        let first_line = live.received - live.lines.len() as u64;
        assert!(live.reports.iter().all(|m| m.after >= first_line), "a report older than the lines kept");
        // Reports come after every kept line but possibly the first: a suffix.
        assert_eq!(live.reports.back().map(|m| m.after), Some(1000));
    }
}
