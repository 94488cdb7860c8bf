//! The selection of a table (tasks, worker panes, dead-letter causes) follows what
//! was selected, not its row: [`ViewState::pinned`] holds the row's key (a task id,
//! or a dead-letter cause) and the row is looked up again on every key and frame.
//! When the rows change under it (a task above leaves the filter, a worker ends),
//! the highlight stays on the same task; when the task itself leaves the view, the
//! screen says so and it stays the target of the keys (`c`, `e`, Enter) until the
//! operator moves, never silently a neighbour. The Held view keeps its own selection
//! the same way (`screens/held.rs`).

use super::keys::Action;
use super::model::Fleet;
use super::screens::{dashboard, dead_letters, tasks};
use super::view::{Screen, ViewState};

/// What a table's selection points at now.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    /// A row of the table.
    Row(usize),
    /// The selected key left the table (filtered out, finished, replayed).
    Gone(String),
    /// The table is empty and nothing was selected.
    Empty,
}

/// Resolves `vs`'s selection in a table of `len` rows, where `position` finds a key's
/// row. Nothing pinned means the row `vs.selected` (the first row, before any move).
pub fn resolve(vs: &ViewState, len: usize, position: impl Fn(&str) -> Option<usize>) -> Selected {
    match &vs.pinned {
        Some(key) => match position(key) {
            Some(row) => Selected::Row(row),
            None => Selected::Gone(key.clone()),
        },
        None if len == 0 => Selected::Empty,
        None => Selected::Row(vs.selected.min(len - 1)),
    }
}

/// The row of task `id` among `rows` (task indices), for tables of tasks.
pub fn task_position(fleet: &Fleet, rows: &[usize], id: &str) -> Option<usize> {
    let i = fleet.state.task_index(id)?;
    rows.iter().position(|&r| r == i)
}

/// Where the selection is in a table, for its title: `12/300`, or `12/40 of 300` while
/// a filter shows 40 of 300 (`total` is given only then); `-/40` when the selected
/// key is not among the rows.
pub fn position(at: Option<usize>, shown: usize, total: Option<usize>) -> String {
    let at = match at {
        Some(row) if row < shown => (row + 1).to_string(),
        _ if shown == 0 => "0".to_string(),
        _ => "-".to_string(),
    };
    match total {
        Some(total) => format!("{at}/{shown} of {total}"),
        None => format!("{at}/{shown}"),
    }
}

/// Where a move of `action` goes from `row` among `len` rows, `page` rows a page:
/// up/down one, PgUp/PgDn a page, Ctrl-U/Ctrl-D half a page, Home/End the ends.
/// `None` for an action that is no move.
pub fn moved(row: usize, len: usize, page: usize, action: Action) -> Option<usize> {
    let last = len.saturating_sub(1);
    let page = page.max(1);
    let half = page.div_ceil(2);
    Some(
        match action {
            Action::Up => row.saturating_sub(1),
            Action::Down => row + 1,
            Action::PageUp => row.saturating_sub(page),
            Action::PageDown => row + page,
            Action::HalfPageUp => row.saturating_sub(half),
            Action::HalfPageDown => row + half,
            Action::Top => 0,
            Action::Bottom => last,
            _ => return None,
        }
        .min(last),
    )
}

/// Is `action` a move up (from a key that left the table: to the row before)?
pub fn is_up(action: Action) -> bool {
    matches!(action, Action::Up | Action::PageUp | Action::HalfPageUp)
}

/// "selected X left the view (now completed)": what a table's title says while its
/// selected task is not among its rows.
pub fn gone_note(fleet: &Fleet, id: &str) -> String {
    let now = fleet.state.task_index(id).map(|i| fleet.state.tasks[i].state.name().as_str()).unwrap_or("gone");
    format!(" · selected {id} left the view (now {now}; keys still act on it) ")
}

