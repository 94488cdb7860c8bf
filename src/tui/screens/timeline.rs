//! The timeline: per pool, its recent attempts as bars over time (one lane per
//! attempt running at once, up to the rows there are), coloured and shaped by
//! outcome (ok, failed, timed out, running, stopped), a retry's start marked `↻` and
//! the pool's breaker openings `!`. Drawn from the read model's bounded window of
//! spans (`model/timeline.rs`), so a frame costs that window, and as of the time
//! travel cursor when travelling (the model is the run as of it). A dashboard panel
//! on large terminals, and its own screen (`5`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span as TextSpan};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::core::text::human_ms;
use crate::tui::draw::Scene;
use crate::tui::keys::Action;
use crate::tui::model::{Fleet, Outcome, Span};
use crate::tui::theme::Theme;

/// Time steps a column may stand for: round numbers, so the axis reads well.
const STEPS_MS: &[u64] =
    &[1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];

/// Rows the timeline panel wants (its lanes, the axis and borders), at most `max`.
pub fn height_wanted(fleet: &Fleet, max: u16) -> u16 {
    let lanes: usize = fleet.state.pools.iter().map(|p| p.concurrency.clamp(1, 8)).sum();
    (lanes as u16 + 3).clamp(5, max.max(5))
}

/// The dashboard's timeline panel.
pub fn panel(frame: &mut Frame, area: Rect, scene: &Scene) {
    let key = scene.keys.key_for(Action::Timeline);
    draw_in(frame, area, scene, &format!("{key}: full screen"));
}

/// The timeline as its own screen.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene) {
    let key = scene.keys.key_for(Action::Dashboard);
    draw_in(frame, area, scene, &format!("{key}: dashboard"));
}

fn draw_in(frame: &mut Frame, area: Rect, scene: &Scene, hint: &str) {
    let fleet = scene.fleet;
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let names = &fleet.state.workflow.head().pools;
    let label = (names.iter().map(|p| p.name.chars().count()).max().unwrap_or(4) as u16 + 1).clamp(5, 13);
    let plot = Rect { x: inner.x + label.min(inner.width), width: inner.width.saturating_sub(label), ..inner };
    let now = scene.now_ms;
    let earliest = fleet.timeline.spans().next().map_or(fleet.started_ms, |s| s.start_ms);
    let step = column_step(now.saturating_sub(earliest), plot.width);
    let title = Line::from(vec![
        TextSpan::raw(format!(" Timeline · a column is {} · ", human_ms(step))),
        TextSpan::styled("█ ok ", style(Outcome::Ok, scene.theme)),
        TextSpan::styled("▓ failed ", style(Outcome::Failed, scene.theme)),
        TextSpan::styled("▒ timed out ", style(Outcome::TimedOut, scene.theme)),
        TextSpan::styled("━ running ", style(Outcome::Running, scene.theme)),
        TextSpan::raw(format!("↻ retry  ! breaker opened ({hint}) ")),
    ]);
    frame.render_widget(Block::default().borders(Borders::ALL).title(title), area);
    if inner.height < 2 || plot.width == 0 {
        return;
    }
    let rows = inner.height - 1;
    // A young run starts at the left edge and grows rightwards; an older one scrolls.
    let span_ms = step * plot.width as u64;
    let from = if now.saturating_sub(earliest) < span_ms { earliest - earliest % step } else { now - span_ms };
    let window = Window { from, step, width: plot.width, now };
    let lanes = allot_lanes(fleet, &window, rows as usize);
    let buf = frame.buffer_mut();
    let mut y = inner.y;
    for (p, pool) in names.iter().enumerate() {
        if lanes[p] == 0 {
            continue;
        }
        let name: String = pool.name.chars().take(label as usize - 1).collect();
        buf.set_string(inner.x, y, name, Style::default().add_modifier(Modifier::BOLD));
        draw_pool(buf, fleet, p, Rect { y, height: lanes[p] as u16, ..plot }, &window, scene.theme);
        y += lanes[p] as u16;
    }
    let hidden = names.len() - lanes.iter().filter(|&&l| l > 0).count();
    let axis = if hidden > 0 {
        format!("-{}  ({hidden} pools not shown: 5 for full screen)", human_ms(now - window.from))
    } else {
        format!("-{}", human_ms(now - window.from))
    };
    let last = inner.y + inner.height - 1;
    frame.render_widget(
        Paragraph::new(axis.as_str()).style(scene.theme.fg(Color::Gray)),
        Rect { y: last, height: 1, ..plot },
    );
    let now_label = "now";
    let at = window.column(now).saturating_add(1).max(now_label.len() as u16 + 1 + axis.len() as u16).min(plot.width);
    let x = plot.x + at.saturating_sub(now_label.len() as u16);
    frame.buffer_mut().set_string(x, last, now_label, scene.theme.fg(Color::Gray));
}

