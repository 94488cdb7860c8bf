//! The help overlay: the keys the current screen accepts, named as the keymap binds
//! them (so a remapped key shows its new name). Any key closes it (`update.rs`).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::Frame;

use super::{detail, disagreement, held, travel};
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::view::Screen;
use crate::tui::widgets::popup;

/// What the keys do on the dashboard and the tables.
const TABLES: &[(Action, &str)] = &[
    (Action::Up, "move up"),
    (Action::Down, "move down"),
    (Action::Top, "first row"),
    (Action::Bottom, "last row"),
    (Action::Open, "open the task"),
    (Action::Dashboard, "dashboard"),
    (Action::Tasks, "tasks"),
    (Action::DeadLetters, "dead letters"),
    (Action::Held, "held tasks: approve / reject several"),
    (Action::Timeline, "timeline of recent attempts per pool"),
    (Action::PageDown, "dashboard: next page of worker panes (pgup: previous)"),
    (Action::NextPane, "next view"),
    (Action::Sort, "sort the tasks table"),
    (Action::Retry, "retry the task"),
    (Action::Cancel, "cancel the task (asks)"),
    (Action::Replay, "replay the dead letter / group"),
    (Action::ReplayAll, "replay all (filtered) dead letters (asks)"),
    (Action::EditPayload, "edit the task's payload"),
    (Action::Approve, "approve the held task (asks)"),
    (Action::Reject, "reject the held task (asks)"),
    (Action::Travel, "time travel over the whole run"),
];

/// Draws the help popup over the middle of `area`.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let k = |a: Action| scene.keys.key_for(a);
    let mut lines = vec![Line::styled(
        "Keys (remap in keys.toml in the pitboss config dir)",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let entries = match scene.view.screen {
        // Time travel answers its own keys first, whatever screen is browsed.
        _ if scene.view.travel.is_some() => travel::HELP,
        Screen::Detail(_) => detail::HELP,
        Screen::Disagreement(_) => disagreement::HELP,
        Screen::Held(_) => held::HELP,
        _ => TABLES,
    };
    for (action, what) in entries {
        lines.push(Line::from(format!("{:>8}  {what}", k(*action))));
    }
    // The filter and the palette change things: time travel refuses them.
    if scene.view.travel.is_none() {
        command_lines(&mut lines, scene);
    }
    lines.push(Line::from(format!("{:>8}  quit (asks when work is running)", k(Action::Quit))));
    let height = lines.len() as u16 + 2;
    popup(frame, area, "Help (any key closes)", lines, 78, height);
}

/// The filter's and the palette's lines.
fn command_lines(lines: &mut Vec<Line>, scene: &Scene) {
    let k = |a: Action| scene.keys.key_for(a);
    lines.push(Line::from(format!(
        "{:>8}  filter: words, state:NAME, pool:NAME ({} clears it)",
        k(Action::Filter),
        k(Action::Back)
    )));
    lines.push(Line::from(format!(
        "{:>8}  commands: retry|cancel|replay|inspect ID, replay all, filter …, travel, quit,",
        k(Action::Palette)
    )));
    lines.push(Line::from("          pause|resume POOL|all, concurrency POOL N, breaker reset|trip POOL"));
    lines.push(Line::from("          approve|reject ID (a task held by the input guard)"));
}
