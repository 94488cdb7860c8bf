//! The detail's output pane: which output it shows (live, a finished attempt's, or the
//! attempt of the history step at the cursor), its lines with progress reports drawn
//! as bars (never as raw JSON), and the search's match highlighted.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::search::Search;
use crate::core::escape::escape_line;
use crate::core::Event;
use crate::tui::model::{progress_of, Fleet, Live, Step};
use crate::tui::theme::Theme;

/// One line of the output pane.
#[derive(Debug, Clone, PartialEq)]
pub enum PaneLine {
    /// A line the worker printed (escaped), or a note of the pane's own.
    Text(String),
    /// A `{"pitboss":"progress"}` report: percent and message (escaped).
    Progress(f64, String),
}

impl PaneLine {
    /// The line as searched: a report as its percent and message.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            PaneLine::Text(text) => text.as_str().into(),
            PaneLine::Progress(pct, msg) => format!("{pct:.0}% {msg}").into(),
        }
    }
}

/// The output pane's title and lines (before scrolling).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPane {
    /// The pane's title: which attempt, and whether it is live and followed.
    pub title: String,
    /// The lines, oldest first.
    pub lines: Vec<PaneLine>,
    /// The number of the entry after the last line: the live output's length (lines
    /// received, see `detail::output_len`), else the number of lines. Line `k` is
    /// entry `end - lines.len() + k`, a number that stays with it as lines arrive.
    pub end: u64,
    /// True when the lines are a running attempt's, growing.
    pub live: bool,
}

impl OutputPane {
    /// A pane of fixed lines.
    fn fixed(title: String, lines: Vec<PaneLine>) -> OutputPane {
        OutputPane { title, end: lines.len() as u64, lines, live: false }
    }

    /// A running attempt's lines.
    fn live(title: String, live: &Live) -> OutputPane {
        let lines = live_lines(live);
        let end = live.received + live.reports_received + u64::from(!live.partial.is_empty());
        OutputPane { title, lines, end, live: true }
    }

    /// True when a text line (not a report) of the pane is exactly `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.lines.iter().any(|l| matches!(l, PaneLine::Text(t) if t == text))
    }

    /// The entry number of the pane's first line.
    pub fn first(&self) -> u64 {
        self.end - self.lines.len() as u64
    }
}

/// What the output pane shows for task `i`: with the cursor on a step, the output of
/// that step's attempt (the latest one started by then), so stepping back shows what
/// that attempt printed; at the latest step, the live lines while an attempt runs,
/// else what the latest finished attempt left in the log. Only a running attempt is
/// "following"; a finished one says so.
pub fn output_pane(fleet: &Fleet, i: usize, at: Option<usize>, following: bool) -> OutputPane {
    let history = fleet.history(i);
    let steps: &[Step] = &history;
    let live = fleet.live.get(fleet.state.task_id(i));
    let text = |s: String| vec![PaneLine::Text(s)];
    let scrolled = if following { "following" } else { "scrolled (f: follow)" };
    let Some(c) = at.filter(|c| *c < steps.len()) else {
        if let Some(live) = live {
            return OutputPane::live(format!(" Output · {scrolled} · attempt {} running ", live.attempt), live);
        }
        return match steps.iter().rposition(|s| finished_attempt(&s.event).is_some()) {
            Some(n) => {
                let attempt = finished_attempt(&steps[n].event).unwrap_or(0);
                OutputPane::fixed(
                    format!(" Output · attempt {attempt} (finished) "),
                    attempt_output(fleet, i, &steps[n].event),
                )
            }
            None => OutputPane::fixed(" Output ".into(), text("(no attempt finished yet)".into())),
        };
    };
    let as_of = format!("as of step {}/{}", c + 1, steps.len());
    if let Some((title, lines)) = super::diff::pane(&steps[c]) {
        return OutputPane::fixed(format!("{title}{as_of} "), lines);
    }
    let Some(attempt) = steps[..=c].iter().rev().find_map(|s| started_attempt(&s.event)) else {
        return OutputPane::fixed(
            format!(" Output · {as_of} "),
            text(format!("(no attempt had started by step {})", c + 1)),
        );
    };
    let title = format!(" Output · attempt {attempt} {as_of} ");
    let finish = steps.iter().position(|s| finished_attempt(&s.event) == Some(attempt));
    let lines = match finish {
        Some(n) if n <= c => attempt_output(fleet, i, &steps[n].event),
        Some(n) => {
            let mut lines = text(format!("(attempt {attempt} was running at this step; it ended at step {})", n + 1));
            lines.extend(attempt_output(fleet, i, &steps[n].event));
            lines
        }
        None => match live.filter(|l| l.attempt == attempt) {
            Some(live) => return OutputPane::live(title, live),
            None => text(format!("(attempt {attempt} left no output in the log)")),
        },
    };
    OutputPane::fixed(title, lines)
}

/// A running attempt's lines with its progress reports where they arrived (the model
/// keeps both as a suffix of the output, see `model/live.rs`), then the partial line.
fn live_lines(live: &Live) -> Vec<PaneLine> {
    let first = live.received - live.lines.len() as u64;
    let mut reports = live.reports.iter().peekable();
    let mut lines = Vec::with_capacity(live.lines.len() + live.reports.len() + 1);
    for (k, line) in live.lines.iter().enumerate() {
        while let Some(mark) = reports.next_if(|m| m.after <= first + k as u64) {
            lines.push(PaneLine::Progress(mark.pct, mark.msg.clone()));
        }
        lines.push(PaneLine::Text(line.clone()));
    }
    lines.extend(reports.map(|m| PaneLine::Progress(m.pct, m.msg.clone())));
    // Whole lines were escaped as they arrived; the partial one is escaped here.
    if !live.partial.is_empty() {
        lines.push(PaneLine::Text(escape_line(&live.partial).into_owned()));
    }
    lines
}

