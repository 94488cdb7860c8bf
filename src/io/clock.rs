//! The engine's clock, injected so that every timer of a run (retry backoff, breaker
//! cooldown, attempt timeout, stall watch) can be driven on paused tokio time in
//! tests, with exact virtual times and no wall-clock tolerance.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A sleep returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Time as the engine sees it: ms since the epoch, and a way to wait for one.
pub trait Clock: Send + Sync {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves once [`Clock::now_ms`] has reached `due_ms` (at once if it has).
    fn sleep_until(&self, due_ms: u64) -> Sleep;
    /// How long the manager has been stopped so far (ms, growing only): time an
    /// attempt's limits must not count, since the manager was not there to read its
    /// worker (the manager's own trouble is never charged to a task).
    fn stopped_ms(&self) -> u64 {
        stopped_ms()
    }
}

/// Time this process spent stopped by its own Ctrl-Z (the TUI's suspend), in ms. One
/// counter for the process because a stop is the process's: every clock reads it.
static STOPPED_MS: AtomicU64 = AtomicU64::new(0);

/// The total time this process has been stopped by its own suspends.
pub fn stopped_ms() -> u64 {
    STOPPED_MS.load(Ordering::Relaxed)
}

/// A deadline on tokio's monotonic clock that moves out by the time the manager
/// spends stopped after it was set (for runners that keep their own time limits).
#[derive(Debug, Clone, Copy)]
pub struct AwakeDeadline {
    at: tokio::time::Instant,
    stopped_from: u64,
}

impl AwakeDeadline {
    /// `after` from now, in awake time.
    pub fn after(after: Duration) -> AwakeDeadline {
        AwakeDeadline { at: tokio::time::Instant::now() + after, stopped_from: stopped_ms() }
    }

    /// When it falls due, as of now.
    pub fn due(&self) -> tokio::time::Instant {
        self.at + Duration::from_millis(stopped_ms().saturating_sub(self.stopped_from))
    }
}

/// Counts a stop of this process (measured by whoever stopped it: the TUI's Ctrl-Z,
/// around the signal). Attempts' timeouts and stall watches move out by as much.
pub fn note_stopped(stopped: Duration) {
    STOPPED_MS.fetch_add(stopped.as_millis() as u64, Ordering::Relaxed);
}

/// The real clock: wall time for timestamps, tokio timers for waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Wall clock in ms since the epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_ms()
    }

    fn sleep_until(&self, due_ms: u64) -> Sleep {
        let delay = due_ms.saturating_sub(wall_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(delay)))
    }
}

/// A clock that reads tokio's time: a fixed epoch offset plus the time tokio has seen
/// pass. Under `#[tokio::test(start_paused = true)]` it is virtual (it moves only when
/// every task waits), so tests assert exact times.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `epoch_ms` now. Call inside a tokio runtime.
    pub fn starting_at(epoch_ms: u64) -> TokioClock {
        TokioClock { epoch_ms, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.epoch_ms + self.start.elapsed().as_millis() as u64
    }

    fn sleep_until(&self, due_ms: u64) -> Sleep {
        let after_start = Duration::from_millis(due_ms.saturating_sub(self.epoch_ms));
        // Past the end of `Instant` (a saturated far-off time): tokio's own far future.
        match self.start.checked_add(after_start) {
            Some(at) => Box::pin(tokio::time::sleep_until(at)),
            None => Box::pin(tokio::time::sleep(Duration::MAX)),
        }
    }

    /// Virtual time is never stopped (a test that wants a stop wraps this clock).
    fn stopped_ms(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_awake_deadline_moves_out_by_a_stop_noted_after_it_was_set() {
        let deadline = AwakeDeadline::after(Duration::from_secs(10));
        let before = deadline.due();
        // Other tests of this process may note stops too: only growth is certain.
        note_stopped(Duration::from_millis(3));
        assert!(deadline.due() >= before + Duration::from_millis(3));
        assert!(AwakeDeadline::after(Duration::from_secs(10)).due() <= before + Duration::from_millis(3));
    }
}
