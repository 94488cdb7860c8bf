//! The dead letters: grouped by the cause of their failure (numbers masked), so one
//! broken dependency shows as one row however many tasks it killed. The tasks filter
//! (`/`) applies here too, to what is shown and to what `R` and `A` replay, and the
//! title shows it (Esc clears it). `R` replays the selected group, `A` every dead
//! letter shown (both ask first when more than one task comes back). Enter opens a
//! group to list its members (each with its state, attempts and full reason); there
//! up/down choose one, Enter opens that task and Esc goes back to the groups. The
//! selection is the cause, not the row (`selection.rs`).

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::tui::actions::{plural, replay_many};
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::model::{DeadLetterGroup, Fleet};
use crate::tui::screens::detail;
use crate::tui::screens::tasks::matches_filter;
use crate::tui::selection::{moved, position, resolve, Selected};
use crate::tui::view::{Request, ViewState};
use crate::tui::widgets::{first_shown, header_row, selectable, table_rows, truncate};

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

/// A dead-letter group opened to list its members.
#[derive(Debug, Clone, PartialEq)]
pub struct Members {
    /// The group's cause (its fingerprint): the group stays open while tasks join or
    /// leave it.
    pub cause: String,
    /// The selected member's id, once one was chosen (else the first).
    pub task: Option<String>,
}

/// The open group's members that the filter shows, in order; empty when the group is
/// gone.
pub fn members(fleet: &Fleet, vs: &ViewState) -> Vec<String> {
    let Some(open) = &vs.dead_letter_members else { return Vec::new() };
    groups(fleet, &vs.filter).into_iter().find(|g| g.fingerprint == open.cause).map(|g| g.tasks).unwrap_or_default()
}

/// The selected member's row among `members`: the chosen task where it still is,
/// else the first.
pub fn member_row(vs: &ViewState, members: &[String]) -> usize {
    let chosen = vs.dead_letter_members.as_ref().and_then(|m| m.task.as_deref());
    chosen.and_then(|t| members.iter().position(|m| m == t)).unwrap_or(0)
}

/// The keys of the dead-letters view that open and walk a group's members; true when
/// the key was used here. Enter on a group opens it; with a group open, up/down move
/// among its members, Enter opens the member's task and Esc closes the group.
pub fn members_key(vs: &mut ViewState, fleet: &Fleet, action: Action) -> bool {
    if vs.dead_letter_members.is_none() {
        if action != Action::Open {
            return false;
        }
        match selected_group(fleet, vs) {
            Ok(g) => vs.dead_letter_members = Some(Members { cause: g.fingerprint, task: None }),
            Err(why) => vs.message = Some(why),
        }
        return true;
    }
    let members = members(fleet, vs);
    let row = member_row(vs, &members);
    let to = match action {
        Action::Back => {
            vs.dead_letter_members = None;
            return true;
        }
        Action::Open => {
            match members.get(row) {
                Some(task) => detail::open(vs, task.clone()),
                None => vs.message = Some("the group has no dead letters now (Esc: back to the groups)".into()),
            }
            return true;
        }
        _ => match moved(row, members.len(), crate::tui::mouse::page_rows(vs, fleet), action) {
            Some(to) => to,
            None => return false,
        },
    };
    if let (Some(open), Some(task)) = (&mut vs.dead_letter_members, members.get(to)) {
        open.task = Some(task.clone());
    }
    true
}

