//! Remote workers on the dashboard (broker mode, DESIGN §7): where a remote attempt
//! runs (its pane title names the host), and the workers that hold no attempt, as
//! panes of their own after the running ones: registered and idle (dim), or vanished
//! (red, for [`VANISHED_SHOWN_MS`] after they went).

use std::collections::HashSet;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::core::state::remote::{Presence, RemoteWorker};
use crate::core::text::human_ms;
use crate::core::TaskState;
use crate::tui::draw::Scene;
use crate::tui::model::Fleet;

/// How long a vanished worker keeps its pane.
pub const VANISHED_SHOWN_MS: u64 = 5 * 60_000;

/// The worker running task `i`'s current attempt, when a remote one runs it, as the
/// pane and the task detail name it: `host:pid` (its registered pid), so that two
/// workers on one host are told apart; the worker's id when it never registered
/// with this log (its id starts with its host for `pitboss worker`s).
pub fn runs_on(fleet: &Fleet, i: usize) -> Option<String> {
    let TaskState::Running { attempt, .. } = &fleet.state.tasks[i].state else { return None };
    let placed = fleet.state.remote.placement(fleet.state.task_id(i), *attempt)?;
    Some(match fleet.state.remote.workers.get(&placed.worker) {
        Some(w) => format!("{}:{}", placed.host, w.registration.pid),
        None if placed.worker.starts_with(&placed.host) => placed.worker.clone(),
        None => format!("{} {}", placed.host, placed.worker),
    })
}

/// The task detail's line for a remote attempt: where it runs and the worker's id.
pub fn runs_on_line(fleet: &Fleet, i: usize) -> Option<String> {
    let TaskState::Running { attempt, .. } = &fleet.state.tasks[i].state else { return None };
    let placed = fleet.state.remote.placement(fleet.state.task_id(i), *attempt)?;
    Some(format!("runs on {} (worker {})", runs_on(fleet, i)?, placed.worker))
}

/// Workers that hold no running attempt, for panes after the running ones: the
/// registered ones (by id), then those vanished in the last [`VANISHED_SHOWN_MS`]
/// of the log (the most recent first). Empty for a run without a broker.
pub fn spare_workers(fleet: &Fleet) -> Vec<&str> {
    let remote = &fleet.state.remote;
    if remote.workers.is_empty() {
        return Vec::new();
    }
    let busy: HashSet<&str> = fleet
        .running()
        .filter_map(|i| match &fleet.state.tasks[i].state {
            TaskState::Running { attempt, .. } => remote.placement(fleet.state.task_id(i), *attempt),
            _ => None,
        })
        .map(|p| p.worker.as_str())
        .collect();
    let mut idle: Vec<&str> = Vec::new();
    let mut vanished: Vec<(u64, &str)> = Vec::new();
    for (id, w) in &remote.workers {
        match &w.presence {
            Presence::Gone { since_ms, .. } if fleet.last_ts.saturating_sub(*since_ms) <= VANISHED_SHOWN_MS => {
                vanished.push((*since_ms, id));
            }
            Presence::Gone { .. } => {}
            Presence::Live | Presence::Unknown if !busy.contains(id.as_str()) => idle.push(id),
            Presence::Live | Presence::Unknown => {}
        }
    }
    vanished.sort_by_key(|&(since, id)| (std::cmp::Reverse(since), id));
    idle.into_iter().chain(vanished.into_iter().map(|(_, id)| id)).collect()
}

/// The workers box title. Its panes are attempts: in a run without a broker each is
/// a worker process, so ` Workers (N) `; in a broker run a worker is a `pitboss
/// worker` that may run several attempts or none, so the box counts attempts and then
/// says what the workers do: ` Attempts (4) · workers 2 busy, 1 idle, 1 vanished `
/// (parts at 0 left out; `no workers` when none is known). Busy and idle are the live
/// workers (or not yet seen since a resume) with and without an attempt; vanished
/// ones are those whose panes are shown ([`spare_workers`]).
pub fn box_title(fleet: &Fleet, attempts: usize, spare: &[&str]) -> String {
    if fleet.state.workflow.head().broker.is_none() {
        return format!(" Workers ({attempts}) ");
    }
    let workers = &fleet.state.remote.workers;
    let gone = |id: &str| workers.get(id).is_some_and(|w| matches!(w.presence, Presence::Gone { .. }));
    let vanished = spare.iter().filter(|id| gone(id)).count();
    let idle = spare.len() - vanished;
    let live = workers.values().filter(|w| !matches!(w.presence, Presence::Gone { .. })).count();
    let parts: Vec<String> = [(live.saturating_sub(idle), "busy"), (idle, "idle"), (vanished, "vanished")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
    match parts.is_empty() {
        true => format!(" Attempts ({attempts}) · no workers "),
        false => format!(" Attempts ({attempts}) · workers {} ", parts.join(", ")),
    }
}

/// A spare worker's pane: `idle · pool · host pid N` dim, or `vanished 40s ago` red
/// (`left` for a worker that said goodbye).
pub fn pane(frame: &mut Frame, area: Rect, scene: &Scene, id: &str) {
    let Some(worker) = scene.fleet.state.remote.workers.get(id) else { return };
    let RemoteWorker { registration: r, presence, .. } = worker;
    let theme = scene.theme;
    let (state, style) = match presence {
        Presence::Live => ("idle".to_string(), theme.fg(Color::DarkGray)),
        Presence::Unknown => ("not seen since resume".to_string(), theme.fg(Color::DarkGray)),
        Presence::Gone { since_ms, reason } => {
            let ago = human_ms(scene.now_ms.saturating_sub(*since_ms));
            let word = if reason == "left" { "left" } else { "vanished" };
            (format!("{word} {ago} ago"), theme.fg(Color::Red).add_modifier(Modifier::BOLD))
        }
    };
    let title = Line::from(vec![
        Span::styled(format!(" {state} "), style),
        Span::styled(format!("· {} · {} ", escape_line(&r.pool), escape_line(&r.host)), style),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title).border_style(style);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![Line::styled(format!("{} pid {}", escape_line(&r.worker), r.pid), style)];
    let caps = if r.capabilities.is_empty() { String::new() } else { format!(" · {}", r.capabilities.join(", ")) };
    lines.push(Line::styled(
        escape_line(&format!("{} at once{caps} · v{}", r.concurrency, r.version)).into_owned(),
        style,
    ));
    if let Presence::Gone { reason, .. } = presence {
        lines.push(Line::styled(escape_line(reason).into_owned(), style));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
