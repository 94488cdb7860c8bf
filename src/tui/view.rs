//! The view state: everything about the screen that is not the run itself (which
//! screen is up, the selection, the filter, open text fields, a pending question, time
//! travel), and the [`Request`]s an update hands to the app loop. Each screen's own
//! state lives with the screen ([`Detail`], [`HeldView`], [`SortKey`], [`Confirm`]) and is re-exported
//! here, so this is the one place that names what the TUI remembers. How keys change
//! it: `update.rs` and the screens.

use tui_input::{Input, InputRequest};

use crate::core::Input as EngineInput;

pub use super::screens::confirm::Confirm;
pub use super::screens::detail::Detail;
pub use super::screens::disagreement::DisagreementScreen;
pub use super::screens::held::{HeldOrder, HeldView};
pub use super::screens::palette::PaletteMemory;
pub use super::screens::tasks::SortKey;

/// Which screen is up.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Header, worker panes, queue, pools, dead letters.
    Dashboard,
    /// Every task in a table.
    Tasks,
    /// Dead letters grouped by cause.
    DeadLetters,
    /// One task: payload, attempts, output, history.
    Detail(Detail),
    /// A consensus task's candidates side by side (opened from its detail).
    Disagreement(Box<DisagreementScreen>),
    /// Every task held for approval, with marks for answering several at once.
    Held(HeldView),
    /// The timeline of recent attempts per pool, full screen.
    Timeline,
}

/// What the app loop should do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Send a command to the engine (recorded as an event before it takes effect).
    Engine(EngineInput),
    /// Stop the run cleanly (resumable) and leave.
    Quit,
    /// Ctrl-Z: give the terminal back to the shell until `fg` (the run goes on).
    Suspend,
    /// `E`: edit `task`'s payload, `text`, in `$VISUAL`/`$EDITOR` (`editor.rs`).
    Edit {
        /// The task whose payload is edited.
        task: String,
        /// The payload as the editor opens it (pretty JSON).
        text: String,
    },
    /// Fork the run in `dir` at record `seq` into the new folder `to` (time travel's
    /// `F`, confirmed): the app loop calls [`crate::launch::fork`].
    Fork {
        /// The run folder forked (only read).
        dir: std::path::PathBuf,
        /// The last record the fork keeps.
        seq: u64,
        /// The new run folder.
        to: std::path::PathBuf,
    },
}

/// A key typed while a text field (palette or filter) has focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKey {
    /// A printable character.
    Char(char),
    /// Delete before the cursor.
    Backspace,
    /// Delete under the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to start.
    Home,
    /// Cursor to end.
    End,
    /// Delete from the start of the line to the cursor (Ctrl-U).
    DeleteToStart,
    /// Delete the word before the cursor (Ctrl-W).
    DeleteWord,
    /// An older line from the palette's history (↑).
    Up,
    /// A newer line from the palette's history (↓).
    Down,
    /// Complete (palette).
    Tab,
    /// Accept.
    Enter,
    /// Abandon.
    Esc,
}

impl TextKey {
    /// Edits a text field; Tab, Enter and Esc are the field owner's to handle.
    pub fn edit(self, input: &mut Input) {
        let request = match self {
            TextKey::Char(c) => InputRequest::InsertChar(c),
            TextKey::Backspace => InputRequest::DeletePrevChar,
            TextKey::Delete => InputRequest::DeleteNextChar,
            TextKey::Left => InputRequest::GoToPrevChar,
            TextKey::Right => InputRequest::GoToNextChar,
            TextKey::Home => InputRequest::GoToStart,
            TextKey::End => InputRequest::GoToEnd,
            TextKey::DeleteToStart => InputRequest::DeleteFromStart,
            TextKey::DeleteWord => InputRequest::DeletePrevWord,
            TextKey::Tab | TextKey::Enter | TextKey::Esc | TextKey::Up | TextKey::Down => return,
        };
        input.handle(request);
    }
}

/// Everything about the screen that is not the run itself.
#[derive(Debug, Clone)]
pub struct ViewState {
    /// Current screen.
    pub screen: Screen,
    /// Where Esc from the detail returns.
    pub previous: Box<Screen>,
    /// Row of the current table where the selection was last seen.
    pub selected: usize,
    /// What is selected in the current table, by key: a task id (tasks table, worker
    /// panes) or a dead-letter cause. The selection follows it, not the row
    /// (`selection.rs`); `None` means the row `selected`.
    pub pinned: Option<String>,
    /// Tasks filter (applies to the tasks table, the dead letters and bulk replay;
    /// shown in their titles; Esc clears it).
    pub filter: String,
    /// The filter being edited.
    pub filter_input: Option<Input>,
    /// The `:` palette being edited.
    pub palette: Option<Input>,
    /// What the palette keeps between lines: its history and the note under it.
    pub palette_memory: PaletteMemory,
    /// A pending confirmation.
    pub confirm: Option<Confirm>,
    /// Help overlay shown.
    pub help: bool,
    /// Lines the help overlay is scrolled down by (j/k/PgUp/PgDn move it).
    pub help_scroll: usize,
    /// Tasks table order.
    pub sort: SortKey,
    /// The tasks table's order reversed (`S`).
    pub sort_reverse: bool,
    /// The tasks' ranks in id order, kept for sorting (`screens/tasks_order.rs`).
    pub id_ranks: super::screens::tasks_order::IdRanks,
    /// The terminal's area as of the last event: pages and mouse hits are counted
    /// with the layout the frame is drawn with (`mouse.rs`).
    pub terminal: ratatui::layout::Rect,
    /// The wall clock as of the last event or frame (0: not known, or time travel):
    /// running attempts' durations sort by it, so the TIME column's order is the
    /// order of the values it shows.
    pub now_ms: u64,
    /// Time travel: the number of records shown (None = live).
    pub travel: Option<usize>,
    /// A one-line message for the operator (result of the last action).
    pub message: Option<String>,
    /// The TUI is attached to a manager elsewhere (`pitboss attach`): quitting only
    /// detaches, the run goes on.
    pub attached: bool,
    /// The dead-letter group opened to list its members (Enter on a group; Esc
    /// closes it).
    pub dead_letter_members: Option<crate::tui::screens::dead_letters::Members>,
    /// Worker panes on a dashboard page as last drawn (the page keys move by it).
    pub dashboard_page: crate::tui::screens::dashboard::PageSize,
}

impl Default for ViewState {
    fn default() -> ViewState {
        ViewState {
            screen: Screen::Dashboard,
            previous: Box::new(Screen::Dashboard),
            selected: 0,
            pinned: None,
            filter: String::new(),
            filter_input: None,
            palette: None,
            palette_memory: PaletteMemory::default(),
            confirm: None,
            help: false,
            help_scroll: 0,
            sort: SortKey::Workflow,
            sort_reverse: false,
            id_ranks: Default::default(),
            terminal: ratatui::layout::Rect::new(0, 0, 80, 24),
            now_ms: 0,
            travel: None,
            message: None,
            attached: false,
            dead_letter_members: None,
            dashboard_page: Default::default(),
        }
    }
}
