//! How big a group commit gets (issue 14, throughput). A batch's effects wait for its
//! fdatasync, so an attempt handed out at the end of commit K can end at the earliest
//! during commit K+1; without a wait its end goes into K+2, and fast attempts split
//! into two cohorts that each run once per *two* commits (measured: 27 task ends per
//! fdatasync with 48 in flight). So after a commit that started attempts, the engine
//! waits a little before the next one: until every attempt in flight at the end of
//! that commit has ended, or for as long as that commit took, whichever comes first.
//!
//! A wait pays only when attempts are short next to a commit: each end it gathers is
//! acted on a whole commit earlier, each end already in the batch a wait later. When
//! it did not pay (gathered × commit time < ends at the start × time waited: spawned
//! processes that take tens of ms, benchmark P1), the next [`SKIP_AFTER_MISS`]
//! commits do not wait, then it tries again; each further miss in a row doubles the
//! pause (up to [`MAX_SKIP`]) and a wait that pays resets it. Slow attempts cost one
//! window in ~65 commits, not one in nine (P1: each window idles every slot that
//! ended during it); fast attempts, whose waits pay, keep waiting every commit.
//!
//! The wait is bounded by the disk's own time (never more than [`MAX_WINDOW`]), is
//! skipped when commits are quick (under [`MIN_WINDOW`]: in-memory stores, fast
//! disks), when the last commit started nothing, when that commit is long past (slow
//! agents: the deadline is over before anything arrives), and when the batch holds
//! anything but attempt news (an operator's command, a stop, a timer). At worst an
//! event is recorded one commit time later; its durability before any effect is
//! unchanged.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Engine, EngineError, Msg, MAX_BATCH};
use crate::core::Input;

/// Commits quicker than this are not worth waiting for.
pub(super) const MIN_WINDOW: Duration = Duration::from_micros(200);
/// The longest wait, however slow the disk.
pub(super) const MAX_WINDOW: Duration = Duration::from_millis(10);

/// Commits that do not wait after a wait that did not pay.
pub(super) const SKIP_AFTER_MISS: u32 = 8;
/// The longest pause after misses in a row (8, 16, 32, 64 commits).
pub(super) const MAX_SKIP: u32 = 64;

/// What the last durable commit tells about the next one.
#[derive(Debug, Default)]
pub(super) struct Gather {
    /// When it ended.
    ended: Option<Instant>,
    /// How long it took.
    took: Duration,
    /// Whether it started attempts (and the next batch has not waited yet).
    started: bool,
    /// Attempts in flight when it ended.
    in_flight: usize,
    /// Commits still not to wait after (after a wait that did not pay).
    skip: u32,
    /// Waits in a row that did not pay (each doubles the next pause).
    misses: u32,
}

impl Gather {
    /// Records a durable commit that took `took`, whether it `started` attempts, and
    /// how many were `in_flight` after it.
    pub(super) fn committed(&mut self, took: Duration, started: bool, in_flight: usize) {
        *self = Gather { ended: Some(Instant::now()), took, started, in_flight, skip: self.skip, misses: self.misses };
    }

    /// Until when the next batch may wait, if at all.
    fn deadline(&self) -> Option<Instant> {
        if !self.started || self.took < MIN_WINDOW {
            return None;
        }
        Some(self.ended? + self.took.min(MAX_WINDOW))
    }

    /// Adds to `batch` what arrives before the deadline, until every attempt in
    /// flight after the last commit has ended. Waits once per commit.
    pub(super) async fn more(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>, batch: &mut Vec<Msg>) {
        let Some(deadline) = self.deadline() else { return };
        self.started = false;
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        let expected = self.in_flight;
        if !batch.iter().all(attempt_news) {
            return;
        }
        let mut ended = batch.iter().filter(|m| ends_attempt(m)).count();
        let (at_start, waiting) = (ended, Instant::now());
        while ended < expected && batch.len() < MAX_BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            let next =
                if left.is_zero() { Err(()) } else { tokio::time::timeout(left, rx.recv()).await.map_err(|_| ()) };
            let Ok(Some(msg)) = next else { break };
            ended += usize::from(ends_attempt(&msg));
            let urgent = !attempt_news(&msg);
            batch.push(msg);
            if urgent {
                return;
            }
        }
        let (gained, waited) = ((ended - at_start) as u32, waiting.elapsed());
        if self.took.min(MAX_WINDOW) * gained < waited * at_start as u32 {
            self.skip = SKIP_AFTER_MISS.saturating_mul(1 << self.misses.min(8)).min(MAX_SKIP);
            self.misses += 1;
        } else {
            self.misses = 0;
        }
    }
}

impl Engine {
    /// Takes `first` and whatever else is waiting as one batch: folded, written, its
    /// local attempts started; the rest waits for its fdatasync (`in_flight`).
    pub(super) async fn take_batch(&mut self, first: Msg) -> Result<(), EngineError> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        self.gather.more(&mut self.rx, &mut batch).await;
        // Readers are answered after the batch they came with: a batch of readers
        // alone decides nothing and writes nothing.
        let (readers, batch): (Vec<Msg>, Vec<Msg>) = batch.into_iter().partition(|msg| matches!(msg, Msg::Read(_)));
        self.readers.extend(readers.into_iter().filter_map(|msg| match msg {
            Msg::Read(reader) => Some(reader),
            _ => None,
        }));
        if batch.is_empty() {
            return Ok(());
        }
        self.process(batch).await
    }
}

/// An attempt (or a replica of one) ended.
fn ends_attempt(msg: &Msg) -> bool {
    matches!(msg, Msg::RunnerDone { .. } | Msg::Part { .. })
}

