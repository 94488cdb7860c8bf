//! The header line: progress at a glance (done/total and percent, the rate over the
//! last minute and the ETA it gives), what needs the operator (stalled, held, dead
//! letters), the state counts and the run's global `max_parallel` cap.
//!
//! The line is built from parts, each with a rank: on a narrow terminal the least
//! important parts first take their short form, then go, so the line always fits
//! whole words and is never cut mid-part (an 80-column terminal keeps progress, rate,
//! ETA and the counts that call for action).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::draw::Scene;
use super::keys::Action;
use super::model::Fleet;
use super::screens::travel;
use crate::core::text::human_ms;
use crate::core::TaskStateName;

/// Between two parts.
const GAP: &str = "  ";

/// One piece of the header. `rank`: higher stays longer on a narrow terminal.
struct Part {
    text: String,
    /// A shorter text that says the same, and the rank at which it replaces the text
    /// (below `rank`: a part is shortened before it is dropped).
    short: Option<(String, u8)>,
    style: Style,
    rank: u8,
    /// Drawn without the gap before it (the badge and the travel indicator carry
    /// their own spacing).
    tight: bool,
}

impl Part {
    fn new(text: String, style: Style, rank: u8) -> Part {
        Part { text, short: None, style, rank, tight: false }
    }

    fn short(mut self, short: String, rank: u8) -> Part {
        self.short = Some((short, rank));
        self
    }

    fn width(&self) -> usize {
        self.text.chars().count() + if self.tight { 0 } else { GAP.len() }
    }
}

/// Completed tasks, tasks in all, and tasks not yet at an end (neither completed,
/// dead-lettered, skipped nor cancelled): what the ETA waits for.
pub fn progress(fleet: &Fleet) -> (usize, usize, usize) {
    let state = &fleet.state;
    let done = state.count(TaskStateName::Completed);
    let total = state.tasks.len();
    let ended: usize = TaskStateName::ALL.iter().filter(|n| n.is_terminal()).map(|n| state.count(*n)).sum();
    (done, total, total.saturating_sub(ended))
}

/// Time left for `remaining` tasks at `rate` tasks per second; None when nothing
/// completes (no rate to go by) or nothing is left.
pub fn eta_ms(remaining: usize, rate: f64) -> Option<u64> {
    if remaining == 0 || !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    Some((remaining as f64 / rate * 1000.0).round() as u64)
}

/// A rate made readable: per second, or per minute when under one every ten
/// seconds (so a slow run does not read `0.0/s`).
pub fn human_rate(rate: f64) -> String {
    if rate > 0.0 && rate < 0.095 {
        format!("{:.1}/min", rate * 60.0)
    } else {
        format!("{rate:.1}/s")
    }
}

/// Attempts flagged stalled (past their pool's `stall_after` without output).
pub fn stalled(fleet: &Fleet) -> usize {
    fleet.running().filter(|&i| fleet.state.tasks[i].state.is_stalled()).count()
}

/// The header line for a terminal `width` columns wide.
pub fn line(scene: &Scene, width: u16) -> Line<'static> {
    let mut parts = parts(scene);
    fit(&mut parts, width as usize);
    let mut spans = Vec::with_capacity(parts.len() * 2);
    for (n, part) in parts.into_iter().enumerate() {
        if n == 1 && !part.tight {
            // The badge ends in a blank of its own.
            spans.push(Span::raw(" "));
        } else if n > 0 && !part.tight {
            spans.push(Span::raw(GAP));
        }
        spans.push(Span::styled(part.text, part.style));
    }
    Line::from(spans)
}

/// Shortens or drops parts, the lowest ranked step first (at one rank the rightmost
/// part first, a shortening before a drop), until the line fits `width`.
fn fit(parts: &mut Vec<Part>, width: usize) {
    // (rank, drop?, index): every step that can make the line narrower.
    let mut steps: Vec<(u8, bool, usize)> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if let Some((_, rank)) = &part.short {
            steps.push((*rank, false, i));
        }
        steps.push((part.rank, true, i));
    }
    steps.sort_by_key(|&(rank, drop, i)| (rank, drop, std::cmp::Reverse(i)));
    let mut dropped = vec![false; parts.len()];
    let total = |parts: &[Part], dropped: &[bool]| {
        parts.iter().zip(dropped).filter(|(_, d)| !**d).map(|(p, _)| p.width()).sum::<usize>()
    };
    for (_, drop, i) in steps {
        if total(parts, &dropped) <= width {
            break;
        }
        if drop {
            dropped[i] = true;
        } else if let Some((short, _)) = parts[i].short.take() {
            parts[i].text = short;
        }
    }
    let mut i = 0;
    parts.retain(|_| {
        i += 1;
        !dropped[i - 1]
    });
}

/// Broker mode (DESIGN §7): `redis up`, a quiet note that goes early on a narrow
/// terminal, or `redis DOWN 12s — dispatch paused`, which outranks the progress
/// (nothing starts until it is back). None for a run without a broker.
fn broker(scene: &Scene, now: u64) -> Option<Part> {
    let state = &scene.fleet.state;
    let label = state.workflow.head().broker.as_ref()?.label();
    let t = scene.theme;
    match &state.remote.link {
        Some(link) if !link.up => {
            let down = human_ms(now.saturating_sub(link.since_ms));
            let style = t.fg(Color::Red).add_modifier(Modifier::BOLD);
            Some(
                Part::new(format!("{label} DOWN {down} — dispatch paused"), style, 11)
                    .short(format!("{label} DOWN {down}"), 9),
            )
        }
        _ => Some(Part::new(format!("{label} up"), t.fg(Color::Gray), 4)),
    }
}