impl ViewState {
    /// The keys of the current table's rows, in order (`None` on screens without one).
    /// Built on a key press, never per frame.
    pub(crate) fn row_keys(&self, fleet: &Fleet) -> Option<Vec<String>> {
        let ids = |rows: Vec<usize>| rows.into_iter().map(|i| fleet.state.task_id(i).to_string()).collect();
        Some(match &self.screen {
            Screen::Tasks => ids(tasks::task_rows(fleet, self)),
            Screen::Dashboard => ids(dashboard::worker_rows(fleet)),
            Screen::DeadLetters => {
                dead_letters::groups(fleet, &self.filter).into_iter().map(|g| g.fingerprint).collect()
            }
            Screen::Detail(_) | Screen::Disagreement(_) | Screen::Held(_) | Screen::Timeline => return None,
        })
    }

    /// The current table's selection, with the keys it was resolved against.
    pub(crate) fn selection(&self, fleet: &Fleet) -> (Vec<String>, Selected) {
        let keys = self.row_keys(fleet).unwrap_or_default();
        let selected = resolve(self, keys.len(), |key| keys.iter().position(|k| k == key));
        (keys, selected)
    }

    /// Moves the selection and pins the row it lands on. From a key that left the
    /// table, down goes to the row now where it was seen last and up to the one before.
    pub(crate) fn move_selection(&mut self, fleet: &Fleet, action: Action) {
        let (keys, selected) = self.selection(fleet);
        if keys.is_empty() {
            return;
        }
        let last = keys.len() - 1;
        let page = crate::tui::mouse::page_rows(self, fleet);
        let target = match selected {
            // The dashboard's page keys turn its grid's pages.
            Selected::Row(row)
                if self.screen == Screen::Dashboard && matches!(action, Action::PageUp | Action::PageDown) =>
            {
                dashboard::page_target(&self.dashboard_page, row, last, action)
            }
            Selected::Row(row) => moved(row, keys.len(), page, action).unwrap_or(row),
            Selected::Gone(key) => {
                let at = self.gone_row(fleet, &key).min(last);
                match action {
                    _ if is_up(action) => at.saturating_sub(1),
                    Action::Top => 0,
                    Action::Bottom => last,
                    _ => at,
                }
            }
            Selected::Empty => return,
        };
        self.pin_row(&keys, target);
    }

    /// Where a task that left the current table would be among its rows now: the row
    /// down goes to from it. A dead-letter cause or a worker pane (whose order is by
    /// state, which a finished task no longer has): the row it was seen at last.
    fn gone_row(&self, fleet: &Fleet, key: &str) -> usize {
        let Some(i) = fleet.state.task_index(key) else { return self.selected };
        match &self.screen {
            Screen::Tasks => {
                let rows = tasks::task_rows(fleet, self);
                rows.partition_point(|&r| tasks::compare(fleet, self, r, i).is_lt())
            }
            _ => self.selected,
        }
    }

    /// Selects row `row` of a table whose keys are `keys`.
    pub(crate) fn pin_row(&mut self, keys: &[String], row: usize) {
        self.selected = row;
        self.pinned = keys.get(row).cloned();
    }

    /// After the rows changed at the operator's hand (a new filter, another screen):
    /// the selected key stays selected while it is shown, else the first row is.
    pub(crate) fn repin(&mut self, fleet: &Fleet) {
        let (keys, selected) = self.selection(fleet);
        match selected {
            Selected::Row(row) if self.pinned.is_some() => self.selected = row,
            _ => self.pin_row(&keys, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_counts_from_one_and_says_of_how_many_while_filtered() {
        assert_eq!(position(Some(11), 300, None), "12/300");
        assert_eq!(position(Some(11), 40, Some(300)), "12/40 of 300");
        assert_eq!(position(None, 40, None), "-/40");
        assert_eq!(position(None, 0, Some(300)), "0/0 of 300");
    }

    #[test]
    fn pages_and_half_pages_stop_at_the_ends() {
        assert_eq!(moved(0, 40, 18, Action::HalfPageDown), Some(9));
        assert_eq!(moved(35, 40, 18, Action::HalfPageDown), Some(39));
        assert_eq!(moved(5, 40, 18, Action::HalfPageUp), Some(0));
        assert_eq!(moved(20, 40, 18, Action::PageUp), Some(2));
        assert_eq!(moved(0, 40, 1, Action::HalfPageDown), Some(1), "a half page is at least a row");
        assert_eq!(moved(3, 40, 18, Action::Open), None);
    }
}
