//! The dead letters: grouped by the cause of their failure (numbers masked), so one
//! broken dependency shows as one row however many tasks it killed. `R` replays the
//! selected group, `A` every dead letter (both ask first when more than one task
//! comes back), Enter opens the group's first task.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::tui::actions::{plural, replay_many};
use crate::tui::draw::Scene;
use crate::tui::model::Fleet;
use crate::tui::view::{Request, ViewState};
use crate::tui::widgets::{header_row, selectable};

/// The first task of the selected group: what Enter opens and what retry acts on.
pub fn selected_task(fleet: &Fleet, selected: usize) -> Option<String> {
    fleet.dead_letter_groups().get(selected).and_then(|g| g.tasks.first().cloned())
}

/// `R`: replays every task of the selected group.
pub fn replay_group(vs: &mut ViewState, fleet: &Fleet) -> Vec<Request> {
    let groups = fleet.dead_letter_groups();
    let Some(g) = groups.get(vs.selected) else { return Vec::new() };
    let scope = format!("the {} with this cause", plural(g.tasks.len(), "dead letter"));
    replay_many(vs, fleet, g.tasks.clone(), &scope)
}

/// Ids listed in a group's row at most (the row is narrower than that anyway).
const IDS_SHOWN: usize = 50;

/// Draws one row per cause; only the rows on screen are built.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let groups = scene.fleet.dead_letter_groups();
    let visible = area.height.saturating_sub(3) as usize;
    let first = scene.view.selected.min(groups.len().saturating_sub(1)).saturating_sub(visible.saturating_sub(1));
    let rows: Vec<Row> = groups
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, g)| {
            let mut ids = g.tasks.iter().take(IDS_SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
            if g.tasks.len() > IDS_SHOWN {
                ids += &format!(", … +{} more", g.tasks.len() - IDS_SHOWN);
            }
            let row = Row::new(vec![
                Cell::from(g.tasks.len().to_string()),
                Cell::from(g.attempts.to_string()),
                Cell::from(escape_line(&g.fingerprint).into_owned()),
                Cell::from(escape_line(&ids).into_owned()),
            ]);
            selectable(row, n == scene.view.selected, scene.theme)
        })
        .collect();
    let header = header_row(["TASKS", "ATTEMPTS", "CAUSE", "IDS"]);
    let widths = [Constraint::Length(6), Constraint::Length(9), Constraint::Percentage(55), Constraint::Percentage(45)];
    let title = " Dead letters by cause (R: replay group, A: replay all, Enter: open) ";
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}
