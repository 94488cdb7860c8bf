//! The one update function: an [`Action`] (or a key typed into the palette or the
//! filter) changes the [`ViewState`] and may produce [`Request`]s for the app loop
//! (engine commands, quit). Layers answer first (a pending question, the help
//! overlay, time travel), then the actions every screen shares, then the current
//! screen's own keys (`screens/`). Pure: no terminal, no engine, no clock; every
//! key's effect is unit-tested (`tests/tui_views.rs`).

use super::actions;
use super::keys::Action;
use super::model::Fleet;
use super::mouse;
use super::screens::{dead_letters, detail, disagreement, held, help, palette, tasks, travel};
use super::selection::Selected;
use super::view::{Request, Screen, TextKey, ViewState};
use crate::core::hold::Answer;

impl ViewState {
    /// The id of the task the current screen points at, if any: the selected task,
    /// even when it has left the table since (the keys act on what was selected).
    pub fn selected_task(&self, fleet: &Fleet) -> Option<String> {
        match &self.screen {
            Screen::Detail(d) => Some(d.task.clone()),
            Screen::Tasks | Screen::Dashboard => match self.selection(fleet) {
                (keys, Selected::Row(row)) => keys.get(row).cloned(),
                (_, Selected::Gone(id)) => Some(id),
                (_, Selected::Empty) => None,
            },
            Screen::DeadLetters => dead_letters::selected_task(fleet, self),
            Screen::Disagreement(s) => Some(s.back.task.clone()),
            Screen::Held(view) => held::selected_task(fleet, view),
            Screen::Timeline => None,
        }
    }

    /// Applies one action. `fleet` is what the operator sees (the travelled-to state in
    /// time travel); `total` is the number of records in the live log.
    pub fn update(&mut self, fleet: &Fleet, total: usize, action: Action) -> Vec<Request> {
        // A pending question: `answer` handles y; every other key is No, the default.
        if self.confirm.take().is_some() {
            return Vec::new();
        }
        // Help scrolls with the movement keys; Esc, q and ? close it.
        if self.help {
            help::key(self, action);
            return Vec::new();
        }
        // Ctrl-Z works everywhere, time travel included.
        if action == Action::Suspend {
            return vec![Request::Suspend];
        }
        self.message = None;
        if self.travel.is_some() {
            return travel::update(self, fleet, total, action);
        }
        if self.screen == Screen::DeadLetters && dead_letters::members_key(self, fleet, action) {
            return Vec::new();
        }
        if detail::search_key(self, fleet, action) {
            return Vec::new();
        }
        // Every action says what it did or why it did nothing: with no task selected too.
        let on_selected =
            |vs: &mut ViewState, act: fn(&mut ViewState, &Fleet, &str) -> Vec<Request>| match vs.selected_task(fleet) {
                Some(task) => act(vs, fleet, &task),
                None => {
                    vs.message = Some(nothing_selected(&vs.screen));
                    Vec::new()
                }
            };
        match action {
            Action::Quit => return actions::quit(self, fleet),
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::EditInEditor => return on_selected(self, actions::edit_in_editor),
            Action::Travel => travel::enter(self, total),
            Action::Filter => tasks::open_filter(self),
            Action::Palette => palette::open(self),
            Action::Sort if matches!(self.screen, Screen::Held(_)) => held::cycle_order(self),
            Action::Sort => tasks::cycle_sort(self, fleet),
            Action::SortReverse => tasks::reverse_sort(self, fleet),
            Action::Mark => held::toggle_mark(self, fleet),
            Action::Approve if matches!(self.screen, Screen::Held(_)) => held::answer(self, fleet, Answer::Approve),
            Action::Reject if matches!(self.screen, Screen::Held(_)) => held::answer(self, fleet, Answer::Reject),
            Action::ApproveGroup => held::approve_group(self, fleet),
            Action::Retry => return on_selected(self, actions::retry),
            Action::RetryContinue => return on_selected(self, actions::retry_continue),
            Action::Cancel => return on_selected(self, actions::cancel),
            Action::Approve => return on_selected(self, actions::approve),
            Action::Reject => return on_selected(self, actions::reject),
            Action::Replay if self.screen == Screen::DeadLetters => return dead_letters::replay_group(self, fleet),
            Action::Replay => return on_selected(self, actions::replay),
            Action::ReplayAll => return actions::replay_all(self, fleet),
            Action::EditPayload => palette::edit_payload(self, fleet),
            Action::Follow => detail::toggle_follow(self, fleet),
            Action::Votes => disagreement::open(self, fleet),
            Action::Fork => self.message = Some(travel::fork_needs_travel()),
            _ => return self.navigate(fleet, action),
        }
        Vec::new()
    }

