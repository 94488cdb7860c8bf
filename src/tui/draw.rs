//! One frame: the header, the current screen, the status line and the key bar, with
//! the help and confirm overlays on top. Pure functions of (read model, view state,
//! keymap, now): they take shared references only and decide nothing about the run.
//! Each screen draws itself (`screens/`); what a key does lives in `update.rs` and the
//! screens, what the run is lives in `model.rs`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::keys::{Action, Keymap};
use super::model::Fleet;
use super::screens::{
    confirm, dashboard, dead_letters, detail, disagreement, held, help, palette, tasks, timeline, travel,
};
use super::view::{Screen, ViewState};
use crate::core::escape::escape_line;
use crate::core::TaskStateName;

pub use super::theme::Theme;

/// Everything one frame needs.
pub struct Scene<'a> {
    /// The run as shown (live, or as of the travelled-to record).
    pub fleet: &'a Fleet,
    /// Records in the live log (for the time-travel indicator).
    pub total: usize,
    /// Screen state.
    pub view: &'a ViewState,
    /// Keys, for the help texts.
    pub keys: &'a Keymap,
    /// Now, for elapsed times (in time travel: the travelled-to record's time).
    pub now_ms: u64,
    /// Colours.
    pub theme: Theme,
}

/// A key bar entry: the key's name and what it does.
pub type Hint = (String, &'static str);

/// The smallest terminal the screens are drawn in: the key bar keeps help and quit,
/// the dead letters keep their count and cause, and a table shows a few rows. Below
/// it the whole screen says so, and resizing back draws everything again (the 100×10
/// and 80×10 renders of the tests are above it on purpose: a short terminal still
/// shows a table).
pub const MIN_SIZE: (u16, u16) = (60, 10);

/// Draws one frame.
pub fn draw(frame: &mut Frame, scene: &Scene) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        return too_small(frame, area, scene);
    }
    let rows = frame_rows(area);
    header(frame, rows[0], scene);
    match &scene.view.screen {
        Screen::Dashboard => dashboard::draw(frame, rows[1], scene),
        Screen::Tasks => tasks::draw(frame, rows[1], scene),
        Screen::DeadLetters => dead_letters::draw(frame, rows[1], scene),
        Screen::Detail(d) => detail::draw(frame, rows[1], scene, d),
        Screen::Disagreement(s) => disagreement::draw(frame, rows[1], &s.data, &s.view, scene.theme),
        Screen::Held(view) => held::draw(frame, rows[1], scene, view),
        Screen::Timeline => timeline::draw(frame, rows[1], scene),
    }
    status_line(frame, rows[2], scene);
    key_bar(frame, rows[3], scene);
    if scene.view.help {
        help::draw(frame, area, scene);
    }
    if let Some(question) = &scene.view.confirm {
        confirm::draw(frame, area, scene, question);
    }
}

/// The frame's rows: header, screen, status line, key bar (the mouse hit-tests with
/// the same layout, `mouse.rs`).
pub fn frame_rows(area: Rect) -> [Rect; 4] {
    Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1), Constraint::Length(1)])
        .areas(area)
}

/// The whole screen when the terminal is below [`MIN_SIZE`]: what it needs and has,
/// and how to leave (keys still work: `q` asks as usual).
fn too_small(frame: &mut Frame, area: Rect, scene: &Scene) {
    let (w, h) = MIN_SIZE;
    let text = format!(
        "terminal too small (need {w}×{h}, have {}×{}): enlarge it, or {} to quit",
        area.width,
        area.height,
        scene.keys.key_for(Action::Quit)
    );
    let top = area.height.saturating_sub(1) / 2;
    let lines: Vec<Line> = std::iter::repeat_n(Line::from(""), usize::from(top)).chain([Line::from(text)]).collect();
    frame.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }), area);
    // A question asked from here (`q`) is still shown, however cramped.
    if let Some(question) = &scene.view.confirm {
        confirm::draw(frame, area, scene, question);
    }
}

/// The header line (built in `header.rs`, fitted to the width).
fn header(frame: &mut Frame, area: Rect, scene: &Scene) {
    frame.render_widget(Paragraph::new(super::header::line(scene, area.width)), area);
}