/// The run's spend (DESIGN §13): `$1.23`, `$1.23/$5.00` under a budget, or `BUDGET
/// SPENT $5.00/$5.00` once dispatch stopped for it, which outranks the progress
/// (nothing starts until an operator raises it). None for a run where no worker
/// reported usage and no budget is set.
fn spend(scene: &Scene) -> Option<Part> {
    let state = &scene.fleet.state;
    let max = state.max_cost_usd();
    if !state.spend.reported && max.is_none() {
        return None;
    }
    let spent = state.spend.run.cost_usd;
    let t = scene.theme;
    Some(match max {
        Some(max) if state.spend.exhausted => {
            let style = t.fg(Color::Red).add_modifier(Modifier::BOLD);
            Part::new(format!("BUDGET SPENT {spent}/{max}"), style, 11).short(format!("SPENT {spent}"), 9)
        }
        Some(max) => Part::new(format!("{spent}/{max}"), t.fg(Color::Gray), 6),
        None => Part::new(spent.to_string(), t.fg(Color::Gray), 6),
    })
}

/// Every part, in the order drawn, with its rank.
fn parts(scene: &Scene) -> Vec<Part> {
    let fleet = scene.fleet;
    let state = &fleet.state;
    let t = scene.theme;
    // The clock runs from this manager's start (a resumed run does not count the
    // time it was stopped) and stops at the run's end, the rate with it.
    let now = fleet.clock_now(scene.now_ms);
    let elapsed = human_ms(now.saturating_sub(fleet.clock_start()));
    let since = if fleet.resumed { " since resume" } else { "" };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut parts = vec![
        Part { tight: true, ..Part::new(" pitboss ".into(), bold.add_modifier(Modifier::REVERSED), 9) },
        Part::new(state.workflow.head().name.clone(), Style::default(), 1),
        Part::new(format!("{elapsed}{since}"), t.fg(Color::Gray), 3).short(elapsed.clone(), 2),
    ];
    let (done, total, remaining) = progress(fleet);
    // An empty workflow is all done.
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    parts.push(
        // "N done" stays a phrase of its own (never "0/2 done", which reads as "2
        // done" to a glance or a search).
        Part::new(format!("{done} done of {total} ({percent}%)"), t.state(TaskStateName::Completed), 10)
            .short(format!("{done} done of {total}"), 4),
    );
    let rate = fleet.throughput(now);
    parts.push(Part::new(human_rate(rate), Style::default(), 7));
    // Right after the rate it stopped at (the ETA is gone by then).
    if state.finished {
        parts.push(Part::new("finished".into(), bold, 9));
    } else if state.interrupted {
        parts.push(Part::new("stopping".into(), bold, 9));
    }
    if !(state.finished || state.interrupted) && remaining > 0 {
        let eta = eta_ms(remaining, rate).map_or("?".to_string(), human_ms);
        parts.push(Part::new(format!("eta {eta}"), Style::default(), 7));
    }
    let running = state.count(TaskStateName::Running);
    parts.push(Part::new(format!("{running} running"), t.state(TaskStateName::Running), 6));
    if let Some(part) = broker(scene, now) {
        parts.push(part);
    }
    if let Some(part) = spend(scene) {
        parts.push(part);
    }
    let stalled = stalled(fleet);
    if stalled > 0 {
        // A warning like the dashboard's STALLED pane title; `/stalled` finds them.
        parts.push(Part::new(format!("{stalled} stalled"), t.fg(Color::Yellow).add_modifier(Modifier::BOLD), 8));
    }
    let held = state.count(TaskStateName::AwaitingApproval);
    if held > 0 {
        // Held tasks wait for the operator: bold, and with the key of their view.
        let key = scene.keys.key_for(Action::Held);
        let style = t.state(TaskStateName::AwaitingApproval).add_modifier(Modifier::BOLD);
        parts.push(
            // (ranked above the progress: the run waits for the operator's answer)
            Part::new(format!("{held} held for approval ({key})"), style, 11).short(format!("{held} held ({key})"), 9),
        );
    }
    for (name, label) in [
        (TaskStateName::Validating, "validating"),
        (TaskStateName::Queued, "queued"),
        (TaskStateName::RetryWait, "retrying"),
        (TaskStateName::Blocked, "blocked"),
    ] {
        let n = state.count(name);
        if n > 0 {
            parts.push(Part::new(format!("{n} {label}"), t.state(name), 2));
        }
    }
    let dead = state.count(TaskStateName::DeadLettered);
    if dead > 0 {
        parts.push(Part::new(format!("{dead} dead"), t.state(TaskStateName::DeadLettered), 8));
    }
    for (name, label) in [(TaskStateName::Skipped, "skipped"), (TaskStateName::Cancelled, "cancelled")] {
        let n = state.count(name);
        if n > 0 {
            parts.push(Part::new(format!("{n} {label}"), t.state(name), 2));
        }
    }
    let cap = state.workflow.head().max_parallel;
    parts.push(Part::new(format!("max_parallel {cap}"), t.fg(Color::Gray), 5).short(format!("cap {cap}"), 3));
    if let Some(span) = travel::indicator(scene) {
        // The reminder that this is the past outranks everything.
        parts.push(Part { tight: true, ..Part::new(span.content.into_owned(), span.style, 12) });
    }
    parts
}
