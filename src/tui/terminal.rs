//! The terminal's side of the app loop: a guard that restores it on every exit path,
//! and a thread that reads its events (crossterm's read blocks) into a channel.

use std::io::stdout;

use ratatui::crossterm::event::{DisableMouseCapture, Event as TermEvent};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

/// Restores the terminal when dropped, whatever way the loop ends.
pub struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// Reads terminal events on a thread of its own (crossterm's read blocks) and hands
/// them to the loop.
pub fn spawn_terminal_reader() -> mpsc::UnboundedReceiver<TermEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = ratatui::crossterm::event::read() {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}
