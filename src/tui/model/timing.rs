//! When each task's latest attempt started and how long it took, kept as records
//! are folded: what the tasks table shows and sorts by (duration, start time)
//! without reading a history per row. 16 bytes a task that has started an attempt;
//! a task that finished before the snapshot a model was opened from has none (its
//! history still has it).

use crate::core::Event;
use crate::io::journal::Record;

/// Per task (by index): its latest attempt's start and duration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// (started ms, duration ms + 1); 0 means not known.
    of: Vec<(u64, u64)>,
}

impl Timings {
    /// Folds one record about task `i`.
    pub fn note(&mut self, i: usize, record: &Record) {
        let finished = match &record.event {
            Event::AttemptStarted { .. } => None,
            Event::AttemptSucceeded { duration_ms, .. } | Event::AttemptFailed { duration_ms, .. } => {
                Some(*duration_ms)
            }
            _ => return,
        };
        if self.of.len() <= i {
            self.of.resize(i + 1, (0, 0));
        }
        match finished {
            None => self.of[i] = (record.ts, 0),
            Some(duration_ms) => self.of[i].1 = duration_ms.saturating_add(1),
        }
    }

    /// When task `i`'s latest attempt started, if known.
    pub fn started(&self, i: usize) -> Option<u64> {
        self.of.get(i).map(|t| t.0).filter(|&t| t > 0)
    }

    /// How long task `i`'s latest finished attempt took, if known.
    pub fn duration(&self, i: usize) -> Option<u64> {
        self.of.get(i).and_then(|t| t.1.checked_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts: u64, event: Event) -> Record {
        Record { seq: 1, ts, event }
    }

    #[test]
    fn the_latest_attempt_counts_and_a_new_one_forgets_the_old_duration() {
        let mut t = Timings::default();
        assert_eq!((t.started(3), t.duration(3)), (None, None));
        t.note(3, &record(1_000, Event::AttemptStarted { task: "x".into(), attempt: 1, pool: "p".into() }));
        assert_eq!((t.started(3), t.duration(3)), (Some(1_000), None));
        let done: Event = serde_json::from_value(serde_json::json!({
            "type": "attempt_succeeded", "task": "x", "attempt": 1, "duration_ms": 0, "result": {}
        }))
        .unwrap();
        t.note(3, &record(1_000, done));
        assert_eq!(t.duration(3), Some(0), "a zero duration is a duration");
        t.note(3, &record(5_000, Event::AttemptStarted { task: "x".into(), attempt: 2, pool: "p".into() }));
        assert_eq!((t.started(3), t.duration(3)), (Some(5_000), None));
        assert_eq!(t.started(0), None);
    }
}
