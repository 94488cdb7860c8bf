//! The dashboard: held tasks first when there are any (the three held longest), then
//! one pane per running attempt with its live output and progress,
//! the queue's depth over time (in total and per pool), each pool's load and circuit,
//! and the dead letters by cause. Its keys move the selection over the worker panes
//! (`update.rs`); Enter opens the selected worker's task.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::{dead_letters, held};
use crate::core::breaker::Circuit;
use crate::core::escape::escape_line;
use crate::core::text::human_ms;
use crate::core::{RunState, TaskState, TaskStateName};
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::model::{Fleet, Live};
use crate::tui::selection::{gone_note, resolve, task_position, Selected};
use crate::tui::theme::Theme;
use crate::tui::view::{Screen, ViewState};
use crate::tui::widgets::truncate;

/// Running tasks, in workflow order: the dashboard's worker panes. Kept by the read
/// model as records arrive, so this costs the running tasks, not the run.
pub fn worker_rows(fleet: &Fleet) -> Vec<usize> {
    fleet.running().collect()
}

/// The dashboard's parts in `area`: the held panel (when shown), the worker panes'
/// box and the side panels (queue, pools, dead letters), and whether they sit
/// beside the workers. The draw and the mouse (`mouse.rs`) use the same.
pub struct Parts {
    /// The held panel, while tasks are held and there is room.
    pub held: Option<Rect>,
    /// The worker panes' box.
    pub workers: Rect,
    /// Queue, pools and dead letters.
    pub side: Rect,
    /// Side panels to the right (else below).
    pub wide: bool,
}

/// Lays the dashboard out in `area`.
pub fn parts(fleet: &Fleet, area: Rect) -> Parts {
    // Held tasks wait for the operator: a short panel on top, only while there are some.
    let held_rows = held_panel_height(fleet);
    let (held, area) = if held_rows > 0 && area.height > held_rows + 7 {
        let parts = Layout::vertical([Constraint::Length(held_rows), Constraint::Min(7)]).split(area);
        (Some(parts[0]), parts[1])
    } else {
        (None, area)
    };
    let wide = area.width >= 110;
    let parts = if wide {
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).split(area)
    } else {
        // Stacked: the worker panes take the rows they need (up to 60 %), the
        // panels below get the rest.
        let columns = ((area.width.saturating_sub(2)) / 38).max(1) as usize;
        let pane_rows = fleet.running().len().div_ceil(columns).max(1) as u16;
        let wanted = pane_rows * 5 + 2;
        let workers = wanted.min(area.height * 6 / 10).max(7.min(area.height));
        Layout::vertical([Constraint::Length(workers), Constraint::Min(3)]).split(area)
    };
    Parts { held, workers: parts[0], side: parts[1], wide }
}

/// Draws the dashboard: worker panes beside (or above) the queue, pools and dead
/// letters panels.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let Parts { held, workers: workers_area, side, wide } = parts(scene.fleet, area);
    if let Some(rect) = held {
        held_panel(frame, rect, scene);
    }
    workers(frame, workers_area, scene);
    let side = if wide {
        let pools = scene.fleet.state.workflow.pools.len() as u16 + 2;
        Layout::vertical([Constraint::Length(pools + 3), Constraint::Length(pools), Constraint::Min(3)]).split(side)
    } else {
        Layout::horizontal([Constraint::Percentage(34), Constraint::Percentage(33), Constraint::Percentage(33)])
            .split(side)
    };
    queue(frame, side[0], scene);
    pools(frame, side[1], scene);
    dead_letter_panel(frame, side[2], scene);
}

