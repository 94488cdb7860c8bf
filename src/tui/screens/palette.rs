//! The `:` command palette: a line typed at the bottom, completed with Tab, parsed
//! into a typed [`Command`] (or the message saying what is wrong with it) and run by
//! one small handler per command. `e` opens it on the selected task's payload, so
//! the palette is also the payload editor. A refused line stays open with its reason
//! under it, for correction; ↑/↓ recall earlier lines; a line longer than the terminal
//! scrolls so the cursor stays in view ([`window`]).

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

/// Lines the palette's history keeps.
const HISTORY: usize = 100;

/// Candidates a note lists when Tab finds several (the rest are counted).
const LISTED: usize = 12;

/// What the palette keeps between lines: the lines run (oldest first), where ↑/↓ are
/// in them, and the note shown under the open palette (a refusal, Tab's candidates).
#[derive(Debug, Clone, Default)]
pub struct PaletteMemory {
    lines: Vec<String>,
    /// The history line shown, while ↑/↓ browse.
    browsing: Option<usize>,
    /// The line being typed before ↑, given back by ↓ past the newest.
    draft: String,
    /// Shown in place of the key bar while the palette is open.
    pub note: Option<String>,
}

impl PaletteMemory {
    /// Keeps a line run (not a blank one, nor the same line twice in a row).
    fn remember(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.lines.last().map(String::as_str) != Some(line) {
            self.lines.push(line.to_string());
            if self.lines.len() > HISTORY {
                self.lines.remove(0);
            }
        }
        self.browsing = None;
    }

    /// ↑ (`older`) or ↓: the history line to show instead of `current`, if any.
    fn step(&mut self, current: &str, older: bool) -> Option<String> {
        let last = self.lines.len().checked_sub(1)?;
        let next = match (self.browsing, older) {
            (None, true) => {
                self.draft = current.to_string();
                last
            }
            (None, false) => return None,
            (Some(i), true) => i.saturating_sub(1),
            (Some(i), false) if i < last => i + 1,
            (Some(_), false) => {
                self.browsing = None;
                return Some(std::mem::take(&mut self.draft));
            }
        };
        self.browsing = Some(next);
        Some(self.lines[next].clone())
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
    "approve",
    "reject",
    "submit",
    "budget",
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
    /// `travel [N]`: time travel, to record N (else the newest).
    Travel(Option<usize>),
    /// `quit` or `q`.
    Quit,
}

/// `:`: opens an empty palette.
pub fn open(vs: &mut ViewState) {
    open_with(vs, String::new());
}

/// Opens the palette on `line`, with no note and history from its newest end.
fn open_with(vs: &mut ViewState, line: String) {
    vs.palette = Some(Input::new(line));
    vs.palette_memory.note = None;
    vs.palette_memory.browsing = None;
}

/// `e`: opens the palette on `payload ID JSON` for the selected task: change the
/// JSON, Enter records it.
pub fn edit_payload(vs: &mut ViewState, fleet: &Fleet) {
    let Some(id) = vs.selected_task(fleet) else { return };
    let Some(i) = fleet.state.task_index(&id) else { return };
    let payload = fleet.state.tasks[i].payload().unwrap_or(&fleet.state.workflow.tasks[i].payload);
    open_with(vs, format!("payload {id} {payload}"));
}

/// A key typed into the open palette: Tab completes (and lists the candidates when
/// several fit), ↑/↓ walk the history, Enter runs the line (a refused line stays open
/// with the reason under it), Esc closes.
pub fn type_key(vs: &mut ViewState, fleet: &Fleet, total: usize, key: TextKey) -> Vec<Request> {
    let Some(input) = &mut vs.palette else { return Vec::new() };
    let memory = &mut vs.palette_memory;
    match key {
        TextKey::Esc => {
            vs.palette = None;
            memory.note = None;
        }
        TextKey::Tab => {
            let (completed, candidates) = completions(fleet, input.value());
            memory.note = match candidates.len() {
                0 => Some(format!("nothing completes {:?}", input.value().split_whitespace().last().unwrap_or(""))),
                1 => None,
                n => {
                    let listed = candidates[..n.min(LISTED)].join(" ");
                    let more = if n > LISTED { format!(" … and {} more", n - LISTED) } else { String::new() };
                    Some(format!("{n} fit: {listed}{more}"))
                }
            };
            *input = Input::new(completed);
        }
        TextKey::Up | TextKey::Down => {
            if let Some(line) = memory.step(input.value(), key == TextKey::Up) {
                *input = Input::new(line);
            }
        }
        TextKey::Enter => {
            let line = input.value().to_string();
            memory.remember(&line);
            vs.palette = None;
            return match vs.run_line(fleet, total, &line) {
                Ok(requests) => {
                    vs.palette_memory.note = None;
                    requests
                }
                Err(why) => {
                    // Kept for correction, the reason under it (and as the message,
                    // should the operator close it).
                    vs.palette = Some(Input::new(line));
                    vs.palette_memory.note = Some(why.clone());
                    vs.message = Some(why);
                    Vec::new()
                }
            };
        }
        other => {
            memory.browsing = None;
            other.edit(input);
        }
    }
    Vec::new()
}

/// Where a one-line field shows its text in `width` columns: the columns scrolled
/// off its left and the cursor's column, so that the cursor is always in view (one
/// column is kept for the cursor after the last character).
pub fn window(input: &Input, width: u16) -> (u16, u16) {
    let room = usize::from(width.max(1)) - 1;
    let scroll = input.visual_scroll(room);
    let cursor = input.visual_cursor().saturating_sub(scroll).min(room);
    (u16::try_from(scroll).unwrap_or(u16::MAX), u16::try_from(cursor).unwrap_or(u16::MAX))
}

impl ViewState {
    /// Runs one palette command line; a line refused (it does not parse, or the run
    /// refuses it) leaves its reason as the message.
    pub fn run_command(&mut self, fleet: &Fleet, total: usize, line: &str) -> Vec<Request> {
        self.run_line(fleet, total, line).unwrap_or_else(|why| {
            self.message = Some(why);
            Vec::new()
        })
    }

