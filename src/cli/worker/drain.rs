//! Stopping a worker cleanly: the first SIGTERM (or SIGINT) drains — no new job is
//! read, running ones get `--drain-timeout` to finish, then are stopped and handed
//! back to their manager; a second signal skips the wait. A SIGKILL gives no chance
//! to drain: the guardian ends the commands and the manager's lease takes the jobs back.

use crate::io::platform::StopSignals;
use tokio::sync::watch;

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Reading and running jobs.
    Serving,
    /// Asked to stop: finishing what runs, reading nothing new.
    Draining,
    /// Asked twice: stop and hand back what runs now.
    Hurry,
}

/// Listens for stop signals; the receiver follows the phase. Fails only when the
/// signal handlers cannot be installed.
pub(crate) fn listen() -> std::io::Result<watch::Receiver<Phase>> {
    // SIGTERM and SIGINT on Unix; Ctrl-C, Ctrl-Break and console close on Windows.
    let mut signals = StopSignals::new()?;
    let (tx, rx) = watch::channel(Phase::Serving);
    tokio::spawn(async move {
        for next in [Phase::Draining, Phase::Hurry] {
            signals.recv().await;
            let how = if next == Phase::Draining { "draining" } else { "handing back what runs now" };
            eprintln!("pitboss worker: stop requested; {how}");
            if tx.send(next).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Waits until the phase is at least `at` (for ever if the sender is gone first).
pub(crate) async fn reached(rx: &mut watch::Receiver<Phase>, at: Phase) {
    if rx.wait_for(|p| *p >= at).await.is_err() {
        std::future::pending::<()>().await;
    }
}
