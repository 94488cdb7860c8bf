//! The dead letters: grouped by the cause of their failure (numbers masked), so one
//! broken dependency shows as one row however many tasks it killed. The tasks filter
//! (`/`) applies here too, to what is shown and to what `R` and `A` replay, and the
//! title shows it (Esc clears it). `R` replays the selected group, `A` every dead
//! letter shown (both ask first when more than one task comes back), Enter opens the
//! group's first task. The selection is the cause, not the row (`selection.rs`).

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::tui::actions::{plural, replay_many};
use crate::tui::draw::Scene;
use crate::tui::model::{DeadLetterGroup, Fleet};
use crate::tui::screens::tasks::matches_filter;
use crate::tui::selection::{resolve, Selected};
use crate::tui::view::{Request, ViewState};
use crate::tui::widgets::{header_row, selectable};

/// The dead letters by cause, each group cut to its tasks that match `filter` (groups
/// left empty are not shown). Costs the dead letters, not the tasks.
pub fn groups(fleet: &Fleet, filter: &str) -> Vec<DeadLetterGroup> {
    let mut groups = fleet.dead_letter_groups();
    if filter.trim().is_empty() {
        return groups;
    }
    for g in &mut groups {
        g.tasks.retain(|id| fleet.state.task_index(id).is_some_and(|i| matches_filter(fleet, i, filter)));
        g.attempts =
            g.tasks.iter().filter_map(|id| fleet.state.task_index(id)).map(|i| fleet.state.tasks[i].attempts).sum();
    }
    groups.retain(|g| !g.tasks.is_empty());
    groups
}

/// The selected group, if it is shown.
fn selected_group(fleet: &Fleet, vs: &ViewState) -> Result<DeadLetterGroup, String> {
    let mut groups = groups(fleet, &vs.filter);
    match resolve(vs, groups.len(), |key| groups.iter().position(|g| g.fingerprint == key)) {
        Selected::Row(row) => Ok(groups.swap_remove(row)),
        Selected::Gone(cause) => {
            Err(format!("no dead letter has the selected cause any more ({cause}): move to select another"))
        }
        Selected::Empty if vs.filter.is_empty() => Err("no dead letters".to_string()),
        Selected::Empty => Err(format!("no dead letter matches the filter {:?} (Esc clears it)", vs.filter)),
    }
}

/// The first task of the selected group: what Enter opens and what retry acts on.
pub fn selected_task(fleet: &Fleet, vs: &ViewState) -> Option<String> {
    selected_group(fleet, vs).ok().and_then(|g| g.tasks.first().cloned())
}

/// `R`: replays every task of the selected group that the filter shows.
pub fn replay_group(vs: &mut ViewState, fleet: &Fleet) -> Vec<Request> {
    match selected_group(fleet, vs) {
        Ok(g) => {
            let scope = format!("the {} with this cause", plural(g.tasks.len(), "dead letter"));
            replay_many(vs, fleet, g.tasks, &scope)
        }
        Err(why) => {
            vs.message = Some(format!("nothing replayed: {why}"));
            Vec::new()
        }
    }
}

/// " filter: x " in a title while a filter is on.
pub fn filter_note(filter: &str) -> String {
    if filter.is_empty() {
        String::new()
    } else {
        format!("· filter: {} (Esc clears) ", escape_line(filter))
    }
}

/// Ids listed in a group's row at most (the row is narrower than that anyway).
const IDS_SHOWN: usize = 50;

/// Draws one row per cause; only the rows on screen are built.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let vs = scene.view;
    let groups = groups(scene.fleet, &vs.filter);
    let visible = area.height.saturating_sub(3) as usize;
    let selected = resolve(vs, groups.len(), |key| groups.iter().position(|g| g.fingerprint == key));
    let (highlight, gone) = match &selected {
        Selected::Row(row) => (Some(*row), String::new()),
        Selected::Gone(_) => (None, " · the selected cause has no dead letters now ".to_string()),
        Selected::Empty => (None, String::new()),
    };
    let anchor = highlight.unwrap_or(vs.selected).min(groups.len().saturating_sub(1));
    let first = anchor.saturating_sub(visible.saturating_sub(1));
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
            selectable(row, Some(n) == highlight, scene.theme)
        })
        .collect();
    let header = header_row(["TASKS", "ATTEMPTS", "CAUSE", "IDS"]);
    let widths = [Constraint::Length(6), Constraint::Length(9), Constraint::Percentage(55), Constraint::Percentage(45)];
    let title = format!(
        " Dead letters by cause {}(R: replay group, A: replay all, Enter: open){gone} ",
        filter_note(&vs.filter)
    );
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}
