//! The `:` command palette: a line typed at the bottom, completed with Tab, parsed
//! into a typed [`Command`] (or the message saying what is wrong with it) and run by
//! one small handler per command. `e` opens it on the selected task's payload, so
//! the palette is also the payload editor.

use tui_input::Input;

use super::{detail, tasks, travel};
use crate::core::command::{self, Command as SharedCommand, COMMANDS};
use crate::core::Input as EngineInput;
use crate::tui::actions;
use crate::tui::keys::Action;
use crate::tui::model::Fleet;
use crate::tui::view::{Confirm, Request, Screen, TextKey, ViewState};

/// Who the engine records as the author of a palette command.
const OPERATOR: &str = "operator (tui)";

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
    "submit",
];

/// A palette line, parsed and checked against the run: the shared operator words
/// ([`core::command`](crate::core::command)) plus the TUI's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A word the control socket shares (retry, cancel, pause, approve, …).
    Shared(SharedCommand),
    /// `inspect ID`: open the task's detail.
    Inspect(String),
    /// `filter WORDS…`: filter the tasks table (empty: no filter).
    Filter(String),
    /// `travel`: time travel.
    Travel,
    /// `quit` or `q`.
    Quit,
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
/// The TUI's own words are read here; the rest by the shared parser.
pub fn parse(fleet: &Fleet, line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(&cmd) = words.first() else { return Ok(None) };
    let arg = words.get(1).copied();
    let command = match (cmd, arg) {
        ("inspect", Some(task)) => match fleet.state.task_index(task) {
            Some(_) => Command::Inspect(task.to_string()),
            None => return Err(format!("no task {task:?}")),
        },
        ("inspect", None) => return Err("inspect: which task? e.g. `inspect ID`".into()),
        ("filter", _) => Command::Filter(words[1..].join(" ")),
        ("travel", _) => Command::Travel,
        ("quit" | "q", _) => Command::Quit,
        _ if COMMANDS.contains(&cmd) => match command::parse(&fleet.state, line)? {
            Some(shared) => Command::Shared(shared),
            None => return Ok(None),
        },
        _ => return Err(format!("unknown command {cmd:?}; commands: {}", PALETTE_COMMANDS.join(", "))),
    };
    Ok(Some(command))
}

/// Runs a parsed command: destructive ones go through the actions' confirm
/// questions, the rest straight to the engine.
fn execute(vs: &mut ViewState, fleet: &Fleet, total: usize, command: Command) -> Vec<Request> {
    match command {
        Command::Shared(shared) => execute_shared(vs, fleet, total, shared),
        Command::Inspect(task) => {
            detail::open(vs, task);
            Vec::new()
        }
        Command::Filter(filter) => {
            let screen = if vs.screen == Screen::DeadLetters { Screen::DeadLetters } else { Screen::Tasks };
            tasks::set_filter(vs, fleet, filter, screen);
            Vec::new()
        }
        Command::Travel => {
            travel::enter(vs, total);
            Vec::new()
        }
        Command::Quit => actions::quit(vs, fleet),
    }
}

/// Runs a shared command the TUI's way (with its confirm questions).
fn execute_shared(vs: &mut ViewState, fleet: &Fleet, total: usize, command: SharedCommand) -> Vec<Request> {
    match command {
        SharedCommand::Retry(task) => actions::retry(vs, fleet, &task),
        SharedCommand::Cancel(task) => actions::cancel(vs, fleet, &task),
        SharedCommand::Replay(task) => actions::replay(vs, fleet, &task),
        // As the key does: refused in time travel like every change.
        SharedCommand::ReplayAll => vs.update(fleet, total, Action::ReplayAll),
        SharedCommand::Approve(ids) if ids.len() == 1 => actions::approve(vs, fleet, &ids[0]),
        SharedCommand::Reject(ids) if ids.len() == 1 => actions::reject(vs, fleet, &ids[0]),
        SharedCommand::Approve(_) | SharedCommand::Reject(_) => {
            // Several ids: one question for all of them, after the core's refusals.
            match command::inputs(&fleet.state, &command, OPERATOR) {
                Ok(inputs) => {
                    let question = match &command {
                        SharedCommand::Approve(ids) => {
                            format!("Approve {}? They run as they are, not checked again.", ids.join(", "))
                        }
                        SharedCommand::Reject(ids) => format!(
                            "Reject {}? They end cancelled, never dead letters; their dependents are skipped.",
                            ids.join(", ")
                        ),
                        _ => command::done_message(&command),
                    };
                    vs.confirm = Some(Confirm { question, on_yes: inputs.into_iter().map(Request::Engine).collect() });
                }
                Err(why) => vs.message = Some(why),
            }
            Vec::new()
        }
        SharedCommand::Submit(file) => submit(vs, fleet, &file),
        other => match command::inputs(&fleet.state, &other, OPERATOR) {
            Ok(inputs) => {
                vs.message = Some(command::done_message(&other));
                inputs.into_iter().map(Request::Engine).collect()
            }
            Err(why) => {
                vs.message = Some(why);
                Vec::new()
            }
        },
    }
}

/// `submit FILE`: the file's tasks, checked against the run's workflow, go to the
/// engine; problems are the message.
fn submit(vs: &mut ViewState, fleet: &Fleet, file: &str) -> Vec<Request> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            vs.message = Some(format!("submit: cannot read {file}: {e}"));
            return Vec::new();
        }
    };
    match crate::config::tasks_from_toml(&text, file, &fleet.state.workflow) {
        Ok(tasks) => {
            vs.message = Some(format!("submitted {} task(s) from {file}", tasks.len()));
            vec![Request::Engine(EngineInput::Submit { tasks, source: format!("{OPERATOR}: submit {file}") })]
        }
        Err(e) => {
            vs.message = Some(e.to_string().lines().collect::<Vec<_>>().join("; "));
            Vec::new()
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
