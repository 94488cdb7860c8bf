//! Rendering: pure functions of (read model, view state, keymap, now). They take
//! shared references only and decide nothing about the run; what a key does lives in
//! `view.rs`, what the run is lives in `model.rs`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::Frame;

use super::keys::{Action, Keymap};
use super::model::{Fleet, Live};
use super::view::{error_of, task_rows, worker_rows, Screen, ViewState};
use crate::core::text::{clock, describe, human_ms};
use crate::core::{Event, TaskState, TaskStateName};

/// Colours, or none at all when `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// False under `NO_COLOR`: only bold/reverse/dim are used.
    pub color: bool,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn state(self, name: TaskStateName) -> Style {
        let color = match name {
            TaskStateName::Running => Color::Cyan,
            TaskStateName::Completed => Color::Green,
            TaskStateName::DeadLettered => Color::Red,
            TaskStateName::RetryWait => Color::Yellow,
            TaskStateName::Cancelled | TaskStateName::Skipped => Color::Magenta,
            TaskStateName::Queued => Color::Blue,
            TaskStateName::Blocked | TaskStateName::Validating => Color::Gray,
        };
        let style = self.fg(color);
        if !self.color && matches!(name, TaskStateName::DeadLettered | TaskStateName::Running) {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }

    fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// Everything one frame needs.
pub struct Scene<'a> {
    /// The run as shown (live, or as of the travelled-to record).
    pub fleet: &'a Fleet,
    /// Records in the live log (for the time-travel indicator).
    pub total: usize,
    /// Screen state.
    pub view: &'a ViewState,
    /// Keys, for the help texts.
    pub keys: &'a Keymap,
    /// Now, for elapsed times (in time travel: the travelled-to record's time).
    pub now_ms: u64,
    /// Colours.
    pub theme: Theme,
}

/// Draws one frame.
pub fn draw(frame: &mut Frame, scene: &Scene) {
    let area = frame.area();
    let rows =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1), Constraint::Length(1)])
            .split(area);
    header(frame, rows[0], scene);
    match &scene.view.screen {
        Screen::Dashboard => dashboard(frame, rows[1], scene),
        Screen::Tasks => tasks(frame, rows[1], scene),
        Screen::DeadLetters => dead_letters(frame, rows[1], scene),
        Screen::Detail(d) => detail(frame, rows[1], scene, &d.task, d.cursor, d.scroll),
    }
    status_line(frame, rows[2], scene);
    key_bar(frame, rows[3], scene);
    if scene.view.help {
        help(frame, area, scene);
    }
    if let Some(confirm) = &scene.view.confirm {
        let text = vec![
            Line::from(confirm.question.clone()),
            Line::from(""),
            Line::from(vec![
                Span::styled(" y ", scene.theme.selected()),
                Span::raw(" yes    "),
                Span::styled(" N ", scene.theme.selected().add_modifier(Modifier::BOLD)),
                Span::raw(" no (any other key)"),
            ]),
        ];
        popup(frame, area, "Confirm", text, 64, 7);
    }
}

