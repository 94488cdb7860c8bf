//! One task: its state and why, result, payload and inputs; its history, which ←/→
//! step through (the task as it was after each step, kept by the read model, so a
//! step folds nothing); and its output, live while it runs, else what the latest
//! attempt left in the log; with the cursor on a step, that step's attempt output.
//! History lines wrap. Up/down scroll the output; `f` follows it; `/` searches it
//! (`search.rs`). The output pane itself (progress reports as bars) is `output.rs`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::core::gates::VerdictKind;
use crate::core::text::{clock, describe, human_ms};
use crate::core::workflow::gate_label;
use crate::core::Task;
use crate::tui::draw::{Hint, Scene};
use crate::tui::keys::{Action, Keymap};
use crate::tui::model::{Fleet, Step};
use crate::tui::view::{Screen, ViewState};
use crate::tui::widgets::truncate;

mod diff;
mod output;
mod search;

pub use output::{output_pane, progress_bar, OutputPane, PaneLine};
pub use search::{key as search_key, type_key as type_search, Search};

/// The detail screen's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Task id.
    pub task: String,
    /// Position in the task's history (index into its records); `None` = latest.
    pub cursor: Option<usize>,
    /// Lines scrolled up from the end of the output, as it was when the scroll was
    /// set (see `anchor`).
    pub scroll: usize,
    /// Stick to the newest output.
    pub follow: bool,
    /// While not following: the live output's length (lines received, see
    /// [`output_len`]) when `scroll` was set. Lines that arrive since add to the
    /// distance from the end, so a scrolled pane stays put until `f` or `G`.
    pub anchor: Option<u64>,
    /// The output pane's search, if one is on (`/`, then `n`/`N`).
    pub search: Option<Search>,
}

/// What the keys do here, for the help overlay.
pub const HELP: &[(Action, &str)] = &[
    (Action::Left, "step back through the task's history"),
    (Action::Right, "step forward (past the end: live)"),
    (Action::Up, "scroll output up (it stays put until followed again)"),
    (Action::Down, "scroll output down"),
    (Action::HalfPageUp, "scroll output half a page up"),
    (Action::HalfPageDown, "scroll output half a page down"),
    (Action::Bottom, "newest output, following again"),
    (Action::Follow, "follow live output, or pause it where it is"),
    (Action::Filter, "search the output for a word (Enter: newest match)"),
    (Action::SearchNext, "next (newer) match; the pane stays put while output arrives"),
    (Action::SearchPrev, "previous (older) match"),
    (Action::Retry, "retry this task"),
    (Action::RetryContinue, "retry this task, continuing its agent session"),
    (Action::Cancel, "cancel this task (asks)"),
    (Action::Replay, "replay this dead letter"),
    (Action::EditPayload, "edit the payload (then retry or replay)"),
    (Action::EditInEditor, "edit the payload in $VISUAL / $EDITOR (asks)"),
    (Action::Approve, "approve this held task (asks)"),
    (Action::Reject, "reject this held task (asks)"),
    (Action::Votes, "disagreement view (consensus tasks)"),
    (Action::Back, "clear the search, else back"),
];

/// The key bar's entries here.
pub fn hints(keys: &Keymap) -> [Hint; 5] {
    let k = |a: Action| keys.key_for(a);
    [
        ("←/→".to_string(), "history"),
        (k(Action::Follow), "follow"),
        (k(Action::Retry), "retry"),
        (k(Action::Cancel), "cancel"),
        (k(Action::Back), "back"),
    ]
}

/// Opens `task`'s detail, following its output; Esc returns to the screen it was
/// opened from.
pub fn open(vs: &mut ViewState, task: String) {
    if !matches!(vs.screen, Screen::Detail(_)) {
        *vs.previous = vs.screen.clone();
    }
    vs.screen = Screen::Detail(Detail { task, cursor: None, scroll: 0, follow: true, anchor: None, search: None });
}

