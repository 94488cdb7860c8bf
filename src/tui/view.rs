//! The TUI's view state and its one update function: an [`Action`] (or a key typed
//! into the palette or the filter) changes the [`ViewState`] and may produce
//! [`Request`]s for the app loop (engine commands, quit). Pure: no terminal, no
//! engine, no clock; every key's effect is unit-tested here.

use tui_input::{Input, InputRequest};

use super::keys::Action;
use super::model::Fleet;
use crate::core::{Input as EngineInput, TaskState, TaskStateName};

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
}

/// The detail screen's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Task id.
    pub task: String,
    /// Position in the task's history (index into its records); `None` = latest.
    pub cursor: Option<usize>,
    /// Lines scrolled up from the end of the output.
    pub scroll: usize,
    /// Stick to the newest output.
    pub follow: bool,
}

/// Column the tasks table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Workflow order.
    Workflow,
    /// Task id.
    Id,
    /// State, in life-cycle order.
    State,
    /// Pool of the latest attempt.
    Pool,
    /// Attempts, most first.
    Attempts,
}

impl SortKey {
    fn next(self) -> SortKey {
        match self {
            SortKey::Workflow => SortKey::Id,
            SortKey::Id => SortKey::State,
            SortKey::State => SortKey::Pool,
            SortKey::Pool => SortKey::Attempts,
            SortKey::Attempts => SortKey::Workflow,
        }
    }

    /// Column name for the header.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Workflow => "workflow order",
            SortKey::Id => "id",
            SortKey::State => "state",
            SortKey::Pool => "pool",
            SortKey::Attempts => "attempts",
        }
    }
}

/// A question that must be answered before a destructive action; No is the default.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// The question, ending in what happens on yes.
    pub question: String,
    /// What yes does.
    pub on_yes: Vec<Request>,
}

/// What the app loop should do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Send a command to the engine (recorded as an event before it takes effect).
    Engine(EngineInput),
    /// Stop the run cleanly (resumable) and leave.
    Quit,
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
    /// Complete (palette).
    Tab,
    /// Accept.
    Enter,
    /// Abandon.
    Esc,
}

/// Everything about the screen that is not the run itself.
#[derive(Debug, Clone)]
pub struct ViewState {
    /// Current screen.
    pub screen: Screen,
    /// Where Esc from the detail returns.
    pub previous: Box<Screen>,
    /// Selected row of the current table.
    pub selected: usize,
    /// Tasks filter (applies to the tasks table and to bulk replay).
    pub filter: String,
    /// The filter being edited.
    pub filter_input: Option<Input>,
    /// The `:` palette being edited.
    pub palette: Option<Input>,
    /// A pending confirmation.
    pub confirm: Option<Confirm>,
    /// Help overlay shown.
    pub help: bool,
    /// Tasks table order.
    pub sort: SortKey,
    /// Time travel: the number of records shown (None = live).
    pub travel: Option<usize>,
    /// A one-line message for the operator (result of the last action).
    pub message: Option<String>,
}

impl Default for ViewState {
    fn default() -> ViewState {
        ViewState {
            screen: Screen::Dashboard,
            previous: Box::new(Screen::Dashboard),
            selected: 0,
            filter: String::new(),
            filter_input: None,
            palette: None,
            confirm: None,
            help: false,
            sort: SortKey::Workflow,
            travel: None,
            message: None,
        }
    }
}

/// Commands the palette knows, for completion and help.
pub const PALETTE_COMMANDS: &[&str] = &[
    "retry",
    "cancel",
    "replay",
    "inspect",
    "payload",
    "pause",
    "resume",
    "concurrency",
    "breaker",
    "travel",
    "filter",
    "quit",
];

