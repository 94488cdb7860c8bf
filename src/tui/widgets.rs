//! Small drawing helpers shared by several screens: a centred popup, a highlighted
//! table row, bold column titles, and cutting long text.

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