/// News from running attempts, which may wait a commit's time; anything else (an
/// operator, a stop, a timer) is committed at once.
fn attempt_news(msg: &Msg) -> bool {
    match msg {
        Msg::RunnerDone { .. } | Msg::Part { .. } | Msg::Note(_) => true,
        Msg::Input(input) => matches!(input, Input::Spawned { .. } | Input::Stall { .. }),
        // A reader (ctl, reporter) is answered after the batch it comes with: no wait.
        Msg::Stop(_) | Msg::Read(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(task: &str) -> Msg {
        Msg::RunnerDone { task: task.into(), attempt: 1, input: None }
    }

    #[tokio::test]
    async fn a_batch_waits_for_the_attempts_the_last_commit_started_and_no_longer() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut gather = Gather::default();
        gather.committed(Duration::from_secs(5), true, 3);
        let mut batch = vec![done("a")];
        tx.send(done("b")).unwrap();
        tx.send(done("c")).unwrap();
        tx.send(done("d")).unwrap();
        gather.more(&mut rx, &mut batch).await;
        // Three ended, as many as were in flight: it stops there, "d" waits for the next.
        assert_eq!(batch.len(), 3);
        // Once per commit: the next batch does not wait.
        let mut next = vec![done("d")];
        let t = Instant::now();
        gather.more(&mut rx, &mut next).await;
        assert_eq!(next.len(), 1);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    /// Whether `more` read from the channel: a message is waiting there, and a batch
    /// that does not wait never takes it.
    async fn took_more(gather: &mut Gather, first: Msg) -> bool {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(done("pending")).unwrap();
        let mut batch = vec![first];
        gather.more(&mut rx, &mut batch).await;
        batch.len() > 1
    }

    #[tokio::test]
    async fn an_operator_command_or_a_quick_disk_is_not_kept_waiting() {
        let mut gather = Gather::default();
        gather.committed(Duration::from_secs(5), true, 3);
        assert!(!took_more(&mut gather, Msg::Stop("quit".into())).await, "a stop waited");
        gather.committed(Duration::from_secs(5), true, 3);
        let cancel = Input::Cancel { task: "a".into(), reason: "operator".into() };
        assert!(!took_more(&mut gather, Msg::Input(cancel)).await, "an operator's cancel waited");
        gather.committed(MIN_WINDOW / 2, true, 3);
        assert!(!took_more(&mut gather, done("a")).await, "a quick commit was waited for");
        // Nor is a commit that started nothing (its attempts are old news).
        gather.committed(Duration::from_secs(5), false, 3);
        assert!(!took_more(&mut gather, done("a")).await, "a commit that started nothing was waited for");
        // The same batch after a slow commit that started attempts does wait.
        gather.committed(Duration::from_secs(5), true, 3);
        assert!(took_more(&mut gather, done("a")).await);
    }

    #[tokio::test]
    async fn the_wait_ends_at_the_deadline_when_attempts_do_not_end() {
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let mut gather = Gather::default();
        gather.committed(Duration::from_secs(5), true, 3);
        let mut batch = vec![done("a")];
        let t = Instant::now();
        gather.more(&mut rx, &mut batch).await;
        // It waited, but MAX_WINDOW at most, not the 5 s the commit took.
        let waited = t.elapsed();
        assert!(waited >= MAX_WINDOW / 2 && waited < Duration::from_secs(1), "{waited:?}");
        assert_eq!(batch.len(), 1);
        // Nothing came: the next SKIP_AFTER_MISS commits do not wait, the one after does.
        for k in 0..=SKIP_AFTER_MISS {
            gather.committed(Duration::from_secs(5), true, 3);
            assert_eq!(took_more(&mut gather, done("a")).await, k == SKIP_AFTER_MISS, "commit {k}");
        }
    }

    #[tokio::test]
    async fn misses_in_a_row_pause_the_wait_longer_and_a_wait_that_pays_resets_it() {
        let slow = Duration::from_millis(5);
        let mut gather = Gather::default();
        // First wait, nothing comes: a miss.
        gather.committed(slow, true, 3);
        gather.more(&mut mpsc::unbounded_channel().1, &mut vec![done("a")]).await;
        assert_eq!(gather.skip, SKIP_AFTER_MISS);
        // Each further miss in a row doubles the pause, up to MAX_SKIP.
        let mut pauses = Vec::new();
        for _ in 0..5 {
            while gather.skip > 0 {
                gather.committed(slow, true, 3);
                gather.more(&mut mpsc::unbounded_channel().1, &mut vec![done("a")]).await;
            }
            gather.committed(slow, true, 3);
            gather.more(&mut mpsc::unbounded_channel().1, &mut vec![done("a")]).await;
            pauses.push(gather.skip);
        }
        assert_eq!(pauses, [16, 32, 64, 64, 64]);
        // A wait that pays (every attempt in flight ends) resets the pause.
        while gather.skip > 0 {
            gather.committed(slow, true, 3);
            gather.more(&mut mpsc::unbounded_channel().1, &mut vec![done("a")]).await;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(done("b")).unwrap();
        tx.send(done("c")).unwrap();
        gather.committed(slow, true, 3);
        let mut batch = vec![done("a")];
        gather.more(&mut rx, &mut batch).await;
        assert_eq!((batch.len(), gather.skip), (3, 0), "a wait that paid paused the next");
        gather.committed(slow, true, 3);
        gather.more(&mut mpsc::unbounded_channel().1, &mut vec![done("a")]).await;
        assert_eq!(gather.skip, SKIP_AFTER_MISS);
    }
}
