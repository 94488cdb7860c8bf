//! The disagreement view of a consensus task (DESIGN §10): the candidates side by
//! side, each headed by its digest and who voted for it, and one row per JSON path
//! where they differ with each candidate's value there (in canonical form, as the
//! tally compared them). Up/down scroll the paths,
//! left/right the candidates when they do not all fit.
//!
//! Pure: [`draw`] is a function of an owned [`Disagreement`] (built once from the
//! tally's candidates, so the diff is not recomputed per frame) and the screen's
//! [`DisagreementView`]. Everything a worker wrote is escaped before it is drawn.
//!
//! `v` on a consensus task's detail opens it ([`open`]) from the task's latest
//! attempt's `vote_cast` events in the read model's per-task history; Esc returns to
//! that detail. It is built when opened and not refreshed: a view of a round still
//! running shows the votes in at that moment (the title says so).

use std::collections::BTreeMap;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::core::consensus::{canonical, differences, Candidate, Differences, MAX_DIFF_ROWS};
use crate::core::escape::escape_line;
use crate::core::truncate::truncate_chars;
use crate::tui::draw::Hint;
use crate::tui::keys::{Action, Keymap};
use crate::tui::model::Fleet;
use crate::tui::theme::Theme;
use crate::tui::view::{Detail, Screen, ViewState};

/// Narrowest a candidate's column gets before fewer candidates are shown at once.
const MIN_COLUMN: u16 = 18;

/// What the view shows about one consensus attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// Task id.
    pub task: String,
    /// The attempt the replicas shared.
    pub attempt: u32,
    /// Replicas run.
    pub replicas: u32,
    /// Equal votes that were needed.
    pub quorum: u32,
    /// The distinct answers, in the tally's order (most votes first).
    pub candidates: Vec<Candidate>,
    /// Replicas that abstained (failed, or nothing at the key).
    pub abstained: Vec<u32>,
    /// Which worker ran each replica, for the voter lists.
    pub workers: BTreeMap<u32, String>,
    /// Where the candidates differ.
    pub differences: Differences,
    /// How the attempt was settled, in one line, when known (the title says it).
    pub outcome: Option<String>,
}

impl Disagreement {
    /// Builds the view's data, computing the differing paths once.
    pub fn new(
        task: impl Into<String>,
        attempt: u32,
        replicas: u32,
        quorum: u32,
        candidates: Vec<Candidate>,
        abstained: Vec<u32>,
        workers: BTreeMap<u32, String>,
    ) -> Disagreement {
        let values: Vec<serde_json::Value> = candidates.iter().map(|c| c.value.clone()).collect();
        let differences = differences(&values, MAX_DIFF_ROWS);
        Disagreement {
            task: task.into(),
            attempt,
            replicas,
            quorum,
            candidates,
            abstained,
            workers,
            differences,
            outcome: None,
        }
    }

    /// The same, with how the attempt was settled (shown in the title instead of
    /// "no answer has the quorum", which a majority with a dissenter would belie).
    pub fn with_outcome(mut self, outcome: impl Into<String>) -> Disagreement {
        self.outcome = Some(outcome.into());
        self
    }

    fn replica(&self, r: u32) -> String {
        match self.workers.get(&r) {
            Some(w) => format!("r{r} {}", escape_line(w)),
            None => format!("r{r}"),
        }
    }
}

/// What the screen remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisagreementView {
    /// Paths scrolled past at the top.
    pub scroll: usize,
    /// The leftmost candidate shown.
    pub first_candidate: usize,
}

