//! The engine's clock, injected so that every timer of a run (retry backoff, breaker
//! cooldown, attempt timeout, stall watch) can be driven on paused tokio time in
//! tests, with exact virtual times and no wall-clock tolerance.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A sleep returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Time as the engine sees it: ms since the epoch, and a way to wait for one.
pub trait Clock: Send + Sync {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves once [`Clock::now_ms`] has reached `due_ms` (at once if it has).
    fn sleep_until(&self, due_ms: u64) -> Sleep;
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
}