/// Tasks shown in the tasks table, filtered and sorted.
pub fn task_rows(fleet: &Fleet, vs: &ViewState) -> Vec<usize> {
    let state = &fleet.state;
    let mut rows: Vec<usize> = (0..state.tasks.len()).filter(|&i| matches_filter(fleet, i, &vs.filter)).collect();
    let name_rank = |i: usize| TaskStateName::ALL.iter().position(|n| *n == state.tasks[i].state.name());
    match vs.sort {
        SortKey::Workflow => {}
        SortKey::Id => rows.sort_by(|a, b| state.task_id(*a).cmp(state.task_id(*b))),
        SortKey::State => rows.sort_by_key(|&i| name_rank(i)),
        SortKey::Pool => rows.sort_by(|a, b| state.tasks[*a].pool.cmp(&state.tasks[*b].pool)),
        SortKey::Attempts => rows.sort_by(|a, b| state.tasks[*b].attempts.cmp(&state.tasks[*a].attempts)),
    }
    rows
}

/// Running tasks, in workflow order: the dashboard's worker panes.
pub fn worker_rows(fleet: &Fleet) -> Vec<usize> {
    (0..fleet.state.tasks.len()).filter(|&i| matches!(fleet.state.tasks[i].state, TaskState::Running { .. })).collect()
}

/// Does task `i` match the filter? Words must all match: `state:NAME`, `pool:NAME`,
/// or text found in the id, state, pool or error.
pub fn matches_filter(fleet: &Fleet, i: usize, filter: &str) -> bool {
    let task = &fleet.state.tasks[i];
    let id = fleet.state.task_id(i);
    let state = task.state.name().as_str();
    let pool = task.pool.as_deref().unwrap_or("");
    let error = error_of(fleet, i).unwrap_or_default().to_lowercase();
    filter.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        if let Some(s) = word.strip_prefix("state:") {
            state.starts_with(s)
        } else if let Some(p) = word.strip_prefix("pool:") {
            pool == p
        } else {
            id.to_lowercase().contains(&word) || state.contains(&word) || pool.contains(&word) || error.contains(&word)
        }
    })
}

/// The error shown for a task: why it ended, or its latest failure.
pub fn error_of(fleet: &Fleet, i: usize) -> Option<String> {
    fleet.state.tasks[i].why()
}

/// Tasks a replay of `targets` brings back: the targets plus every dependent skipped
/// because of them, transitively.
pub fn replay_impact(fleet: &Fleet, targets: &[usize]) -> usize {
    let state = &fleet.state;
    let mut seen = vec![false; state.tasks.len()];
    let mut work: Vec<usize> = targets.to_vec();
    let mut count = 0;
    while let Some(i) = work.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        count += 1;
        for &d in &state.dependents[i] {
            if matches!(state.tasks[d].state, TaskState::Skipped { .. }) {
                work.push(d);
            }
        }
    }
    count
}

const OPERATOR: &str = "operator (tui)";

impl ViewState {
    /// The id of the task the current screen points at, if any.
    pub fn selected_task(&self, fleet: &Fleet) -> Option<String> {
        let index = match &self.screen {
            Screen::Detail(d) => return Some(d.task.clone()),
            Screen::Tasks => task_rows(fleet, self).get(self.selected).copied(),
            Screen::Dashboard => worker_rows(fleet).get(self.selected).copied(),
            Screen::DeadLetters => {
                let groups = fleet.dead_letter_groups();
                return groups.get(self.selected).and_then(|g| g.tasks.first().cloned());
            }
        };
        index.map(|i| fleet.state.task_id(i).to_string())
    }

    fn rows(&self, fleet: &Fleet) -> usize {
        match &self.screen {
            Screen::Tasks => task_rows(fleet, self).len(),
            Screen::Dashboard => worker_rows(fleet).len(),
            Screen::DeadLetters => fleet.dead_letter_groups().len(),
            Screen::Detail(_) => 0,
        }
    }