/// Draws the view into `area`.
pub fn draw(frame: &mut Frame, area: Rect, d: &Disagreement, view: &DisagreementView, theme: Theme) {
    let n = d.candidates.len();
    let settled = match &d.outcome {
        Some(outcome) => escape_line(outcome).into_owned(),
        None => format!("no answer has {} of {} votes", d.quorum, d.replicas),
    };
    let title = format!(" Disagreement: {}, attempt {} — {} answers, {settled} ", escape_line(&d.task), d.attempt, n);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 || n == 0 {
        return;
    }
    let [table_area, footer_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);

    let rows = &d.differences.rows;
    let path_width = rows
        .iter()
        .map(|r| path_label(&r.path).chars().count())
        .chain([4])
        .max()
        .unwrap_or(4)
        .min(28)
        .min(usize::from(inner.width / 3)) as u16;
    let rest = inner.width.saturating_sub(path_width);
    let fits = usize::from((rest / (MIN_COLUMN + 1)).max(1));
    let first = view.first_candidate.min(n - 1);
    let shown = fits.min(n - first);
    let column = (rest.saturating_sub(shown as u16) / shown as u16).max(1);

    let header_cells = std::iter::once(Cell::from("PATH")).chain(
        d.candidates[first..first + shown].iter().enumerate().map(|(i, c)| {
            let voters: Vec<String> = c.voters.iter().map(|&r| d.replica(r)).collect();
            Cell::from(Text::from(vec![
                Line::from(truncate_chars(&format!("#{} {}", first + i, c.digest), column.into())),
                Line::from(truncate_chars(&voters.join(", "), column.into())),
            ]))
        }),
    );
    let header = Row::new(header_cells).height(2).style(Style::default().add_modifier(Modifier::BOLD));

    let scroll = view.scroll.min(rows.len().saturating_sub(1));
    let body: Vec<Row> = rows
        .iter()
        .skip(scroll)
        .take(usize::from(table_area.height.saturating_sub(2)))
        .map(|row| {
            let path = Cell::from(truncate_chars(&escape_line(&path_label(&row.path)), path_width.into()));
            let values = row.values[first..first + shown].iter().map(|v| match v {
                Some(v) => {
                    // The canonical text, as the tally compared it (`1.0` shows as `1`).
                    let text = canonical(v, None).unwrap_or_default();
                    Cell::from(truncate_chars(&escape_line(&text), column.into()))
                }
                None => Cell::from("(missing)").style(Style::default().add_modifier(Modifier::DIM)),
            });
            Row::new(std::iter::once(path).chain(values))
        })
        .collect();
    let widths: Vec<Constraint> =
        std::iter::once(Constraint::Length(path_width)).chain((0..shown).map(|_| Constraint::Length(column))).collect();
    frame.render_widget(Table::new(body, widths).header(header).column_spacing(1), table_area);

    frame.render_widget(
        Paragraph::new(footer(d, scroll, first, shown, table_area.height)).style(theme.fg(ratatui::style::Color::Gray)),
        footer_area,
    );
}

/// The path as shown: the root is named, not left blank.
fn path_label(path: &str) -> String {
    if path.is_empty() {
        "(whole result)".to_string()
    } else {
        path.to_string()
    }
}

/// What is out of sight, and who abstained.
fn footer(d: &Disagreement, scroll: usize, first: usize, shown: usize, table_height: u16) -> String {
    let total = d.differences.rows.len() + d.differences.omitted;
    let visible = usize::from(table_height.saturating_sub(2));
    let mut parts = Vec::new();
    if total == 0 {
        parts.push("no differing paths".to_string());
    } else {
        let last = (scroll + visible).min(d.differences.rows.len());
        parts.push(format!("paths {}–{last} of {total}", (scroll + 1).min(last)));
    }
    if shown < d.candidates.len() {
        parts.push(format!("candidates #{first}–#{} of {} (←/→)", first + shown - 1, d.candidates.len()));
    }
    if !d.abstained.is_empty() {
        let who: Vec<String> = d.abstained.iter().map(|&r| d.replica(r)).collect();
        parts.push(format!("abstained: {}", who.join(", ")));
    }
    parts.join(" · ")
}