/// The attempt an event starts, if it starts one.
pub(super) fn started_attempt(event: &Event) -> Option<u32> {
    match event {
        Event::AttemptStarted { attempt, .. } => Some(*attempt),
        _ => None,
    }
}

/// The attempt an event finishes, if it finishes one.
fn finished_attempt(event: &Event) -> Option<u32> {
    match event {
        Event::AttemptSucceeded { attempt, .. } | Event::AttemptFailed { attempt, .. } => Some(*attempt),
        _ => None,
    }
}

/// Draws the output pane, `scroll` lines up from the end, the search's word marked
/// and its current match reversed.
pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    pane: OutputPane,
    scroll: usize,
    search: Option<&Search>,
    theme: Theme,
) {
    let first = pane.first();
    let OutputPane { mut title, lines, .. } = pane;
    let room = area.height.saturating_sub(2) as usize;
    let scroll = scroll.min(lines.len().saturating_sub(room));
    let end = lines.len() - scroll;
    let start = end.saturating_sub(room);
    let width = area.width.saturating_sub(2);
    // The search and how many lines are below the pane, early in the title (a narrow
    // pane cuts it from the end).
    let mut marks = String::new();
    if let Some(search) = search {
        marks.push_str(&format!(" · /{}", escape_line(&search.word)));
    }
    if scroll > 0 {
        marks.push_str(&format!(" · {scroll} below"));
    }
    if !marks.is_empty() {
        title = title.replacen(" Output", &format!(" Output{marks}"), 1);
    }
    let shown: Vec<Line> = lines[start..end]
        .iter()
        .enumerate()
        .map(|(k, line)| {
            let drawn = match line {
                PaneLine::Text(text) => match search {
                    Some(s) => marked(text, &s.word, theme),
                    None => Line::from(text.clone()),
                },
                PaneLine::Progress(pct, msg) => progress_bar(*pct, msg, width, theme),
            };
            let current = search.and_then(|s| s.at) == Some(first + (start + k) as u64);
            if current {
                drawn.style(theme.selected())
            } else {
                drawn
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).block(Block::default().borders(Borders::ALL).title(title)), area);
}

/// `text` with each occurrence of `word` (ASCII case ignored) in bold yellow.
fn marked(text: &str, word: &str, theme: Theme) -> Line<'static> {
    let lower = text.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    if needle.is_empty() {
        return Line::from(text.to_string());
    }
    let style = theme.fg(Color::Yellow).add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let mut spans = Vec::new();
    let mut from = 0;
    // ASCII lowering keeps byte offsets, so they index `text` too.
    while let Some(found) = lower[from..].find(&needle) {
        let at = from + found;
        spans.push(Span::raw(text[from..at].to_string()));
        spans.push(Span::styled(text[at..at + needle.len()].to_string(), style));
        from = at + needle.len();
    }
    spans.push(Span::raw(text[from..].to_string()));
    Line::from(spans)
}

/// A progress report as a bar: a third of the width (5 to 20 cells) filled to `pct`,
/// then the percent and the message.
pub fn progress_bar(pct: f64, msg: &str, width: u16, theme: Theme) -> Line<'static> {
    let bar_width = (width as usize / 3).clamp(5, 20);
    let filled = (((pct / 100.0) * bar_width as f64).round() as usize).min(bar_width);
    Line::from(vec![
        Span::styled("█".repeat(filled), theme.fg(Color::Cyan)),
        Span::styled("░".repeat(bar_width - filled), theme.fg(Color::DarkGray)),
        Span::styled(format!(" {pct:>3.0}% "), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(msg.to_string()),
    ])
}

/// The stdout/stderr a finished attempt (`event`, its success or failure) left in
/// the log; progress reports on stdout become bars.
fn attempt_output(fleet: &Fleet, i: usize, event: &Event) -> Vec<PaneLine> {
    let (attempt, output) = match event {
        Event::AttemptSucceeded { attempt, output, .. } | Event::AttemptFailed { attempt, output, .. } => {
            (attempt, output)
        }
        _ => return Vec::new(),
    };
    let text = |l: &str| PaneLine::Text(escape_line(l).into_owned());
    let mut lines = vec![PaneLine::Text(format!("── attempt {attempt} ──"))];
    if let Some(s) = &output.stdout {
        lines.extend(s.lines().map(|l| match progress_of(l) {
            Some((pct, msg)) => PaneLine::Progress(pct, escape_line(&msg).into_owned()),
            None => text(l),
        }));
    }
    if let Some(s) = &output.stderr {
        lines.push(PaneLine::Text("── stderr ──".into()));
        lines.extend(s.lines().map(text));
    }
    if output.is_empty() {
        // A consensus attempt's files are one set per replica (`TASK.ATTEMPT.rR.*`).
        let replicas = if fleet.state.workflow.tasks[i].consensus.is_some() { ".r*" } else { "" };
        lines.push(PaneLine::Text(format!(
            "(no small output in the log; see the run folder's output/{}.{attempt}{replicas}.*)",
            escape_line(fleet.state.task_id(i))
        )));
    }
    lines
}