/// The time a column stands for: the smallest round step that fits `range` in
/// `width` columns, and never under a second (a young run grows from the right).
pub fn column_step(range_ms: u64, width: u16) -> u64 {
    let per_column = range_ms.div_ceil(width.max(1) as u64);
    STEPS_MS.iter().copied().find(|s| *s >= per_column).unwrap_or_else(|| per_column.next_multiple_of(3_600_000))
}

/// The time window drawn: column `c` covers `[from + c·step, from + (c+1)·step)`;
/// `now` ends the attempts still running.
struct Window {
    from: u64,
    step: u64,
    width: u16,
    now: u64,
}

impl Window {
    /// Columns `span` covers (start, end inclusive), if it shows at all.
    fn columns(&self, span: &Span) -> Option<(u16, u16)> {
        let end = span.end_ms.unwrap_or(self.now).max(span.start_ms);
        if end < self.from {
            return None;
        }
        Some((self.column(span.start_ms), self.column(end)))
    }

    /// The column of time `t` (clamped to the window).
    fn column(&self, t: u64) -> u16 {
        (t.saturating_sub(self.from) / self.step).min(self.width.saturating_sub(1) as u64) as u16
    }
}

/// Lanes per pool: as many as its attempts overlapping in the window need, within
/// `rows` in all (each pool at least one while rows last, then the busiest first).
fn allot_lanes(fleet: &Fleet, window: &Window, rows: usize) -> Vec<usize> {
    let pools = fleet.state.workflow.head().pools.len();
    let mut needed = vec![0usize; pools];
    let mut ends: Vec<Vec<u16>> = vec![Vec::new(); pools];
    for span in fleet.timeline.spans() {
        let Some((start, end)) = window.columns(span) else { continue };
        let lanes = &mut ends[span.pool.min(pools - 1)];
        match lanes.iter_mut().find(|e| **e < start) {
            Some(e) => *e = end,
            None => lanes.push(end),
        }
    }
    for (p, lanes) in ends.iter().enumerate() {
        needed[p] = lanes.len().max(1);
    }
    let mut allotted = vec![0usize; pools];
    let mut left = rows;
    for a in allotted.iter_mut() {
        if left == 0 {
            break;
        }
        *a = 1;
        left -= 1;
    }
    while left > 0 {
        let Some(p) =
            (0..pools).filter(|&p| allotted[p] > 0 && allotted[p] < needed[p]).max_by_key(|&p| needed[p] - allotted[p])
        else {
            break;
        };
        allotted[p] += 1;
        left -= 1;
    }
    allotted
}

/// Pool `p`'s spans in `area` (one row per lane): each in the first lane free at
/// its start, or over the lane that frees first when all are taken.
fn draw_pool(buf: &mut Buffer, fleet: &Fleet, p: usize, area: Rect, window: &Window, theme: Theme) {
    let mut ends: Vec<Option<u16>> = vec![None; area.height as usize];
    for span in fleet.timeline.spans().filter(|s| s.pool == p) {
        let Some((start, end)) = window.columns(span) else { continue };
        let lane = match ends.iter().position(|e| e.is_none_or(|e| e < start)) {
            Some(lane) => lane,
            None => (0..ends.len()).min_by_key(|&l| ends[l]).unwrap_or(0),
        };
        ends[lane] = Some(end);
        let y = area.y + lane as u16;
        let (symbol, look) = (glyph(span.outcome), style(span.outcome, theme));
        for c in start..=end {
            buf[(area.x + c, y)].set_symbol(symbol).set_style(look);
        }
        if span.attempt > 1 {
            buf[(area.x + start, y)].set_symbol("↻").set_style(look);
        }
    }
    for (ts, pool) in fleet.timeline.breaker_openings() {
        if pool != p || ts < window.from {
            continue;
        }
        let c = window.column(ts);
        let mark = theme.fg(Color::Red).add_modifier(Modifier::BOLD | Modifier::REVERSED);
        buf[(area.x + c, area.y)].set_symbol("!").set_style(mark);
    }
}

/// An outcome's shape (told apart without colours, under `NO_COLOR`).
fn glyph(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "█",
        Outcome::Failed => "▓",
        Outcome::TimedOut => "▒",
        Outcome::Running => "━",
        Outcome::Stopped => "─",
    }
}

fn style(outcome: Outcome, theme: Theme) -> Style {
    theme.fg(match outcome {
        Outcome::Ok => Color::Green,
        Outcome::Failed => Color::Red,
        Outcome::TimedOut => Color::Magenta,
        Outcome::Running => Color::Cyan,
        Outcome::Stopped => Color::Gray,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_is_a_round_step_of_at_least_a_second() {
        assert_eq!(column_step(0, 100), 1_000);
        assert_eq!(column_step(99_000, 100), 1_000);
        assert_eq!(column_step(101_000, 100), 2_000);
        assert_eq!(column_step(500_000, 100), 5_000);
        assert_eq!(column_step(10 * 3_600_000, 10), 3_600_000);
    }
}
