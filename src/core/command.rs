//! The operator's command words, shared by the TUI's palette and the control socket
//! (DESIGN §12): one parser checks a line against the run ([`parse`]), and one pure
//! function turns a parsed command into the engine's inputs or the reason it is
//! refused ([`inputs`]), so every front end accepts and refuses the same things in the
//! same words.

use serde_json::Value;

use super::decide::{payload_unchanged, Input};
use super::hold::{refusal, Answer};
use super::state::RunState;
use super::task::TaskState;
use super::workflow::Limit;

/// The shared command words, for completion and help.
pub const COMMANDS: &[&str] = &[
    "retry",
    "cancel",
    "replay",
    "payload",
    "pause",
    "resume",
    "concurrency",
    "breaker",
    "approve",
    "reject",
    "submit",
    "budget",
];

/// A command line, parsed and checked against the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `retry ID`: requeue a dead letter or a cancelled task, or end a retry's wait.
    Retry(String),
    /// `retry ID --continue` (or `replay ID --continue` for a dead letter): as
    /// `retry`, and the next attempt continues the task's agent session.
    Continue(String),
    /// `cancel ID`.
    Cancel(String),
    /// `replay ID`: requeue one dead letter.
    Replay(String),
    /// `replay all`: every dead letter.
    ReplayAll,
    /// `payload ID JSON`: replace a task's payload for its next attempt.
    Payload {
        /// Task id.
        task: String,
        /// The new payload.
        payload: Value,
    },
    /// `approve ID…`: let held tasks run.
    Approve(Vec<String>),
    /// `reject ID… [--reason TEXT]`: cancel held tasks, with the operator's words.
    Reject {
        /// Task ids.
        tasks: Vec<String>,
        /// The operator's reason (the rest of the line after `--reason`).
        reason: Option<String>,
    },
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
    /// `submit FILE`: add the tasks of a TOML file (read by the front end).
    Submit(String),
    /// `budget [--max-cost-usd] N [--task-cost-usd M]`: raise the budget (DESIGN §13).
    Budget {
        /// The run's new budget, in dollars.
        max_cost_usd: Option<f64>,
        /// Every task's new budget, in dollars.
        task_cost_usd: Option<f64>,
    },
}

/// Parses a command line: `Ok(None)` for a blank line, `Err` with the message to show
/// for a line that names no command, an unknown task or pool, or bad arguments.
pub fn parse(state: &RunState, line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(&cmd) = words.first() else { return Ok(None) };
    let arg = words.get(1).copied();
    let command = match (cmd, arg) {
        ("retry" | "replay", Some(task)) if words.len() > 2 => continue_command(state, cmd, task, &words[2..])?,
        ("retry" | "cancel" | "replay" | "payload", Some(task)) => task_command(state, cmd, task, line)?,
        ("approve" | "reject", Some(_)) => {
            // `--reason TEXT…` ends a rejection's ids: the rest of the line is the text.
            let at = words.iter().position(|w| *w == "--reason").unwrap_or(words.len());
            let ids = words[1..at].iter().map(|id| known_task(state, id)).collect::<Result<Vec<_>, _>>()?;
            let reason = (at < words.len()).then(|| words[at + 1..].join(" "));
            match (cmd, reason) {
                ("approve", Some(_)) => return Err("approve takes no --reason (only reject records one)".into()),
                ("approve", None) => Command::Approve(ids),
                (_, Some(text)) if text.is_empty() => {
                    return Err("reject --reason: the reason is missing; usage: reject ID… --reason TEXT".into())
                }
                _ if ids.is_empty() => return Err("reject: which task? e.g. `reject ID --reason TEXT`".into()),
                (_, reason) => Command::Reject { tasks: ids, reason },
            }
        }
        ("pause" | "resume", Some(target)) => {
            Command::Pools { pause: cmd == "pause", target: target.to_string(), pools: pools_named(state, target)? }
        }
        ("concurrency", Some(pool)) => concurrency(state, pool, words.get(2).copied())?,
        ("breaker", _) => breaker(state, arg, words.get(2).copied())?,
        ("submit", Some(file)) => Command::Submit(file.to_string()),
        ("budget", _) => super::command_budget::parse(&words[1..])?,
        ("submit", None) => return Err("usage: submit FILE (a TOML file of [[task]] entries)".into()),
        ("pause" | "resume" | "concurrency", None) => return Err(format!("{cmd}: which pool? e.g. `{cmd} POOL`")),
        (_, None) if COMMANDS.contains(&cmd) => return Err(format!("{cmd}: which task? e.g. `{cmd} ID`")),
        _ => return Err(format!("unknown command {cmd:?}; commands: {}", COMMANDS.join(", "))),
    };
    Ok(Some(command))
}