    /// Moving between screens and within one: the keys time travel also allows.
    pub(crate) fn navigate(&mut self, fleet: &Fleet, action: Action) -> Vec<Request> {
        match action {
            Action::Dashboard => self.show(fleet, Screen::Dashboard),
            Action::Tasks => self.show(fleet, Screen::Tasks),
            Action::DeadLetters => self.show(fleet, Screen::DeadLetters),
            Action::Held => held::open(self),
            Action::Timeline => self.show(fleet, Screen::Timeline),
            Action::NextPane => match self.screen {
                Screen::Dashboard => self.show(fleet, Screen::Tasks),
                Screen::Tasks => self.show(fleet, Screen::DeadLetters),
                // The Held view joins the round only while something is held.
                Screen::DeadLetters if fleet.held().len() > 0 => held::open(self),
                _ => self.show(fleet, Screen::Dashboard),
            },
            Action::Back => match &self.screen {
                Screen::Detail(_) => self.screen = (*self.previous).clone(),
                Screen::Disagreement(s) => self.screen = Screen::Detail(s.back.clone()),
                _ if !self.filter.is_empty() => {
                    self.filter.clear();
                    self.repin(fleet);
                    self.message = Some("filter cleared".into());
                }
                _ => {}
            },
            Action::Open => {
                if let Some(task) = self.selected_task(fleet) {
                    detail::open(self, task);
                }
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown
            | Action::Left
            | Action::Right
                if matches!(self.screen, Screen::Disagreement(_)) =>
            {
                if let Screen::Disagreement(s) = &mut self.screen {
                    disagreement::navigate(s, action);
                }
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown
            | Action::HalfPageUp
            | Action::HalfPageDown => {
                // A page is what the screen shows of its table or pane now.
                let page = mouse::page_rows(self, fleet);
                if let Screen::Detail(d) = &mut self.screen {
                    // In the detail, up/down scroll the output.
                    detail::scroll(d, fleet, action, page);
                } else if let Screen::Held(view) = &mut self.screen {
                    held::navigate(view, fleet, action, page);
                } else {
                    self.move_selection(fleet, action);
                }
            }
            Action::Left | Action::Right => {
                if let Screen::Detail(d) = &mut self.screen {
                    detail::step(d, fleet, action);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Shows `screen`, from its first row unless it is already up.
    fn show(&mut self, fleet: &Fleet, screen: Screen) {
        if self.screen != screen {
            self.screen = screen;
            self.dead_letter_members = None;
            self.selected = 0;
            self.pinned = None;
            self.repin(fleet);
        }
    }

    /// Handles a key typed into the filter or the palette, whichever is open.
    pub fn type_key(&mut self, fleet: &Fleet, total: usize, key: TextKey) -> Vec<Request> {
        if self.filter_input.is_some() {
            // In a task's detail the field searches its output.
            match self.screen {
                Screen::Detail(_) => detail::type_search(self, fleet, key),
                _ => tasks::type_filter(self, fleet, key),
            }
            return Vec::new();
        }
        palette::type_key(self, fleet, total, key)
    }
}

/// Why a task action did nothing: no task is selected here.
fn nothing_selected(screen: &Screen) -> String {
    match screen {
        Screen::Dashboard => "no task selected: no worker is running (2: tasks, 3: dead letters)".into(),
        Screen::DeadLetters => "no dead letter selected".into(),
        _ => "no task selected".into(),
    }
}
