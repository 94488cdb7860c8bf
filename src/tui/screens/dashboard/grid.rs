//! The worker panes: a grid that fills the workers area, the most interesting attempt
//! first (stalled, then retrying after a failure, then the longest running), as many
//! panes as fit at [`MIN_PANE_WIDTH`]×[`MIN_PANE_HEIGHT`]; the rest are paged (the
//! page is the one holding the selection; page keys move it a page at a time).

use std::sync::atomic::{AtomicUsize, Ordering};

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::core::text::human_ms;
use crate::core::TaskState;
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::model::{Fleet, Live};
use crate::tui::selection::{gone_note, resolve, task_position, Selected};
use crate::tui::theme::Theme;
use crate::tui::view::{Screen, ViewState};

use super::remote;

/// Narrowest pane that still shows a title and a line of output.
pub const MIN_PANE_WIDTH: u16 = 36;
/// Lowest pane: borders, a progress bar and two lines of output.
pub const MIN_PANE_HEIGHT: u16 = 5;

/// Panes the dashboard drew on one page last (the page keys move by it). Written
/// while drawing, which only has the view state shared: an atomic, per view state.
#[derive(Debug, Default)]
pub struct PageSize(AtomicUsize);

impl Clone for PageSize {
    fn clone(&self) -> PageSize {
        PageSize(AtomicUsize::new(self.get()))
    }
}

impl PageSize {
    /// Panes per page last drawn (at least 1).
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed).max(1)
    }

    fn set(&self, panes: usize) {
        self.0.store(panes, Ordering::Relaxed);
    }
}

/// Where a page key moves the dashboard's selection from `row` (of `last + 1`): to
/// the first pane of the previous or next page.
pub fn page_target(page: &PageSize, row: usize, last: usize, action: Action) -> usize {
    let size = page.get();
    let this = row / size;
    match action {
        Action::PageUp => this.saturating_sub(1) * size,
        _ => ((this + 1) * size).min(last),
    }
}

/// Running tasks, most interesting first: stalled, then retrying (an earlier attempt
/// failed), then by start time (the longest running first). Costs the running tasks.
pub fn worker_rows(fleet: &Fleet) -> Vec<usize> {
    let mut rows: Vec<(u8, u64, usize)> = fleet
        .running()
        .map(|i| match &fleet.state.tasks[i].state {
            TaskState::Running { stalled: true, started_ms, .. } => (0, *started_ms, i),
            TaskState::Running { attempt, started_ms, .. } if *attempt > 1 => (1, *started_ms, i),
            TaskState::Running { started_ms, .. } => (2, *started_ms, i),
            _ => (3, 0, i),
        })
        .collect();
    rows.sort_unstable();
    rows.into_iter().map(|(_, _, i)| i).collect()
}

/// Columns and rows of panes that fit in `inner` for `n` panes, and how many fit on
/// a page. The shape fills the area: fewer panes get bigger.
fn shape(n: usize, inner: Rect) -> (usize, usize, usize) {
    let max_cols = (inner.width / MIN_PANE_WIDTH).max(1) as usize;
    let max_rows = (inner.height / MIN_PANE_HEIGHT).max(1) as usize;
    let capacity = max_cols * max_rows;
    let shown = n.clamp(1, capacity);
    let rows = shown.div_ceil(max_cols);
    let cols = shown.div_ceil(rows);
    (cols, rows, capacity)
}

/// The worker grid as drawn in a workers box: the one layout the draw and the mouse
/// (`mouse.rs`) both use, so a click lands on the pane that is drawn there.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Running tasks, in pane order ([`worker_rows`]).
    pub running: Vec<usize>,
    /// The selected pane's row among `running` (only on the dashboard, where the keys
    /// move it).
    pub highlight: Option<usize>,
    /// The selected task's id when it is no longer running (on the dashboard).
    pub gone: Option<String>,
    /// The page shown (from 0) and how many there are.
    pub page: usize,
    pub pages: usize,
    /// Panes a page holds.
    pub capacity: usize,
    /// The panes on screen: each one's row among `running` and its rectangle.
    pub panes: Vec<(usize, Rect)>,
    /// Broker mode: panes of remote workers that hold no attempt (idle, vanished),
    /// after the running ones on the last page, in the slots left (not selectable).
    pub spare: Vec<(String, Rect)>,
}

