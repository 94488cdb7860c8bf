//! The Held view (DESIGN §5, §11): every task in `awaiting_approval`, grouped by the
//! parent that spawned it (the id before the last `/`; a workflow task held by the
//! input guard has none), with what held it, for how long, and what waits on it.
//! Space marks; `a` / `X` answer the marked tasks (or the selected one), `P` approves
//! every held child of the selected task's parent; each asks first with a preview
//! (`answers.rs`). The selection is a task id, never a row: when the selected task
//! leaves the list, no key falls through to the task that took its row.

use std::collections::BTreeSet;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::core::escape::escape_line;
use crate::core::hold::{finding_text, Answer};
use crate::core::text::human_ms;
use crate::tui::answers::{self, Scope};
use crate::tui::draw::{Hint, Scene};
use crate::tui::keys::{Action, Keymap};
use crate::tui::model::Fleet;
use crate::tui::selection::{is_up, moved, position};
use crate::tui::view::{Screen, ViewState};
use crate::tui::widgets::{first_shown, header_row, selectable};

/// The Held view's own state: which task is selected and which are marked, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldView {
    /// The selected task's id; `None` until the operator moves (the first row is
    /// meant then).
    pub selected: Option<String>,
    /// Marked tasks, by id.
    pub marked: BTreeSet<String>,
    /// Row order.
    pub order: HeldOrder,
}

/// The Held view's row order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeldOrder {
    /// Grouped by spawning parent (the workflow's own holds first), spawn order within.
    #[default]
    Parent,
    /// Held longest first.
    Longest,
    /// By id.
    Id,
}

impl HeldOrder {
    fn next(self) -> HeldOrder {
        match self {
            HeldOrder::Parent => HeldOrder::Longest,
            HeldOrder::Longest => HeldOrder::Id,
            HeldOrder::Id => HeldOrder::Parent,
        }
    }

    /// The order in words, for the title.
    pub fn name(self) -> &'static str {
        match self {
            HeldOrder::Parent => "by parent",
            HeldOrder::Longest => "held longest first",
            HeldOrder::Id => "by id",
        }
    }
}

/// What the keys do here, for the help overlay.
pub const HELP: &[(Action, &str)] = &[
    (Action::Up, "move up"),
    (Action::Down, "move down"),
    (Action::HalfPageDown, "half a page down"),
    (Action::HalfPageUp, "half a page up"),
    (Action::Mark, "mark / unmark the task"),
    (Action::Approve, "approve the marked tasks, else the selected one (asks)"),
    (Action::Reject, "reject the marked tasks, else the selected one (asks)"),
    (Action::ApproveGroup, "approve every held child of its parent (asks)"),
    (Action::Sort, "order: by parent, held longest, by id"),
    (Action::Open, "open the task"),
    (Action::Dashboard, "dashboard"),
];

/// The key bar's entries here, most needed first (a narrow bar drops from the end).
pub fn hints(keys: &Keymap) -> Vec<Hint> {
    let k = |a: Action| keys.key_for(a);
    vec![
        (k(Action::Mark), "mark"),
        (k(Action::Approve), "approve"),
        (k(Action::Reject), "reject"),
        (k(Action::ApproveGroup), "approve group"),
        (k(Action::Sort), "sort"),
        (k(Action::Open), "open"),
    ]
}

/// The spawning parent of a task id: what comes before its last `/`.
pub fn parent_of(id: &str) -> Option<&str> {
    id.rsplit_once('/').map(|(parent, _)| parent)
}

/// Where task `i` sorts in `order` (held now or not: a task answered meanwhile is
/// still placed, so a move starts from where it was).
fn sort_key(fleet: &Fleet, order: HeldOrder, i: usize) -> (bool, &str, u64, usize) {
    let id = fleet.state.task_id(i);
    match order {
        HeldOrder::Parent => match parent_of(id) {
            Some(parent) => (true, parent, 0, i),
            None => (false, "", 0, i),
        },
        HeldOrder::Longest => (false, "", fleet.held_at(i).unwrap_or(0), i),
        HeldOrder::Id => (false, id, 0, i),
    }
}

/// The held tasks in the view's order.
pub fn rows(fleet: &Fleet, view: &HeldView) -> Vec<usize> {
    let mut rows: Vec<usize> = fleet.held().collect();
    rows.sort_by(|&a, &b| sort_key(fleet, view.order, a).cmp(&sort_key(fleet, view.order, b)));
    rows
}

/// What the selection points at now.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    /// A held task: its row and its index.
    Row(usize, usize),
    /// The selected task left the list (answered, from here or elsewhere).
    Gone(String),
    /// Nothing is held.
    Empty,
}

/// Resolves the view's selection against the run as it is.
pub fn selected(fleet: &Fleet, view: &HeldView, rows: &[usize]) -> Selected {
    match &view.selected {
        None => rows.first().map_or(Selected::Empty, |&i| Selected::Row(0, i)),
        Some(id) => match rows.iter().position(|&i| fleet.state.task_id(i) == id) {
            Some(row) => Selected::Row(row, rows[row]),
            None => Selected::Gone(id.clone()),
        },
    }
}

