//! The control panel: a ratatui front end over a run it is handed (a [`RunHandle`]:
//! in-process today, a control-socket client later). The engine is the only writer;
//! the TUI folds the committed records into a read model ([`model::Fleet`]), draws pure views of it ([`draw`]), and turns keys into engine
//! commands through one update function ([`view::ViewState::update`]).
//!
//! One owner loop with one `select!` (see [`run`]); the terminal is restored by a
//! guard on every exit path, and by ratatui's panic hook on a panic.

pub mod draw;
pub mod keys;
pub mod model;
pub mod view;

use std::io::stdout;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
    MouseButton, MouseEventKind,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::core::breaker::Circuit;
use crate::core::TaskStateName;
use crate::io::clock::wall_ms as now_ms;
use crate::io::journal::Record;
use crate::launch::{FrontEnd, RunHandle};
use draw::{Scene, Theme};
use keys::{Action, Keymap};
use model::Fleet;
use view::{Request, Screen, TextKey, ViewState};

/// Frames are at most this often, however fast events arrive (the last state wins).
const FRAME: Duration = Duration::from_millis(33);

/// Restores the terminal when dropped, whatever way the loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// Where the TUI gets its settings.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Keys.
    pub keymap: Keymap,
    /// Colours (off under `NO_COLOR`).
    pub theme: Theme,
}

impl TuiOptions {
    /// Keys from `keys.toml` in the pitboss config dir; colours unless `NO_COLOR`.
    pub fn from_environment() -> Result<TuiOptions, String> {
        let path = config_dir().join("keys.toml");
        let keymap = Keymap::load(&path)?;
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(TuiOptions { keymap, theme: Theme { color } })
    }
}

/// pitboss's config dir (`PITBOSS_CONFIG` overrides it).
pub fn config_dir() -> std::path::PathBuf {
    crate::io::dirs::config_dir()
}

/// The TUI as the launcher runs it: the run waits for the operator (it does not end
/// when every task is terminal), and the TUI folds the whole log for history and
/// time travel.
pub fn front_end<'a>(options: TuiOptions) -> FrontEnd<'a> {
    FrontEnd {
        exits_when_done: false,
        needs_history: true,
        run: Box::new(move |handle| Box::pin(run(handle, options))),
    }
}

/// Runs the TUI on a run until the run stops (the operator's quit stops it cleanly
/// and it stays resumable). Works on any [`RunHandle`]: it never owns the engine.
pub async fn run(mut handle: impl RunHandle, options: TuiOptions) -> Result<(), String> {
    let Some(mut feed) = handle.take_feed() else {
        return Err("the run's records were already taken by another view".to_string());
    };
    let mut fleet = Fleet::from_records(&std::mem::take(&mut feed.backlog)).map_err(|e| e.to_string())?;
    let mut output = feed.output.resubscribe();

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let _ = execute!(stdout(), EnableMouseCapture);
    let mut keys = spawn_terminal_reader();
    let mut vs = ViewState::default();
    let mut travel: Option<(usize, Fleet)> = None;
    let mut quitting = false;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result = loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let now = now_ms();
            let (shown, now) = match &travel {
                Some((_, f)) => (f, f.last_ts),
                None => (&fleet, now),
            };
            let scene = Scene {
                fleet: shown,
                total: fleet.records.len(),
                view: &vs,
                keys: &options.keymap,
                now_ms: now,
                theme: options.theme,
            };
            terminal.draw(|frame| draw::draw(frame, &scene)).map_err(|e| format!("terminal: {e}"))?;
            dirty = false;
            last_draw = Instant::now();
        }
        // Ticks only while something moves on its own (elapsed times): idle costs nothing.
        let counting_down =
            fleet.state.breakers.iter().any(|b| matches!(b.circuit, Circuit::Open { until_ms: Some(_) }));
        let ticking = (fleet.state.count(TaskStateName::Running) > 0 || counting_down) && travel.is_none();
        let redraw_at = tokio::time::Instant::from_std(last_draw + FRAME);
        // The one select of the TUI. Biased: the operator's keys first, so a flood of
        // output never delays a cancel.
        tokio::select! {
            biased;
            Some(event) = keys.recv() => {
                for request in on_terminal_event(event, &mut vs, &fleet, travel.as_ref().map(|(_, f)| f), &options.keymap, terminal.size().map(|s| s.height).unwrap_or(24)) {
                    match request {
                        Request::Engine(input) => {
                            handle.send(input);
                        }
                        Request::Quit if !quitting => {
                            quitting = true;
                            handle.stop("operator quit");
                            vs.message = Some("stopping: ending running attempts…".into());
                        }
                        Request::Quit => {}
                    }
                }
                dirty = true;
            }
            // Every record arrives, in order (the feed never drops one); it ends
            // once the run has stopped, and so does the TUI.
            batch = feed.next() => {
                match batch {
                    Some(batch) => apply_batch(&mut fleet, &batch)?,
                    None => break Ok(()),
                }
                dirty = true;
            }
            Ok(chunk) = output.recv() => {
                fleet.add_output(&chunk.task, chunk.attempt, &chunk.bytes, now_ms());
                dirty = true;
            }
            _ = tick.tick(), if ticking => dirty = true,
            _ = tokio::time::sleep_until(redraw_at), if dirty => {}
        }
        // Time travel shows a fold of the log's first N records.
        match (vs.travel, &travel) {
            (None, Some(_)) => travel = None,
            (Some(n), current) if current.as_ref().map(|(m, _)| *m) != Some(n) => {
                let n = n.clamp(1, fleet.records.len());
                travel = Some((n, Fleet::from_records(&fleet.records[..n]).map_err(|e| e.to_string())?));
            }
            _ => {}
        }
    };
    drop(_guard);
    result
}