/// Lays the worker grid out in the workers box `area` for `vs`: the page holding
/// the selection, and its panes' rectangles.
pub fn grid(fleet: &Fleet, vs: &ViewState, area: Rect) -> Grid {
    let running = worker_rows(fleet);
    // The selected pane is a task: when it ends, the title says so and the keys still
    // act on it (`selection.rs`); only on the dashboard, where the keys move it.
    let on_dashboard = matches!(vs.screen, Screen::Dashboard);
    let (highlight, gone) = match resolve(vs, running.len(), |id| task_position(fleet, &running, id)) {
        _ if !on_dashboard => (None, None),
        Selected::Row(row) => (Some(row), None),
        Selected::Gone(id) => (None, Some(id)),
        Selected::Empty => (None, None),
    };
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let (_, _, capacity) = shape(running.len(), inner);
    let pages = running.len().div_ceil(capacity).max(1);
    let anchor = highlight.unwrap_or(vs.selected).min(running.len().saturating_sub(1));
    let page = if on_dashboard { anchor / capacity } else { 0 };
    let first = page * capacity;
    let shown = running.len().saturating_sub(first).min(capacity);
    let spare_ids = if page + 1 == pages { remote::spare_workers(fleet) } else { Vec::new() };
    let extra = spare_ids.len().min(capacity - shown);
    let mut rects = if shown + extra == 0 { Vec::new() } else { pane_rects(shown + extra, inner) };
    let spare = rects.split_off(shown).into_iter().zip(spare_ids).map(|(rect, id)| (id.to_string(), rect)).collect();
    let panes = rects.into_iter().enumerate().map(|(slot, rect)| (first + slot, rect)).collect();
    Grid { running, highlight, gone, page, pages, capacity, panes, spare }
}

/// Draws the workers box: the grid of panes for the page holding the selection.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene, page_size: &PageSize) {
    let fleet = scene.fleet;
    let Grid { running, highlight, gone, page, pages, capacity, panes, spare } = grid(fleet, scene.view, area);
    page_size.set(capacity);
    let gone = gone.map_or_else(String::new, |id| escape_line(&gone_note(fleet, &id)).into_owned());
    let paging = if pages > 1 {
        let keys = format!("{}/{}", scene.keys.key_for(Action::PageUp), scene.keys.key_for(Action::PageDown));
        format!("· page {}/{pages} ({keys}) ", page + 1)
    } else {
        String::new()
    };
    let spare_ids: Vec<&str> = remote::spare_workers(fleet);
    let title = format!("{}{paging}{gone}", remote::box_title(fleet, running.len(), &spare_ids));
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    for (id, rect) in &spare {
        remote::pane(frame, *rect, scene, id);
    }
    if running.is_empty() && spare.is_empty() {
        let text = if fleet.state.finished { "run finished: nothing running" } else { "no attempt running" };
        frame.render_widget(Paragraph::new(text).style(scene.theme.fg(Color::Gray)), inner);
        return;
    }
    for (row, rect) in panes {
        pane(frame, rect, scene, running[row], highlight == Some(row));
    }
}

/// The rectangles of `n` panes filling `inner`, row by row; a short last row's panes
/// are wider, so no slot stays empty.
pub fn pane_rects(n: usize, inner: Rect) -> Vec<Rect> {
    let (cols, rows, _) = shape(n, inner);
    let mut rects = Vec::with_capacity(n);
    let height = inner.height / rows as u16;
    for row in 0..rows {
        let in_row = (n - row * cols).min(cols);
        let y = inner.y + row as u16 * height;
        let h = if row + 1 == rows { inner.y + inner.height - y } else { height };
        let width = inner.width / in_row as u16;
        for col in 0..in_row {
            let x = inner.x + col as u16 * width;
            let w = if col + 1 == in_row { inner.x + inner.width - x } else { width };
            rects.push(Rect { x, y, width: w, height: h });
        }
    }
    rects
}