/// The length of `task`'s live output as the pane shows it, in lines and progress
/// reports received (a partial line counts once: completing it adds no line; a
/// report that replaces the one before in place adds none); `None` when no attempt
/// of it is running.
pub fn output_len(fleet: &Fleet, task: &str) -> Option<u64> {
    fleet.live.get(task).map(|live| live.received + live.reports_received + u64::from(!live.partial.is_empty()))
}

/// Lines from the end of the output to the pane's last line now: the scroll as set,
/// plus the lines that arrived since when the pane is not following.
pub fn effective_scroll(fleet: &Fleet, d: &Detail) -> usize {
    if d.follow {
        return 0;
    }
    let arrived = match (d.anchor, output_len(fleet, &d.task)) {
        (Some(anchor), Some(now)) => usize::try_from(now.saturating_sub(anchor)).unwrap_or(usize::MAX),
        _ => 0,
    };
    d.scroll.saturating_add(arrived)
}

/// Up/down, page up/down, top/bottom: scroll the output (any scroll up stops
/// following; `G` or down to the end resumes it).
pub fn scroll(d: &mut Detail, fleet: &Fleet, action: Action, page: usize) {
    let from = effective_scroll(fleet, d);
    d.scroll = match action {
        Action::Up => from.saturating_add(1),
        Action::Down => from.saturating_sub(1),
        Action::PageUp => from.saturating_add(page),
        Action::PageDown => from.saturating_sub(page),
        Action::HalfPageUp => from.saturating_add(page.div_ceil(2)),
        Action::HalfPageDown => from.saturating_sub(page.div_ceil(2)),
        Action::Top => usize::MAX / 2,
        _ => 0,
    };
    d.follow = d.scroll == 0;
    d.anchor = if d.follow { None } else { anchor_now(fleet, d) };
}

/// Where a scroll set now is measured from: the live output's length when the pane
/// shows a running attempt (lines that arrive later add to the scroll), else nothing
/// (a finished attempt's lines do not grow).
fn anchor_now(fleet: &Fleet, d: &Detail) -> Option<u64> {
    let i = fleet.state.task_index(&d.task)?;
    let pane = output_pane(fleet, i, d.cursor, d.follow);
    pane.live.then_some(pane.end)
}

/// ←/→: one step through the task's history; stepping past the newest step returns to
/// the live task.
pub fn step(d: &mut Detail, fleet: &Fleet, action: Action) {
    let steps = fleet.state.task_index(&d.task).map(|i| fleet.history(i).len()).unwrap_or(0);
    if steps > 0 {
        let at = d.cursor.unwrap_or(steps - 1);
        let at = if action == Action::Left { at.saturating_sub(1) } else { (at + 1).min(steps - 1) };
        d.cursor = if at == steps - 1 && action == Action::Right { None } else { Some(at) };
    }
}

/// `f`: follow the newest output, or stop following (the pane stays where it is).
pub fn toggle_follow(vs: &mut ViewState, fleet: &Fleet) {
    if let Screen::Detail(d) = &mut vs.screen {
        d.scroll = effective_scroll(fleet, d);
        d.follow = !d.follow;
        if d.follow {
            d.scroll = 0;
            d.anchor = None;
        } else {
            d.anchor = anchor_now(fleet, d);
        }
        vs.message = Some(if d.follow { "following the output" } else { "output paused (f: follow)" }.into());
    }
}