    /// Applies one action. `fleet` is what the operator sees (the travelled-to state in
    /// time travel); `total` is the number of records in the live log.
    pub fn update(&mut self, fleet: &Fleet, total: usize, action: Action) -> Vec<Request> {
        // A pending question: `answer` handles y; every other key is No, the default.
        if self.confirm.take().is_some() {
            return Vec::new();
        }
        if self.help {
            self.help = false;
            if action != Action::Quit {
                return Vec::new();
            }
        }
        self.message = None;
        if let Some(n) = self.travel {
            match action {
                Action::Left => self.travel = Some(n.saturating_sub(1).max(1)),
                Action::Right => self.travel = Some((n + 1).min(total)),
                Action::PageUp => self.travel = Some(n.saturating_sub(50).max(1)),
                Action::PageDown => self.travel = Some((n + 50).min(total)),
                Action::Top => self.travel = Some(1),
                Action::Bottom => self.travel = Some(total),
                Action::Back | Action::Travel => self.travel = None,
                Action::Quit => return self.quit(fleet),
                Action::Help => self.help = true,
                Action::Up | Action::Down | Action::Open | Action::Dashboard | Action::Tasks | Action::DeadLetters => {
                    return self.navigate(fleet, action)
                }
                _ => self.message = Some("time travel is read-only: Esc returns to the live run".into()),
            }
            return Vec::new();
        }
        match action {
            Action::Quit => return self.quit(fleet),
            Action::Help => self.help = true,
            Action::Travel => self.travel = Some(total),
            Action::Filter => self.filter_input = Some(Input::new(self.filter.clone())),
            Action::Palette => self.palette = Some(Input::default()),
            Action::Sort => {
                self.sort = self.sort.next();
                self.message = Some(format!("sorted by {}", self.sort.name()));
            }
            Action::Retry => return self.selected_task(fleet).map(|t| self.retry(fleet, &t)).unwrap_or_default(),
            Action::Cancel => return self.selected_task(fleet).map(|t| self.cancel(fleet, &t)).unwrap_or_default(),
            Action::Replay => {
                if let Screen::DeadLetters = self.screen {
                    let groups = fleet.dead_letter_groups();
                    if let Some(g) = groups.get(self.selected) {
                        let targets: Vec<String> = g.tasks.clone();
                        return self.replay_many(
                            fleet,
                            targets,
                            &format!("the {} with this cause", plural(g.tasks.len(), "dead letter")),
                        );
                    }
                    return Vec::new();
                }
                return self.selected_task(fleet).map(|t| self.replay(fleet, &t)).unwrap_or_default();
            }
            Action::ReplayAll => {
                let targets: Vec<String> = (0..fleet.state.tasks.len())
                    .filter(|&i| matches!(fleet.state.tasks[i].state, TaskState::DeadLettered { .. }))
                    .filter(|&i| matches_filter(fleet, i, &self.filter))
                    .map(|i| fleet.state.task_id(i).to_string())
                    .collect();
                let scope = if self.filter.is_empty() {
                    "every dead letter".to_string()
                } else {
                    format!("dead letters matching {:?}", self.filter)
                };
                return self.replay_many(fleet, targets, &scope);
            }
            Action::EditPayload => {
                if let Some(id) = self.selected_task(fleet) {
                    let i = fleet.state.task_index(&id).unwrap_or(0);
                    let payload =
                        fleet.state.tasks[i].payload.as_ref().unwrap_or(&fleet.state.workflow.tasks[i].payload);
                    // The palette is the editor: change the JSON, Enter records it.
                    self.palette = Some(Input::new(format!("payload {id} {payload}")));
                }
            }
            Action::Follow => {
                if let Screen::Detail(d) = &mut self.screen {
                    d.follow = !d.follow;
                    if d.follow {
                        d.scroll = 0;
                    }
                }
            }
            _ => return self.navigate(fleet, action),
        }
        Vec::new()
    }

    /// Answers a pending confirmation: only `y` (or `Y`) says yes.
    pub fn answer(&mut self, yes: bool) -> Vec<Request> {
        match self.confirm.take() {
            Some(c) if yes => c.on_yes,
            _ => Vec::new(),
        }
    }

