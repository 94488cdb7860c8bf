//! The tasks table: every task, filtered (`/`: words, `state:NAME`, `pool:NAME`) and
//! sorted (`s` cycles the column). Only the visible rows are built, so a 10,000-task
//! run draws as fast as a small one.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;
use tui_input::Input;

use crate::core::escape::escape_line;
use crate::core::text::human_ms;
use crate::core::{Event, TaskState, TaskStateName};
use crate::tui::draw::Scene;
use crate::tui::model::Fleet;
use crate::tui::selection::{gone_note, resolve, task_position, Selected};
use crate::tui::view::{Screen, TextKey, ViewState};
use crate::tui::widgets::{header_row, selectable};

/// Column the tasks table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Workflow order.
    Workflow,
    /// Task id.
    Id,
    /// State, in life-cycle order.
    State,
    /// Pool of the latest attempt.
    Pool,
    /// Attempts, most first.
    Attempts,
}

impl SortKey {
    fn next(self) -> SortKey {
        match self {
            SortKey::Workflow => SortKey::Id,
            SortKey::Id => SortKey::State,
            SortKey::State => SortKey::Pool,
            SortKey::Pool => SortKey::Attempts,
            SortKey::Attempts => SortKey::Workflow,
        }
    }

    /// Column name for the header.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Workflow => "workflow order",
            SortKey::Id => "id",
            SortKey::State => "state",
            SortKey::Pool => "pool",
            SortKey::Attempts => "attempts",
        }
    }
}

/// Tasks shown in the tasks table, filtered and sorted.
pub fn task_rows(fleet: &Fleet, vs: &ViewState) -> Vec<usize> {
    let state = &fleet.state;
    let mut rows: Vec<usize> = if vs.filter.trim().is_empty() {
        // No filter: no per-task text to build (100,000 tasks cost a copy of indices).
        (0..state.tasks.len()).collect()
    } else {
        (0..state.tasks.len()).filter(|&i| matches_filter(fleet, i, &vs.filter)).collect()
    };
    if vs.sort != SortKey::Workflow {
        rows.sort_by(|&a, &b| compare(fleet, vs.sort, a, b));
    }
    rows
}

/// The order of tasks `a` and `b` in the table sorted by `sort` (workflow order
/// among equals, as a stable sort leaves them).
pub fn compare(fleet: &Fleet, sort: SortKey, a: usize, b: usize) -> std::cmp::Ordering {
    let state = &fleet.state;
    let name_rank = |i: usize| TaskStateName::ALL.iter().position(|n| *n == state.tasks[i].state.name());
    let by = match sort {
        SortKey::Workflow => std::cmp::Ordering::Equal,
        SortKey::Id => state.task_id(a).cmp(state.task_id(b)),
        SortKey::State => name_rank(a).cmp(&name_rank(b)),
        SortKey::Pool => state.tasks[a].pool.cmp(&state.tasks[b].pool),
        SortKey::Attempts => state.tasks[b].attempts.cmp(&state.tasks[a].attempts),
    };
    by.then(a.cmp(&b))
}

/// Does task `i` match the filter? Words must all match: `state:NAME`, `pool:NAME`,
/// `stalled` (a running attempt flagged stalled), or text found in the id, state, pool or error.
pub fn matches_filter(fleet: &Fleet, i: usize, filter: &str) -> bool {
    let task = &fleet.state.tasks[i];
    let id = fleet.state.task_id(i);
    let state = task.state.name().as_str();
    let pool = task.pool.as_deref().unwrap_or("");
    let error = error_of(fleet, i).unwrap_or_default().to_lowercase();
    filter.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        if word == "stalled" || word == "state:stalled" {
            // A stalled attempt is `running` in the state machine; the header counts
            // it as stalled, and this word finds it (as well as the text "stalled").
            task.state.is_stalled() || id.to_lowercase().contains("stalled") || error.contains("stalled")
        } else if let Some(s) = word.strip_prefix("state:") {
            state.starts_with(s)
        } else if let Some(p) = word.strip_prefix("pool:") {
            pool == p
        } else {
            id.to_lowercase().contains(&word) || state.contains(&word) || pool.contains(&word) || error.contains(&word)
        }
    })
}

/// The error shown for a task: why it ended, or its latest failure.
pub fn error_of(fleet: &Fleet, i: usize) -> Option<String> {
    fleet.state.tasks[i].why()
}

/// The last column: a running consensus task's votes so far (`2/3 votes`), then
/// the error.
fn votes_and_error(fleet: &Fleet, i: usize) -> String {
    let error = error_of(fleet, i).unwrap_or_default();
    match fleet.votes_in(i) {
        Some((n, of)) if error.is_empty() => format!("{n}/{of} votes"),
        Some((n, of)) => format!("{n}/{of} votes · {error}"),
        None => error,
    }
}

/// `s`: the next sort column.
pub fn cycle_sort(vs: &mut ViewState) {
    vs.sort = vs.sort.next();
    vs.message = Some(format!("sorted by {}", vs.sort.name()));
}

/// `/`: opens the filter field on the current filter.
pub fn open_filter(vs: &mut ViewState) {
    vs.filter_input = Some(Input::new(vs.filter.clone()));
}