/// `retry|cancel|replay|payload TASK …`; `replay all` is not a task.
fn task_command(state: &RunState, cmd: &str, task: &str, line: &str) -> Result<Command, String> {
    if cmd == "replay" && task == "all" {
        return Ok(Command::ReplayAll);
    }
    let Some(i) = state.task_index(task) else { return Err(format!("no task {task:?}")) };
    let task = task.to_string();
    Ok(match cmd {
        "retry" => Command::Retry(task),
        "cancel" => Command::Cancel(task),
        "replay" => Command::Replay(task),
        _ => {
            // The JSON is the rest of the line, spaces and all.
            let json = line.trim_start().splitn(3, char::is_whitespace).nth(2).unwrap_or("").trim();
            let payload = serde_json::from_str::<Value>(json)
                .map_err(|e| format!("payload for {task} is not valid JSON: {e}"))?;
            match state.tasks[i].state {
                TaskState::Running { .. } | TaskState::Validating { .. } => {
                    let name = state.tasks[i].state.name();
                    return Err(format!(
                        "{task} is {}: its attempt has its payload already; edit it once the attempt ends",
                        name.as_str()
                    ));
                }
                // Neither retry nor replay takes a completed task: say what does.
                TaskState::Completed { .. } => {
                    return Err(format!(
                        "{task} is completed and never runs again, so a new payload would not be used; \
                         to run it with another payload, fork the run before it completed (`pitboss fork DIR --at SEQ`, or F in time travel)"
                    ))
                }
                _ => {}
            }
            if payload_unchanged(state, i, &payload) {
                return Err(format!("{task}: the payload is unchanged; nothing recorded"));
            }
            Command::Payload { task, payload }
        }
    })
}

/// `retry ID --continue` and `replay ID --continue` (`continue` without dashes too,
/// the palette's way); any other word after the id is refused, not ignored.
fn continue_command(state: &RunState, cmd: &str, task: &str, rest: &[&str]) -> Result<Command, String> {
    if !matches!(rest, ["--continue" | "continue"]) {
        return Err(format!("{cmd}: unexpected {:?}; usage: {cmd} ID [--continue]", rest.join(" ")));
    }
    let Some(i) = state.task_index(task) else { return Err(format!("no task {task:?}")) };
    if cmd == "replay" && !matches!(state.tasks[i].state, TaskState::DeadLettered { .. }) {
        return Err(format!("{task} is not a dead letter"));
    }
    Ok(Command::Continue(task.to_string()))
}

/// A task id the run has, or the message saying it has none.
fn known_task(state: &RunState, task: &str) -> Result<String, String> {
    match state.task_index(task) {
        Some(_) => Ok(task.to_string()),
        None => Err(format!("no task {task:?}")),
    }
}

/// Pool names for an argument: one pool, or `all`.
fn pools_named(state: &RunState, target: &str) -> Result<Vec<String>, String> {
    let pools = &state.workflow.pools;
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
fn concurrency(state: &RunState, pool: &str, n: Option<&str>) -> Result<Command, String> {
    if state.workflow.pool_index(pool).is_none() {
        return Err(format!("no pool {pool:?}"));
    }
    let most = Limit::Concurrency.max();
    let usage = || format!("usage: concurrency POOL N (N from 1 to {most}, the workflow's limit)");
    let Some(n) = n.filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) else { return Err(usage()) };
    // Digits past u64 are past the limit too: say so rather than "not a number".
    match n.parse::<u64>() {
        Ok(0) => Err(format!("{}; 0 would run nothing: `pause {pool}` does that", usage())),
        Ok(v) if v <= most => Ok(Command::Concurrency { pool: pool.to_string(), concurrency: v as usize }),
        _ => Err(format!("concurrency {pool} {n}: at most {most}, the workflow's limit for a pool's concurrency")),
    }
}

