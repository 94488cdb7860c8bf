//! The tasks table: every task, filtered (`/`: words, `state:NAME`, `pool:NAME`) and
//! sorted (`s` cycles the column). Only the visible rows are built, so a 10,000-task
//! run draws as fast as a small one.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;
use tui_input::Input;

use super::tasks_order::Order;
use crate::core::escape::escape_line;
use crate::core::text::{clock, human_ms};
use crate::core::TaskState;
use crate::tui::draw::Scene;
use crate::tui::model::Fleet;
use crate::tui::selection::{gone_note, position, resolve, task_position, Selected};
use crate::tui::view::{Screen, TextKey, ViewState};
use crate::tui::widgets::{first_shown, header_row, selectable, table_rows};

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
    /// Duration of the latest attempt (running: so far), longest first.
    Duration,
    /// When the latest attempt started, earliest first.
    Started,
}

impl SortKey {
    fn next(self) -> SortKey {
        match self {
            SortKey::Workflow => SortKey::Id,
            SortKey::Id => SortKey::State,
            SortKey::State => SortKey::Pool,
            SortKey::Pool => SortKey::Attempts,
            SortKey::Attempts => SortKey::Duration,
            SortKey::Duration => SortKey::Started,
            SortKey::Started => SortKey::Workflow,
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
            SortKey::Duration => "duration",
            SortKey::Started => "start time",
        }
    }

    /// Counts and durations read biggest first (as htop's CPU column); the rest
    /// smallest first. `S` reverses either.
    fn biggest_first(self) -> bool {
        matches!(self, SortKey::Attempts | SortKey::Duration)
    }

    /// The column the sort is marked on in the header (`None`: workflow order).
    fn column(self) -> Option<usize> {
        match self {
            SortKey::Workflow => None,
            SortKey::Id => Some(0),
            SortKey::State => Some(1),
            SortKey::Pool => Some(2),
            SortKey::Attempts => Some(3),
            SortKey::Duration => Some(4),
            SortKey::Started => Some(5),
        }
    }
}

/// Is the table sorted biggest (or latest, or last in the life cycle) first?
pub fn descending(vs: &ViewState) -> bool {
    vs.sort.biggest_first() != vs.sort_reverse
}

/// "duration ▼": the order in words, with its direction.
pub fn order_name(vs: &ViewState) -> String {
    let arrow = if descending(vs) { "▼" } else { "▲" };
    format!("{} {arrow}", vs.sort.name())
}

/// Tasks shown in the tasks table, filtered and sorted. Each row's sort key is
/// worked out once (`tasks_order.rs`), and nothing of the run is copied.
pub fn task_rows(fleet: &Fleet, vs: &ViewState) -> Vec<usize> {
    let state = &fleet.state;
    let mut rows: Vec<usize> = if vs.filter.trim().is_empty() {
        // No filter: no per-task text to build (100,000 tasks cost a copy of indices).
        (0..state.tasks.len()).collect()
    } else {
        (0..state.tasks.len()).filter(|&i| matches_filter(fleet, i, &vs.filter)).collect()
    };
    if vs.sort == SortKey::Workflow {
        if vs.sort_reverse {
            rows.reverse();
        }
        return rows;
    }
    Order::new(fleet, vs).sort(fleet, rows)
}

