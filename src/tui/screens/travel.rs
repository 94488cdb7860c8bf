//! Time travel: the whole UI shows the run as of its Nth record (the app loop folds
//! the log's first N records into a model of their own, the same fold as replay).
//! ←/→ step one record, page keys fifty, top/bottom to the ends; the screens can be
//! browsed but nothing can be changed; Esc (or `t`) returns to the live run.

use ratatui::style::{Color, Modifier};
use ratatui::text::Span;

use crate::core::text::clock;
use crate::tui::actions;
use crate::tui::draw::{Hint, Scene};
use crate::tui::keys::{Action, Keymap};
use crate::tui::model::Fleet;
use crate::tui::view::{Request, ViewState};

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
        Action::Up
        | Action::Down
        | Action::Open
        | Action::Dashboard
        | Action::Tasks
        | Action::DeadLetters
        | Action::Held => return vs.navigate(fleet, action),
        _ => vs.message = Some("time travel is read-only: Esc returns to the live run".into()),
    }
    Vec::new()
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
        (k(Action::Back), "live"),
    ]
}
