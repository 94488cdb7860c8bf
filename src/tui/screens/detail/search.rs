//! Searching the detail's output pane: `/` types a word (the field the tasks filter
//! uses, which the detail does not need), Enter jumps to the newest match at or above
//! the pane's bottom line, `n`/`N` to the next (newer) and previous (older) match,
//! wrapping around, and Esc clears the search. A match scrolls the pane like the
//! arrow keys do: it stops following, so output that arrives meanwhile does not move
//! it (until `f` or `G`).

use tui_input::Input;

use super::{effective_scroll, output_pane, Detail, OutputPane};
use crate::tui::keys::Action;
use crate::tui::model::Fleet;
use crate::tui::view::{Screen, TextKey, ViewState};

/// Lines shown under a match, so what follows it is in view too.
const CONTEXT: u64 = 2;

/// The output pane's search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// The word looked for (case ignored).
    pub word: String,
    /// The entry number (see [`OutputPane::end`]) of the match shown, if any.
    pub at: Option<u64>,
}

/// Where a jump looks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Jump {
    /// The newest match at or above the bottom of the pane (a new search).
    Here,
    /// The next match below the current one.
    Next,
    /// The previous match above the current one.
    Previous,
}

/// The search's keys, on any screen: `/` in the detail opens the search field, `n`/`N`
/// jump (elsewhere they say where they work), Esc clears an active search before it
/// leaves the detail. True when the key was the search's.
pub fn key(vs: &mut ViewState, fleet: &Fleet, action: Action) -> bool {
    let Screen::Detail(d) = &mut vs.screen else {
        if matches!(action, Action::SearchNext | Action::SearchPrev) {
            vs.message =
                Some("n/N find the next/previous match of a search in a task's output (/ in its detail)".into());
            return true;
        }
        return false;
    };
    match action {
        // A new word each time, as in less and vim (n/N still find the last one).
        Action::Filter => vs.filter_input = Some(Input::default()),
        Action::SearchNext | Action::SearchPrev => {
            let jump = if action == Action::SearchNext { Jump::Next } else { Jump::Previous };
            vs.message = Some(match d.search.as_ref().map(|s| s.word.clone()) {
                Some(word) => go(d, fleet, word, jump),
                None => "no search: / types a word to find in the output".into(),
            });
        }
        Action::Back if d.search.is_some() => {
            d.search = None;
            vs.message = Some("search cleared".into());
        }
        _ => return false,
    }
    true
}

/// A key typed into the search field: Enter searches, Esc closes the field and
/// clears the search.
pub fn type_key(vs: &mut ViewState, fleet: &Fleet, key: TextKey) {
    let (Some(input), Screen::Detail(d)) = (&mut vs.filter_input, &mut vs.screen) else { return };
    match key {
        TextKey::Enter => {
            let word = input.value().trim().to_string();
            vs.filter_input = None;
            vs.message = Some(if word.is_empty() {
                d.search = None;
                "search cleared".into()
            } else {
                go(d, fleet, word, Jump::Here)
            });
        }
        TextKey::Esc => {
            vs.filter_input = None;
            if d.search.take().is_some() {
                vs.message = Some("search cleared".into());
            }
        }
        other => other.edit(input),
    }
}

/// Jumps to a match of `word` and says which, or plainly that there is none (the
/// pane then stays where it is).
fn go(d: &mut Detail, fleet: &Fleet, word: String, jump: Jump) -> String {
    let Some(i) = fleet.state.task_index(&d.task) else { return "no such task".into() };
    let pane = output_pane(fleet, i, d.cursor, d.follow);
    let needle = word.to_lowercase();
    let first = pane.first();
    let matches: Vec<u64> = pane
        .lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.text().to_lowercase().contains(&needle))
        .map(|(k, _)| first + k as u64)
        .collect();
    let quoted = crate::core::escape::escape_line(&word).into_owned();
    let Some((target, wrapped)) = pick(&matches, &pane, effective_scroll(fleet, d), d.search.as_ref(), jump) else {
        d.search = Some(Search { word, at: None });
        return format!("no match for {quoted:?} in this output");
    };
    d.search = Some(Search { word, at: Some(target) });
    // Scrolled like the arrow keys: not following, measured from the output as it is.
    d.follow = false;
    d.anchor = if pane.live { Some(pane.end) } else { None };
    d.scroll = usize::try_from((pane.end - 1 - target).saturating_sub(CONTEXT)).unwrap_or(usize::MAX);
    let n = matches.iter().position(|m| *m == target).unwrap_or(0) + 1;
    let wrapped = if wrapped { " (wrapped around)" } else { "" };
    format!("match {n}/{} for {quoted:?}{wrapped} · n/N: next/previous · Esc: clear", matches.len())
}

/// The match to show and whether the search wrapped around to find it.
fn pick(matches: &[u64], pane: &OutputPane, scroll: usize, search: Option<&Search>, jump: Jump) -> Option<(u64, bool)> {
    let (first, last) = (*matches.first()?, *matches.last()?);
    // The entry on the pane's bottom line now.
    let bottom = pane.end.saturating_sub(1).saturating_sub(scroll as u64).max(pane.first());
    let from = search.and_then(|s| s.at).unwrap_or(bottom);
    Some(match jump {
        Jump::Here => matches.iter().rev().find(|m| **m <= bottom).map_or((last, true), |m| (*m, false)),
        Jump::Next => matches.iter().find(|m| **m > from).map_or((first, true), |m| (*m, false)),
        Jump::Previous => matches.iter().rev().find(|m| **m < from).map_or((last, true), |m| (*m, false)),
    })
}