/// Draws the task as of the cursor: info on top, history and output below.
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene, d: &Detail) {
    let fleet = scene.fleet;
    let Some(i) = fleet.state.task_index(&d.task) else {
        frame.render_widget(
            Paragraph::new(escape_line(&format!("no task {:?} in this run", d.task)).into_owned()),
            area,
        );
        return;
    };
    let steps = fleet.history(i);
    let at = d.cursor.filter(|c| *c < steps.len());
    // As of the cursor: the task as the fold left it after that step.
    // A step read from disk gets its task folded from a time-travel checkpoint;
    // until the log is indexed for that, the task as it is now is shown.
    let past = at.and_then(|c| fleet.task_after(i, c));
    let shown = past.as_ref().unwrap_or(&fleet.state.tasks[i]);
    // Room for the latest gate verdicts, when the task has any.
    let verdict_rows = shown.verdicts().len().min(MAX_VERDICT_ROWS) as u16;
    // The votes as of the cursor too, when it is a consensus task.
    let votes = vote_lines(scene, i, at.map_or(usize::MAX, |c| c + 1));
    let mut votes = votes;
    // The workspace's line (DESIGN §13), with the votes: below the verdicts.
    votes.extend(diff::summary(&steps[..at.map_or(steps.len(), |c| c + 1)]).map(Line::from));
    // A row for what the task spent, when its workers reported usage (DESIGN §13).
    let spend_rows = u16::from(fleet.state.spend.task(i).is_some());
    let height = 7 + verdict_rows + spend_rows + votes.len() as u16;
    let parts = Layout::vertical([Constraint::Length(height), Constraint::Min(4)]).split(area);
    info(frame, parts[0], scene, i, shown, at.map(|c| (c, steps.len())), votes);
    let lower = columns(parts[1]);
    history(frame, lower[0], scene, &steps, at);
    let pane = output_pane(fleet, i, at, d.follow);
    output::draw(frame, lower[1], pane, effective_scroll(fleet, d), d.search.as_ref(), scene.theme);
}

/// History on the left, output on the right (the mouse's wheel scrolls the one under it).
pub fn columns(area: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
}

/// Gate verdicts shown in the task's box (the latest ones; `inspect TASK` lists all).
const MAX_VERDICT_ROWS: usize = 4;

/// One line per verdict: which gate, on which attempt, how it ended, its score and
/// the start of its critique (or reason).
fn verdict_lines<'a>(task: &Task, scene: &Scene) -> Vec<Line<'a>> {
    let skip = task.verdicts().len().saturating_sub(MAX_VERDICT_ROWS);
    task.verdicts()
        .iter()
        .skip(skip)
        .map(|v| {
            let style = match v.verdict {
                VerdictKind::Passed => scene.theme.fg(Color::Green),
                VerdictKind::Failed => scene.theme.fg(Color::Red),
                VerdictKind::Error => scene.theme.fg(Color::Yellow),
            };
            let score = v.score.map(|s| format!(" score {s}")).unwrap_or_default();
            let words = v.critique.as_deref().unwrap_or(&v.reason);
            let words: String = words.split_whitespace().collect::<Vec<_>>().join(" ");
            Line::from(vec![
                Span::styled(format!("{} {}", gate_label(v.index, v.kind), v.verdict.as_str()), style),
                Span::raw(
                    escape_line(&format!(
                        " (attempt {}{score}, {}): {}",
                        v.attempt,
                        human_ms(v.duration_ms),
                        truncate(&words, 200)
                    ))
                    .into_owned(),
                ),
            ])
        })
        .collect()
}

/// Votes shown in the task's box (the first ones; the disagreement view and
/// `inspect TASK` show all).
const MAX_VOTE_ROWS: usize = 5;

/// The latest consensus attempt among task `i`'s first `steps` history steps: a
/// heading (with the key of the disagreement view), one line per vote (replica,
/// worker, digest or why it abstained) and the outcome. None for other tasks.
fn vote_lines<'a>(scene: &Scene, i: usize, steps: usize) -> Vec<Line<'a>> {
    let fleet = scene.fleet;
    let Some(spec) = &fleet.state.workflow.tasks[i].consensus else { return Vec::new() };
    let Some(ballot) = fleet.ballots(i, steps).pop() else { return Vec::new() };
    let mut votes = ballot.votes.clone();
    votes.sort_by_key(|v| v.replica);
    let mut lines = vec![Line::from(format!(
        "votes (attempt {}, {}/{} in) · {}: disagreement view",
        ballot.attempt,
        votes.len(),
        spec.replicas,
        scene.keys.key_for(Action::Votes)
    ))];
    for v in votes.iter().take(MAX_VOTE_ROWS) {
        let what = match (&v.digest, &v.error) {
            (Some(digest), _) => format!("answer {digest}"),
            (None, Some(error)) => format!("abstained ({})", truncate(error, 120)),
            (None, None) => "abstained (nothing at the compared key)".to_string(),
        };
        lines.push(Line::from(escape_line(&format!("  r{} {}  {what}", v.replica, v.worker)).into_owned()));
    }
    if votes.len() > MAX_VOTE_ROWS {
        lines.push(Line::from(format!("  … and {} more", votes.len() - MAX_VOTE_ROWS)));
    }
    let style = match &ballot.outcome {
        Some(crate::core::consensus::Decision::Reached { .. }) => scene.theme.fg(Color::Green),
        Some(_) => scene.theme.fg(Color::Red),
        None => Style::default(),
    };
    let outcome = truncate(&ballot.outcome_line(spec.replicas), 300);
    lines.push(Line::styled(escape_line(&outcome).into_owned(), style));
    lines
}