/// The screen as the TUI holds it: the view's data (built once, when opened), where
/// it is scrolled, and the detail Esc returns to.
#[derive(Debug, Clone, PartialEq)]
pub struct DisagreementScreen {
    /// What is shown.
    pub data: Disagreement,
    /// Scroll and first candidate.
    pub view: DisagreementView,
    /// The detail it was opened from.
    pub back: Detail,
}

/// What the keys do here, for the help overlay.
pub const HELP: &[(Action, &str)] = &[
    (Action::Up, "scroll the differing paths up"),
    (Action::Down, "scroll the differing paths down"),
    (Action::Left, "previous candidates"),
    (Action::Right, "next candidates"),
    (Action::Back, "back to the task"),
];

/// The key bar's entries here.
pub fn hints(keys: &Keymap) -> [Hint; 3] {
    let k = |a: Action| keys.key_for(a);
    [
        (format!("{}/{}", k(Action::Left), k(Action::Right)), "candidates"),
        (format!("{}/{}", k(Action::Up), k(Action::Down)), "paths"),
        (k(Action::Back), "back"),
    ]
}

/// `v` on a task's detail: opens the disagreement view of its latest consensus
/// attempt (as of the detail's history cursor), or says in the status line why not;
/// pressed in the view, returns to the detail.
pub fn open(vs: &mut ViewState, fleet: &Fleet) {
    // Pressed again in the view: back to the task, like Esc.
    if let Screen::Disagreement(s) = &vs.screen {
        vs.screen = Screen::Detail(s.back.clone());
        return;
    }
    let Screen::Detail(detail) = &vs.screen else {
        vs.message = Some("open a task (enter) to see its votes".into());
        return;
    };
    match build(fleet, detail) {
        Ok(data) => {
            let back = detail.clone();
            vs.screen =
                Screen::Disagreement(Box::new(DisagreementScreen { data, view: DisagreementView::default(), back }));
        }
        Err(why) => vs.message = Some(why),
    }
}

/// The view's data from the task's latest ballot: candidates grouped by canonical
/// answer (at the consensus `key`), as the tally groups them.
fn build(fleet: &Fleet, detail: &Detail) -> Result<Disagreement, String> {
    let task = &detail.task;
    let i = fleet.state.task_index(task).ok_or_else(|| format!("no task {task:?} in this run"))?;
    let Some(spec) = &fleet.state.workflow.tasks[i].consensus else {
        return Err(format!("{task} has no votes: it is not a consensus task"));
    };
    let steps = detail.cursor.map_or(usize::MAX, |c| c + 1);
    let Some(ballot) = fleet.ballots(i, steps).pop() else {
        return Err(format!("{task} has no votes yet"));
    };
    let (candidates, abstained) = ballot.candidates(spec.replicas, spec.key.as_deref());
    let workers: BTreeMap<u32, String> = ballot.votes.iter().map(|v| (v.replica, v.worker.clone())).collect();
    let outcome = ballot.outcome_line(spec.replicas);
    Ok(Disagreement::new(task.clone(), ballot.attempt, spec.replicas, spec.quorum(), candidates, abstained, workers)
        .with_outcome(outcome))
}

/// Up/down (and page, top, bottom) scroll the paths; left/right move the first
/// candidate shown. Both stay within what there is.
pub fn navigate(s: &mut DisagreementScreen, action: Action) {
    let paths = s.data.differences.rows.len().saturating_sub(1);
    let last = s.data.candidates.len().saturating_sub(1);
    let view = &mut s.view;
    match action {
        Action::Up => view.scroll = view.scroll.saturating_sub(1),
        Action::Down => view.scroll = (view.scroll + 1).min(paths),
        Action::PageUp => view.scroll = view.scroll.saturating_sub(10),
        Action::PageDown => view.scroll = (view.scroll + 10).min(paths),
        Action::Top => view.scroll = 0,
        Action::Bottom => view.scroll = paths,
        Action::Left => view.first_candidate = view.first_candidate.saturating_sub(1),
        Action::Right => view.first_candidate = (view.first_candidate + 1).min(last),
        _ => {}
    }
}