    fn navigate(&mut self, fleet: &Fleet, action: Action) -> Vec<Request> {
        let rows = self.rows(fleet);
        match action {
            Action::Dashboard => self.show(Screen::Dashboard),
            Action::Tasks => self.show(Screen::Tasks),
            Action::DeadLetters => self.show(Screen::DeadLetters),
            Action::Back => match &self.screen {
                Screen::Detail(_) => {
                    self.screen = (*self.previous).clone();
                }
                _ if !self.filter.is_empty() => self.filter.clear(),
                _ => {}
            },
            Action::Open => {
                if let Some(task) = self.selected_task(fleet) {
                    if !matches!(self.screen, Screen::Detail(_)) {
                        *self.previous = self.screen.clone();
                    }
                    self.screen = Screen::Detail(Detail { task, cursor: None, scroll: 0, follow: true });
                }
            }
            Action::Up | Action::Down | Action::Top | Action::Bottom | Action::PageUp | Action::PageDown => {
                if let Screen::Detail(d) = &mut self.screen {
                    // In the detail, up/down scroll the output.
                    match action {
                        Action::Up => d.scroll += 1,
                        Action::Down => d.scroll = d.scroll.saturating_sub(1),
                        Action::PageUp => d.scroll += 10,
                        Action::PageDown => d.scroll = d.scroll.saturating_sub(10),
                        Action::Top => d.scroll = usize::MAX / 2,
                        _ => d.scroll = 0,
                    }
                    d.follow = d.scroll == 0;
                } else if rows > 0 {
                    let last = rows - 1;
                    self.selected = match action {
                        Action::Up => self.selected.saturating_sub(1),
                        Action::Down => (self.selected + 1).min(last),
                        Action::Top => 0,
                        Action::Bottom => last,
                        Action::PageUp => self.selected.saturating_sub(10),
                        _ => (self.selected + 10).min(last),
                    };
                }
            }
            Action::Left | Action::Right => {
                if let Screen::Detail(d) = &mut self.screen {
                    let index = fleet.state.task_index(&d.task);
                    let steps = index.map(|i| fleet.task_records[i].len()).unwrap_or(0);
                    if steps > 0 {
                        let at = d.cursor.unwrap_or(steps - 1);
                        let at = if action == Action::Left { at.saturating_sub(1) } else { (at + 1).min(steps - 1) };
                        d.cursor = if at == steps - 1 && action == Action::Right { None } else { Some(at) };
                    }
                }
            }
            Action::NextPane => {
                let next = match self.screen {
                    Screen::Dashboard => Screen::Tasks,
                    Screen::Tasks => Screen::DeadLetters,
                    _ => Screen::Dashboard,
                };
                self.show(next);
            }
            _ => {}
        }
        Vec::new()
    }

    fn show(&mut self, screen: Screen) {
        if self.screen != screen {
            self.screen = screen;
            self.selected = 0;
        }
    }

    fn quit(&mut self, fleet: &Fleet) -> Vec<Request> {
        let running = fleet.state.count(TaskStateName::Running);
        let unfinished = !fleet.state.finished;
        if running > 0 || unfinished {
            let what = if running > 0 {
                format!("Stop {} and quit?", plural(running, "running attempt"))
            } else {
                "Quit with tasks still to run?".to_string()
            };
            self.confirm = Some(Confirm {
                question: format!("{what} The run stays resumable (pitboss resume)."),
                on_yes: vec![Request::Quit],
            });
            Vec::new()
        } else {
            vec![Request::Quit]
        }
    }