/// The open text field (`:` palette or `/` filter) with its cursor, else the last
/// message. A field longer than the line scrolls sideways to keep the cursor in view.
fn status_line(frame: &mut Frame, area: Rect, scene: &Scene) {
    let vs = scene.view;
    let field = match (&vs.palette, &vs.filter_input) {
        (Some(input), _) => Some((":", input)),
        (None, Some(input)) => Some(("/", input)),
        (None, None) => None,
    };
    if let Some((prefix, input)) = field {
        let [mark, text] = Layout::horizontal([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(Span::styled(prefix, Style::default().add_modifier(Modifier::BOLD))), mark);
        let (scroll, cursor) = palette::window(input, text.width);
        // Typed text is shown escaped like worker text (a pasted control character
        // must not reach the terminal).
        let value = escape_line(input.value()).into_owned();
        frame.render_widget(Paragraph::new(value).scroll((0, scroll)), text);
        frame.set_cursor_position((text.x + cursor.min(text.width.saturating_sub(1)), area.y));
        return;
    }
    let line = if let Some(message) = &vs.message {
        // Messages quote task ids and engine answers: escaped like worker text.
        Line::from(Span::styled(escape_line(message).into_owned(), scene.theme.fg(Color::Yellow)))
    } else if let Some(at) = travel::status(scene) {
        // Time travel names the record at the cursor (log text: escaped).
        Line::from(Span::styled(escape_line(&at).into_owned(), scene.theme.fg(Color::Yellow)))
    } else {
        Line::from("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The main keys of the current view, always visible.
fn key_bar(frame: &mut Frame, area: Rect, scene: &Scene) {
    if scene.view.palette.is_some() {
        return palette_bar(frame, area, scene);
    }
    let keys = scene.keys;
    let k = |a: Action| keys.key_for(a);
    let mut hints: Vec<Hint> = if scene.view.travel.is_some() {
        travel::hints(keys)
    } else {
        let mut h = vec![
            (k(Action::Help), "help"),
            (k(Action::Palette), "command"),
            (k(Action::Filter), if matches!(scene.view.screen, Screen::Detail(_)) { "search" } else { "filter" }),
        ];
        match scene.view.screen {
            Screen::Detail(ref d) => {
                h.extend(detail::hints(keys));
                h.extend(detail::votes_hint(scene.fleet, d, keys));
            }
            Screen::Disagreement(_) => h.extend(disagreement::hints(keys)),
            // The Held view's own keys replace the filter and the views (its bar
            // must keep mark / approve / reject at 80 columns).
            Screen::Held(_) => h = vec![(k(Action::Help), "help")].into_iter().chain(held::hints(keys)).collect(),
            _ => h.extend([
                ("1/2/3".to_string(), "views"),
                (k(Action::Open), "open"),
                (k(Action::Retry), "retry"),
                (k(Action::Cancel), "cancel"),
                (k(Action::Replay), "replay"),
                (k(Action::Travel), "travel"),
            ]),
        }
        let on_held = matches!(scene.view.screen, Screen::Held(_));
        if scene.fleet.state.count(TaskStateName::AwaitingApproval) > 0 && !on_held {
            // Only while tasks are held, so the bar is unchanged otherwise; early in
            // the bar, since a narrow terminal drops hints from its end.
            let at = h.len().min(3);
            h.splice(at..at, [(k(Action::Approve), "approve"), (k(Action::Reject), "reject")]);
        }
        h.push((k(Action::Quit), "quit"));
        h
    };
    // Narrow terminals drop hints from the middle; help and quit always stay.
    let width = |h: &[Hint]| h.iter().map(|(k, w)| k.chars().count() + w.len() + 4).sum::<usize>();
    while hints.len() > 2 && width(&hints) > area.width as usize {
        hints.remove(hints.len() - 2);
    }
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key} "), scene.theme.selected()));
        spans.push(Span::raw(format!(" {what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Under the open palette: its note (why a line was refused, Tab's candidates), else
/// the palette's own keys.
fn palette_bar(frame: &mut Frame, area: Rect, scene: &Scene) {
    let line = match &scene.view.palette_memory.note {
        Some(note) => Line::from(Span::styled(escape_line(note).into_owned(), scene.theme.fg(Color::Yellow))),
        None => {
            let hints =
                [("enter", "run"), ("tab", "complete"), ("↑/↓", "history"), ("ctrl-u/w", "delete"), ("esc", "close")];
            let mut spans = Vec::new();
            for (key, what) in hints {
                spans.push(Span::styled(format!(" {key} "), scene.theme.selected()));
                spans.push(Span::raw(format!(" {what} ")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}