/// `breaker reset|trip POOL`.
fn breaker(state: &RunState, how: Option<&str>, pool: Option<&str>) -> Result<Command, String> {
    let Some(how @ ("reset" | "trip")) = how else { return Err("usage: breaker reset|trip POOL".into()) };
    let Some(pool) = pool else { return Err(format!("usage: breaker {how} POOL")) };
    if state.workflow.pool_index(pool).is_none() {
        return Err(format!("no pool {pool:?}"));
    }
    Ok(Command::Breaker { trip: how == "trip", pool: pool.to_string() })
}

/// The engine inputs `command` stands for in `state`, or why it is refused (the task
/// is in a state the command does not apply to). `who` is recorded as the reason of
/// the inputs that carry one (e.g. `operator (ctl)`). `submit` is refused here: its
/// tasks come from a file the front end reads.
pub fn inputs(state: &RunState, command: &Command, who: &str) -> Result<Vec<Input>, String> {
    let reason = || who.to_string();
    let task_state = |id: &str| state.task_index(id).map(|i| &state.tasks[i].state).ok_or(format!("no task {id:?}"));
    Ok(match command {
        Command::Retry(task) => match task_state(task)? {
            TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } => {
                vec![Input::Requeue { task: task.clone(), reason: reason() }]
            }
            TaskState::RetryWait { due_ms } => vec![Input::RetryTimer { task: task.clone(), due_ms: *due_ms }],
            other => {
                return Err(format!(
                    "{task} is {}: only dead-lettered, cancelled or waiting tasks can be retried",
                    other.name().as_str()
                ))
            }
        },
        Command::Continue(task) => {
            let i = state.task_index(task).ok_or(format!("no task {task:?}"))?;
            if let Some(refusal) = state.continue_refusal(i) {
                return Err(refusal);
            }
            match &state.tasks[i].state {
                TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } | TaskState::RetryWait { .. } => {
                    vec![Input::ContinueSession { task: task.clone(), reason: reason() }]
                }
                other => {
                    return Err(format!(
                        "{task} is {}: only dead-lettered, cancelled or waiting tasks can be retried",
                        other.name().as_str()
                    ))
                }
            }
        }
        Command::Cancel(task) => {
            let s = task_state(task)?;
            if s.is_terminal() {
                return Err(format!("{task} is {}: nothing to cancel", s.name().as_str()));
            }
            vec![Input::Cancel { task: task.clone(), reason: reason() }]
        }
        Command::Replay(task) => {
            if !matches!(task_state(task)?, TaskState::DeadLettered { .. }) {
                return Err(format!("{task} is not a dead letter"));
            }
            vec![Input::Requeue { task: task.clone(), reason: reason() }]
        }
        Command::ReplayAll => {
            let dead: Vec<Input> = (0..state.tasks.len())
                .filter(|&i| matches!(state.tasks[i].state, TaskState::DeadLettered { .. }))
                .map(|i| Input::Requeue { task: state.task_id(i).to_string(), reason: reason() })
                .collect();
            if dead.is_empty() {
                return Err("no dead letters to replay".into());
            }
            dead
        }
        Command::Payload { task, payload } => vec![Input::EditPayload { task: task.clone(), payload: payload.clone() }],
        Command::Approve(ids) => answers(state, ids, Answer::Approve, None)?,
        Command::Reject { tasks, reason } => answers(state, tasks, Answer::Reject, reason.as_deref())?,
        Command::Pools { pause, pools, .. } => pools
            .iter()
            .map(|pool| {
                let pool = pool.clone();
                if *pause {
                    Input::PausePool { pool }
                } else {
                    Input::ResumePool { pool }
                }
            })
            .collect(),
        Command::Concurrency { pool, concurrency } => {
            vec![Input::SetConcurrency { pool: pool.clone(), concurrency: *concurrency }]
        }
        Command::Breaker { trip: true, pool } => vec![Input::BreakerTrip { pool: pool.clone() }],
        Command::Breaker { trip: false, pool } => vec![Input::BreakerReset { pool: pool.clone() }],
        Command::Submit(file) => {
            return Err(format!("submit {file}: the front end reads the file and sends its tasks"))
        }
        Command::Budget { max_cost_usd, task_cost_usd } => {
            // Checked as the core will check it, so a refusal comes back with its reason.
            super::decide::raise_budget(state, *max_cost_usd, *task_cost_usd, reason())?;
            vec![Input::RaiseBudget { max_cost_usd: *max_cost_usd, task_cost_usd: *task_cost_usd, source: reason() }]
        }
    })
}