fn header(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let state = &fleet.state;
    let t = scene.theme;
    // A finished run shows how long it took; the clock does not keep running.
    let end = if state.finished { fleet.last_ts } else { scene.now_ms };
    let elapsed = human_ms(end.saturating_sub(fleet.started_ms));
    let mut spans = vec![
        Span::styled(" pitboss ", Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(format!(" {} ", state.workflow.name)),
        Span::styled(format!("{elapsed} "), t.fg(Color::Gray)),
    ];
    for (name, label) in [
        (TaskStateName::Running, "running"),
        (TaskStateName::Queued, "queued"),
        (TaskStateName::RetryWait, "retrying"),
        (TaskStateName::Blocked, "blocked"),
        (TaskStateName::Completed, "done"),
        (TaskStateName::DeadLettered, "dead"),
        (TaskStateName::Skipped, "skipped"),
        (TaskStateName::Cancelled, "cancelled"),
    ] {
        let n = state.count(name);
        if n > 0 || matches!(name, TaskStateName::Running | TaskStateName::Completed) {
            spans.push(Span::styled(format!("{n} {label}"), t.state(name)));
            spans.push(Span::raw("  "));
        }
    }
    spans.push(Span::raw(format!("{:.1}/s", fleet.throughput(scene.now_ms))));
    if state.finished {
        spans.push(Span::styled("  finished", Style::default().add_modifier(Modifier::BOLD)));
    } else if state.interrupted {
        spans.push(Span::styled("  stopping", Style::default().add_modifier(Modifier::BOLD)));
    }
    if let Some(n) = scene.view.travel {
        spans.push(Span::styled(
            format!("  ◀ TIME TRAVEL {n}/{} @ {} ▶", scene.total, clock(fleet.last_ts)),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn dashboard(frame: &mut Frame, area: Rect, scene: &Scene) {
    let wide = area.width >= 110;
    let parts = if wide {
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).split(area)
    } else {
        // Stacked: the worker panes take the rows they need (up to 60 %), the
        // panels below get the rest.
        let columns = ((area.width.saturating_sub(2)) / 38).max(1) as usize;
        let pane_rows = worker_rows(scene.fleet).len().div_ceil(columns).max(1) as u16;
        let wanted = pane_rows * 5 + 2;
        let workers = wanted.min(area.height * 6 / 10).max(7.min(area.height));
        Layout::vertical([Constraint::Length(workers), Constraint::Min(3)]).split(area)
    };
    workers(frame, parts[0], scene);
    let side = if wide {
        let pools = scene.fleet.state.workflow.pools.len() as u16 + 2;
        Layout::vertical([Constraint::Length(pools + 3), Constraint::Length(pools), Constraint::Min(3)]).split(parts[1])
    } else {
        Layout::horizontal([Constraint::Percentage(34), Constraint::Percentage(33), Constraint::Percentage(33)])
            .split(parts[1])
    };
    queue(frame, side[0], scene);
    pools(frame, side[1], scene);
    dead_letter_panel(frame, side[2], scene);
}

fn workers(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let running = worker_rows(fleet);
    let block = Block::default().borders(Borders::ALL).title(format!(" Workers ({}) ", running.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if running.is_empty() {
        let text = if fleet.state.finished { "run finished: nothing running" } else { "no attempt running" };
        frame.render_widget(Paragraph::new(text).style(scene.theme.fg(Color::Gray)), inner);
        return;
    }
    let columns = (inner.width / 38).max(1) as usize;
    let pane_height = 5u16;
    let fit_rows = (inner.height / pane_height).max(1) as usize;
    let capacity = columns * fit_rows;
    // Keep the selected pane on screen.
    let selected = scene.view.selected.min(running.len() - 1);
    let first = if matches!(scene.view.screen, Screen::Dashboard) && selected >= capacity {
        selected + 1 - capacity
    } else {
        0
    };
    let width = inner.width / columns as u16;
    for (slot, &i) in running.iter().skip(first).take(capacity).enumerate() {
        let x = inner.x + (slot % columns) as u16 * width;
        let y = inner.y + (slot / columns) as u16 * pane_height;
        let rect = Rect { x, y, width, height: pane_height.min(inner.y + inner.height - y) };
        worker_pane(frame, rect, scene, i, first + slot == selected);
    }
    let hidden = running.len().saturating_sub(first + capacity);
    if hidden > 0 {
        let note = format!(" +{hidden} more (2: tasks view) ");
        let rect = Rect {
            x: area.x + area.width.saturating_sub(note.len() as u16 + 1),
            y: area.y + area.height - 1,
            width: note.len() as u16,
            height: 1,
        };
        frame.render_widget(Paragraph::new(note), rect);
    }
}

fn worker_pane(frame: &mut Frame, area: Rect, scene: &Scene, i: usize, selected: bool) {
    let fleet = scene.fleet;
    let task = &fleet.state.tasks[i];
    let TaskState::Running { attempt, pool, started_ms } = &task.state else { return };
    let id = fleet.state.task_id(i);
    let live = fleet.live.get(id);
    let quiet = live.map(|l| scene.now_ms.saturating_sub(l.last_output_ms)).unwrap_or(0);
    let mut title = vec![
        Span::styled(format!(" {id} "), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("#{attempt} {pool} {} ", human_ms(scene.now_ms.saturating_sub(*started_ms)))),
    ];
    // Stalled (past the pool's stall_after) is a warning, not a failure; long silence
    // without a policy is shown too.
    if task.stalled {
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
    if let Some(live) = live {
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
            let running = state.pool_running[p];
            let limit = state.concurrency[p];
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
fn circuit_text(state: &crate::core::RunState, p: usize, scene: &Scene) -> (String, Style) {
    use crate::core::breaker::Circuit;
    let paused = if state.paused[p] { " paused" } else { "" };
    let policy = state.workflow.pools[p].breaker;
    let (text, color) = match state.breakers[p].circuit {
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
    let groups = scene.fleet.dead_letter_groups();
    let total: usize = groups.iter().map(|g| g.tasks.len()).sum();
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            Row::new(vec![
                Cell::from(format!("{}×", g.tasks.len())).style(scene.theme.fg(Color::Red)),
                Cell::from(g.tasks.join(" ")),
                Cell::from(g.reason.clone()),
            ])
        })
        .collect();
    let title = if total == 0 {
        " Dead letters: none ".to_string()
    } else {
        format!(" Dead letters {total} (3: list, A: replay all) ")
    };
    let table = Table::new(rows, [Constraint::Length(4), Constraint::Percentage(35), Constraint::Percentage(65)])
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

/// Duration of the latest attempt (running: so far).
fn duration_of(fleet: &Fleet, i: usize, now_ms: u64) -> Option<u64> {
    if let TaskState::Running { started_ms, .. } = fleet.state.tasks[i].state {
        return Some(now_ms.saturating_sub(started_ms));
    }
    fleet.task_records[i].iter().rev().find_map(|&r| match &fleet.records[r].event {
        Event::AttemptSucceeded { duration_ms, .. } | Event::AttemptFailed { duration_ms, .. } => Some(*duration_ms),
        _ => None,
    })
}

fn tasks(frame: &mut Frame, area: Rect, scene: &Scene) {
    let fleet = scene.fleet;
    let vs = scene.view;
    let rows = task_rows(fleet, vs);
    let filter = if vs.filter.is_empty() { String::new() } else { format!(" filter: {} ", vs.filter) };
    let title = format!(" Tasks {}/{} · sort: {} {filter}", rows.len(), fleet.state.tasks.len(), vs.sort.name());
    let block = Block::default().borders(Borders::ALL).title(title);
    let visible = block.inner(area).height.saturating_sub(1) as usize;
    let selected = vs.selected.min(rows.len().saturating_sub(1));
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
                Cell::from(fleet.state.task_id(i).to_string()),
                Cell::from(name.as_str()).style(scene.theme.state(name)),
                Cell::from(task.pool.clone().unwrap_or_default()),
                Cell::from(task.attempts.to_string()),
                Cell::from(duration_of(fleet, i, scene.now_ms).map(human_ms).unwrap_or_default()),
                Cell::from(error_of(fleet, i).unwrap_or_default()),
            ]);
            if n == selected {
                row.style(scene.theme.selected())
            } else {
                row
            }
        })
        .collect();
    let header =
        Row::new(["ID", "STATE", "POOL", "ATT", "TIME", "ERROR"]).style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(22),
        Constraint::Length(13),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    frame.render_widget(Table::new(body, widths).header(header).block(block), area);
}

fn dead_letters(frame: &mut Frame, area: Rect, scene: &Scene) {
    let groups = scene.fleet.dead_letter_groups();
    let rows: Vec<Row> = groups
        .iter()
        .enumerate()
        .map(|(n, g)| {
            let row = Row::new(vec![
                Cell::from(g.tasks.len().to_string()),
                Cell::from(g.attempts.to_string()),
                Cell::from(g.fingerprint.clone()),
                Cell::from(g.tasks.join(", ")),
            ]);
            if n == scene.view.selected {
                row.style(scene.theme.selected())
            } else {
                row
            }
        })
        .collect();
    let header = Row::new(["TASKS", "ATTEMPTS", "CAUSE", "IDS"]).style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [Constraint::Length(6), Constraint::Length(9), Constraint::Percentage(55), Constraint::Percentage(45)];
    let title = " Dead letters by cause (R: replay group, A: replay all, Enter: open) ";
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn detail(frame: &mut Frame, area: Rect, scene: &Scene, task: &str, cursor: Option<usize>, scroll: usize) {
    let fleet = scene.fleet;
    let Some(i) = fleet.state.task_index(task) else {
        frame.render_widget(Paragraph::new(format!("no task {task:?} in this run")), area);
        return;
    };
    let steps = &fleet.task_records[i];
    let at = cursor.filter(|c| *c < steps.len());
    // As of the cursor: the task folded up to that record (the same fold as replay).
    let shown = match at {
        Some(c) => fleet.task_at(i, steps[c]),
        None => Some(fleet.state.tasks[i].clone()),
    };
    let spec = &fleet.state.workflow.tasks[i];
    let parts = Layout::vertical([Constraint::Length(7), Constraint::Min(4)]).split(area);
    let mut info: Vec<Line> = Vec::new();
    if let Some(t) = &shown {
        let name = t.state.name();
        let mut first = vec![
            Span::styled(format!("{task} "), Style::default().add_modifier(Modifier::BOLD)),
            Span::styled(name.as_str(), scene.theme.state(name)),
            Span::raw(format!(
                "  attempts {}  pool {}  type {}",
                t.attempts,
                t.pool.as_deref().unwrap_or("-"),
                if spec.kind.is_empty() { "-" } else { &spec.kind }
            )),
        ];
        if let Some(c) = at {
            first.push(Span::styled(
                format!("   as of step {}/{}", c + 1, steps.len()),
                scene.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ));
        }
        info.push(Line::from(first));
        let why = t.why();
        if let Some(why) = why {
            info.push(Line::from(Span::styled(format!("why: {why}"), scene.theme.fg(Color::Red))));
        }
        if let Some(result) = &t.result {
            info.push(Line::from(format!("result: {}", truncate(&result.to_string(), 300))));
        }
    }
    let (payload, edited) = match &fleet.state.tasks[i].payload {
        Some(p) => (p, " (edited)"),
        None => (&spec.payload, ""),
    };
    info.push(Line::from(format!("payload{edited}: {}", truncate(&payload.to_string(), 300))));
    let inputs: Vec<String> = fleet.state.dependencies[i]
        .iter()
        .map(|&d| format!("{} ({})", fleet.state.task_id(d), fleet.state.tasks[d].state.name().as_str()))
        .collect();
    info.push(Line::from(format!(
        "inputs: {}",
        if inputs.is_empty() { "none".to_string() } else { inputs.join(", ") }
    )));
    frame.render_widget(
        Paragraph::new(info)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Task (Esc: back) ")),
        parts[0],
    );
    let lower = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(parts[1]);
    // History: every transition, the cursor's step highlighted.
    let history_rows = lower[0].height.saturating_sub(2) as usize;
    let current = at.unwrap_or(steps.len().saturating_sub(1));
    let first = current.saturating_sub(history_rows.saturating_sub(1));
    let lines: Vec<Line> = steps
        .iter()
        .enumerate()
        .skip(first)
        .take(history_rows)
        .filter_map(|(n, &r)| {
            let record = &fleet.records[r];
            let text = format!("{} {}", clock(record.ts), describe(&record.event)?);
            let style = if at == Some(n) { scene.theme.selected() } else { Style::default() };
            Some(Line::styled(text, style))
        })
        .collect();
    let title = format!(" History {} steps (←/→ step through) ", steps.len());
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), lower[0]);
    // Output: live lines while running, else what the latest attempt left in the log.
    let mut out: Vec<String> = match fleet.live.get(task) {
        Some(live) => {
            live.lines.iter().cloned().chain((!live.partial.is_empty()).then(|| live.partial.clone())).collect()
        }
        None => last_output(fleet, i),
    };
    let room = lower[1].height.saturating_sub(2) as usize;
    let scroll = scroll.min(out.len().saturating_sub(room));
    let end = out.len() - scroll;
    let start = end.saturating_sub(room);
    out = out[start..end].to_vec();
    let follow = if scroll == 0 { "following" } else { "scrolled (f: follow)" };
    let title = format!(" Output · {follow} ");
    frame.render_widget(
        Paragraph::new(out.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(title)),
        lower[1],
    );
}

/// The stdout/stderr of the task's latest finished attempt, from the log.
fn last_output(fleet: &Fleet, i: usize) -> Vec<String> {
    for &r in fleet.task_records[i].iter().rev() {
        let (attempt, output) = match &fleet.records[r].event {
            Event::AttemptSucceeded { attempt, output, .. } | Event::AttemptFailed { attempt, output, .. } => {
                (attempt, output)
            }
            _ => continue,
        };
        let mut lines = vec![format!("── attempt {attempt} ──")];
        if let Some(s) = &output.stdout {
            lines.extend(s.lines().map(String::from));
        }
        if let Some(s) = &output.stderr {
            lines.push("── stderr ──".into());
            lines.extend(s.lines().map(String::from));
        }
        if output.is_empty() {
            lines.push(format!(
                "(no small output in the log; see the run folder's output/{}.{attempt}.*)",
                fleet.state.task_id(i)
            ));
        }
        return lines;
    }
    vec!["(no attempt finished yet)".into()]
}

fn status_line(frame: &mut Frame, area: Rect, scene: &Scene) {
    let vs = scene.view;
    let line = if let Some(input) = &vs.palette {
        Line::from(vec![
            Span::styled(":", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(input.value().to_string()),
        ])
    } else if let Some(input) = &vs.filter_input {
        Line::from(vec![
            Span::styled("/", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(input.value().to_string()),
        ])
    } else if let Some(message) = &vs.message {
        Line::from(Span::styled(message.clone(), scene.theme.fg(Color::Yellow)))
    } else {
        Line::from("")
    };
    frame.render_widget(Paragraph::new(line), area);
    let cursor = vs.palette.as_ref().or(vs.filter_input.as_ref()).map(|i| i.visual_cursor() as u16 + 1);
    if let Some(x) = cursor {
        frame.set_cursor_position((area.x + x.min(area.width.saturating_sub(1)), area.y));
    }
}

/// The main keys of the current view, always visible.
fn key_bar(frame: &mut Frame, area: Rect, scene: &Scene) {
    let k = |a: Action| scene.keys.key_for(a);
    let hints: Vec<(String, &str)> = if scene.view.travel.is_some() {
        vec![
            (format!("{}/{}", k(Action::Left), k(Action::Right)), "step"),
            ("pgup/pgdn".into(), "jump"),
            (k(Action::Back), "live"),
        ]
    } else {
        let mut h = vec![(k(Action::Help), "help"), (k(Action::Palette), "command"), (k(Action::Filter), "filter")];
        match scene.view.screen {
            Screen::Detail(_) => h.extend([
                ("←/→".to_string(), "history"),
                (k(Action::Follow), "follow"),
                (k(Action::Retry), "retry"),
                (k(Action::Cancel), "cancel"),
                (k(Action::Back), "back"),
            ]),
            _ => h.extend([
                ("1/2/3".to_string(), "views"),
                (k(Action::Open), "open"),
                (k(Action::Retry), "retry"),
                (k(Action::Cancel), "cancel"),
                (k(Action::Replay), "replay"),
                (k(Action::Travel), "travel"),
            ]),
        }
        h.push((k(Action::Quit), "quit"));
        h
    };
    // Narrow terminals drop hints from the middle; help and quit always stay.
    let width = |h: &[(String, &str)]| h.iter().map(|(k, w)| k.chars().count() + w.len() + 4).sum::<usize>();
    let mut hints = hints;
    while hints.len() > 2 && width(&hints) > area.width as usize {
        hints.remove(hints.len() - 2);
    }
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key} "), scene.theme.selected()));
        spans.push(Span::raw(format!(" {what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn help(frame: &mut Frame, area: Rect, scene: &Scene) {
    let k = |a: Action| scene.keys.key_for(a);
    let mut lines = vec![Line::styled(
        "Keys (remap in keys.toml in the pitboss config dir)",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let entries: &[(Action, &str)] = match scene.view.screen {
        Screen::Detail(_) => &[
            (Action::Left, "step back through the task's history"),
            (Action::Right, "step forward (past the end: live)"),
            (Action::Up, "scroll output up"),
            (Action::Down, "scroll output down"),
            (Action::Follow, "follow live output"),
            (Action::Retry, "retry this task"),
            (Action::Cancel, "cancel this task (asks)"),
            (Action::Replay, "replay this dead letter"),
            (Action::EditPayload, "edit the payload (then retry or replay)"),
            (Action::Back, "back"),
        ],
        _ => &[
            (Action::Up, "move up"),
            (Action::Down, "move down"),
            (Action::Top, "first row"),
            (Action::Bottom, "last row"),
            (Action::Open, "open the task"),
            (Action::Dashboard, "dashboard"),
            (Action::Tasks, "tasks"),
            (Action::DeadLetters, "dead letters"),
            (Action::NextPane, "next view"),
            (Action::Sort, "sort the tasks table"),
            (Action::Retry, "retry the task"),
            (Action::Cancel, "cancel the task (asks)"),
            (Action::Replay, "replay the dead letter / group"),
            (Action::ReplayAll, "replay all (filtered) dead letters (asks)"),
            (Action::EditPayload, "edit the task's payload"),
            (Action::Travel, "time travel over the whole run"),
        ],
    };
    for (action, what) in entries {
        lines.push(Line::from(format!("{:>8}  {what}", k(*action))));
    }
    lines.push(Line::from(format!("{:>8}  filter: words, state:NAME, pool:NAME", k(Action::Filter))));
    lines.push(Line::from(format!(
        "{:>8}  commands: retry|cancel|replay|inspect ID, replay all, filter …, travel, quit,",
        k(Action::Palette)
    )));
    lines.push(Line::from("          pause|resume POOL|all, concurrency POOL N, breaker reset|trip POOL"));
    lines.push(Line::from(format!("{:>8}  quit (asks when work is running)", k(Action::Quit))));
    let height = lines.len() as u16 + 2;
    popup(frame, area, "Help (any key closes)", lines, 78, height);
}

fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16, height: u16) {
    let width = width.min(area.width);
    let height = height.min(area.height);
    let rect = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(format!(" {title} "));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), rect);
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}
