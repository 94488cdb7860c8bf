//! Time travel: the whole UI shows the run as of its Nth record (the app loop folds
//! the log's first N records into a model of their own, the same fold as replay).
//! ←/→ step one record, page keys fifty, top/bottom to the ends; the screens can be
//! browsed but nothing can be changed; Esc (or `t`) returns to the live run. The
//! status line names the record at the cursor (what happened there, in the words of
//! `pitboss events`). `F` forks the run at the cursor into a new folder (asks first,
//! with the folder's name): the original is only read, and the fork is a stopped run
//! that `pitboss resume NEWDIR` continues (it is not opened here: this TUI holds the
//! original run).

use std::path::Path;

use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};

use crate::core::text::{clock, describe};
use crate::io::journal::Record;
use crate::tui::actions;
use crate::tui::draw::{Hint, Scene};
use crate::tui::keys::{Action, Keymap};
use crate::tui::model::{Fleet, Live};
use crate::tui::view::{Confirm, Request, ViewState};

/// Records one page key jumps.
const PAGE: usize = 50;

/// `t`: travel, starting at the newest of the log's `total` records.
pub fn enter(vs: &mut ViewState, total: usize) {
    vs.travel = Some(total);
}

/// One action while travelling (`vs.travel` is set); `total` is the number of records
/// in the live log.
pub fn update(vs: &mut ViewState, fleet: &Fleet, total: usize, action: Action) -> Vec<Request> {
    let Some(n) = vs.travel else { return Vec::new() };
    match action {
        Action::Left => vs.travel = Some(n.saturating_sub(1).max(1)),
        Action::Right => vs.travel = Some((n + 1).min(total)),
        Action::PageUp => vs.travel = Some(n.saturating_sub(PAGE).max(1)),
        Action::PageDown => vs.travel = Some((n + PAGE).min(total)),
        Action::Top => vs.travel = Some(1),
        Action::Bottom => vs.travel = Some(total),
        Action::Back | Action::Travel => vs.travel = None,
        Action::Quit => return actions::quit(vs, fleet),
        Action::Help => vs.help = true,
        Action::Fork => ask_fork(vs, fleet, n),
        Action::Up
        | Action::Down
        | Action::HalfPageUp
        | Action::HalfPageDown
        | Action::Open
        | Action::Dashboard
        | Action::Tasks
        | Action::DeadLetters
        | Action::Held
        | Action::Timeline => return vs.navigate(fleet, action),
        _ => vs.message = Some("time travel is read-only: Esc returns to the live run".into()),
    }
    Vec::new()
}

/// `F` at record `n`: asks (No by default) before forking, naming the new folder.
/// A model that holds its records (an attached TUI) has no folder here to fork from:
/// it says how to fork from the shell instead.
fn ask_fork(vs: &mut ViewState, fleet: &Fleet, n: usize) {
    let seq = n as u64;
    let Some(dir) = fleet.records.dir() else {
        vs.message = Some(format!("this TUI reads the run from elsewhere: fork it with pitboss fork DIR --at {seq}"));
        return;
    };
    let to = crate::io::fork::default_dir(dir, seq);
    let event = cursor_event(fleet, n);
    vs.confirm = Some(Confirm {
        question: format!(
            "Fork this run at record {seq} ({event})?\ninto {}\nthe original is not changed; the fork starts stopped",
            to.display()
        ),
        on_yes: vec![Request::Fork { dir: dir.to_path_buf(), seq, to }],
    });
}

/// `F` on the live run: forks are made from a moment in time travel.
pub fn fork_needs_travel() -> String {
    "F forks from a past moment: t for time travel, move to the record, then F".into()
}

