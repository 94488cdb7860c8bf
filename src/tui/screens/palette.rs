//! The `:` command palette: a line typed at the bottom, completed with Tab, parsed
//! into a typed [`Command`] (or the message saying what is wrong with it) and run by
//! one small handler per command. `e` opens it on the selected task's payload, so
//! the palette is also the payload editor.

use serde_json::Value;
use tui_input::Input;

use super::{detail, travel};
use crate::core::workflow::Limit;
use crate::core::{Input as EngineInput, TaskState};
use crate::tui::actions;
use crate::tui::keys::Action;
use crate::tui::model::Fleet;
use crate::tui::view::{Request, Screen, TextKey, ViewState};

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
    "approve",
    "reject",
];

/// A palette line, parsed and checked against the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `retry ID`: requeue a dead letter or a cancelled task, or end a retry's wait.
    Retry(String),
    /// `cancel ID` (asks first).
    Cancel(String),
    /// `replay ID`: requeue one dead letter.
    Replay(String),
    /// `replay all`: every dead letter matching the filter (asks first).
    ReplayAll,
    /// `inspect ID`: open the task's detail.
    Inspect(String),
    /// `payload ID JSON`: replace a task's payload for its next attempt.
    Payload {
        /// Task id.
        task: String,
        /// The new payload.
        payload: Value,
    },
    /// `filter WORDS…`: filter the tasks table (empty: no filter).
    Filter(String),
    /// `travel`: time travel.
    Travel,
    /// `quit` or `q`.
    Quit,
    /// `approve ID`: let a task held by the input guard run (asks first).
    Approve(String),
    /// `reject ID`: cancel a held task (asks first).
    Reject(String),
    /// `pause|resume POOL|all`.
    Pools {
        /// Pause (else resume).
        pause: bool,
        /// What the operator named: a pool or `all`.
        target: String,
        /// The pools that names.
        pools: Vec<String>,
    },
    /// `concurrency POOL N`.
    Concurrency {
        /// Pool name.
        pool: String,
        /// New limit, at least 1.
        concurrency: usize,
    },
    /// `breaker reset|trip POOL`.
    Breaker {
        /// Trip (else reset).
        trip: bool,
        /// Pool name.
        pool: String,
    },
}

/// `:`: opens an empty palette.
pub fn open(vs: &mut ViewState) {
    vs.palette = Some(Input::default());
}

/// `e`: opens the palette on `payload ID JSON` for the selected task: change the
/// JSON, Enter records it.
pub fn edit_payload(vs: &mut ViewState, fleet: &Fleet) {
    let Some(id) = vs.selected_task(fleet) else { return };
    let Some(i) = fleet.state.task_index(&id) else { return };
    let payload = fleet.state.tasks[i].payload.as_ref().unwrap_or(&fleet.state.workflow.tasks[i].payload);
    vs.palette = Some(Input::new(format!("payload {id} {payload}")));
}

/// A key typed into the open palette: Tab completes, Enter runs, Esc closes.
pub fn type_key(vs: &mut ViewState, fleet: &Fleet, total: usize, key: TextKey) -> Vec<Request> {
    let Some(input) = &mut vs.palette else { return Vec::new() };
    match key {
        TextKey::Esc => vs.palette = None,
        TextKey::Tab => {
            let completed = complete(fleet, input.value());
            *input = Input::new(completed);
        }
        TextKey::Enter => {
            let line = input.value().to_string();
            vs.palette = None;
            return vs.run_command(fleet, total, &line);
        }
        other => other.edit(input),
    }
    Vec::new()
}

impl ViewState {
    /// Runs one palette command line; a line that does not parse leaves its reason as
    /// the message.
    pub fn run_command(&mut self, fleet: &Fleet, total: usize, line: &str) -> Vec<Request> {
        match parse(fleet, line) {
            Ok(Some(command)) => execute(self, fleet, total, command),
            Ok(None) => Vec::new(),
            Err(message) => {
                self.message = Some(message);
                Vec::new()
            }
        }
    }
}

