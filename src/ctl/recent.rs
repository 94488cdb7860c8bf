//! What running workers printed lately, kept by the manager for `subscribe_output`: a
//! client that subscribes (an attached TUI) first gets each running attempt's recent
//! output, then the chunks that follow, with nothing lost or repeated between the two
//! (both are taken under one lock). Without it an attached TUI showed nothing of a
//! worker that printed its lines before the attach and then went quiet.
//!
//! Bounded: the last `RECENT_BYTES` per running attempt, forgotten when its attempt
//! ends (its records say so). Stdout and stderr share one tail, in arrival order, as
//! the panes show them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::core::Event;
use crate::io::journal::Record;
use crate::io::runner::OutputChunk;

/// Bytes of recent output kept per running attempt (a pane's worth of lines).
pub(crate) const RECENT_BYTES: usize = 8 * 1024;

/// Chunks a `subscribe_output` client may leave unread before it misses some.
const CHUNKS: usize = 1024;

/// The recent output of running attempts, and the chunks as they come.
pub(crate) struct Recent {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Per task: its running attempt and that attempt's last bytes.
    tails: HashMap<Arc<str>, (u32, Vec<u8>)>,
    /// The chunks, passed on to the subscribers once kept.
    chunks: broadcast::Sender<OutputChunk>,
}

impl Recent {
    pub(crate) fn new() -> Recent {
        Recent { inner: Mutex::new(Inner { tails: HashMap::new(), chunks: broadcast::channel(CHUNKS).0 }) }
    }

    /// Keeps a chunk (a new attempt of a task replaces the one before) and passes it on.
    pub(crate) fn record(&self, chunk: OutputChunk) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let tail = inner.tails.entry(chunk.task.clone()).or_insert_with(|| (chunk.attempt, Vec::new()));
        if tail.0 != chunk.attempt {
            *tail = (chunk.attempt, Vec::new());
        }
        tail.1.extend_from_slice(&chunk.bytes);
        if tail.1.len() > RECENT_BYTES {
            let cut = tail.1.len() - RECENT_BYTES;
            // From a line's start when there is one: a pane shows whole lines.
            let cut = tail.1[cut..].iter().position(|b| *b == b'\n').map_or(cut, |nl| cut + nl + 1);
            tail.1.drain(..cut);
        }
        // No subscriber is not an error.
        let _ = inner.chunks.send(chunk);
    }

    /// Forgets the attempts `batch` ends.
    pub(crate) fn after(&self, batch: &[Record]) {
        let Ok(mut inner) = self.inner.lock() else { return };
        for record in batch {
            match &record.event {
                Event::AttemptSucceeded { task, attempt, .. }
                | Event::AttemptFailed { task, attempt, .. }
                | Event::AttemptInterrupted { task, attempt, .. }
                    if inner.tails.get(task.as_str()).is_some_and(|(a, _)| a == attempt) =>
                {
                    inner.tails.remove(task.as_str());
                }
                Event::TaskCancelled { task, .. } => {
                    inner.tails.remove(task.as_str());
                }
                _ => {}
            }
        }
    }

    /// Each running attempt's recent output as one chunk, and the chunks after it.
    pub(crate) fn subscribe(&self) -> (Vec<OutputChunk>, broadcast::Receiver<OutputChunk>) {
        let inner = match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        };
        let recent = inner
            .tails
            .iter()
            .filter(|(_, (_, bytes))| !bytes.is_empty())
            .map(|(task, (attempt, bytes))| OutputChunk {
                task: task.clone(),
                attempt: *attempt,
                stderr: false,
                bytes: Arc::from(bytes.as_slice()),
            })
            .collect();
        (recent, inner.chunks.subscribe())
    }

    /// `task`'s running attempt's recent output, as text.
    pub(crate) fn text_of(&self, task: &str) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        inner.tails.get(task).map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
    }

    /// Attempts with output kept (tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.inner.lock().map(|i| i.tails.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(task: &str, attempt: u32, text: &str) -> OutputChunk {
        OutputChunk { task: Arc::from(task), attempt, stderr: false, bytes: Arc::from(text.as_bytes()) }
    }

    #[test]
    fn a_subscriber_gets_the_recent_output_then_the_rest_once() {
        let recent = Recent::new();
        recent.record(chunk("a", 1, "one\n"));
        recent.record(chunk("a", 1, "two\n"));
        let (so_far, mut rest) = recent.subscribe();
        assert_eq!(so_far.len(), 1);
        assert_eq!(&*so_far[0].bytes, b"one\ntwo\n");
        recent.record(chunk("a", 1, "three\n"));
        assert_eq!(&*rest.try_recv().unwrap().bytes, b"three\n");
        assert!(rest.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn tails_are_bounded_start_at_a_line_and_end_with_their_attempt() {
        let recent = Recent::new();
        let long: String = (0..2000).map(|n| format!("line {n}\n")).collect();
        recent.record(chunk("a", 1, &long));
        let (so_far, _) = recent.subscribe();
        let text = std::str::from_utf8(&so_far[0].bytes).unwrap();
        assert!(text.len() <= RECENT_BYTES && text.starts_with("line ") && text.ends_with("line 1999\n"), "{text}");
        // A new attempt replaces the old one's output.
        recent.record(chunk("a", 2, "fresh\n"));
        assert_eq!(&*recent.subscribe().0[0].bytes, b"fresh\n");
        // The end of an older attempt leaves the newer one; its own end forgets it.
        let ended = |attempt| Record {
            seq: 1,
            ts: 0,
            event: Event::AttemptInterrupted { task: "a".into(), attempt, reason: "stop".into() },
        };
        recent.after(&[ended(1)]);
        assert_eq!(recent.kept(), 1);
        recent.after(&[ended(2)]);
        assert_eq!(recent.kept(), 0);
    }
}
