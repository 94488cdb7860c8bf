//! The mouse, in every view: a click selects the row under it (tasks, dead-letter
//! groups and a group's members, held tasks) or the worker pane under it on the
//! dashboard (a click on the selected pane opens its task, so a double click opens
//! too); the wheel scrolls the pane under the pointer (in a task's detail: the
//! history steps on the left, the output on the right; elsewhere the selection);
//! a click on the header's held count opens the Held view. Nothing here knows where
//! a screen draws its rows: each screen's own layout function says
//! (`draw::frame_rows`, `tasks::rows_area`, `widgets::table_rows`, `held::rows_area`,
//! `dashboard::parts` and `dashboard::grid`, `detail::columns`), the same the frame
//! is drawn with, and [`ViewState::terminal`] is the terminal's size as of the last
//! event.

use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::draw::{frame_rows, MIN_SIZE};
use super::keys::Action;
use super::model::Fleet;
use super::screens::{dashboard, dead_letters, detail, held, tasks};
use super::selection::Selected;
use super::view::{Request, Screen, ViewState};
use super::widgets::{first_shown, table_rows};
use crate::core::TaskStateName;

/// Lines the wheel scrolls an output pane by, one notch.
const WHEEL_LINES: usize = 3;

/// What is under the pointer.
#[derive(Debug, Clone, PartialEq)]
pub enum Hit {
    /// Row `n` of the current table (tasks, dead-letter groups, held tasks), or of the
    /// open dead-letter group's members.
    Row(usize),
    /// The worker pane of row `n` among the running tasks (dashboard).
    Pane(usize),
    /// A task detail's history pane.
    History,
    /// A task detail's output pane.
    Output,
    /// The header line.
    Header,
    /// Nothing that answers the mouse.
    Nothing,
}

/// The screen's part of the terminal (between the header and the status line).
fn body(vs: &ViewState) -> Rect {
    frame_rows(vs.terminal)[1]
}

/// The dashboard's worker grid as drawn in `body`.
fn dashboard_grid(vs: &ViewState, fleet: &Fleet, body: Rect) -> dashboard::Grid {
    let groups = dead_letters::groups(fleet, &vs.filter).len();
    dashboard::grid(fleet, vs, dashboard::parts(fleet, groups, body, vs.terminal.height).workers)
}

/// What is drawn at column `x`, row `y` of the terminal.
pub fn hit(vs: &ViewState, fleet: &Fleet, x: u16, y: u16) -> Hit {
    let [header, body, _, _] = frame_rows(vs.terminal);
    let at = Position { x, y };
    if header.contains(at) {
        return Hit::Header;
    }
    if !body.contains(at) {
        return Hit::Nothing;
    }
    // Row `y` of a table of `len` rows drawn in `rows` from row `first` on.
    let table_row = |rows: Rect, first: usize, len: usize| {
        let n = first + y.saturating_sub(rows.y) as usize;
        if rows.contains(at) && n < len {
            Hit::Row(n)
        } else {
            Hit::Nothing
        }
    };
    match &vs.screen {
        Screen::Tasks => {
            let rows = tasks::task_rows(fleet, vs);
            table_row(tasks::rows_area(body), tasks::first_row(fleet, vs, &rows, body), rows.len())
        }
        Screen::DeadLetters if vs.dead_letter_members.is_some() => {
            let members = dead_letters::members(fleet, vs);
            let rows = table_rows(body);
            let first = first_shown(dead_letters::member_row(vs, &members), rows.height as usize);
            table_row(rows, first, members.len())
        }
        Screen::DeadLetters => {
            let (keys, selected) = vs.selection(fleet);
            let anchor = match selected {
                Selected::Row(row) => row,
                _ => vs.selected.min(keys.len().saturating_sub(1)),
            };
            let rows = table_rows(body);
            table_row(rows, first_shown(anchor, rows.height as usize), keys.len())
        }
        Screen::Held(view) => match held::row_at(fleet, view, body, y) {
            Some(i) => held::rows(fleet, view).iter().position(|&r| r == i).map_or(Hit::Nothing, Hit::Row),
            None => Hit::Nothing,
        },
        Screen::Dashboard => dashboard_grid(vs, fleet, body)
            .panes
            .into_iter()
            .find(|(_, rect)| rect.contains(at))
            .map_or(Hit::Nothing, |(row, _)| Hit::Pane(row)),
        Screen::Detail(_) => {
            let [history, _] = detail::columns(body);
            if x < history.x + history.width {
                Hit::History
            } else {
                Hit::Output
            }
        }
        Screen::Disagreement(_) | Screen::Timeline => Hit::Nothing,
    }
}