/// Parses a palette line: `Ok(None)` for a blank line, `Err` with the message to
/// show for a line that names no command, an unknown task or pool, or bad arguments.
pub fn parse(fleet: &Fleet, line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(&cmd) = words.first() else { return Ok(None) };
    let arg = words.get(1).copied();
    let command = match (cmd, arg) {
        ("retry" | "cancel" | "replay" | "inspect" | "payload", Some(task)) => task_command(fleet, cmd, task, line)?,
        ("approve", Some(task)) => Command::Approve(known_task(fleet, task)?),
        ("reject", Some(task)) => Command::Reject(known_task(fleet, task)?),
        ("filter", _) => Command::Filter(words[1..].join(" ")),
        ("travel", _) => Command::Travel,
        ("quit" | "q", _) => Command::Quit,
        ("pause" | "resume", Some(target)) => {
            Command::Pools { pause: cmd == "pause", target: target.to_string(), pools: pools_named(fleet, target)? }
        }
        ("concurrency", Some(pool)) => concurrency(fleet, pool, words.get(2).copied())?,
        ("breaker", _) => breaker(fleet, arg, words.get(2).copied())?,
        (_, None) if PALETTE_COMMANDS.contains(&cmd) => return Err(format!("{cmd}: which task? e.g. `{cmd} ID`")),
        _ => return Err(format!("unknown command {cmd:?}; commands: {}", PALETTE_COMMANDS.join(", "))),
    };
    Ok(Some(command))
}

/// `retry|cancel|replay|inspect|payload TASK …`; `replay all` is not a task.
fn task_command(fleet: &Fleet, cmd: &str, task: &str, line: &str) -> Result<Command, String> {
    if cmd == "replay" && task == "all" {
        return Ok(Command::ReplayAll);
    }
    let Some(i) = fleet.state.task_index(task) else { return Err(format!("no task {task:?}")) };
    let task = task.to_string();
    Ok(match cmd {
        "retry" => Command::Retry(task),
        "cancel" => Command::Cancel(task),
        "replay" => Command::Replay(task),
        "inspect" => Command::Inspect(task),
        _ => {
            // The JSON is the rest of the line, spaces and all.
            let json = line.trim_start().splitn(3, char::is_whitespace).nth(2).unwrap_or("").trim();
            let payload = serde_json::from_str::<Value>(json)
                .map_err(|e| format!("payload for {task} is not valid JSON: {e}"))?;
            if matches!(fleet.state.tasks[i].state, TaskState::Running { .. }) {
                return Err(format!("{task} is running: edit its payload before a retry or replay"));
            }
            Command::Payload { task, payload }
        }
    })
}

/// A task id the run has, or the message saying it has none.
fn known_task(fleet: &Fleet, task: &str) -> Result<String, String> {
    match fleet.state.task_index(task) {
        Some(_) => Ok(task.to_string()),
        None => Err(format!("no task {task:?}")),
    }
}

/// Pool names for a palette argument: one pool, or `all`.
fn pools_named(fleet: &Fleet, target: &str) -> Result<Vec<String>, String> {
    let pools = &fleet.state.workflow.pools;
    if target == "all" {
        return Ok(pools.iter().map(|p| p.name.clone()).collect());
    }
    if pools.iter().any(|p| p.name == target) {
        return Ok(vec![target.to_string()]);
    }
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    Err(format!("no pool {target:?}; pools: {}", names.join(", ")))
}