/// What retry and the detail act on: the selected member of an open group, else the
/// first task of the selected group.
pub fn selected_task(fleet: &Fleet, vs: &ViewState) -> Option<String> {
    if vs.dead_letter_members.is_some() {
        let members = members(fleet, vs);
        return members.get(member_row(vs, &members)).cloned();
    }
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

/// Draws one row per cause (only the rows on screen are built), or the open group's
/// members.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let vs = scene.view;
    if let Some(open) = &vs.dead_letter_members {
        return draw_members(frame, area, scene, open);
    }
    let groups = groups(scene.fleet, &vs.filter);
    let visible = table_rows(area).height as usize;
    let selected = resolve(vs, groups.len(), |key| groups.iter().position(|g| g.fingerprint == key));
    let (highlight, gone) = match &selected {
        Selected::Row(row) => (Some(*row), String::new()),
        Selected::Gone(_) => (None, " · the selected cause has no dead letters now ".to_string()),
        Selected::Empty => (None, String::new()),
    };
    let anchor = highlight.unwrap_or(vs.selected).min(groups.len().saturating_sub(1));
    let first = first_shown(anchor, visible);
    // The count and the cause always; the cause cut at a word with "…" to the room
    // left; the ids only where there is room for them too (≥ 98 columns).
    let inner = usize::from(area.width.saturating_sub(2));
    let ids_width = if inner >= 96 { inner / 4 } else { 0 };
    let cause_width = inner.saturating_sub(6 + 8 + 2 + if ids_width > 0 { ids_width + 1 } else { 0 });
    let rows: Vec<Row> = groups
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, g)| {
            let mut cells = vec![
                Cell::from(g.tasks.len().to_string()),
                Cell::from(g.attempts.to_string()),
                Cell::from(fit(&escape_line(&g.fingerprint), cause_width)),
            ];
            if ids_width > 0 {
                let mut ids = g.tasks.iter().take(IDS_SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
                if g.tasks.len() > IDS_SHOWN {
                    ids += &format!(", … +{} more", g.tasks.len() - IDS_SHOWN);
                }
                cells.push(Cell::from(fit(&escape_line(&ids), ids_width)));
            }
            selectable(Row::new(cells), Some(n) == highlight, scene.theme)
        })
        .collect();
    let mut titles = vec!["TASKS", "ATTEMPTS", "CAUSE"];
    let mut widths = vec![Constraint::Length(6), Constraint::Length(8), Constraint::Length(cause_width as u16)];
    if ids_width > 0 {
        titles.push("IDS");
        widths.push(Constraint::Length(ids_width as u16));
    }
    let at = position(
        highlight,
        groups.len(),
        (!vs.filter.trim().is_empty()).then(|| scene.fleet.dead_letter_groups().len()),
    );
    let long = format!(
        " Dead letters by cause {at} {}(R: replay group, A: replay all, Enter: open){gone} ",
        filter_note(&vs.filter)
    );
    let title = if long.chars().count() <= inner {
        long
    } else {
        format!(" Dead letters {at} {}(R/A: replay, Enter: open){gone} ", filter_note(&vs.filter))
    };
    frame.render_widget(
        Table::new(rows, widths).header(header_row(titles)).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// `s` in at most `max` columns: whole when it fits, else cut at the last word
/// boundary that keeps at least half of the room, ending in "…" (so a reason does
/// not end in a fragment like "con"; a single long word is cut in it).
pub fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max <= 1 {
        return "…".repeat(max);
    }
    let kept: String = s.chars().take(max - 1).collect();
    // Kept whole when the cut falls between two words.
    let at_word_end = s.chars().nth(max - 1).is_some_and(char::is_whitespace);
    let cut = match kept.rfind(' ') {
        _ if at_word_end => kept.as_str(),
        Some(at) if kept[..at].chars().count() * 2 >= max - 1 => &kept[..at],
        _ => kept.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ':', ',', ';', '(']))
}

/// The open group's members: id, state, attempts and the full reason, one a row.
fn draw_members(frame: &mut Frame, area: Rect, scene: &Scene, open: &Members) {
    let fleet = scene.fleet;
    let vs = scene.view;
    let members = members(fleet, vs);
    let selected = member_row(vs, &members);
    let visible = table_rows(area).height as usize;
    let first = first_shown(selected, visible);
    // The id as wide as the longest (at most a third), the state, the attempts, and
    // the reason in the rest, cut at a word with "…".
    let inner = usize::from(area.width.saturating_sub(2));
    let id_width = members.iter().map(|m| m.chars().count()).max().unwrap_or(4).clamp(4, (inner / 3).max(4));
    let reason_width = inner.saturating_sub(id_width + 13 + 8 + 3);
    let rows: Vec<Row> = members
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, id)| {
            let task = fleet.state.task_index(id).map(|i| &fleet.state.tasks[i]);
            let state = task.map_or_else(|| "gone".to_string(), |t| t.state.name().as_str().to_string());
            let attempts = task.map_or(0, |t| t.attempts);
            let why = task.and_then(|t| t.why()).unwrap_or_default();
            let line = Row::new(vec![
                Cell::from(fit(&escape_line(id), id_width)),
                Cell::from(state),
                Cell::from(attempts.to_string()),
                Cell::from(fit(&escape_line(&why), reason_width)),
            ]);
            selectable(line, n == selected, scene.theme)
        })
        .collect();
    let header = header_row(["TASK", "STATE", "ATTEMPTS", "REASON"]);
    let widths = [
        Constraint::Length(id_width as u16),
        Constraint::Length(13),
        Constraint::Length(8),
        Constraint::Length(reason_width as u16),
    ];
    let at = position(Some(selected), members.len(), None);
    let long = format!(
        " Dead letters · {at} with cause {} {}(Enter: open task, r: retry, R: replay group, Esc: groups) ",
        escape_line(&truncate(&open.cause, 60)),
        filter_note(&vs.filter)
    );
    // Narrower: the short keys, and the cause cut to the room left (or left out).
    let tail = format!(" {}(Enter: open, Esc: groups) ", filter_note(&vs.filter));
    let head = format!(" Dead letters · {at} with cause ");
    let room = inner.saturating_sub(head.chars().count() + tail.chars().count() + 2);
    let title = if long.chars().count() <= inner {
        long
    } else if room >= 30 {
        format!("{head}{}{tail}", fit(&escape_line(&open.cause), room))
    } else {
        format!(" Dead letters · {at} with this cause{tail}")
    };
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}
