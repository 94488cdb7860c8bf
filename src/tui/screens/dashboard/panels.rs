//! The dashboard's panels beside the worker grid: the queue over time, the pools'
//! load and circuits, the dead letters by cause, and the held tasks. Each is as tall
//! as its content ([`pools_height`], [`dead_letters_height`]) but the queue, which
//! fills what is left with its sparklines.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use crate::core::breaker::Circuit;
use crate::core::escape::escape_line;
use crate::core::text::human_ms;
use crate::core::{RunState, TaskStateName};
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::model::{DeadLetterGroup, Fleet};
use crate::tui::screens::{dead_letters, held};
use crate::tui::widgets::truncate;

/// Rows the pools panel needs: one per pool and its borders.
pub fn pools_height(fleet: &Fleet) -> u16 {
    fleet.state.workflow.head().pools.len() as u16 + 2
}

/// Rows the dead-letters panel needs: one per cause (at most `max` in all), and its
/// borders; 3 when there is none (the title says so).
pub fn dead_letters_height(groups: usize, max: u16) -> u16 {
    (groups as u16 + 2).clamp(3, max.max(3))
}

/// The queue's depth over the newest seconds: the total on top and one band per
/// pool below when there is room, each scaled to the highest sample it shows (not
/// the run's peak, so a quiet minute after a burst is still readable).
pub fn queue(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let now = fleet.state.count(TaskStateName::Queued);
    let width = area.width.saturating_sub(2) as usize;
    let visible = fleet.queue_depth.len().min(width);
    let data: Vec<u64> = fleet.queue_depth.iter().skip(fleet.queue_depth.len() - visible).map(|(_, d)| *d).collect();
    let top = data.iter().copied().max().unwrap_or(0);
    let mut title = format!(" Queue {now} now, max {top} in the last {} ", human_ms(visible as u64 * 1000));
    if title.chars().count() + 2 > area.width as usize {
        title = format!(" Queue {now}, max {top} ");
    }
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The total on top (at least half), then a band per pool (name, its sparkline).
    let pools = &fleet.state.workflow.head().pools;
    let band =
        if inner.height as usize > pools.len() { (inner.height / 2 / pools.len().max(1) as u16).max(1) } else { 0 };
    let pool_rows = band * pools.len() as u16;
    let parts = Layout::vertical([Constraint::Min(1), Constraint::Length(pool_rows)]).split(inner);
    frame.render_widget(Sparkline::default().data(&data).max(top.max(1)).style(scene.theme.fg(Color::Blue)), parts[0]);
    if band == 0 {
        return;
    }
    let label = 10.min(parts[1].width / 3);
    let samples = parts[1].width.saturating_sub(label) as usize;
    let start = fleet.pool_depth.len() - fleet.pool_depth.len().min(samples);
    let series: Vec<Vec<u64>> = (0..pools.len())
        .map(|p| fleet.pool_depth.iter().skip(start).map(|d| d.get(p).copied().unwrap_or(0)).collect())
        .collect();
    // One scale for every pool, so their bands compare.
    let pool_top = series.iter().flatten().copied().max().unwrap_or(0).max(1);
    for (p, pool) in pools.iter().enumerate() {
        let row = Rect { x: parts[1].x, y: parts[1].y + p as u16 * band, width: parts[1].width, height: band };
        let cols = Layout::horizontal([Constraint::Length(label), Constraint::Min(1)]).split(row);
        let name: String = pool.name.chars().take(label.saturating_sub(1) as usize).collect();
        frame.render_widget(Paragraph::new(name), cols[0]);
        let line = Sparkline::default().data(&series[p]).max(pool_top).style(scene.theme.fg(Color::Cyan));
        frame.render_widget(line, cols[1]);
    }
}

/// What pool `name`'s attempts spent (`$1.23`).
fn spent(state: &crate::core::RunState, name: &str) -> String {
    state.spend.pools.get(name).map_or("$0.00".into(), |spend| spend.cost_usd.to_string())
}