/// Approve or reject inputs for `ids` (a rejection with the operator's `reason`), or
/// every id's refusal (all or nothing).
fn answers(state: &RunState, ids: &[String], answer: Answer, reason: Option<&str>) -> Result<Vec<Input>, String> {
    let refusals: Vec<String> = ids.iter().filter_map(|id| refusal(state, id, answer)).collect();
    if !refusals.is_empty() {
        return Err(refusals.join("; "));
    }
    Ok(ids
        .iter()
        .map(|id| match answer {
            Answer::Approve => Input::Approve { task: id.clone() },
            Answer::Reject => Input::Reject { task: id.clone(), reason: reason.map(str::to_string) },
        })
        .collect())
}

/// What a command did, in a line for the operator (after its inputs were sent).
pub fn done_message(command: &Command) -> String {
    match command {
        Command::Retry(task) => format!("{task}: retrying"),
        Command::Continue(task) => format!("{task}: retrying; the next attempt continues its agent session"),
        Command::Cancel(task) => format!("{task}: cancelled"),
        Command::Replay(task) => format!("{task}: replayed"),
        Command::ReplayAll => "every dead letter: replayed".into(),
        Command::Payload { task, .. } => {
            format!("{task}: payload edited; its next attempt uses it (retry it if it is dead-lettered or cancelled)")
        }
        Command::Approve(ids) => format!("approved {}", ids.join(", ")),
        Command::Reject { tasks, reason: None } => format!("rejected {}", tasks.join(", ")),
        Command::Reject { tasks, reason: Some(why) } => format!("rejected {} ({why})", tasks.join(", ")),
        Command::Pools { pause, target, .. } => format!("{}d {target}", if *pause { "pause" } else { "resume" }),
        Command::Concurrency { pool, concurrency } => format!("pool {pool}: concurrency {concurrency}"),
        Command::Breaker { trip, pool } => format!("breaker {}: {pool}", if *trip { "trip" } else { "reset" }),
        Command::Submit(file) => format!("submitted {file}"),
        Command::Budget { .. } => "budget raised; dispatch resumes".into(),
    }
}

/// The command line that asks for `input` (what an attached TUI sends over the
/// control socket for the inputs its keys make); `None` for inputs no operator word
/// stands for (a submit's tasks, the engine's own inputs).
pub fn line_for(input: &Input) -> Option<String> {
    Some(match input {
        // A requeue of a dead letter or a cancelled task, and the end of a retry's
        // wait, are all `retry` (the manager checks which one applies).
        Input::Requeue { task, .. } | Input::RetryTimer { task, .. } => format!("retry {task}"),
        Input::ContinueSession { task, .. } => format!("retry {task} --continue"),
        Input::Cancel { task, .. } => format!("cancel {task}"),
        Input::Approve { task } => format!("approve {task}"),
        Input::Reject { task, reason: None } => format!("reject {task}"),
        Input::Reject { task, reason: Some(why) } => format!("reject {task} --reason {why}"),
        Input::PausePool { pool } => format!("pause {pool}"),
        Input::ResumePool { pool } => format!("resume {pool}"),
        Input::SetConcurrency { pool, concurrency } => format!("concurrency {pool} {concurrency}"),
        Input::BreakerTrip { pool } => format!("breaker trip {pool}"),
        Input::BreakerReset { pool } => format!("breaker reset {pool}"),
        Input::EditPayload { task, payload } => format!("payload {task} {payload}"),
        Input::RaiseBudget { max_cost_usd, task_cost_usd, .. } => {
            super::command_budget::line(*max_cost_usd, *task_cost_usd)
        }
        _ => return None,
    })
}
