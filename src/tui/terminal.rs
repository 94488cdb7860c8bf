//! The terminal's side of the app loop: a guard that restores it on every exit path,
//! a thread that reads its events into a channel (and can be paused, so that an
//! editor or the shell after Ctrl-Z gets the keys), and leaving and re-entering the
//! screen around them.

use std::io::stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event as TermEvent};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use tokio::sync::mpsc;

/// How long the reader waits for a key before it looks whether it is asked to pause:
/// also the longest a pause waits for it.
const READER_POLL: Duration = Duration::from_millis(50);

/// Restores the terminal when dropped, whatever way the loop ends.
pub struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// The terminal's events, read on a thread of its own (crossterm's read blocks).
pub struct TerminalReader {
    events: mpsc::UnboundedReceiver<TermEvent>,
    pause: Arc<AtomicBool>,
    /// The thread says it stopped reading (after a pause was asked).
    parked: std_mpsc::Receiver<()>,
    /// Wakes the parked thread.
    wake: std_mpsc::Sender<()>,
}

impl TerminalReader {
    /// The next event; `None` once the thread ended.
    pub async fn recv(&mut self) -> Option<TermEvent> {
        self.events.recv().await
    }

    /// Stops reading the terminal and returns once the thread no longer touches it,
    /// so an editor or the shell gets every key (crossterm buffers what it reads: a
    /// reader left polling would steal keys from them).
    pub fn pause(&self) {
        self.pause.store(true, Ordering::Release);
        // The thread parks within one poll; bounded, should it have ended.
        let _ = self.parked.recv_timeout(READER_POLL * 20);
    }

    /// Reads the terminal again.
    pub fn resume(&self) {
        self.pause.store(false, Ordering::Release);
        let _ = self.wake.send(());
    }
}

/// Starts the reader thread.
pub fn spawn_terminal_reader() -> TerminalReader {
    let (tx, events) = mpsc::unbounded_channel();
    let pause = Arc::new(AtomicBool::new(false));
    let (parked_tx, parked) = std_mpsc::channel();
    let (wake, woken) = std_mpsc::channel::<()>();
    let asked = pause.clone();
    std::thread::spawn(move || loop {
        if asked.load(Ordering::Acquire) {
            let _ = parked_tx.send(());
            // Parked until resumed (a stale wake-up is harmless: the flag is checked).
            if woken.recv().is_err() {
                break;
            }
            continue;
        }
        match ratatui::crossterm::event::poll(READER_POLL) {
            Ok(true) => match ratatui::crossterm::event::read() {
                Ok(event) => {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            },
            Ok(false) => {
                if tx.is_closed() {
                    break;
                }
            }
            Err(_) => break,
        }
    });
    TerminalReader { events, pause, parked, wake }
}

/// Gives the terminal back (for an editor, or the shell after Ctrl-Z): mouse off, the
/// main screen, cooked mode, the cursor shown. The reader must be paused first.
pub fn leave() {
    let _ = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
    let _ = disable_raw_mode();
}

/// Takes the terminal again after [`leave`]; the caller redraws everything (what was
/// on the screen is whatever the editor or the shell left).
pub fn enter() {
    let _ = enable_raw_mode();
    let _ = execute!(stdout(), EnterAlternateScreen, EnableMouseCapture);
}

/// Whether this process is in the terminal's foreground (after `fg`), not in the
/// background (after `bg`), where touching the terminal would stop it again.
pub fn in_foreground() -> bool {
    crate::io::platform::in_foreground()
}

/// Stops this process as the terminal's Ctrl-Z would (raw mode turns that key into a
/// key event, so the TUI sends the signal itself); returns once it is continued. The
/// time stopped is noted on the engine's clock: the engine read no worker meanwhile, so
/// attempts' timeouts and stall watches move out by as much (`io::clock::stopped_ms`).
pub fn stop_self() {
    let stopped_at = std::time::Instant::now();
    crate::io::platform::suspend_self();
    crate::io::clock::note_stopped(stopped_at.elapsed());
}