/// Each pool's load, queue and circuit, one row each.
pub fn pools(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let state = &fleet.state;
    // The head's pools: a lazily read run's specs stay undecoded for the first frame.
    let rows: Vec<Row> = (state.workflow.head().pools.iter())
        .enumerate()
        .map(|(p, pool)| {
            // In broker mode, attempts a worker started against the slots the live
            // workers offer; those dispatched but not started yet (on the broker, or
            // read ahead by a worker) are shown apart, with the queue.
            let waiting = state.pool_waiting_remote(p);
            let running = state.pools[p].running.saturating_sub(waiting);
            let limit = state.pool_slots(p);
            let load = format!("{}{}", "▮".repeat(running.min(12)), "▯".repeat(limit.saturating_sub(running).min(12)));
            // A broker pool without a live capable worker starts nothing: say why.
            let (load, load_color) = match state.workflow.head().broker.is_some() && limit == 0 && running == 0 {
                true => ("no workers".to_string(), Color::Yellow),
                false => (load, Color::Cyan),
            };
            let (circuit, style) = circuit_text(state, p, scene);
            let mut cells = vec![
                Cell::from(pool.name.clone()),
                Cell::from(format!("{running}/{limit}")),
                Cell::from(load).style(scene.theme.fg(load_color)),
                Cell::from(match waiting {
                    0 => format!("{} queued", fleet.queued_for_pool(p)),
                    // Queued here + sent to the broker, not started by a worker yet.
                    w => format!("{}+{w} queued", fleet.queued_for_pool(p)),
                }),
                Cell::from(circuit).style(style),
            ];
            // What the pool's attempts spent (DESIGN §13): only in runs with usage.
            if state.spend.reported {
                cells.push(Cell::from(spent(state, &pool.name)).style(scene.theme.fg(Color::Gray)));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(13),
        Constraint::Length(10),
        Constraint::Min(8),
    ];
    if state.spend.reported {
        widths.push(Constraint::Length(9));
    }
    let table =
        Table::new(rows, widths).block(Block::default().borders(Borders::ALL).title(" Pools: load · queue · circuit "));
    frame.render_widget(table, area);
}

/// A pool's circuit for the pools panel: closed, open with its countdown, half-open
/// with probes used, and paused.
fn circuit_text(state: &RunState, p: usize, scene: &Scene) -> (String, Style) {
    let paused = if state.pools[p].paused { " paused" } else { "" };
    let policy = state.workflow.head().pools[p].breaker;
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

/// The dead letters by cause (`groups`, already filtered by the tasks filter).
pub fn dead_letters(frame: &mut Frame, area: Rect, scene: &Scene, groups: &[DeadLetterGroup]) {
    // The tasks filter applies here as in the dead letters view, and `A` replays what
    // is shown: the title says which filter.
    let total: usize = groups.iter().map(|g| g.tasks.len()).sum();
    let filter = dead_letters::filter_note(&scene.view.filter);
    let room = area.height.saturating_sub(2) as usize;
    // The cause is what tells groups apart (exit codes, error classes): it keeps its
    // room and is cut at a word; the ids column comes only when there is room left
    // for it (the dead letters view lists them all).
    let inner = area.width.saturating_sub(2);
    let ids_width = if inner >= 96 { inner * 3 / 10 } else { 0 };
    let reason_width = inner.saturating_sub(4 + 1 + if ids_width > 0 { ids_width + 1 } else { 0 }) as usize;
    let rows: Vec<Row> = groups
        .iter()
        .take(room)
        .map(|g| {
            let count = Cell::from(format!("{}×", g.tasks.len())).style(scene.theme.fg(Color::Red));
            let reason = Cell::from(dead_letters::fit(&escape_line(&g.reason), reason_width));
            match ids_width {
                0 => Row::new(vec![count, reason]),
                _ => Row::new(vec![count, Cell::from(escape_line(&g.tasks.join(" ")).into_owned()), reason]),
            }
        })
        .collect();
    let more = if groups.len() > room { format!("{} causes, ", groups.len()) } else { String::new() };
    let title = if total == 0 {
        format!(" Dead letters: none {filter}")
    } else {
        format!(" Dead letters {total} {filter}({more}3: list, A: replay all) ")
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    if total == 0 {
        // The one row the box keeps says it in words rather than staying blank.
        let none = if scene.view.filter.is_empty() { "nothing dead-lettered" } else { "none match the filter" };
        frame.render_widget(Paragraph::new(none).style(scene.theme.fg(Color::Gray)).block(block), area);
        return;
    }
    let widths = match ids_width {
        0 => vec![Constraint::Length(4), Constraint::Min(1)],
        _ => vec![Constraint::Length(4), Constraint::Length(ids_width), Constraint::Min(1)],
    };
    let table = Table::new(rows, widths).block(block);
    frame.render_widget(table, area);
}

/// Rows the dashboard's held panel needs (0 when nothing is held).
pub fn held_height(fleet: &Fleet) -> u16 {
    match fleet.held().len() {
        0 => 0,
        n if n <= 3 => n as u16 + 2,
        _ => 6,
    }
}

/// The dashboard's held panel: the three tasks held longest, with what held them,
/// and how to get to the Held view.
pub fn held_panel(frame: &mut Frame, area: Rect, scene: &Scene) {
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
            let finding =
                fleet.state.tasks[i].finding().map(|f| format!("{}: {}", f.rule, f.excerpt)).unwrap_or_default();
            let since = fleet.held_at(i).map(|t| human_ms(scene.now_ms.saturating_sub(t))).unwrap_or_default();
            Line::from(truncate(&escape_line(&format!("{id}  {since}  {finding}")), width.saturating_sub(1)))
        })
        .collect();
    if rows.len() > 3 {
        lines.push(Line::from(format!("and {} more", rows.len() - 3)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
