//! An attempt's `usage`, `session` and `flag` control lines, kept on the worker to
//! travel back with its end (`RemoteOutcome::controls`), where the manager records
//! them as it would a local attempt's (DESIGN §4, §13).
//!
//! Bounded: usage lines are already at most `LINES_CAP` per attempt (the runner's
//! reader), kept again here at that many; session and flag lines are kept once each
//! (a worker repeating its session id sends it once), at most [`TOLD_CAP`]. A refused
//! usage line is not carried: the runner wrote its reason into the attempt's stderr,
//! which travels with the result.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::core::usage::usage_line;
use crate::io::runner::control_lines::ControlSink;
use crate::io::runner::usage_lines::LINES_CAP;
use crate::io::runner::UsageReport;

/// Session and flag lines kept per attempt (the manager records at most as many).
pub(super) const TOLD_CAP: usize = 64;

#[derive(Default)]
struct Lines {
    lines: Vec<Value>,
    usage: usize,
    told: usize,
}

/// The control lines of one attempt, filled by its readers while it runs.
#[derive(Clone, Default)]
pub(super) struct Collected(Arc<Mutex<Lines>>);

impl Collected {
    fn with(&self, f: impl FnOnce(&mut Lines)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Where the runner reports the attempt's usage lines.
    pub(super) fn usage_report(&self) -> UsageReport {
        let me = self.clone();
        Arc::new(move |line| {
            let Ok(usage) = line else { return };
            me.with(|l| {
                if l.usage < LINES_CAP {
                    l.usage += 1;
                    l.lines.push(usage_line(&usage));
                }
            });
        })
    }

    /// Where the runner tells the attempt's session and flag lines.
    pub(super) fn sink(&self) -> ControlSink {
        let me = self.clone();
        ControlSink(Arc::new(move |value: Value| {
            me.with(|l| {
                if l.told < TOLD_CAP && !l.lines.contains(&value) {
                    l.told += 1;
                    l.lines.push(value);
                }
            });
        }))
    }

    /// The lines read so far, in the order read.
    pub(super) fn take(&self) -> Vec<Value> {
        let mut lines = Vec::new();
        self.with(|l| lines = std::mem::take(&mut l.lines));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::usage::{Usage, Usd};
    use serde_json::json;

    #[test]
    fn lines_are_kept_in_order_once_each_and_bounded() {
        let c = Collected::default();
        let (usage, sink) = (c.usage_report(), c.sink());
        (sink.0)(json!({"pitboss": "session", "id": "S"}));
        usage(Ok(Usage { cost: Usd(500_000), ..Usage::default() }));
        usage(Err("refused".into()));
        (sink.0)(json!({"pitboss": "session", "id": "S"}));
        (sink.0)(json!({"pitboss": "flag", "flag": "looping"}));
        let got = c.take();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0]["id"], "S");
        assert_eq!((got[1]["pitboss"].as_str(), got[1]["cost_usd"].as_f64()), (Some("usage"), Some(0.5)));
        assert_eq!(got[2]["flag"], "looping");
        let c = Collected::default();
        let (usage, sink) = (c.usage_report(), c.sink());
        for i in 0..(LINES_CAP + TOLD_CAP + 10) {
            usage(Ok(Usage { input_tokens: 1, ..Usage::default() }));
            (sink.0)(json!({"pitboss": "flag", "flag": format!("f{i}")}));
        }
        let got = c.take();
        assert_eq!(got.len(), LINES_CAP + TOLD_CAP);
        assert!(got.len() <= crate::io::broker::wire::controls::MAX_CONTROLS);
    }
}