    fn retry(&mut self, fleet: &Fleet, task: &str) -> Vec<Request> {
        let Some(i) = fleet.state.task_index(task) else { return Vec::new() };
        match &fleet.state.tasks[i].state {
            TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } => {
                self.message = Some(format!("{task}: requeued"));
                vec![Request::Engine(EngineInput::Requeue { task: task.to_string(), reason: OPERATOR.into() })]
            }
            TaskState::RetryWait { due_ms } => {
                self.message = Some(format!("{task}: retrying now"));
                vec![Request::Engine(EngineInput::RetryTimer { task: task.to_string(), due_ms: *due_ms })]
            }
            other => {
                self.message = Some(format!(
                    "{task} is {}: only dead-lettered, cancelled or waiting tasks can be retried",
                    other.name().as_str()
                ));
                Vec::new()
            }
        }
    }

    fn cancel(&mut self, fleet: &Fleet, task: &str) -> Vec<Request> {
        let Some(i) = fleet.state.task_index(task) else { return Vec::new() };
        let state = &fleet.state.tasks[i].state;
        if state.is_terminal() {
            self.message = Some(format!("{task} is {}: nothing to cancel", state.name().as_str()));
            return Vec::new();
        }
        let what = if matches!(state, TaskState::Running { .. }) { " and end its process group" } else { "" };
        let note = if fleet.state.dependents[i].is_empty() { "" } else { " Its dependents will be skipped." };
        self.confirm = Some(Confirm {
            question: format!("Cancel {task}{what}?{note}"),
            on_yes: vec![Request::Engine(EngineInput::Cancel { task: task.to_string(), reason: OPERATOR.into() })],
        });
        Vec::new()
    }

    fn replay(&mut self, fleet: &Fleet, task: &str) -> Vec<Request> {
        let Some(i) = fleet.state.task_index(task) else { return Vec::new() };
        if !matches!(fleet.state.tasks[i].state, TaskState::DeadLettered { .. }) {
            self.message = Some(format!("{task} is not a dead letter"));
            return Vec::new();
        }
        self.replay_many(fleet, vec![task.to_string()], task)
    }

    fn replay_many(&mut self, fleet: &Fleet, targets: Vec<String>, scope: &str) -> Vec<Request> {
        if targets.is_empty() {
            self.message = Some("no dead letters to replay".into());
            return Vec::new();
        }
        let indices: Vec<usize> = targets.iter().filter_map(|t| fleet.state.task_index(t)).collect();
        let affected = replay_impact(fleet, &indices);
        let revived = affected - indices.len();
        let requests: Vec<Request> = targets
            .into_iter()
            .map(|task| Request::Engine(EngineInput::Requeue { task, reason: OPERATOR.into() }))
            .collect();
        if requests.len() == 1 && revived == 0 {
            self.message = Some(format!("{scope}: replayed"));
            return requests;
        }
        self.confirm = Some(Confirm {
            question: format!(
                "Replay {scope}? {} in all ({} plus {} skipped dependents coming back).",
                plural(affected, "task"),
                plural(indices.len(), "dead letter"),
                revived
            ),
            on_yes: requests,
        });
        Vec::new()
    }

    /// Handles a key typed into the palette or the filter.
    pub fn type_key(&mut self, fleet: &Fleet, total: usize, key: TextKey) -> Vec<Request> {
        if let Some(input) = &mut self.filter_input {
            match key {
                TextKey::Enter => {
                    self.filter = input.value().trim().to_string();
                    self.filter_input = None;
                    self.selected = 0;
                    if !matches!(self.screen, Screen::Tasks) {
                        self.screen = Screen::Tasks;
                    }
                }
                TextKey::Esc => self.filter_input = None,
                other => {
                    edit(input, other);
                    // Live filtering: the table follows the typing.
                    self.filter = input.value().trim().to_string();
                    self.selected = 0;
                }
            }
            return Vec::new();
        }
        let Some(input) = &mut self.palette else { return Vec::new() };
        match key {
            TextKey::Esc => self.palette = None,
            TextKey::Tab => {
                let completed = complete(fleet, input.value());
                *input = Input::new(completed);
            }
            TextKey::Enter => {
                let line = input.value().to_string();
                self.palette = None;
                return self.run_command(fleet, total, &line);
            }
            other => edit(input, other),
        }
        Vec::new()
    }

    /// Pool names for a palette argument: one pool, or `all`.
    fn pools_named(&mut self, fleet: &Fleet, target: &str) -> Option<Vec<String>> {
        let pools = &fleet.state.workflow.pools;
        if target == "all" {
            return Some(pools.iter().map(|p| p.name.clone()).collect());
        }
        if pools.iter().any(|p| p.name == target) {
            return Some(vec![target.to_string()]);
        }
        let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        self.message = Some(format!("no pool {target:?}; pools: {}", names.join(", ")));
        None
    }

    /// Runs one palette command line.
    pub fn run_command(&mut self, fleet: &Fleet, total: usize, line: &str) -> Vec<Request> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = words.get(1).copied();
        let known = |t: &str| fleet.state.task_index(t).is_some();
        let unknown = |t: &str| format!("no task {t:?}");
        match (words.first().copied(), arg) {
            (None, _) => Vec::new(),
            (Some("retry"), Some(t)) if known(t) => self.retry(fleet, t),
            (Some("cancel"), Some(t)) if known(t) => self.cancel(fleet, t),
            (Some("replay"), Some("all")) => self.update(fleet, total, Action::ReplayAll),
            (Some("replay"), Some(t)) if known(t) => self.replay(fleet, t),
            (Some("inspect"), Some(t)) if known(t) => {
                if !matches!(self.screen, Screen::Detail(_)) {
                    *self.previous = self.screen.clone();
                }
                self.screen = Screen::Detail(Detail { task: t.to_string(), cursor: None, scroll: 0, follow: true });
                Vec::new()
            }
            (Some("retry" | "cancel" | "replay" | "inspect" | "payload"), Some(t)) if !known(t) => {
                self.message = Some(unknown(t));
                Vec::new()
            }
            (Some("payload"), Some(t)) if known(t) => {
                let json = line.trim_start().splitn(3, char::is_whitespace).nth(2).unwrap_or("").trim();
                let running = fleet
                    .state
                    .task_index(t)
                    .is_some_and(|i| matches!(fleet.state.tasks[i].state, TaskState::Running { .. }));
                match serde_json::from_str::<serde_json::Value>(json) {
                    Err(e) => {
                        self.message = Some(format!("payload for {t} is not valid JSON: {e}"));
                        Vec::new()
                    }
                    Ok(_) if running => {
                        self.message = Some(format!("{t} is running: edit its payload before a retry or replay"));
                        Vec::new()
                    }
                    Ok(payload) => {
                        self.message = Some(format!("{t}: payload edited; retry or replay it to use it"));
                        vec![Request::Engine(EngineInput::EditPayload { task: t.to_string(), payload })]
                    }
                }
            }
            (Some("filter"), _) => {
                self.filter = words[1..].join(" ");
                self.screen = Screen::Tasks;
                self.selected = 0;
                Vec::new()
            }
            (Some("travel"), _) => {
                self.travel = Some(total);
                Vec::new()
            }
            (Some("quit" | "q"), _) => self.quit(fleet),
            (Some(cmd @ ("pause" | "resume")), Some(target)) => {
                let Some(pools) = self.pools_named(fleet, target) else { return Vec::new() };
                let requests: Vec<Request> = pools
                    .into_iter()
                    .map(|pool| {
                        Request::Engine(if cmd == "pause" {
                            EngineInput::PausePool { pool }
                        } else {
                            EngineInput::ResumePool { pool }
                        })
                    })
                    .collect();
                self.message = Some(format!("{cmd}d {target}"));
                requests
            }
            (Some("concurrency"), Some(pool)) => {
                let n = words.get(2).and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1);
                match (fleet.state.workflow.pool_index(pool), n) {
                    (None, _) => {
                        self.message = Some(format!("no pool {pool:?}"));
                        Vec::new()
                    }
                    (Some(_), None) => {
                        self.message = Some("usage: concurrency POOL N (N at least 1)".into());
                        Vec::new()
                    }
                    (Some(_), Some(n)) => {
                        self.message = Some(format!("pool {pool}: concurrency {n}"));
                        vec![Request::Engine(EngineInput::SetConcurrency { pool: pool.to_string(), concurrency: n })]
                    }
                }
            }
            (Some("breaker"), Some(how @ ("reset" | "trip"))) => {
                let Some(pool) = words.get(2).copied() else {
                    self.message = Some(format!("usage: breaker {how} POOL"));
                    return Vec::new();
                };
                if fleet.state.workflow.pool_index(pool).is_none() {
                    self.message = Some(format!("no pool {pool:?}"));
                    return Vec::new();
                }
                self.message = Some(format!("breaker {how}: {pool}"));
                let pool = pool.to_string();
                vec![Request::Engine(if how == "reset" {
                    EngineInput::BreakerReset { pool }
                } else {
                    EngineInput::BreakerTrip { pool }
                })]
            }
            (Some("breaker"), _) => {
                self.message = Some("usage: breaker reset|trip POOL".into());
                Vec::new()
            }
            (Some(cmd), None) if PALETTE_COMMANDS.contains(&cmd) => {
                self.message = Some(format!("{cmd}: which task? e.g. `{cmd} ID`"));
                Vec::new()
            }
            (Some(cmd), _) => {
                self.message = Some(format!("unknown command {cmd:?}; commands: {}", PALETTE_COMMANDS.join(", ")));
                Vec::new()
            }
        }
    }
}

