//! The control panel: a ratatui front end over a run it is handed (a [`RunHandle`]:
//! in-process today, a control-socket client later). The engine is the only writer;
//! the TUI folds the committed records into a read model ([`model::Fleet`]), draws
//! pure views of it ([`draw`], one module per screen in [`screens`]), and turns keys
//! into engine commands through one update function ([`view::ViewState::update`], in
//! `update.rs`).
//!
//! One owner loop with one `select!` (see [`run`]); the terminal is restored by a
//! guard on every exit path, and by ratatui's panic hook on a panic.

mod actions;
mod answers;
pub mod draw;
mod editor;
pub mod header;
mod input;
pub mod keys;
pub mod model;
pub mod mouse;
mod options;
pub mod screens;
mod selection;
mod terminal;
pub mod theme;
mod update;
pub mod view;
mod widgets;

use std::io::stdout;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::EnableMouseCapture;
use ratatui::crossterm::execute;

use crate::core::breaker::Circuit;
use crate::core::TaskStateName;
use crate::io::clock::wall_ms as now_ms;
use crate::io::journal::Record;
use crate::launch::{FrontEnd, RunHandle};
use draw::Scene;
use input::on_terminal_event;
use model::Fleet;
use terminal::{spawn_terminal_reader, TerminalGuard};
use view::{Request, ViewState};

pub use input::key_name;
pub use options::{config_dir, TuiOptions};

