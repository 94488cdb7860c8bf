//! The disagreement view of a consensus task (DESIGN §10): the candidates side by
//! side, each headed by its digest and who voted for it, and one row per JSON path
//! where they differ with each candidate's value there (in canonical form, as the
//! tally compared them). Up/down scroll the paths,
//! left/right the candidates when they do not all fit.
//!
//! Pure: [`draw`] is a function of an owned [`Disagreement`] (built once from the
//! tally's candidates, so the diff is not recomputed per frame) and the screen's
//! [`DisagreementView`]. Everything a worker wrote is escaped before it is drawn.

use std::collections::BTreeMap;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::core::consensus::{canonical, differences, Candidate, Differences, MAX_DIFF_ROWS};
use crate::core::escape::escape_line;
use crate::core::truncate::truncate_chars;
use crate::tui::theme::Theme;

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
        Disagreement { task: task.into(), attempt, replicas, quorum, candidates, abstained, workers, differences }
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
    let title = format!(
        " Disagreement: {}, attempt {} — {} answers, no answer has {} of {} votes ",
        escape_line(&d.task),
        d.attempt,
        n,
        d.quorum,
        d.replicas
    );
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