/// The selected task's id (held or gone), what Enter opens.
pub fn selected_task(fleet: &Fleet, view: &HeldView) -> Option<String> {
    match selected(fleet, view, &rows(fleet, view)) {
        Selected::Row(_, i) => Some(fleet.state.task_id(i).to_string()),
        Selected::Gone(id) => Some(id),
        Selected::Empty => None,
    }
}

/// `4`: opens the view (keeping its marks when it is already up).
pub fn open(vs: &mut ViewState) {
    if !matches!(vs.screen, Screen::Held(_)) {
        vs.screen = Screen::Held(HeldView::default());
    }
}

/// Moves the selection (`page` rows a page). From a task that left the list, down
/// goes to the task now where it was and up to the one before.
pub fn navigate(view: &mut HeldView, fleet: &Fleet, action: Action, page: usize) {
    let rows = rows(fleet, view);
    if rows.is_empty() {
        return;
    }
    let last = rows.len() - 1;
    let target = match selected(fleet, view, &rows) {
        Selected::Row(row, _) => moved(row, rows.len(), page, action).unwrap_or(row),
        Selected::Gone(id) => {
            let key = fleet.state.task_index(&id).map(|i| sort_key(fleet, view.order, i));
            let at = key.map_or(0, |key| rows.partition_point(|&r| sort_key(fleet, view.order, r) < key));
            match action {
                _ if is_up(action) => at.saturating_sub(1),
                Action::Top => 0,
                Action::Bottom => last,
                _ => at.min(last),
            }
        }
        Selected::Empty => return,
    };
    view.selected = Some(fleet.state.task_id(rows[target]).to_string());
}

/// The held task drawn at row `y` of the screen's `area`, if one is: what a click there
/// selects.
pub fn row_at(fleet: &Fleet, view: &HeldView, area: Rect, y: u16) -> Option<usize> {
    let rows = rows(fleet, view);
    let table = rows_area(area);
    if y < table.y || y >= table.y + table.height {
        return None;
    }
    let at = match selected(fleet, view, &rows) {
        Selected::Row(row, _) => row,
        _ => 0,
    };
    let row = first_shown(at, table.height as usize) + (y - table.y) as usize;
    rows.get(row).copied()
}

/// Where the table's rows are drawn in the screen's `area` (the selected task's
/// finding takes the two lines under them).
pub fn rows_area(area: Rect) -> Rect {
    let [table, _] = split(Block::default().borders(Borders::ALL).inner(area));
    Rect { y: table.y + 1.min(table.height), height: table.height.saturating_sub(1), ..table }
}

/// The table over the finding's two lines.
fn split(inner: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(2), Constraint::Length(2)]).areas(inner)
}

/// Space: marks or unmarks the selected task.
pub fn toggle_mark(vs: &mut ViewState, fleet: &Fleet) {
    let Screen::Held(view) = &mut vs.screen else { return };
    let rows = rows(fleet, view);
    match selected(fleet, view, &rows) {
        Selected::Row(_, i) => {
            let id = fleet.state.task_id(i).to_string();
            if !view.marked.remove(&id) {
                view.marked.insert(id);
            }
        }
        Selected::Gone(id) => vs.message = Some(gone(&id)),
        Selected::Empty => vs.message = Some(NOTHING_HELD.into()),
    }
}

const NOTHING_HELD: &str = "nothing is held for approval";

fn gone(id: &str) -> String {
    format!("{id} is no longer held; select another task")
}

/// `a` / `X`: answers the marked tasks that are still held, else the selected one.
pub fn answer(vs: &mut ViewState, fleet: &Fleet, answer: Answer) {
    let Screen::Held(view) = &vs.screen else { return };
    let rows = rows(fleet, view);
    if !view.marked.is_empty() {
        let targets: Vec<String> =
            rows.iter().map(|&i| fleet.state.task_id(i).to_string()).filter(|id| view.marked.contains(id)).collect();
        let stale = view.marked.len() - targets.len();
        if targets.is_empty() {
            vs.message = Some(format!("nothing to {}: no marked task is held any more", answer.verb()));
        } else {
            answers::ask(vs, fleet, &targets, answer, Scope::Tasks, stale);
        }
        return;
    }
    match selected(fleet, view, &rows) {
        Selected::Row(_, i) => {
            let target = [fleet.state.task_id(i).to_string()];
            answers::ask(vs, fleet, &target, answer, Scope::Tasks, 0);
        }
        Selected::Gone(id) => vs.message = Some(gone(&id)),
        Selected::Empty => vs.message = Some(NOTHING_HELD.into()),
    }
}