fn workers(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let running = worker_rows(fleet);
    // The selected pane is a task: when it ends, the title says so and the keys still
    // act on it (`selection.rs`); only on the dashboard, where the keys move it.
    let on_dashboard = matches!(scene.view.screen, Screen::Dashboard);
    let (highlight, gone) = match resolve(scene.view, running.len(), |id| task_position(fleet, &running, id)) {
        _ if !on_dashboard => (None, String::new()),
        Selected::Row(row) => (Some(row), String::new()),
        Selected::Gone(id) => (None, escape_line(&gone_note(fleet, &id)).into_owned()),
        Selected::Empty => (None, String::new()),
    };
    let block = Block::default().borders(Borders::ALL).title(format!(" Workers ({}) {gone}", running.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if running.is_empty() {
        let text = if fleet.state.finished { "run finished: nothing running" } else { "no attempt running" };
        frame.render_widget(Paragraph::new(text).style(scene.theme.fg(Color::Gray)), inner);
        return;
    }
    let panes = pane_rects(fleet, scene.view, area);
    for &(row, rect) in &panes {
        worker_pane(frame, rect, scene, running[row], highlight == Some(row));
    }
    let first = panes.first().map_or(0, |(row, _)| *row);
    let capacity = pane_capacity(inner);
    let hidden = running.len().saturating_sub(first + capacity);
    if hidden > 0 {
        let note = format!(" +{hidden} more (2: tasks view) ");
        let rect = Rect {
            x: area.x + area.width.saturating_sub(note.len() as u16 + 1),
            y: (area.y + area.height).saturating_sub(1),
            width: note.len() as u16,
            height: 1,
        };
        frame.render_widget(Paragraph::new(note), rect);
    }
}

/// Worker panes that fit in the box's inside `inner`.
fn pane_capacity(inner: Rect) -> usize {
    (inner.width / 38).max(1) as usize * (inner.height / 5).max(1) as usize
}

/// The worker panes on screen in the workers' box `area`, each with its row among
/// [`worker_rows`]: scrolled so that the selected pane is shown.
pub fn pane_rects(fleet: &Fleet, vs: &ViewState, area: Rect) -> Vec<(usize, Rect)> {
    let running = worker_rows(fleet);
    if running.is_empty() {
        return Vec::new();
    }
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let on_dashboard = matches!(vs.screen, Screen::Dashboard);
    let selected = match resolve(vs, running.len(), |id| task_position(fleet, &running, id)) {
        Selected::Row(row) => row,
        _ => vs.selected,
    }
    .min(running.len() - 1);
    let columns = (inner.width / 38).max(1) as usize;
    let pane_height = 5u16;
    let capacity = pane_capacity(inner);
    // Keep the selected pane on screen.
    let first = if on_dashboard && selected >= capacity { selected + 1 - capacity } else { 0 };
    let width = inner.width / columns as u16;
    (first..running.len().min(first + capacity))
        .enumerate()
        .map(|(slot, row)| {
            let x = inner.x + (slot % columns) as u16 * width;
            let y = inner.y + (slot / columns) as u16 * pane_height;
            (row, Rect { x, y, width, height: pane_height.min((inner.y + inner.height).saturating_sub(y)) })
        })
        .collect()
}

fn worker_pane(frame: &mut Frame, area: Rect, scene: &Scene, i: usize, selected: bool) {
    let fleet = scene.fleet;
    let task = &fleet.state.tasks[i];
    let TaskState::Running { attempt, pool, started_ms, stalled, .. } = &task.state else { return };
    let id = fleet.state.task_id(i);
    let live = fleet.live.get(id);
    let quiet = live.map(|l| scene.now_ms.saturating_sub(l.last_output_ms)).unwrap_or(0);
    let mut title = vec![
        Span::styled(format!(" {} ", escape_line(id)), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("#{attempt} {pool} {} ", human_ms(scene.now_ms.saturating_sub(*started_ms)))),
    ];
    if let Some((n, of)) = fleet.votes_in(i) {
        title.push(Span::styled(format!("{n}/{of} votes "), scene.theme.fg(Color::Cyan)));
    }
    // Stalled (past the pool's stall_after) is a warning, not a failure; long silence
    // without a policy is shown too.
    if *stalled {
        let style = scene.theme.fg(Color::Red).add_modifier(Modifier::BOLD);
        title.push(Span::styled(format!("STALLED, quiet {} ", human_ms(quiet)), style));
    } else if quiet >= 30_000 {
        title.push(Span::styled(format!("quiet {} ", human_ms(quiet)), scene.theme.fg(Color::Yellow)));
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
    if let Some(note) = super::travel::worker_note(scene, live) {
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

fn queue(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let now = fleet.state.count(TaskStateName::Queued);
    let peak = fleet.queue_depth.iter().map(|(_, d)| *d).max().unwrap_or(0);
    let block = Block::default().borders(Borders::ALL).title(format!(" Queue {now} now, peak {peak} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The total on top, then one row per pool (name, then its own sparkline).
    let pools = &fleet.state.workflow.pools;
    let pool_rows = if inner.height as usize > pools.len() + 1 { pools.len() } else { 0 };
    let parts = Layout::vertical([Constraint::Min(1), Constraint::Length(pool_rows as u16)]).split(inner);
    let width = inner.width as usize;
    let data: Vec<u64> =
        fleet.queue_depth.iter().rev().take(width).map(|(_, d)| *d).collect::<Vec<_>>().into_iter().rev().collect();
    let total = Sparkline::default().data(&data).max(peak.max(1)).style(scene.theme.fg(Color::Blue));
    frame.render_widget(total, parts[0]);
    let label = 10.min(parts[1].width / 3);
    for (p, pool) in pools.iter().enumerate().take(pool_rows) {
        let row = Rect { x: parts[1].x, y: parts[1].y + p as u16, width: parts[1].width, height: 1 };
        let cols = Layout::horizontal([Constraint::Length(label), Constraint::Min(1)]).split(row);
        let name: String = pool.name.chars().take(label.saturating_sub(1) as usize).collect();
        frame.render_widget(Paragraph::new(name), cols[0]);
        let samples = cols[1].width as usize;
        let mut series: Vec<u64> =
            fleet.pool_depth.iter().rev().take(samples).map(|d| d.get(p).copied().unwrap_or(0)).collect();
        series.reverse();
        frame.render_widget(
            Sparkline::default().data(&series).max(peak.max(1)).style(scene.theme.fg(Color::Cyan)),
            cols[1],
        );
    }
}

fn pools(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let state = &fleet.state;
    let rows: Vec<Row> = state
        .workflow
        .pools
        .iter()
        .enumerate()
        .map(|(p, pool)| {
            let running = state.pools[p].running;
            let limit = state.pools[p].concurrency;
            let load = format!("{}{}", "▮".repeat(running.min(12)), "▯".repeat(limit.saturating_sub(running).min(12)));
            let (circuit, style) = circuit_text(state, p, scene);
            Row::new(vec![
                Cell::from(pool.name.clone()),
                Cell::from(format!("{running}/{limit}")),
                Cell::from(load).style(scene.theme.fg(Color::Cyan)),
                Cell::from(format!("{} queued", fleet.queued_for_pool(p))),
                Cell::from(circuit).style(style),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(13),
        Constraint::Length(10),
        Constraint::Min(8),
    ];
    let table =
        Table::new(rows, widths).block(Block::default().borders(Borders::ALL).title(" Pools: load · queue · circuit "));
    frame.render_widget(table, area);
}

/// A pool's circuit for the pools panel: closed, open with its countdown, half-open
/// with probes used, and paused.
fn circuit_text(state: &RunState, p: usize, scene: &Scene) -> (String, Style) {
    let paused = if state.pools[p].paused { " paused" } else { "" };
    let policy = state.workflow.pools[p].breaker;
    let (text, color) = match state.pools[p].breaker.circuit {
        Circuit::Closed if policy.is_none() => ("—".to_string(), Color::Gray),
        Circuit::Closed => ("closed".to_string(), Color::Green),
        Circuit::Open { until_ms: Some(until) } => {
            (format!("open {}", human_ms(until.saturating_sub(scene.now_ms))), Color::Red)
        }
        Circuit::Open { until_ms: None } => ("open (until reset)".to_string(), Color::Red),
        Circuit::HalfOpen { probes_started } => {
            (format!("half-open {probes_started}/{}", policy.map(|b| b.half_open).unwrap_or(1)), Color::Yellow)
        }
    };
    (format!("{text}{paused}"), scene.theme.fg(color))
}

fn dead_letter_panel(frame: &mut Frame, area: Rect, scene: &Scene) {
    // The tasks filter applies here as in the dead letters view, and `A` replays what
    // is shown: the title says which filter.
    let groups = dead_letters::groups(scene.fleet, &scene.view.filter);
    let total: usize = groups.iter().map(|g| g.tasks.len()).sum();
    let filter = dead_letters::filter_note(&scene.view.filter);
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            Row::new(vec![
                Cell::from(format!("{}×", g.tasks.len())).style(scene.theme.fg(Color::Red)),
                Cell::from(escape_line(&g.tasks.join(" ")).into_owned()),
                Cell::from(escape_line(&g.reason).into_owned()),
            ])
        })
        .collect();
    let title = if total == 0 {
        format!(" Dead letters: none {filter}")
    } else {
        format!(" Dead letters {total} {filter}(3: list, A: replay all) ")
    };
    let table = Table::new(rows, [Constraint::Length(4), Constraint::Percentage(35), Constraint::Percentage(65)])
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

/// Rows the dashboard's held panel needs (0 when nothing is held).
fn held_panel_height(fleet: &Fleet) -> u16 {
    match fleet.held().len() {
        0 => 0,
        n if n <= 3 => n as u16 + 2,
        _ => 6,
    }
}

/// The dashboard's held panel: the three tasks held longest, with what held them,
/// and how to get to the Held view.
fn held_panel(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let view = held::HeldView { order: held::HeldOrder::Longest, ..held::HeldView::default() };
    let rows = held::rows(fleet, &view);
    let key = scene.keys.key_for(Action::Held);
    let style = scene.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Line::styled(format!(" Held {} ({key}: view) ", rows.len()), style));
    let width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = rows
        .iter()
        .take(3)
        .map(|&i| {
            let id = fleet.state.task_id(i);
            // Rule and excerpt without the location: the limit hit fits 80 columns.
            let finding = fleet.state.tasks[i]
                .finding
                .as_deref()
                .map(|f| format!("{}: {}", f.rule, f.excerpt))
                .unwrap_or_default();
            let since = fleet.held_at(i).map(|t| human_ms(scene.now_ms.saturating_sub(t))).unwrap_or_default();
            Line::from(truncate(&escape_line(&format!("{id}  {since}  {finding}")), width.saturating_sub(1)))
        })
        .collect();
    if rows.len() > 3 {
        lines.push(Line::from(format!("and {} more", rows.len() - 3)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
