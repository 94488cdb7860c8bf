//! The dashboard: held tasks first when there are any (the three held longest), then
//! the worker panes as a grid that fills its area (`grid.rs`), the queue's depth over
//! time, each pool's load and circuit, the dead letters by cause (`panels.rs`), and on
//! a terminal of at least [`TIMELINE_WIDTH`] columns and [`TIMELINE_HEIGHT`] rows the
//! timeline of recent attempts (`screens/timeline.rs`). Panels are as tall as their
//! content; the rows they do not need go to the worker grid (stacked layout) or to
//! the queue's sparklines (side-by-side layout). Its keys move the selection over the
//! worker panes and page through them (`update.rs`, `selection.rs`); Enter opens the
//! selected worker's task. [`parts`] and [`grid`] are where things are drawn, for the
//! draw and the mouse (`mouse.rs`) alike.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use super::{dead_letters, timeline};
use crate::tui::draw::Scene;
use crate::tui::model::Fleet;

mod grid;
mod panels;
pub(super) mod remote;

pub use grid::{grid, page_target, pane_rects, worker_rows, Grid, PageSize, MIN_PANE_HEIGHT, MIN_PANE_WIDTH};

/// Narrowest terminal that shows the timeline on the dashboard (else: its own screen).
pub const TIMELINE_WIDTH: u16 = 120;
/// Lowest terminal that shows the timeline on the dashboard.
pub const TIMELINE_HEIGHT: u16 = 35;
/// Narrowest area where the panels sit beside the worker grid rather than below it.
const SIDE_BY_SIDE: u16 = 110;
/// Rows the worker grid keeps however much the panels want (a pane and its box).
const MIN_WORKERS: u16 = 7;

/// Where the dashboard's parts sit in its area: the one layout the draw and the
/// mouse (`mouse.rs`) both use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts {
    /// The held panel, while tasks are held and there is room.
    pub held: Option<Rect>,
    /// The timeline panel, on a large enough terminal.
    pub timeline: Option<Rect>,
    /// The workers box (the grid of panes inside its border: [`grid`]).
    pub workers: Rect,
    pub queue: Rect,
    pub pools: Rect,
    /// The dead letters (no rows when the stacked layout is short of them).
    pub dead: Rect,
}

/// Lays the dashboard out in `area` (the frame minus the header, status and key
/// bars) of a terminal `frame_height` rows high, with `dead_groups` dead-letter
/// groups to list.
pub fn parts(fleet: &Fleet, dead_groups: usize, area: Rect, frame_height: u16) -> Parts {
    // Held tasks wait for the operator: a short panel on top, only while there are some.
    let held_rows = panels::held_height(fleet);
    let (held, area) = if held_rows > 0 && area.height > held_rows + 7 {
        let [held, rest] = Layout::vertical([Constraint::Length(held_rows), Constraint::Min(7)]).areas(area);
        (Some(held), rest)
    } else {
        (None, area)
    };
    // The frame around the body has 3 rows (header, status, keys).
    let (timeline, area) = if area.width >= TIMELINE_WIDTH && frame_height >= TIMELINE_HEIGHT {
        let wanted = timeline::height_wanted(fleet, area.height / 3);
        let [rest, line] = Layout::vertical([Constraint::Min(0), Constraint::Length(wanted)]).areas(area);
        (Some(line), rest)
    } else {
        (None, area)
    };
    let pools_rows = panels::pools_height(fleet);
    if area.width >= SIDE_BY_SIDE {
        let [workers, side] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
        // The queue keeps 4 rows; the dead letters get what they need of the rest.
        let dead_rows = panels::dead_letters_height(dead_groups, side.height.saturating_sub(pools_rows + 4));
        let [queue, pools, dead] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(pools_rows), Constraint::Length(dead_rows)])
                .areas(side);
        Parts { held, timeline, workers, queue, pools, dead }
    } else {
        // Stacked: the panels take the rows they need, the worker grid the rest, and
        // when rows are short the panels give way (the dead letters first).
        let spare = area.height.saturating_sub(MIN_WORKERS);
        let strip = pools_rows.max(3).min(spare);
        let dead_rows = panels::dead_letters_height(dead_groups, 6).min(spare - strip);
        let dead_rows = if dead_rows < 3 { 0 } else { dead_rows };
        let [workers, strip, dead] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(strip), Constraint::Length(dead_rows)])
                .areas(area);
        let [queue, pools] = Layout::horizontal([Constraint::Percentage(34), Constraint::Percentage(66)]).areas(strip);
        Parts { held, timeline, workers, queue, pools, dead }
    }
}

/// Draws the dashboard in `area` (the frame minus the header, status and key bars).
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let groups = dead_letters::groups(scene.fleet, &scene.view.filter);
    let parts = parts(scene.fleet, groups.len(), area, frame.area().height);
    if let Some(held) = parts.held {
        panels::held_panel(frame, held, scene);
    }
    if let Some(line) = parts.timeline {
        timeline::panel(frame, line, scene);
    }
    grid::draw(frame, parts.workers, scene, &scene.view.dashboard_page);
    panels::queue(frame, parts.queue, scene);
    panels::pools(frame, parts.pools, scene);
    panels::dead_letters(frame, parts.dead, scene, &groups);
}
