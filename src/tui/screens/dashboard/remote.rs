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

/// The host running task `i`'s current attempt, when a remote worker runs it.
pub fn host_of(fleet: &Fleet, i: usize) -> Option<&str> {
    let TaskState::Running { attempt, .. } = &fleet.state.tasks[i].state else { return None };
    fleet.state.remote.placement(fleet.state.task_id(i), *attempt).map(|p| p.host.as_str())
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

/// The counts for the workers box title: idle and vanished.
pub fn spare_counts(fleet: &Fleet, spare: &[&str]) -> (usize, usize) {
    let gone =
        |id: &str| fleet.state.remote.workers.get(id).is_some_and(|w| matches!(w.presence, Presence::Gone { .. }));
    let vanished = spare.iter().filter(|id| gone(id)).count();
    (spare.len() - vanished, vanished)
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