/// Runs a confirmed fork (the app loop's part of `F`); the result is the operator's
/// message: the new folder and the command that continues it, or why it failed.
pub fn fork(dir: &Path, seq: u64, to: &Path) -> String {
    match crate::launch::fork(dir, seq, Some(to), Vec::new()) {
        Ok(forked) => {
            let handed = match forked.handed_back.len() {
                0 => String::new(),
                k => format!(", {k} running attempt(s) handed back"),
            };
            format!(
                "forked at record {seq} into {}{handed}; continue it with: pitboss resume {}",
                forked.dir.display(),
                forked.dir.display()
            )
        }
        Err(e) => format!("fork at record {seq} failed: {e}"),
    }
}

/// What happened at record `n` (the cursor): its kind, task and reason, in the words
/// of `pitboss events`.
pub fn cursor_event(fleet: &Fleet, n: usize) -> String {
    match n.checked_sub(1).and_then(|i| fleet.records.record(i)) {
        Some(record) => describe_record(&record),
        None => format!("record {n} could not be read"),
    }
}

/// One record in a line: `#seq kind: what happened`.
pub fn describe_record(record: &Record) -> String {
    let kind = record.event.kind();
    match describe(&record.event) {
        Some(what) => format!("#{} {kind}: {what}", record.seq),
        None => match record.event.task() {
            Some(task) => format!("#{} {kind}: {task}", record.seq),
            None => format!("#{} {kind}", record.seq),
        },
    }
}

/// The status line while travelling (when no message is up): the record at the cursor.
pub fn status(scene: &Scene) -> Option<String> {
    let n = scene.view.travel?;
    Some(format!("at {}", cursor_event(scene.fleet, n)))
}

/// A worker pane's body in time travel when the attempt's output of then is not
/// held (the log keeps what ran, not its output): says so, and where to look,
/// instead of an empty pane that looks like a silent worker.
pub fn worker_note(scene: &Scene, live: Option<&Live>) -> Option<Vec<Line<'static>>> {
    scene.view.travel?;
    if live.is_some_and(|l| !l.lines.is_empty()) {
        return None;
    }
    let open = scene.keys.key_for(Action::Open);
    let gray = scene.theme.fg(Color::Gray);
    // Short lines: a pane is ~38 columns wide.
    Some(vec![
        Line::styled("running at this record", gray),
        Line::styled("(its output is not in the log)", gray),
        Line::styled(format!("{open}: the task as it was"), gray),
    ])
}

/// The header's reminder that this is the past: where in the log, and when.
pub fn indicator(scene: &Scene) -> Option<Span<'static>> {
    let n = scene.view.travel?;
    Some(Span::styled(
        format!("  ◀ TIME TRAVEL {n}/{} @ {} ▶", scene.total, clock(scene.fleet.last_ts)),
        scene.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD | Modifier::REVERSED),
    ))
}

/// The key bar's entries while travelling.
pub fn hints(keys: &Keymap) -> Vec<Hint> {
    let k = |a: Action| keys.key_for(a);
    vec![
        (format!("{}/{}", k(Action::Left), k(Action::Right)), "step"),
        ("pgup/pgdn".into(), "jump"),
        (k(Action::Fork), "fork here"),
        (k(Action::Help), "help"),
        (k(Action::Back), "live"),
    ]
}

/// What the keys do in time travel (the help overlay's list).
pub const HELP: &[(Action, &str)] = &[
    (Action::Left, "one record back"),
    (Action::Right, "one record forward"),
    (Action::PageUp, "fifty records back"),
    (Action::PageDown, "fifty records forward"),
    (Action::Top, "the first record"),
    (Action::Bottom, "the newest record"),
    (Action::Fork, "fork the run here into a new folder (asks)"),
    (Action::Up, "move up (browse the views as they were)"),
    (Action::Down, "move down"),
    (Action::Open, "open the task as it was"),
    (Action::Dashboard, "dashboard"),
    (Action::Tasks, "tasks"),
    (Action::DeadLetters, "dead letters"),
    (Action::Held, "held tasks"),
    (Action::Timeline, "timeline of the attempts up to here"),
    (Action::Back, "back to the live run (also t)"),
];