/// `P`: approves every held child of the selected task's parent.
pub fn approve_group(vs: &mut ViewState, fleet: &Fleet) {
    let Screen::Held(view) = &vs.screen else { return };
    let rows = rows(fleet, view);
    let id = match selected(fleet, view, &rows) {
        Selected::Row(_, i) => fleet.state.task_id(i).to_string(),
        Selected::Gone(id) => {
            vs.message = Some(gone(&id));
            return;
        }
        Selected::Empty => {
            vs.message = Some(NOTHING_HELD.into());
            return;
        }
    };
    let Some(parent) = parent_of(&id) else {
        vs.message = Some(format!("{id} was not spawned by a planner: answer it on its own (a / X)"));
        return;
    };
    // Spawn order, whatever the view's order.
    let children: Vec<String> = fleet
        .held()
        .map(|i| fleet.state.task_id(i))
        .filter(|child| parent_of(child) == Some(parent))
        .map(str::to_string)
        .collect();
    answers::ask(vs, fleet, &children, Answer::Approve, Scope::ChildrenOf(parent.to_string()), 0);
}

/// `s`: the next row order.
pub fn cycle_order(vs: &mut ViewState) {
    if let Screen::Held(view) = &mut vs.screen {
        view.order = view.order.next();
        vs.message = Some(format!("held tasks {}", view.order.name()));
    }
}

/// Up to three of a task's dependents, then how many more.
fn dependents(fleet: &Fleet, i: usize) -> String {
    let all = &fleet.state.dependents[i];
    let shown: Vec<&str> = all.iter().take(3).map(|&d| fleet.state.task_id(d)).collect();
    match all.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} +{more}", shown.join(", ")),
    }
}

/// Draws the table, scrolled so that the selected row is visible, with the selected
/// task's whole finding under it (a narrow column cuts it).
pub fn draw(frame: &mut Frame, area: Rect, scene: &Scene, view: &HeldView) {
    let fleet = scene.fleet;
    let rows = rows(fleet, view);
    let marked = rows.iter().filter(|&&i| view.marked.contains(fleet.state.task_id(i))).count();
    let chosen = selected(fleet, view, &rows);
    let at = match chosen {
        Selected::Row(row, _) => Some(row),
        _ => None,
    };
    let title =
        format!(" Held for approval {} · {marked} marked · {} ", position(at, rows.len(), None), view.order.name());
    let block = Block::default().borders(Borders::ALL).title(title);
    if rows.is_empty() {
        let text = vec![
            Line::from("Nothing is held for approval."),
            Line::from("Tasks over a planner limit or flagged by the input guard wait here for an answer."),
        ];
        frame.render_widget(Paragraph::new(text).style(scene.theme.fg(Color::Gray)).block(block), area);
        return;
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let parts = split(inner);
    table(frame, parts[0], scene, view, &rows, at);
    let footer = match &chosen {
        Selected::Row(_, i) => {
            let finding = fleet.state.tasks[*i].finding().map(finding_text).unwrap_or_default();
            format!("{}: {finding}", fleet.state.task_id(*i))
        }
        Selected::Gone(id) => format!("{id} is no longer held: move to select another task"),
        Selected::Empty => String::new(),
    };
    let footer = Paragraph::new(escape_line(&footer).into_owned()).wrap(Wrap { trim: false });
    frame.render_widget(footer.style(scene.theme.fg(Color::Yellow)), parts[1]);
}

fn table(frame: &mut Frame, area: Rect, scene: &Scene, view: &HeldView, rows: &[usize], at: Option<usize>) {
    let fleet = scene.fleet;
    let wide = area.width >= 118;
    let visible = area.height.saturating_sub(1) as usize;
    let first = first_shown(at.unwrap_or(0), visible);
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(n, &i)| {
            let id = fleet.state.task_id(i);
            // Narrow: a planner's excerpt names the limit hit, a guard finding needs its
            // rule; where it was found is in the footer.
            let finding = match fleet.state.tasks[i].finding() {
                Some(f) if wide => finding_text(f),
                Some(f) if f.rule.starts_with("planner/") => f.excerpt.clone(),
                Some(f) => format!("{}: {}", f.rule, f.excerpt),
                None => String::new(),
            };
            let since = fleet.held_at(i).map(|t| human_ms(scene.now_ms.saturating_sub(t))).unwrap_or_default();
            let mark = if view.marked.contains(id) { " ● " } else { "   " };
            let row = Row::new(vec![
                Cell::from(mark).style(scene.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)),
                Cell::from(escape_line(id).into_owned()),
                Cell::from(escape_line(parent_of(id).unwrap_or("—")).into_owned()),
                Cell::from(since),
                Cell::from(escape_line(&dependents(fleet, i)).into_owned()),
                Cell::from(escape_line(&finding).into_owned()),
            ]);
            selectable(row, Some(n) == at, scene.theme)
        })
        .collect();
    let header = header_row(["", "ID", "PARENT", "HELD", "DEPENDENTS", "HELD FOR"]);
    let (id, parent, dependents) = if wide { (24, 16, 24) } else { (14, 7, 10) };
    let widths = [
        Constraint::Length(3),
        Constraint::Length(id),
        Constraint::Length(parent),
        Constraint::Length(6),
        Constraint::Length(dependents),
        Constraint::Min(10),
    ];
    frame.render_widget(Table::new(body, widths).header(header), area);
}