/// `concurrency POOL N`, N from 1 to the workflow's ceiling.
fn concurrency(fleet: &Fleet, pool: &str, n: Option<&str>) -> Result<Command, String> {
    if fleet.state.workflow.pool_index(pool).is_none() {
        return Err(format!("no pool {pool:?}"));
    }
    let most = Limit::Concurrency.max();
    match n.and_then(|n| n.parse::<usize>().ok()).filter(|n| (1..=most).contains(&(*n as u64))) {
        Some(concurrency) => Ok(Command::Concurrency { pool: pool.to_string(), concurrency }),
        None => Err(format!("usage: concurrency POOL N (N from 1 to {most})")),
    }
}

/// `breaker reset|trip POOL`.
fn breaker(fleet: &Fleet, how: Option<&str>, pool: Option<&str>) -> Result<Command, String> {
    let Some(how @ ("reset" | "trip")) = how else { return Err("usage: breaker reset|trip POOL".into()) };
    let Some(pool) = pool else { return Err(format!("usage: breaker {how} POOL")) };
    if fleet.state.workflow.pool_index(pool).is_none() {
        return Err(format!("no pool {pool:?}"));
    }
    Ok(Command::Breaker { trip: how == "trip", pool: pool.to_string() })
}

/// Runs a parsed command.
fn execute(vs: &mut ViewState, fleet: &Fleet, total: usize, command: Command) -> Vec<Request> {
    let engine = |input: EngineInput| vec![Request::Engine(input)];
    match command {
        Command::Retry(task) => actions::retry(vs, fleet, &task),
        Command::Cancel(task) => actions::cancel(vs, fleet, &task),
        Command::Replay(task) => actions::replay(vs, fleet, &task),
        // As the key does: refused in time travel like every change.
        Command::ReplayAll => vs.update(fleet, total, Action::ReplayAll),
        Command::Inspect(task) => {
            detail::open(vs, task);
            Vec::new()
        }
        Command::Payload { task, payload } => {
            vs.message = Some(format!("{task}: payload edited; retry or replay it to use it"));
            engine(EngineInput::EditPayload { task, payload })
        }
        Command::Filter(filter) => {
            vs.filter = filter;
            vs.screen = Screen::Tasks;
            vs.selected = 0;
            Vec::new()
        }
        Command::Travel => {
            travel::enter(vs, total);
            Vec::new()
        }
        Command::Quit => actions::quit(vs, fleet),
        Command::Approve(task) => actions::approve(vs, fleet, &task),
        Command::Reject(task) => actions::reject(vs, fleet, &task),
        Command::Pools { pause, target, pools } => {
            vs.message = Some(format!("{}d {target}", if pause { "pause" } else { "resume" }));
            let input = |pool| if pause { EngineInput::PausePool { pool } } else { EngineInput::ResumePool { pool } };
            pools.into_iter().map(|pool| Request::Engine(input(pool))).collect()
        }
        Command::Concurrency { pool, concurrency } => {
            vs.message = Some(format!("pool {pool}: concurrency {concurrency}"));
            engine(EngineInput::SetConcurrency { pool, concurrency })
        }
        Command::Breaker { trip, pool } => {
            vs.message = Some(format!("breaker {}: {pool}", if trip { "trip" } else { "reset" }));
            engine(if trip { EngineInput::BreakerTrip { pool } } else { EngineInput::BreakerReset { pool } })
        }
    }
}

/// Completes the palette line: the command, then its argument (a task id, `all`, a
/// pool, a breaker verb), to the longest common prefix of the candidates.
pub fn complete(fleet: &Fleet, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ends_with_space = line.ends_with(' ');
    let (done, partial): (Vec<&str>, &str) = match (words.len(), ends_with_space) {
        (0, _) => (vec![], ""),
        (n, false) => (words[..n - 1].to_vec(), words[n - 1]),
        (_, true) => (words.clone(), ""),
    };
    let candidates = candidates(fleet, &done);
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

/// What may come after the words already typed.
fn candidates(fleet: &Fleet, done: &[&str]) -> Vec<String> {
    let pools = || fleet.state.workflow.pools.iter().map(|p| p.name.clone());
    if done.is_empty() {
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
    }
}
