//! The confirm overlay: a destructive action (cancel, bulk replay, quit with work
//! running, an answer to held tasks) waits here for a `y`; every other key is No,
//! the default. A question may span lines: its preview.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::tui::draw::Scene;
use crate::tui::view::{Request, ViewState};
use crate::tui::widgets::popup;

/// A question that must be answered before a destructive action; No is the default.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// The question, ending in what happens on yes.
    pub question: String,
    /// What yes does.
    pub on_yes: Vec<Request>,
}

impl ViewState {
    /// Answers a pending confirmation: only `y` (or `Y`) says yes.
    pub fn answer(&mut self, yes: bool) -> Vec<Request> {
        match self.confirm.take() {
            Some(c) if yes => c.on_yes,
            _ => Vec::new(),
        }
    }
}

/// Draws the question over the middle of `area`: one line of the question per line
/// of the popup (a preview lists tasks and findings on lines of their own).
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene, confirm: &Confirm) {
    let mut text: Vec<Line> = confirm.question.lines().map(|l| Line::from(escape_line(l).into_owned())).collect();
    text.extend([
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", scene.theme.selected()),
            Span::raw(" yes    "),
            Span::styled(" N ", scene.theme.selected().add_modifier(Modifier::BOLD)),
            Span::raw(" no (any other key)"),
        ]),
    ]);
    // A question with a preview (the tasks, what held them) may wrap over several
    // lines; word wrap can take a little more than 60 characters a line.
    let wrapped: usize = confirm.question.lines().map(|l| l.chars().count().div_ceil(60).max(1)).sum();
    popup(frame, area, "Confirm", text, 64, (wrapped as u16 + 5).max(7));
}