    /// Runs one line: the requests for the app loop, or why nothing was done.
    fn run_line(&mut self, fleet: &Fleet, total: usize, line: &str) -> Result<Vec<Request>, String> {
        let Some(command) = parse(fleet, line)? else { return Ok(Vec::new()) };
        let shared = matches!(command, Command::Shared(_));
        self.message = None;
        let requests = execute(self, fleet, total, command)?;
        // A run command that asks nothing and sends nothing was refused; its reason
        // is the message the action left.
        if shared && requests.is_empty() && self.confirm.is_none() {
            if let Some(why) = self.message.clone() {
                return Err(why);
            }
        }
        Ok(requests)
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
        ("travel", None) => Command::Travel(None),
        ("travel", Some(n)) => match n.parse::<usize>() {
            Ok(n) => Command::Travel(Some(n)),
            Err(_) => return Err(format!("travel: {n:?} is not a record number; e.g. `travel 120`")),
        },
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
fn execute(vs: &mut ViewState, fleet: &Fleet, total: usize, command: Command) -> Result<Vec<Request>, String> {
    match command {
        Command::Shared(shared) => return Ok(execute_shared(vs, fleet, total, shared)),
        Command::Inspect(task) => detail::open(vs, task),
        Command::Filter(filter) => {
            let screen = if vs.screen == Screen::DeadLetters { Screen::DeadLetters } else { Screen::Tasks };
            tasks::set_filter(vs, fleet, filter, screen);
        }
        Command::Travel(None) => travel::enter(vs, total),
        Command::Travel(Some(n)) if (1..=total).contains(&n) => vs.travel = Some(n),
        Command::Travel(Some(n)) => return Err(format!("travel {n}: the log has records 1 to {total}")),
        Command::Quit => return Ok(actions::quit(vs, fleet)),
    }
    Ok(Vec::new())
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
        SharedCommand::Reject { tasks, reason: None } if tasks.len() == 1 => actions::reject(vs, fleet, &tasks[0]),
        SharedCommand::Approve(_) | SharedCommand::Reject { .. } => {
            // Several ids: one question for all of them, after the core's refusals.
            match command::inputs(&fleet.state, &command, OPERATOR) {
                Ok(inputs) => {
                    let question = match &command {
                        SharedCommand::Approve(ids) => {
                            format!("Approve {}? They run as they are, not checked again.", ids.join(", "))
                        }
                        SharedCommand::Reject { tasks, reason } => format!(
                            "Reject {}{}? They end cancelled, never dead letters; their dependents are skipped.",
                            tasks.join(", "),
                            reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
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
    completions(fleet, line).0
}

/// [`complete`], and the candidates that fit the word being completed.
pub fn completions(fleet: &Fleet, line: &str) -> (String, Vec<String>) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ends_with_space = line.ends_with(' ');
    let (done, partial): (Vec<&str>, &str) = match (words.len(), ends_with_space) {
        (0, _) => (vec![], ""),
        (n, false) => (words[..n - 1].to_vec(), words[n - 1]),
        (_, true) => (words.clone(), ""),
    };
    let candidates = candidates(fleet, &done);
    let matching: Vec<String> = candidates.into_iter().filter(|c| c.starts_with(partial)).collect();
    let Some(first) = matching.first() else { return (line.to_string(), matching) };
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
    (out, matching)
}

/// What may come after the words already typed.
fn candidates(fleet: &Fleet, done: &[&str]) -> Vec<String> {
    let pools = || fleet.state.workflow.pools.iter().map(|p| p.name.clone());
    if done.is_empty() {
        PALETTE_COMMANDS.iter().map(|c| c.to_string()).collect()
    } else if matches!(done[0], "pause" | "resume") && done.len() == 1 {
        pools().chain(["all".to_string()]).collect()
    } else if done[0] == "budget" {
        vec!["--max-cost-usd".into(), "--task-cost-usd".into()]
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