/// The disagreement view's key, in the key bar of a consensus task's detail.
pub fn votes_hint(fleet: &Fleet, d: &Detail, keys: &Keymap) -> Option<Hint> {
    let i = fleet.state.task_index(&d.task)?;
    fleet.state.workflow.tasks[i].consensus.as_ref().map(|_| (keys.key_for(Action::Votes), "votes"))
}

/// `spent $1.20 · 3.4k in / 800 out of $2.00 (#1 $0.70 1.2k/300, #2 $0.50 …)`: what
/// task `i` spent in all and per attempt, when its workers reported usage.
pub fn spend_line(state: &crate::core::RunState, i: usize) -> Option<String> {
    let spend = state.spend.task(i)?;
    let budget = state.task_cost_usd(i).map(|b| format!(" of {b}")).unwrap_or_default();
    let attempts: Vec<String> = (spend.attempts.iter())
        .map(|(a, s)| {
            let (input, output) =
                (crate::core::usage::tokens(s.input_tokens), crate::core::usage::tokens(s.output_tokens));
            format!("#{a} {} {input}/{output}", s.cost_usd)
        })
        .collect();
    Some(format!("spent {}{budget} ({})", spend.total.describe(), attempts.join(", ")))
}

/// The task's state, why, result, payload and inputs. `step` is (cursor, steps) when
/// looking back.
fn info(
    frame: &mut Frame,
    area: Rect,
    scene: &Scene,
    i: usize,
    shown: &Task,
    step: Option<(usize, usize)>,
    votes: Vec<Line>,
) {
    let fleet = scene.fleet;
    let spec = &fleet.state.workflow.tasks[i];
    let mut info: Vec<Line> = Vec::new();
    let name = shown.state.name();
    let mut first = vec![
        Span::styled(format!("{} ", escape_line(&spec.id)), Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(name.as_str(), scene.theme.state(name)),
        Span::raw(
            escape_line(&format!(
                "  attempts {}  pool {}  type {}",
                shown.attempts,
                shown.pool.as_deref().unwrap_or("-"),
                if spec.kind.is_empty() { "-" } else { &spec.kind }
            ))
            .into_owned(),
        ),
    ];
    if let Some((c, steps)) = step {
        first.push(Span::styled(
            format!("   as of step {}/{steps}", c + 1),
            scene.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    info.push(Line::from(first));
    if let Some(line) = spend_line(&fleet.state, i) {
        info.push(Line::from(Span::styled(line, scene.theme.fg(Color::Gray))));
    }
    // A remote attempt running now: which worker (not when looking back at a step).
    if let Some(line) = step.is_none().then(|| super::dashboard::remote::runs_on_line(fleet, i)).flatten() {
        info.push(Line::from(Span::styled(escape_line(&line).into_owned(), scene.theme.fg(Color::Cyan))));
    }
    if let Some(why) = shown.why() {
        info.push(Line::from(Span::styled(format!("why: {}", escape_line(&why)), scene.theme.fg(Color::Red))));
    }
    if let (true, Some(finding)) = (shown.approved(), shown.finding()) {
        // Approved: it runs, and the finding it was held for stays in view.
        let text = format!("input guard: {} (approved by an operator)", crate::core::hold::finding_text(finding));
        info.push(Line::from(Span::styled(escape_line(&text).into_owned(), scene.theme.fg(Color::Yellow))));
    }
    if !shown.capture_failures().is_empty() {
        let lost: Vec<String> = shown
            .capture_failures()
            .iter()
            .map(|(attempt, stream)| format!("attempt {attempt} {}", stream.as_str()))
            .collect();
        let text = format!("warning: output not saved ({}); see the history", lost.join(", "));
        info.push(Line::from(Span::styled(text, scene.theme.fg(Color::Yellow))));
    }
    // The agent's session and health flags (DESIGN §13, §16); flags in yellow.
    for line in shown.agent().map(|a| a.lines()).unwrap_or_default() {
        let color = if line.starts_with("flag:") { Color::Yellow } else { Color::Cyan };
        info.push(Line::from(Span::styled(escape_line(&line).into_owned(), scene.theme.fg(color))));
    }
    // Before the result and payload, whose long lines may wrap past the box.
    info.extend(verdict_lines(shown, scene));
    info.extend(votes);
    if let Some(result) = &shown.result {
        info.push(Line::from(format!("result: {}", escape_line(&truncate(&result.to_string(), 300)))));
    }
    let (payload, edited) = match fleet.state.tasks[i].payload() {
        Some(p) => (p, " (edited)"),
        None => (&spec.payload, ""),
    };
    info.push(Line::from(format!("payload{edited}: {}", escape_line(&truncate(&payload.to_string(), 300)))));
    let inputs: Vec<String> = fleet.state.dependencies[i]
        .iter()
        .map(|&d| format!("{} ({})", fleet.state.task_id(d), fleet.state.tasks[d].state.name().as_str()))
        .collect();
    info.push(Line::from(format!(
        "inputs: {}",
        if inputs.is_empty() { "none".to_string() } else { escape_line(&inputs.join(", ")).into_owned() }
    )));
    frame.render_widget(
        Paragraph::new(info)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Task (Esc: back) ")),
        area,
    );
}

/// Every transition, the cursor's step highlighted; only the visible window is read.
/// Long lines wrap (a backoff's delay sits at the end of its line), so the window is
/// counted in screen rows.
fn history(frame: &mut Frame, area: Rect, scene: &Scene, steps: &[Step], at: Option<usize>) {
    let rows = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let style = |n: usize| if at == Some(n) { scene.theme.selected() } else { Style::default() };
    let lines: Vec<Line> =
        history_rows(steps, at, width, rows).into_iter().map(|(n, text)| Line::styled(text, style(n))).collect();
    let title = format!(" History {} steps (←/→ step through) ", steps.len());
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), area);
}

/// The history pane's screen rows, each with the step it belongs to: every step's
/// line cut into `width`-character rows, in a window of `rows` rows that ends with
/// the cursor's step (or the newest) and fills with the steps after it when there is
/// room. Only the steps near the window are described.
pub fn history_rows(steps: &[Step], at: Option<usize>, width: usize, rows: usize) -> Vec<(usize, String)> {
    let width = width.max(1);
    let wrapped = |n: usize| -> Vec<String> {
        let Some(step) = steps.get(n) else { return Vec::new() };
        let Some(what) = describe(&step.event) else { return Vec::new() };
        let chars: Vec<char> = format!("{} {}", clock(step.ts), escape_line(&what)).chars().collect();
        chars.chunks(width).map(|c| c.iter().collect()).collect()
    };
    let current = at.unwrap_or(steps.len().saturating_sub(1));
    let mut before: Vec<(usize, String)> = Vec::new();
    let mut n = current + 1;
    while n > 0 && before.len() < rows {
        n -= 1;
        for row in wrapped(n).into_iter().rev() {
            before.push((n, row));
        }
    }
    before.reverse();
    // The cursor's step ends the window; its first rows give way if it is too tall.
    let cut = before.len().saturating_sub(rows);
    let mut out: Vec<(usize, String)> = before.split_off(cut);
    let mut n = current + 1;
    while out.len() < rows && n < steps.len() {
        out.extend(wrapped(n).into_iter().map(|row| (n, row)));
        n += 1;
    }
    out.truncate(rows);
    out
}