fn apply_batch(fleet: &mut Fleet, batch: &[Record]) -> Result<(), String> {
    for record in batch {
        fleet.apply(record).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reads terminal events on a thread of its own (crossterm's read blocks) and hands
/// them to the loop.
fn spawn_terminal_reader() -> mpsc::UnboundedReceiver<TermEvent> {
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

/// Routes one terminal event: a pending question first, then an open text field,
/// then the keymap.
fn on_terminal_event(
    event: TermEvent,
    vs: &mut ViewState,
    live: &Fleet,
    travelled: Option<&Fleet>,
    keymap: &Keymap,
    height: u16,
) -> Vec<Request> {
    let shown = travelled.unwrap_or(live);
    let total = live.records.len();
    match event {
        TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
            if vs.confirm.is_some() {
                let yes =
                    matches!(key.code, KeyCode::Char('y' | 'Y')) && !key.modifiers.contains(KeyModifiers::CONTROL);
                return vs.answer(yes);
            }
            if vs.palette.is_some() || vs.filter_input.is_some() {
                if let Some(text) = text_key(key) {
                    return vs.type_key(shown, total, text);
                }
                return Vec::new();
            }
            match key_name(key).and_then(|name| keymap.action(&name)) {
                Some(action) => vs.update(shown, total, action),
                None => Vec::new(),
            }
        }
        TermEvent::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => vs.update(shown, total, Action::Up),
            MouseEventKind::ScrollDown => vs.update(shown, total, Action::Down),
            MouseEventKind::Down(MouseButton::Left) if vs.screen == Screen::Tasks => {
                // Header line, border and column titles come before the first row.
                let first_row_y = 3;
                if mouse.row >= first_row_y {
                    let visible = height.saturating_sub(7) as usize;
                    let first = vs.selected.saturating_sub(visible.saturating_sub(1));
                    let rows = view::task_rows(shown, vs).len();
                    let clicked = first + (mouse.row - first_row_y) as usize;
                    if clicked < rows {
                        vs.selected = clicked;
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The keymap's name for a key: "j", "G", "ctrl-c", "enter", "pgdn"…
pub fn key_name(key: KeyEvent) -> Option<String> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let name = match key.code {
        KeyCode::Char(c) if ctrl => format!("ctrl-{}", c.to_ascii_lowercase()),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::PageUp => "pgup".into(),
        KeyCode::PageDown => "pgdn".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    Some(name)
}

fn text_key(key: KeyEvent) -> Option<TextKey> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        // ctrl-c leaves the field, like Esc.
        return matches!(key.code, KeyCode::Char('c')).then_some(TextKey::Esc);
    }
    Some(match key.code {
        KeyCode::Char(c) => TextKey::Char(c),
        KeyCode::Backspace => TextKey::Backspace,
        KeyCode::Delete => TextKey::Delete,
        KeyCode::Left => TextKey::Left,
        KeyCode::Right => TextKey::Right,
        KeyCode::Home => TextKey::Home,
        KeyCode::End => TextKey::End,
        KeyCode::Tab => TextKey::Tab,
        KeyCode::Enter => TextKey::Enter,
        KeyCode::Esc => TextKey::Esc,
        _ => return None,
    })
}
