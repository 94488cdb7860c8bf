//! Keys are data: every operator action is an [`Action`], and a [`Keymap`] maps key
//! names ("j", "ctrl-c", "enter", "pgdn") to actions. Defaults follow k9s/lazygit
//! habits; `keys.toml` in the pitboss config dir overrides them:
//!
//! ```toml
//! [keys]
//! "x" = "cancel"
//! "ctrl-r" = "replay-all"
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What an operator can ask for with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Leave (asks first when work is running).
    Quit,
    /// Show the keys of the current view.
    Help,
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// First row.
    Top,
    /// Last row.
    Bottom,
    /// Step back (history cursor, time travel).
    Left,
    /// Step forward (history cursor, time travel).
    Right,
    /// Jump back (time travel) or scroll a page up.
    PageUp,
    /// Jump forward (time travel) or scroll a page down.
    PageDown,
    /// Half a page up (Ctrl-U, as in vim, less and k9s).
    HalfPageUp,
    /// Half a page down (Ctrl-D).
    HalfPageDown,
    /// Open the selected task's detail.
    Open,
    /// Close the current layer (dialog, filter, detail, time travel).
    Back,
    /// Move focus to the next pane.
    NextPane,
    /// The dashboard.
    Dashboard,
    /// The tasks table.
    Tasks,
    /// The dead letters table.
    DeadLetters,
    /// Filter the tasks table.
    Filter,
    /// Open the `:` command palette.
    Palette,
    /// Cycle the tasks table's sort column.
    Sort,
    /// Reverse the tasks table's sort order.
    SortReverse,
    /// Retry the selected task (dead-lettered, cancelled, or waiting to retry).
    Retry,
    /// Retry the selected task asking its next attempt to continue its agent session
    /// (`retry ID --continue`).
    RetryContinue,
    /// Cancel the selected task (asks first).
    Cancel,
    /// Replay the selected dead letter.
    Replay,
    /// Replay every dead letter matching the filter (asks first, with a preview).
    ReplayAll,
    /// Enter or leave time travel.
    Travel,
    /// Toggle following live output in the detail view.
    Follow,
    /// Edit the selected task's payload (opens the palette with it).
    EditPayload,
    /// Approve the selected held task, or in the Held view the marked ones (asks
    /// first, with what held them).
    Approve,
    /// Reject the selected held task, or in the Held view the marked ones: they end
    /// cancelled (asks first, with what held them and the dependents skipped).
    Reject,
    /// Open the disagreement view of a consensus task's latest votes.
    Votes,
    /// The Held view: every task waiting for an operator's approval.
    Held,
    /// Mark or unmark the selected held task (the Held view's `a` / `X` then answer
    /// every marked task).
    Mark,
    /// Approve every held child of the selected task's spawning parent (asks first).
    ApproveGroup,
    /// In time travel: fork the run at the cursor into a new run folder (asks first).
    Fork,
    /// Edit the selected task's payload in `$VISUAL` / `$EDITOR` (asks before recording).
    EditInEditor,
    /// Suspend the TUI (Ctrl-Z): the shell gets the terminal until `fg`.
    Suspend,
    /// In a task's detail: the next (newer) match of the output search.
    SearchNext,
    /// In a task's detail: the previous (older) match of the output search.
    SearchPrev,
    /// The timeline of recent attempts, full screen.
    Timeline,
}

/// Key name → action.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    map: HashMap<String, Action>,
}

const DEFAULTS: &[(&str, Action)] = &[
    ("q", Action::Quit),
    ("ctrl-c", Action::Quit),
    ("?", Action::Help),
    ("k", Action::Up),
    ("up", Action::Up),
    ("j", Action::Down),
    ("down", Action::Down),
    ("g", Action::Top),
    ("home", Action::Top),
    ("G", Action::Bottom),
    ("end", Action::Bottom),
    ("h", Action::Left),
    ("left", Action::Left),
    ("l", Action::Right),
    ("right", Action::Right),
    ("pgup", Action::PageUp),
    ("pgdn", Action::PageDown),
    ("ctrl-u", Action::HalfPageUp),
    ("ctrl-d", Action::HalfPageDown),
    ("enter", Action::Open),
    ("esc", Action::Back),
    ("tab", Action::NextPane),
    ("1", Action::Dashboard),
    ("2", Action::Tasks),
    ("3", Action::DeadLetters),
    ("4", Action::Held),
    ("5", Action::Timeline),
    ("/", Action::Filter),
    (":", Action::Palette),
    ("s", Action::Sort),
    ("S", Action::SortReverse),
    ("r", Action::Retry),
    ("C", Action::RetryContinue),
    ("c", Action::Cancel),
    ("R", Action::Replay),
    ("A", Action::ReplayAll),
    ("t", Action::Travel),
    ("f", Action::Follow),
    ("e", Action::EditPayload),
    ("a", Action::Approve),
    ("X", Action::Reject),
    ("v", Action::Votes),
    ("space", Action::Mark),
    ("P", Action::ApproveGroup),
    ("F", Action::Fork),
    ("E", Action::EditInEditor),
    ("ctrl-z", Action::Suspend),
    ("n", Action::SearchNext),
    ("N", Action::SearchPrev),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: HashMap<String, Action>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap { map: DEFAULTS.iter().map(|(k, a)| (k.to_string(), *a)).collect() }
    }
}

impl Keymap {
    /// The defaults with `path`'s overrides, if the file exists. A bad file is an
    /// error naming it (the TUI must not start with keys the operator did not mean).
    pub fn load(path: &Path) -> Result<Keymap, String> {
        let mut keymap = Keymap::default();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keymap),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file: KeyFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        keymap.map.extend(file.keys);
        Ok(keymap)
    }

    /// The action bound to a key name.
    pub fn action(&self, key: &str) -> Option<Action> {
        self.map.get(key).copied()
    }

    /// The first key bound to an action, for help texts.
    pub fn key_for(&self, action: Action) -> String {
        // Prefer the default key when it is still bound, so help stays familiar.
        let default = DEFAULTS.iter().find(|(k, a)| *a == action && self.map.get(*k) == Some(&action));
        match default {
            Some((k, _)) => k.to_string(),
            None => {
                let mut keys: Vec<&String> = self.map.iter().filter(|(_, a)| **a == action).map(|(k, _)| k).collect();
                keys.sort();
                keys.first().map(|k| k.to_string()).unwrap_or_else(|| "unbound".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_and_add_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, "[keys]\n\"x\" = \"cancel\"\n\"j\" = \"up\"\n").unwrap();
        let keymap = Keymap::load(&path).unwrap();
        assert_eq!(keymap.action("x"), Some(Action::Cancel));
        assert_eq!(keymap.action("j"), Some(Action::Up));
        assert_eq!(keymap.action("c"), Some(Action::Cancel));
        assert_eq!(keymap.key_for(Action::Down), "down");
    }

    #[test]
    fn a_bad_key_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, "[keys]\n\"x\" = \"explode\"\n").unwrap();
        let err = Keymap::load(&path).unwrap_err();
        assert!(err.contains("keys.toml"), "{err}");
        assert_eq!(Keymap::load(&dir.path().join("missing.toml")).unwrap(), Keymap::default());
    }
}
