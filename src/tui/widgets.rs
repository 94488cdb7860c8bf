//! Small drawing helpers shared by several screens: a centred popup, a highlighted
//! table row, bold column titles, cutting long text, and where a bordered table's
//! rows are and which of them are shown (the draw and the mouse use the same).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Wrap};
use ratatui::Frame;

use super::theme::Theme;

/// A bordered box of `width`×`height` (clipped to `area`) centred over `area`.
pub fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16, height: u16) {
    let width = width.min(area.width);
    let height = height.min(area.height);
    let rect = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(format!(" {title} "));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), rect);
}

/// A table row, reversed when it is the selected one.
pub fn selectable(row: Row<'_>, selected: bool, theme: Theme) -> Row<'_> {
    if selected {
        row.style(theme.selected())
    } else {
        row
    }
}

/// A table's column titles, in bold.
pub fn header_row<'a>(titles: impl IntoIterator<Item = &'a str>) -> Row<'a> {
    Row::new(titles).style(Style::default().add_modifier(Modifier::BOLD))
}

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Where the rows of a bordered table with a line of column titles are drawn in
/// `area`: what scrolling and mouse clicks count with.
pub fn table_rows(area: Rect) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    Rect { y: inner.y + 1.min(inner.height), height: inner.height.saturating_sub(1), ..inner }
}

/// The first row shown of a table scrolled so that row `selected` is visible in
/// `visible` rows (the selection sits on the last row once it is past the first page).
pub fn first_shown(selected: usize, visible: usize) -> usize {
    selected.saturating_sub(visible.saturating_sub(1))
}