fn pane(frame: &mut Frame, area: Rect, scene: &Scene, i: usize, selected: bool) {
    let fleet = scene.fleet;
    let task = &fleet.state.tasks[i];
    let TaskState::Running { attempt, pool, started_ms, stalled, .. } = &task.state else { return };
    let id = fleet.state.task_id(i);
    let live = fleet.live.get(id);
    let quiet = live.map(|l| scene.now_ms.saturating_sub(l.last_output_ms)).unwrap_or(0);
    let mut title = vec![
        Span::styled(format!(" {} ", escape_line(id)), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("#{attempt} {pool} ")),
    ];
    if let Some(worker) = remote::runs_on(fleet, i) {
        // A remote attempt: the worker it runs on, `host:pid` (DESIGN §7).
        title.push(Span::styled(format!("@{} ", escape_line(&worker)), scene.theme.fg(Color::Cyan)));
    }
    title.push(Span::raw(format!("{} ", human_ms(scene.now_ms.saturating_sub(*started_ms)))));
    if let Some((n, of)) = fleet.votes_in(i) {
        title.push(Span::styled(format!("{n}/{of} votes "), scene.theme.fg(Color::Cyan)));
    }
    // Stalled (past the pool's stall_after) is a warning, not a failure; long silence
    // without a policy is shown too; a retry says an earlier attempt failed.
    if *stalled {
        let style = scene.theme.fg(Color::Red).add_modifier(Modifier::BOLD);
        title.push(Span::styled(format!("STALLED, quiet {} ", human_ms(quiet)), style));
    } else if quiet >= 30_000 {
        title.push(Span::styled(format!("quiet {} ", human_ms(quiet)), scene.theme.fg(Color::Yellow)));
    }
    if *attempt > 1 {
        title.push(Span::styled("retry ", scene.theme.fg(Color::Yellow)));
    }
    let mut block = Block::default().borders(Borders::ALL).title(Line::from(title));
    if selected && matches!(scene.view.screen, Screen::Dashboard) {
        block = block.border_style(scene.theme.fg(Color::Cyan).add_modifier(Modifier::BOLD));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(Live { progress: Some((pct, msg)), .. }) = live {
        lines.push(progress_line(*pct, msg, inner.width, scene.theme));
    }
    let room = (inner.height as usize).saturating_sub(lines.len());
    if let Some(note) = super::super::travel::worker_note(scene, live) {
        lines.extend(note);
    } else if let Some(live) = live {
        let tail: Vec<&String> = live.lines.iter().rev().take(room).collect();
        for line in tail.into_iter().rev() {
            lines.push(Line::from(line.as_str()));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn progress_line(pct: f64, msg: &str, width: u16, theme: Theme) -> Line<'static> {
    let bar_width = (width as usize / 3).clamp(5, 20);
    let filled = ((pct / 100.0) * bar_width as f64).round() as usize;
    Line::from(vec![
        Span::styled("█".repeat(filled), theme.fg(Color::Cyan)),
        Span::styled("░".repeat(bar_width - filled.min(bar_width)), theme.fg(Color::DarkGray)),
        Span::raw(format!(" {pct:>3.0}% {msg}")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_fill_the_area_and_page_past_what_fits() {
        let inner = Rect { x: 0, y: 0, width: 84, height: 22 };
        // 2 columns × 4 rows fit.
        assert_eq!(shape(20, inner).2, 8);
        // Fewer panes get bigger, and together cover the area.
        for n in 1..=8 {
            let rects = pane_rects(n, inner);
            assert_eq!(rects.len(), n);
            let area: u32 = rects.iter().map(|r| r.width as u32 * r.height as u32).sum();
            assert_eq!(area, 84 * 22, "{n} panes");
            assert!(rects.iter().all(|r| r.width >= MIN_PANE_WIDTH && r.height >= MIN_PANE_HEIGHT));
        }
    }

    #[test]
    fn page_keys_move_a_page_at_a_time() {
        let page = PageSize::default();
        page.set(8);
        assert_eq!(page_target(&page, 3, 19, Action::PageDown), 8);
        assert_eq!(page_target(&page, 8, 19, Action::PageDown), 16);
        assert_eq!(page_target(&page, 16, 19, Action::PageDown), 19);
        assert_eq!(page_target(&page, 17, 19, Action::PageUp), 8);
        assert_eq!(page_target(&page, 5, 19, Action::PageUp), 0);
    }
}