/// The order of tasks `a` and `b` in the table as `vs` sorts it.
pub fn compare(fleet: &Fleet, vs: &ViewState, a: usize, b: usize) -> std::cmp::Ordering {
    match vs.sort {
        SortKey::Workflow if vs.sort_reverse => b.cmp(&a),
        _ => {
            let order = Order::new(fleet, vs);
            order.key(fleet, a).cmp(&order.key(fleet, b))
        }
    }
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

/// `s`: the next sort column. The selected task stays selected (it moves with its row).
pub fn cycle_sort(vs: &mut ViewState, fleet: &Fleet) {
    keeping_selection(vs, fleet, |vs| vs.sort = vs.sort.next());
    vs.message = Some(format!("sorted by {} (s: next column, S: reverse)", order_name(vs)));
}

/// `S`: the other direction, on the same column.
pub fn reverse_sort(vs: &mut ViewState, fleet: &Fleet) {
    keeping_selection(vs, fleet, |vs| vs.sort_reverse = !vs.sort_reverse);
    vs.message = Some(format!("sorted by {}", order_name(vs)));
}

/// Changes the order with the selected task pinned, so the highlight follows it.
fn keeping_selection(vs: &mut ViewState, fleet: &Fleet, change: impl FnOnce(&mut ViewState)) {
    if vs.screen != Screen::Tasks {
        return change(vs);
    }
    if vs.pinned.is_none() {
        vs.pinned = vs.selected_task(fleet);
    }
    change(vs);
    if let (_, Selected::Row(row)) = vs.selection(fleet) {
        vs.selected = row;
    }
}

/// `/`: opens the filter field on the current filter.
pub fn open_filter(vs: &mut ViewState) {
    vs.filter_input = Some(Input::new(vs.filter.clone()));
}

/// A key typed into the open filter field. The table follows the typing; Enter keeps
/// the filter and shows the filtered table (the dead letters stay up when they are,
/// else the tasks table), Esc closes the field and clears the filter. The selected task stays selected
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
        // Esc cancels the filter (as in k9s): the field closes and the table is whole again.
        TextKey::Esc => {
            vs.filter_input = None;
            if !vs.filter.is_empty() {
                let screen = vs.screen.clone();
                set_filter(vs, fleet, String::new(), screen);
                vs.message = Some("filter cleared".into());
            }
        }
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

/// Where the table's rows are drawn in the screen's `area` (the mouse counts with it).
pub fn rows_area(area: Rect) -> Rect {
    table_rows(area)
}

/// The row drawn at the top of the table: the selection is kept in view.
pub fn first_row(fleet: &Fleet, vs: &ViewState, rows: &[usize], area: Rect) -> usize {
    let selected = match resolve(vs, rows.len(), |id| task_position(fleet, rows, id)) {
        Selected::Row(row) => row,
        _ => vs.selected.min(rows.len().saturating_sub(1)),
    };
    first_shown(selected, rows_area(area).height as usize)
}

/// Duration of the latest attempt (running: so far), as the read model keeps it.
pub(super) fn duration_of(fleet: &Fleet, i: usize, now_ms: u64) -> Option<u64> {
    if let TaskState::Running { started_ms, .. } = fleet.state.tasks[i].state {
        return Some(now_ms.saturating_sub(started_ms));
    }
    fleet.timings.duration(i)
}

/// When the latest attempt started.
pub(super) fn started_of(fleet: &Fleet, i: usize) -> Option<u64> {
    if let TaskState::Running { started_ms, .. } = fleet.state.tasks[i].state {
        return Some(started_ms);
    }
    fleet.timings.started(i)
}

/// Draws the table, scrolled so that the selected row is visible; the title says
/// where the selection is (`12/300`, `12/40 of 300` while filtered) and the sorted
/// column's title carries ▲ or ▼.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let vs = scene.view;
    let rows = task_rows(fleet, vs);
    let filtered = !vs.filter.trim().is_empty();
    let filter = if filtered { format!(" filter: {} ", escape_line(&vs.filter)) } else { String::new() };
    // The selection is a task, looked up among the rows (one pass over the rows the
    // frame has built anyway); a selected task the filter no longer shows is named.
    let (highlight, gone) = match resolve(vs, rows.len(), |id| task_position(fleet, &rows, id)) {
        Selected::Row(row) => (Some(row), String::new()),
        Selected::Gone(id) => (None, escape_line(&gone_note(fleet, &id)).into_owned()),
        Selected::Empty => (None, String::new()),
    };
    let at = position(highlight, rows.len(), filtered.then_some(fleet.state.tasks.len()));
    let title = format!(" Tasks {at} · sort: {} {filter}{gone}", order_name(vs));
    let block = Block::default().borders(Borders::ALL).title(title);
    let visible = rows_area(area).height as usize;
    // Only the visible window is built: a 10,000-task run renders as fast as a small one.
    let first = first_row(fleet, vs, &rows, area);
    // The start time has a column where there is room for it, or when it is the order.
    let started_column = area.width >= 100 || vs.sort == SortKey::Started;
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, &i)| {
            let task = &fleet.state.tasks[i];
            let name = task.state.name();
            let mut cells = vec![
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
            ];
            if started_column {
                let started = started_of(fleet, i).map(|ts| clock(ts).chars().take(8).collect::<String>());
                cells.push(Cell::from(started.unwrap_or_default()));
            }
            cells.push(Cell::from(escape_line(&votes_and_error(fleet, i)).into_owned()));
            selectable(Row::new(cells), Some(n) == highlight, scene.theme)
        })
        .collect();
    let arrow = if descending(vs) { "▼" } else { "▲" };
    let mut titles: Vec<String> = ["ID", "STATE", "POOL", "ATT", "TIME", "STARTED", "ERROR"].map(String::from).into();
    if let Some(c) = vs.sort.column() {
        titles[c].push_str(arrow);
    }
    if !started_column {
        titles.remove(5);
    }
    let header = header_row(titles.iter().map(String::as_str));
    // `awaiting_approval` is wider than the other names: room for it only while a
    // task is held, so the table is unchanged otherwise.
    let held = fleet.state.count(crate::core::TaskStateName::AwaitingApproval) > 0;
    let mut widths = vec![
        Constraint::Length(22),
        Constraint::Length(if held { 17 } else { 13 }),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    if started_column {
        widths.insert(5, Constraint::Length(8));
    }
    frame.render_widget(Table::new(body, widths).header(header).block(block), area);
}