/// Frames are at most this often, however fast events arrive (the last state wins).
const FRAME: Duration = Duration::from_millis(33);
/// Records folded per slice of the time-travel indexing pass: a few tens of
/// milliseconds, so keys and records are served between slices.
const INDEX_SLICE: usize = 20_000;
/// How often a TUI sent to the background (Ctrl-Z, `bg`) looks whether it is in the
/// foreground again.
const FOREGROUND_CHECK: Duration = Duration::from_millis(200);

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
    // A run this process holds opens from its folder (the state as opened, history
    // read from disk when wanted); an attached one from the records it was sent.
    let mut fleet = match feed.on_disk.take() {
        Some(run) => {
            let records = usize::try_from(run.records).unwrap_or(usize::MAX);
            Fleet::opened(&run.dir, run.state, records)
        }
        None => Fleet::from_records(&std::mem::take(&mut feed.backlog)),
    }
    .map_err(|e| e.to_string())?;
    // The feed's own receiver, not a new one: an attached TUI's first chunks (what
    // running workers printed before it attached) are already waiting in it.
    let fresh = feed.output.resubscribe();
    let mut output = std::mem::replace(&mut feed.output, fresh);

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let _ = execute!(stdout(), EnableMouseCapture);
    let mut keys = spawn_terminal_reader();
    // Ctrl-Z then `bg`: the run goes on with no screen until it is in the terminal's
    // foreground again (`fg` of a running job sends no signal: it is looked for).
    let mut suspended = false;
    let mut vs = ViewState { attached: options.attached, ..ViewState::default() };
    let mut quitting = false;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result = loop {
        if dirty && !suspended && last_draw.elapsed() >= FRAME {
            vs.now_ms = view_clock(&fleet);
            draw_frame(&mut terminal, &fleet, &vs, &options)?;
            dirty = false;
            last_draw = Instant::now();
        }
        // Ticks only while something moves on its own (elapsed times): idle costs nothing.
        let counting_down =
            fleet.state.pools.iter().any(|p| matches!(p.breaker.circuit, Circuit::Open { until_ms: Some(_) }));
        let ticking = (fleet.state.count(TaskStateName::Running) > 0 || counting_down) && fleet.travelling().is_none();
        let redraw_at = tokio::time::Instant::from_std(last_draw + FRAME);
        // The one select of the TUI. Biased: the operator's keys first, so a flood of
        // output never delays a cancel.
        tokio::select! {
            biased;
            Some(event) = keys.recv() => {
                vs.now_ms = view_clock(&fleet);
                for request in on_terminal_event(event, &mut vs, &fleet, None, &options.keymap, terminal.size().ok().map(|s| ratatui::layout::Rect::new(0, 0, s.width, s.height))) {
                    match request {
                        Request::Engine(input) => {
                            handle.send(input);
                        }
                        Request::Quit if !quitting => {
                            quitting = true;
                            handle.stop("operator quit");
                            vs.message = Some(if vs.attached { "detaching…" } else { "stopping: ending running attempts…" }.into());
                        }
                        Request::Quit => {}
                        Request::Suspend => suspended = !suspend(&mut terminal, &keys),
                        Request::Edit { task, text } => {
                            let edit = edit_payload(&mut terminal, &keys, &task, &text).await;
                            actions::edited(&mut vs, &fleet, &task, edit);
                        }
                        // Time travel's `F`, confirmed: the original is only read.
                        Request::Fork { dir, seq, to } => vs.message = Some(screens::travel::fork(&dir, seq, &to)),
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
            // Continued in the background (`bg`), until brought back (`fg`).
            _ = tokio::time::sleep(FOREGROUND_CHECK), if suspended => {
                if terminal::in_foreground() {
                    suspended = false;
                    take_back(&mut terminal, &keys);
                    dirty = true;
                }
            }
            // Indexing the log for time travel, a slice at a time between the keys and
            // the records above, so the screens stay live while it runs.
            _ = std::future::ready(()), if fleet.indexing().is_some() => {
                fleet.index_some(INDEX_SLICE).map_err(|e| e.to_string())?;
                vs.message = Some(match fleet.indexing() {
                    Some((done, total)) => format!("indexing the log for time travel: {}%", done * 100 / total.max(1)),
                    None => "the log is indexed: time travel ready".to_string(),
                });
                dirty = true;
            }
            _ = tokio::time::sleep_until(redraw_at), if dirty && !suspended => {}
        }
        // Time travel: the model shows the run as of the cursor (a checkpoint and at
        // most a checkpoint's spacing of records folded; nothing when unchanged).
        fleet.travel_to(vs.travel).map_err(|e| e.to_string())?;
        if let Some(trouble) = fleet.history_trouble() {
            vs.message = Some(trouble);
        }
    };
    drop(_guard);
    // The run has stopped and the process ends after the TUI: the model (a large run's
    // every task, its caches) is left to the OS rather than freed piece by piece, so
    // `q` costs nothing more (issue 14). It holds no file or lock that needs a drop.
    std::mem::forget(fleet);
    result
}

/// The clock the view works with: the wall clock live, none in time travel (the
/// past is read as of its newest record).
fn view_clock(fleet: &Fleet) -> u64 {
    if fleet.travelling().is_some() {
        0
    } else {
        now_ms()
    }
}

/// Draws one frame: the live run, or the past while time travel is on.
fn draw_frame(
    terminal: &mut ratatui::DefaultTerminal,
    fleet: &Fleet,
    vs: &ViewState,
    options: &TuiOptions,
) -> Result<(), String> {
    let now = if fleet.travelling().is_some() { fleet.last_ts } else { now_ms() };
    let scene =
        Scene { fleet, total: fleet.records.len(), view: vs, keys: &options.keymap, now_ms: now, theme: options.theme };
    terminal.draw(|frame| draw::draw(frame, &scene)).map(|_| ()).map_err(|e| format!("terminal: {e}"))
}

/// Ctrl-Z: leaves the screen and stops the process as the terminal's Ctrl-Z would;
/// once continued, takes the screen back if in the foreground (`fg`; true), else
/// stays off it (`bg`; false) while the run goes on. While stopped the run is stopped
/// too (one process): workers go on until their output pipes fill, and an attempt
/// whose timeout passes meanwhile times out when the process continues.
fn suspend(terminal: &mut ratatui::DefaultTerminal, keys: &terminal::TerminalReader) -> bool {
    keys.pause();
    terminal::leave();
    terminal::stop_self();
    if !terminal::in_foreground() {
        return false;
    }
    take_back(terminal, keys);
    true
}

/// Takes the terminal again after a suspend or an editor: everything is redrawn.
fn take_back(terminal: &mut ratatui::DefaultTerminal, keys: &terminal::TerminalReader) {
    terminal::enter();
    // A resize clears the screen and forgets the last frame, so the next one is drawn
    // in full (`clear` would first ask the terminal where its cursor is: a round trip
    // some terminals never answer).
    if let Ok(size) = terminal.size() {
        let _ = terminal.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height));
    }
    keys.resume();
}

/// `E`: the editor gets the terminal (the reader paused, so no key of its is taken)
/// and is awaited while the engine goes on; then the screen is taken back.
async fn edit_payload(
    terminal: &mut ratatui::DefaultTerminal,
    keys: &terminal::TerminalReader,
    task: &str,
    text: &str,
) -> Result<editor::Edited, String> {
    let Some(command) = editor::command() else {
        return Err("no editor: set $VISUAL or $EDITOR (or edit the payload in the palette: e)".into());
    };
    keys.pause();
    terminal::leave();
    let edited = editor::run(&command, task, text).await;
    take_back(terminal, keys);
    edited
}

/// Folds a batch of committed records into the read model.
fn apply_batch(fleet: &mut Fleet, batch: &[Record]) -> Result<(), String> {
    for record in batch {
        fleet.apply(record).map_err(|e| e.to_string())?;
    }
    Ok(())
}
