//! `pitboss dlq DIR [--json]` lists dead letters; `pitboss dlq replay DIR (TASK…|--all)`
//! requeues them (and revives their skipped dependents) by appending events, so the
//! next `resume` runs them. Replay is refused while a manager holds the run: it must
//! be done in that manager instead, which is the log's one writer.

use std::path::Path;

use serde_json::{json, Value};

use super::run::CmdResult;
use super::{logcheck, usage, EXIT_OK};
use crate::core::decide::step;
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{dead_letter_groups, fingerprint};
use crate::core::RunState;
use crate::core::{Event, Input, StepContext, TaskState, TaskStateName};
use crate::engine::now_ms;
use crate::io::journal::{self, Journal};
use crate::io::rundir::{is_held, RunDir};
use crate::io::snapshot;

/// Members of a cause listed in the text output (all of them are in `--json`).
const GROUP_MEMBERS_SHOWN: usize = 8;

/// The run in `dir` from its newest usable snapshot and the log after it; notes on
/// snapshots skipped and on a damaged tail go to stderr.
fn open(dir: &Path) -> Result<(RunState, journal::Scan), (u8, String)> {
    let opened = snapshot::open_state(dir).map_err(|e| usage(logcheck::explain(e)))?;
    for note in &opened.notes {
        eprintln!("note: {}", escape_line(note));
    }
    if let Some(t) = &opened.scan.torn {
        eprintln!("{}", logcheck::torn_note(t));
    }
    Ok((opened.state, opened.scan))
}

/// `pitboss dlq DIR [--json]`.
pub fn dlq_list(dir: &Path, json_out: bool) -> CmdResult {
    let (state, _) = open(dir)?;
    let letters: Vec<(usize, &str)> = state
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.state {
            TaskState::DeadLettered { reason } => Some((i, reason.as_str())),
            _ => None,
        })
        .collect();
    // Grouped by cause (exit codes and failure kinds apart), each group with its members.
    let groups = dead_letter_groups(&state);
    if json_out {
        let list: Vec<Value> = letters
            .iter()
            .map(|(i, reason)| {
                // `group`: the cause with what varies masked (a gate's failures by gate).
                json!({"id": state.task_id(*i), "reason": reason, "group": fingerprint(reason), "attempts": state.tasks[*i].attempts, "pool": state.tasks[*i].pool})
            })
            .collect();
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                let tasks: Vec<&str> = g.tasks.iter().map(|&i| state.task_id(i)).collect();
                json!({"group": g.fingerprint, "reason": g.reason, "tasks": tasks, "attempts": g.attempts})
            })
            .collect();
        let doc = json!({"run_id": state.run_id, "dead_letters": list, "groups": groups});
        println!("{}", escape_json(&doc.to_string()));
    } else if letters.is_empty() {
        println!("no dead letters in run {:?}", state.workflow.name);
    } else {
        for (i, reason) in &letters {
            println!(
                "{:20} attempts {:<3} {}",
                escape_line(state.task_id(*i)),
                state.tasks[*i].attempts,
                escape_line(reason)
            );
        }
        println!("\nby cause:");
        for g in &groups {
            // A few members to start from; `--json` lists them all.
            let mut tasks: Vec<&str> = g.tasks.iter().take(GROUP_MEMBERS_SHOWN).map(|&i| state.task_id(i)).collect();
            if g.tasks.len() > GROUP_MEMBERS_SHOWN {
                tasks.push("…");
            }
            println!("{:>5} × {}: {}", g.tasks.len(), escape_line(&g.fingerprint), escape_line(&tasks.join(", ")));
        }
        println!("\nreplay with: pitboss dlq replay {} (TASK…|--all)", dir.display());
    }
    Ok(EXIT_OK)
}

/// `pitboss dlq replay DIR (TASK…|--all)`: appends requeue events; `resume` runs them.
pub fn dlq_replay(dir: &Path, tasks: &[String], all: bool) -> CmdResult {
    if let Some(pid) = is_held(dir) {
        return Err(usage(format!(
            "{} is in use by a running pitboss manager (pid {pid}); replay the dead letters in that manager",
            dir.display()
        )));
    }
    let run_dir = RunDir::hold(dir).map_err(usage)?;
    let (mut state, scan) = open(&run_dir.path)?;
    let chosen: Vec<String> = if all {
        (0..state.tasks.len())
            .filter(|&i| state.tasks[i].state.name() == TaskStateName::DeadLettered)
            .map(|i| state.task_id(i).to_string())
            .collect()
    } else {
        for id in tasks {
            match state.task_index(id).map(|i| state.tasks[i].state.name()) {
                None => return Err(usage(format!("run has no task {id:?}"))),
                Some(TaskStateName::DeadLettered) => {}
                Some(other) => return Err(usage(format!("task {id:?} is {other}, not dead-lettered"))),
            }
        }
        tasks.to_vec()
    };
    if chosen.is_empty() {
        println!("no dead letters to replay");
        return Ok(EXIT_OK);
    }
    let now = now_ms();
    let mut events = Vec::new();
    for id in &chosen {
        let input = Input::Requeue { task: id.clone(), reason: "dlq replay".into() };
        events.extend(step(&mut state, input, StepContext { now_ms: now, jitter: 0.0 }).map_err(usage)?);
    }
    let mut journal = Journal::open(&run_dir.path, &scan).map_err(usage)?;
    journal.append(now, &events).map_err(usage)?;
    let revived = events.iter().filter(|e| matches!(e, Event::TaskRevived { .. })).count();
    println!(
        "requeued {} dead letter(s) ({}), {revived} skipped dependent(s) revived; run them with: pitboss resume {}",
        chosen.len(),
        escape_line(&chosen.join(", ")),
        dir.display()
    );
    Ok(EXIT_OK)
}
