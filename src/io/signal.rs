//! The manager's own stop signals: SIGINT and SIGTERM end a run cleanly (running
//! attempts are stopped and the run stays resumable). Every front end gets the same
//! behaviour because the launcher, not the front end, listens.
//!
//! They are handled from `main`'s first instruction, not from the moment the engine's
//! runtime exists: before, a SIGTERM in the first ~50 ms of `resume` (while the log
//! was folded) killed the manager silently with the default disposition (exit 143).
//! [`block_stop_signals`] blocks both in the main thread before any other thread
//! exists, so every thread pitboss starts inherits the block, and a signal waits,
//! pending, for the one thread that takes it: [`listen`] starts that thread, which
//! takes them with `sigwait` (no handler, so nothing has to be async-signal-safe).
//!
//! - **While starting** (holding the folder, folding the log, starting the guardian),
//!   nothing runs that a stop must end, so the signal ends pitboss at once: a message
//!   and exit 130. The log is crash-safe at every byte, so this loses nothing; an
//!   early stop is the same as a crash there, said and with the interrupted exit code.
//!   Waiting for the fold to finish would make a stop wait seconds on a long log.
//! - **Once the engine runs** ([`shutdown_signal`] was called), the signal resolves
//!   the engine's shutdown future: the run is interrupted and recorded as such.
//!
//! Workers do not inherit the block: the standard library clears the signal mask of
//! every process it spawns.
//!
//! On Windows the same stops come from the console: Ctrl-C, Ctrl-Break and closing
//! the console window, taken by a console control handler (`io::platform`) that
//! Windows calls on a thread of its own; nothing is blocked.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tokio::sync::watch;

use super::platform;

/// Blocks SIGINT and SIGTERM in the calling thread and so in every thread it starts
/// afterwards. Call it first in `main`, before any thread exists. (Windows: nothing.)
pub fn block_stop_signals() {
    platform::block_stop_signals();
}

/// Unblocks them again, for commands that keep the default dispositions (a reader is
/// simply ended by Ctrl-C). A signal that arrived meanwhile is delivered now.
pub fn unblock_stop_signals() {
    platform::unblock_stop_signals();
}

/// Where the listening thread is: signals are a property of the process, not of a
/// run, so its state is process-wide (set once by [`listen`]).
static LISTENER: OnceLock<Listener> = OnceLock::new();

struct Listener {
    /// `None` while starting; the engine's channel once it runs.
    running: Mutex<Option<watch::Sender<Option<String>>>>,
    /// The run folder, if known, for the "continue with" hint of an early stop.
    hint: Option<PathBuf>,
}

/// Starts the thread that takes the blocked stop signals (see the module notes).
/// `hint` is the run folder to name if a signal ends pitboss while it starts.
pub fn listen(hint: Option<PathBuf>) -> std::io::Result<()> {
    if LISTENER.set(Listener { running: Mutex::new(None), hint }).is_err() {
        return Ok(());
    }
    platform::take_stop_signals(deliver)
}

/// What a stop signal does once taken (module notes).
fn deliver(name: &str) {
    let Some(listener) = LISTENER.get() else { return };
    let name = name.to_string();
    let running = listener.running.lock().unwrap_or_else(|e| e.into_inner());
    match running.as_ref() {
        // The first one counts; the engine is stopping already after it.
        Some(engine) => {
            engine.send_if_modified(|caught| caught.is_none() && caught.replace(name).is_none());
        }
        None => stop_while_starting(&name, listener.hint.as_ref()),
    }
}

/// Ends the process: a stop signal arrived before the engine ran.
fn stop_while_starting(name: &str, hint: Option<&PathBuf>) -> ! {
    let mut message = format!("pitboss: {name} while starting: stopped before any worker ran; nothing was lost");
    if let Some(dir) = hint {
        message += &format!("\npitboss: continue it with: pitboss resume {}", dir.display());
    }
    message.push('\n');
    let _ = std::io::stderr().lock().write_all(message.as_bytes());
    // `_exit`, not `exit`: the main thread may be mid-way through anything, and no
    // destructor or exit handler may run under it (the log is safe as after a crash).
    platform::exit_now(130)
}

/// Resolves on SIGINT or SIGTERM with the signal's name. Calling it marks the start of
/// the run (a later signal stops the engine instead of ending the process). If no
/// listening thread runs (a library user, a test) it installs tokio's handlers; if
/// those cannot be installed it never resolves (the front end can still stop the run).
pub fn shutdown_signal() -> impl Future<Output = String> + Send + 'static {
    let caught = LISTENER.get().map(|listener| {
        let mut running = listener.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get_or_insert_with(|| watch::channel(None).0).subscribe()
    });
    async move {
        match caught {
            Some(mut caught) => {
                let name = caught.wait_for(Option::is_some).await.ok().and_then(|name| name.clone());
                match name {
                    Some(name) => name,
                    None => std::future::pending().await,
                }
            }
            None => tokio_signal().await,
        }
    }
}

async fn tokio_signal() -> String {
    let Ok(mut signals) = super::platform::StopSignals::new() else {
        return std::future::pending().await;
    };
    signals.recv().await.to_string()
}
