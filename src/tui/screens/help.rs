//! The help overlay: the keys the current screen accepts, named as the keymap binds
//! them (so a remapped key shows its new name), then the keys of the text fields, the
//! filter's words, and the terminal keys. It scrolls: up/down/PgUp/PgDn/g/G move it,
//! Esc, `q` and `?` close it, other keys are ignored ([`key`]), so a long list is
//! readable at 80×24.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{detail, disagreement, held, travel};
use crate::tui::draw::Scene;
use crate::tui::keys::{Action, Keymap};
use crate::tui::view::{Screen, ViewState};

/// What the keys do on the dashboard and the tables.
const TABLES: &[(Action, &str)] = &[
    (Action::Up, "move up"),
    (Action::Down, "move down"),
    (Action::Top, "first row"),
    (Action::Bottom, "last row"),
    (Action::PageDown, "a page down (dashboard: the next page of worker panes)"),
    (Action::PageUp, "a page up (dashboard: the previous page)"),
    (Action::HalfPageDown, "half a page down"),
    (Action::HalfPageUp, "half a page up"),
    (Action::Open, "open the task (dead letters: open the group)"),
    (Action::Back, "clear the filter / close the open group"),
    (Action::Dashboard, "dashboard"),
    (Action::Tasks, "tasks"),
    (Action::DeadLetters, "dead letters, grouped by cause"),
    (Action::Held, "held tasks: approve / reject several"),
    (Action::Timeline, "timeline of recent attempts per pool"),
    (Action::NextPane, "next view"),
    (Action::Sort, "sort the tasks table by the next column"),
    (Action::SortReverse, "reverse the tasks table's order"),
    (Action::Retry, "retry the task"),
    (Action::RetryContinue, "retry the task, continuing its agent session"),
    (Action::Cancel, "cancel the task (asks)"),
    (Action::Replay, "replay the dead letter / the selected group (asks)"),
    (Action::ReplayAll, "replay all (filtered) dead letters (asks)"),
    (Action::EditPayload, "edit the task's payload in the palette"),
    (Action::EditInEditor, "edit the task's payload in $VISUAL / $EDITOR"),
    (Action::Approve, "approve the held task (asks)"),
    (Action::Reject, "reject the held task (asks)"),
    (Action::Travel, "time travel over the whole run"),
];

/// The help's lines for the current view, title first.
pub fn lines(vs: &ViewState, keys: &Keymap) -> Vec<Line<'static>> {
    let k = |a: Action| keys.key_for(a);
    let mut lines = vec![Line::styled(
        "Keys (remap in keys.toml in the pitboss config dir)",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let entries = match vs.screen {
        // Time travel answers its own keys first, whatever screen is browsed.
        _ if vs.travel.is_some() => travel::HELP,
        Screen::Detail(_) => detail::HELP,
        Screen::Disagreement(_) => disagreement::HELP,
        Screen::Held(_) => held::HELP,
        _ => TABLES,
    };
    for (action, what) in entries {
        lines.push(Line::from(format!("{:>8}  {what}", k(*action))));
    }
    // The filter and the palette change things: time travel refuses them.
    if vs.travel.is_none() {
        command_lines(&mut lines, keys);
    }
    lines.push(Line::from(format!("{:>8}  quit (asks when work is running; ctrl-c twice quits)", k(Action::Quit))));
    lines.push(Line::from("  ctrl-z  suspend pitboss (fg brings it back; the run goes on)"));
    lines.push(Line::from("          help: j/k, PgUp/PgDn, g/G scroll; esc, q or ? closes"));
    lines
}

/// The filter's and the palette's lines.
fn command_lines(lines: &mut Vec<Line<'static>>, keys: &Keymap) {
    let k = |a: Action| keys.key_for(a);
    let text = [
        String::new(),
        format!("{:>8}  filter the tasks and the dead letters; every word must match:", k(Action::Filter)),
        "          state:NAME (state:dead, state:running…), pool:NAME,".to_string(),
        "          stalled (a stalled attempt), or text in id, state, pool, error".to_string(),
        format!("          enter keeps it, {} clears it", k(Action::Back)),
        format!("{:>8}  commands: retry|cancel|replay|inspect ID, replay all,", k(Action::Palette)),
        "          payload ID JSON, pause|resume POOL|all, concurrency POOL N,".to_string(),
        "          breaker reset|trip POOL, approve|reject ID, submit FILE,".to_string(),
        "          filter WORDS, travel [N], quit".to_string(),
        "          in the palette: tab completes (lists candidates), ↑/↓ history,".to_string(),
        "          ctrl-u deletes to the start, ctrl-w a word, esc closes".to_string(),
        String::new(),
    ];
    lines.extend(text.into_iter().map(Line::from));
}

/// Lines the help can scroll by with `rows` terminal rows: so the last line ends at
/// the bottom of the popup.
pub fn max_scroll(vs: &ViewState, rows: u16) -> usize {
    let count = lines(vs, &Keymap::default()).len();
    count.saturating_sub(visible(rows))
}

/// Lines of help shown in a terminal of `rows` rows (the popup's borders taken off).
fn visible(rows: u16) -> usize {
    usize::from(rows.saturating_sub(2)).max(1)
}

/// A key while help is open: scrolls it or closes it; every other key is ignored (the
/// operator reads, nothing under the overlay moves).
pub fn key(vs: &mut ViewState, action: Action) {
    let max = max_scroll(vs, vs.terminal.height);
    let page = visible(vs.terminal.height).saturating_sub(1).max(1);
    let at = vs.help_scroll.min(max);
    vs.help_scroll = match action {
        Action::Up => at.saturating_sub(1),
        Action::Down => (at + 1).min(max),
        Action::PageUp => at.saturating_sub(page),
        Action::PageDown => (at + page).min(max),
        Action::Top => 0,
        Action::Bottom => max,
        Action::Back | Action::Help | Action::Quit => {
            vs.help = false;
            0
        }
        _ => at,
    };
}

/// Draws the help popup over `area`, scrolled; its title says where it is.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let lines = lines(scene.view, scene.keys);
    let width = 78.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let shown = usize::from(height.saturating_sub(2));
    let max = lines.len().saturating_sub(shown);
    let scroll = scene.view.help_scroll.min(max);
    let last = (scroll + shown).min(lines.len());
    let title = if max == 0 {
        " Help (esc closes) ".to_string()
    } else {
        format!(" Help {}-{last}/{} (j/k scroll, esc closes) ", scroll + 1, lines.len())
    };
    let rect = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(title);
    let text: Vec<Line> = lines.into_iter().skip(scroll).take(shown).collect();
    frame.render_widget(Paragraph::new(text).block(block), rect);
}