/// A key typed into the open filter field. The table follows the typing; Enter keeps
/// the filter and shows the filtered table (the dead letters stay up when they are,
/// else the tasks table), Esc closes the field. The selected task stays selected
/// while the filter shows it, else the first row is.
pub fn type_filter(vs: &mut ViewState, fleet: &Fleet, key: TextKey) {
    let Some(input) = &mut vs.filter_input else { return };
    match key {
        TextKey::Enter => {
            let filter = input.value().trim().to_string();
            vs.filter_input = None;
            let screen = if vs.screen == Screen::DeadLetters { Screen::DeadLetters } else { Screen::Tasks };
            set_filter(vs, fleet, filter, screen);
        }
        TextKey::Esc => vs.filter_input = None,
        other => {
            other.edit(input);
            // Live filtering: the table follows the typing.
            let filter = input.value().trim().to_string();
            let screen = vs.screen.clone();
            set_filter(vs, fleet, filter, screen);
        }
    }
}

/// Sets the filter and shows `screen` filtered by it (the palette's `filter` too).
pub fn set_filter(vs: &mut ViewState, fleet: &Fleet, filter: String, screen: Screen) {
    vs.filter = filter;
    if vs.screen != screen {
        vs.screen = screen;
        vs.pinned = None;
        vs.selected = 0;
    }
    vs.repin(fleet);
}

/// A left click at terminal row `y` (of a terminal `height` rows high) selects the
/// task drawn there.
pub fn click(vs: &mut ViewState, fleet: &Fleet, y: u16, height: u16) {
    // Header line, border and column titles come before the first row.
    let first_row_y = 3;
    if y >= first_row_y {
        let visible = height.saturating_sub(7) as usize;
        let (keys, selected) = vs.selection(fleet);
        let at = match selected {
            Selected::Row(row) => row,
            _ => vs.selected.min(keys.len().saturating_sub(1)),
        };
        let first = at.saturating_sub(visible.saturating_sub(1));
        let clicked = first + (y - first_row_y) as usize;
        if clicked < keys.len() {
            vs.pin_row(&keys, clicked);
        }
    }
}

/// Duration of the latest attempt (running: so far).
fn duration_of(fleet: &Fleet, i: usize, now_ms: u64) -> Option<u64> {
    if let TaskState::Running { started_ms, .. } = fleet.state.tasks[i].state {
        return Some(now_ms.saturating_sub(started_ms));
    }
    // Only a history the model keeps already: one read from disk per row would cost
    // the log per row (a model opened on a folder shows it once the task was opened).
    fleet.kept_history(i)?.iter().rev().find_map(|step| match &step.event {
        Event::AttemptSucceeded { duration_ms, .. } | Event::AttemptFailed { duration_ms, .. } => Some(*duration_ms),
        _ => None,
    })
}

/// Draws the table, scrolled so that the selected row is visible.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let vs = scene.view;
    let rows = task_rows(fleet, vs);
    let filter = if vs.filter.is_empty() { String::new() } else { format!(" filter: {} ", escape_line(&vs.filter)) };
    // The selection is a task, looked up among the rows (one pass over the rows the
    // frame has built anyway); a selected task the filter no longer shows is named.
    let (highlight, gone) = match resolve(vs, rows.len(), |id| task_position(fleet, &rows, id)) {
        Selected::Row(row) => (Some(row), String::new()),
        Selected::Gone(id) => (None, escape_line(&gone_note(fleet, &id)).into_owned()),
        Selected::Empty => (None, String::new()),
    };
    let title = format!(" Tasks {}/{} · sort: {} {filter}{gone}", rows.len(), fleet.state.tasks.len(), vs.sort.name());
    let block = Block::default().borders(Borders::ALL).title(title);
    let visible = block.inner(area).height.saturating_sub(1) as usize;
    let selected = highlight.unwrap_or(vs.selected).min(rows.len().saturating_sub(1));
    // Only the visible window is built: a 10,000-task run renders as fast as a small one.
    let first = selected.saturating_sub(visible.saturating_sub(1));
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, &i)| {
            let task = &fleet.state.tasks[i];
            let name = task.state.name();
            let row = Row::new(vec![
                Cell::from(escape_line(fleet.state.task_id(i)).into_owned()),
                // A stalled attempt is `running` to the engine; the table says
                // stalled, as the header and the worker pane do.
                if task.state.is_stalled() {
                    Cell::from("stalled").style(scene.theme.fg(ratatui::style::Color::Yellow))
                } else {
                    Cell::from(name.as_str()).style(scene.theme.state(name))
                },
                Cell::from(escape_line(task.pool.as_deref().unwrap_or_default()).into_owned()),
                Cell::from(task.attempts.to_string()),
                Cell::from(duration_of(fleet, i, scene.now_ms).map(human_ms).unwrap_or_default()),
                Cell::from(escape_line(&votes_and_error(fleet, i)).into_owned()),
            ]);
            selectable(row, Some(n) == highlight, scene.theme)
        })
        .collect();
    let header = header_row(["ID", "STATE", "POOL", "ATT", "TIME", "ERROR"]);
    // `awaiting_approval` is wider than the other names: room for it only while a
    // task is held, so the table is unchanged otherwise.
    let held = fleet.state.count(crate::core::TaskStateName::AwaitingApproval) > 0;
    let widths = [
        Constraint::Length(22),
        Constraint::Length(if held { 17 } else { 13 }),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    frame.render_widget(Table::new(body, widths).header(header).block(block), area);
}