/// Completes the palette line: the command, then a task id (or `all`), to the longest
/// common prefix of the candidates.
pub fn complete(fleet: &Fleet, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ends_with_space = line.ends_with(' ');
    let (done, partial): (Vec<&str>, &str) = match (words.len(), ends_with_space) {
        (0, _) => (vec![], ""),
        (n, false) => (words[..n - 1].to_vec(), words[n - 1]),
        (_, true) => (words.clone(), ""),
    };
    let pools = || fleet.state.workflow.pools.iter().map(|p| p.name.clone());
    let candidates: Vec<String> = if done.is_empty() {
        PALETTE_COMMANDS.iter().map(|c| c.to_string()).collect()
    } else if matches!(done[0], "pause" | "resume") && done.len() == 1 {
        pools().chain(["all".to_string()]).collect()
    } else if done[0] == "concurrency" && done.len() == 1 {
        pools().collect()
    } else if done[0] == "breaker" {
        if done.len() == 1 {
            vec!["reset".into(), "trip".into()]
        } else {
            pools().collect()
        }
    } else {
        let mut ids: Vec<String> = fleet.state.workflow.tasks.iter().map(|t| t.id.clone()).collect();
        if done[0] == "replay" {
            ids.push("all".into());
        }
        ids
    };
    let matching: Vec<&String> = candidates.iter().filter(|c| c.starts_with(partial)).collect();
    let Some(first) = matching.first() else { return line.to_string() };
    let mut prefix = first.to_string();
    for m in &matching[1..] {
        while !m.starts_with(&prefix) {
            prefix.pop();
        }
    }
    let mut out = done.join(" ");
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(&prefix);
    if matching.len() == 1 {
        out.push(' ');
    }
    out
}

fn edit(input: &mut Input, key: TextKey) {
    let request = match key {
        TextKey::Char(c) => InputRequest::InsertChar(c),
        TextKey::Backspace => InputRequest::DeletePrevChar,
        TextKey::Delete => InputRequest::DeleteNextChar,
        TextKey::Left => InputRequest::GoToPrevChar,
        TextKey::Right => InputRequest::GoToNextChar,
        TextKey::Home => InputRequest::GoToStart,
        TextKey::End => InputRequest::GoToEnd,
        TextKey::Tab | TextKey::Enter | TextKey::Esc => return,
    };
    input.handle(request);
}

/// "1 task", "3 tasks".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