/// Rows a page moves in the current screen: what its table or pane shows at the
/// terminal's size (PgUp/PgDn a page, Ctrl-U/Ctrl-D half of one).
pub fn page_rows(vs: &ViewState, fleet: &Fleet) -> usize {
    let body = body(vs);
    let rows = match &vs.screen {
        Screen::Tasks => tasks::rows_area(body).height as usize,
        Screen::DeadLetters => table_rows(body).height as usize,
        Screen::Held(_) => held::rows_area(body).height as usize,
        // A page of the worker grid (PgUp/PgDn turn its pages, `selection.rs`).
        Screen::Dashboard => dashboard_grid(vs, fleet, body).capacity,
        // The output pane is below the task's box (at least 7 rows, more with gate
        // verdicts or votes) and inside its border: a page is at most what is left.
        Screen::Detail(_) => body.height.saturating_sub(7 + 2) as usize,
        Screen::Disagreement(_) | Screen::Timeline => 10,
    };
    rows.max(1)
}

/// Handles one mouse event (a pending question and the help overlay take no clicks).
pub fn on_mouse(vs: &mut ViewState, fleet: &Fleet, total: usize, mouse: MouseEvent) -> Vec<Request> {
    // Nor does the too-small notice, which draws no rows to click on.
    let (min_width, min_height) = MIN_SIZE;
    if vs.confirm.is_some() || vs.help || vs.terminal.width < min_width || vs.terminal.height < min_height {
        return Vec::new();
    }
    let wheel = match mouse.kind {
        MouseEventKind::ScrollUp => Some(true),
        MouseEventKind::ScrollDown => Some(false),
        MouseEventKind::Down(MouseButton::Left) => None,
        _ => return Vec::new(),
    };
    let hit = hit(vs, fleet, mouse.column, mouse.row);
    if let Some(up) = wheel {
        return scroll(vs, fleet, total, &hit, up);
    }
    match hit {
        // The header's held count opens the Held view.
        Hit::Header if fleet.state.count(TaskStateName::AwaitingApproval) > 0 => vs.update(fleet, total, Action::Held),
        Hit::Row(n) => {
            select_row(vs, fleet, n);
            Vec::new()
        }
        Hit::Pane(n) => {
            let (keys, selected) = vs.selection(fleet);
            if selected == Selected::Row(n) {
                return vs.update(fleet, total, Action::Open);
            }
            vs.pin_row(&keys, n);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The wheel: over a detail's history it steps through the history, over its output
/// it scrolls the output; elsewhere it moves the selection.
fn scroll(vs: &mut ViewState, fleet: &Fleet, total: usize, hit: &Hit, up: bool) -> Vec<Request> {
    match (hit, &mut vs.screen) {
        (Hit::History, _) => vs.update(fleet, total, if up { Action::Left } else { Action::Right }),
        (Hit::Output, Screen::Detail(d)) => {
            // Several lines a notch, as terminals scroll.
            let action = if up { Action::Up } else { Action::Down };
            for _ in 0..WHEEL_LINES {
                detail::scroll(d, fleet, action, 1);
            }
            Vec::new()
        }
        _ => vs.update(fleet, total, if up { Action::Up } else { Action::Down }),
    }
}

/// Selects row `n` of the current table (or of the open group's members).
fn select_row(vs: &mut ViewState, fleet: &Fleet, n: usize) {
    if let Screen::Held(view) = &mut vs.screen {
        if let Some(&i) = held::rows(fleet, view).get(n) {
            view.selected = Some(fleet.state.task_id(i).to_string());
        }
        return;
    }
    if vs.dead_letter_members.is_some() && vs.screen == Screen::DeadLetters {
        let members = dead_letters::members(fleet, vs);
        if let (Some(open), Some(task)) = (&mut vs.dead_letter_members, members.get(n)) {
            open.task = Some(task.clone());
        }
        return;
    }
    let (keys, _) = vs.selection(fleet);
    vs.pin_row(&keys, n);
}
