//! Read-side commands over a run folder: `inspect` (task table or one task's whole
//! history), `events` (the log, optionally followed live) and `dlq` (list dead letters,
//! replay them). All but `dlq replay` only read; `dlq replay` appends events and is
//! refused while a manager holds the run (it must act in that manager instead).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};

use super::report::{counts_line, json_document};
use super::run::CmdResult;
use super::{usage, EXIT_OK};
use crate::core::decide::step;
use crate::core::text::{clock, describe, human_ms, iso};
use crate::core::truncate::truncate_chars as truncate;
use crate::core::{AfterFailure, Event, Input, RunState, StepContext, TaskState, TaskStateName};
use crate::engine::now_ms;
use crate::io::journal::{self, Journal, Record, LOG_FILE};
use crate::io::rundir::{is_held, RunDir, OUTPUT_DIR};

fn load(dir: &Path) -> Result<RunState, (u8, String)> {
    let (state, scan) = journal::replay(&dir.join(LOG_FILE)).map_err(usage)?;
    if let Some(t) = scan.torn {
        eprintln!(
            "pitboss: note: the log ends in a damaged record at line {} ({}); `pitboss resume` will cut it",
            t.line, t.reason
        );
    }
    Ok(state)
}

/// `pitboss inspect DIR [TASK] [--json]`.
pub fn inspect(dir: &Path, task: Option<&str>, json_out: bool) -> CmdResult {
    let state = load(dir)?;
    match task {
        None if json_out => {
            println!("{}", json_document(&state, dir));
        }
        None => print_table(&state),
        Some(id) => {
            let i = state.task_index(id).ok_or_else(|| usage(format!("run has no task {id:?}")))?;
            let mut history: Vec<Record> = Vec::new();
            journal::scan(&dir.join(LOG_FILE), |rec, _| {
                if rec.event.task() == Some(id) {
                    history.push(rec);
                }
                Ok(())
            })
            .map_err(usage)?;
            if json_out {
                let doc = json_document(&state, dir);
                let summary = doc["tasks"][i].clone();
                let history: Vec<Value> =
                    history.iter().map(|r| json!({"seq": r.seq, "ts": r.ts, "event": r.event})).collect();
                println!("{}", json!({"task": summary, "spec": state.workflow.tasks[i], "history": history}));
            } else {
                print_task(dir, &state, i, &history);
            }
        }
    }
    Ok(EXIT_OK)
}

fn print_table(state: &RunState) {
    println!("run {:?}  ({})", state.workflow.name, state.run_id);
    println!("{}", counts_line(state));
    println!();
    let width = state.workflow.tasks.iter().map(|t| t.id.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:13}  {:>8}  {:12}  DETAIL", "TASK", "STATE", "ATTEMPTS", "POOL");
    for (i, t) in state.tasks.iter().enumerate() {
        let detail = match &t.state {
            TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } | TaskState::Skipped { .. } => {
                t.why().unwrap_or_default()
            }
            TaskState::RetryWait { due_ms } => format!("retry at {}", clock(*due_ms)),
            TaskState::Blocked => {
                let waiting: Vec<&str> = state.dependencies[i]
                    .iter()
                    .filter(|&&d| !matches!(state.tasks[d].state, TaskState::Completed { .. }))
                    .map(|&d| state.task_id(d))
                    .collect();
                format!("waiting on {}", waiting.join(", "))
            }
            TaskState::Completed { .. } => t.result.as_ref().map(|r| truncate(&r.to_string(), 60)).unwrap_or_default(),
            _ => String::new(),
        };
        println!(
            "{:width$}  {:13}  {:>8}  {:12}  {}",
            state.task_id(i),
            t.state.name().as_str(),
            t.attempts,
            t.pool.as_deref().unwrap_or("-"),
            truncate(&detail, 100)
        );
    }
}

fn print_task(dir: &Path, state: &RunState, i: usize, history: &[Record]) {
    let spec = &state.workflow.tasks[i];
    let task = &state.tasks[i];
    println!("task {}  type {:?}  state {}", spec.id, spec.kind, task.state.name());
    if !spec.depends_on.is_empty() {
        println!("depends on: {}", spec.depends_on.join(", "));
    }
    println!("payload: {}", truncate(&spec.payload.to_string(), 200));
    if let Some(r) = &task.result {
        println!("result: {}", truncate(&r.to_string(), 400));
    }
    println!();
    println!("history:");
    for rec in history {
        let detail = match &rec.event {
            Event::AttemptSpawned { attempt, pid, .. } => {
                format!("attempt {attempt}: process {pid} started")
            }
            Event::AttemptSucceeded { attempt, exit_code, duration_ms, .. } => format!(
                "attempt {attempt} succeeded (exit {}, {})",
                exit_code.map(|c| c.to_string()).unwrap_or("-".into()),
                human_ms(*duration_ms)
            ),
            Event::AttemptFailed { attempt, class, error, exit_code, duration_ms, then, .. } => {
                let next = match then {
                    AfterFailure::Retry { delay_ms, .. } => {
                        format!("retry in {}", human_ms(*delay_ms))
                    }
                    AfterFailure::Defer { delay_ms, .. } => {
                        format!("not spent; again in {}", human_ms(*delay_ms))
                    }
                    AfterFailure::DeadLetter { reason } => format!("dead-lettered: {reason}"),
                    AfterFailure::Fallback { reason } => format!("fallback used: {reason}"),
                };
                format!(
                    "attempt {attempt} failed [{}] (exit {}, {}): {error} -> {next}",
                    serde_json::to_value(class).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                    exit_code.map(|c| c.to_string()).unwrap_or("-".into()),
                    human_ms(*duration_ms),
                )
            }
            _ => describe(&rec.event)
                .map(|d| d.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or(d))
                .unwrap_or_default(),
        };
        println!("  #{:<6} {}  {:20} {}", rec.seq, iso(rec.ts), rec.event.kind(), detail);
        if let Event::AttemptSucceeded { attempt, output, .. } | Event::AttemptFailed { attempt, output, .. } =
            &rec.event
        {
            for (stream, small) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                // Small output lives in the event; larger output in a capped file.
                let path = dir.join(OUTPUT_DIR).join(format!("{}.{attempt}.{stream}", spec.id));
                let (from, tail) = match small {
                    Some(text) => ("the log".to_string(), last_lines(text, 5)),
                    None => (path.display().to_string(), tail_lines(&path, 5)),
                };
                if !tail.is_empty() {
                    println!("           {stream} (last lines, from {from}):");
                    for line in tail {
                        println!("             | {}", truncate(&line, 150));
                    }
                }
            }
        }
    }
}

fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(String::from).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The last `n` lines of a file, reading at most its last 64 KiB.
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// `pitboss events DIR [--follow] [--json]`.
pub fn events(dir: &Path, follow: bool, json_out: bool) -> CmdResult {
    let path = dir.join(LOG_FILE);
    let print = |rec: &Record| {
        if json_out {
            println!("{}", json!({"seq": rec.seq, "ts": rec.ts, "event": rec.event}));
        } else {
            let text = describe(&rec.event).unwrap_or_else(|| rec.event.kind().to_string());
            println!("#{:<6} {}  {}", rec.seq, iso(rec.ts), text);
        }
    };
    let scan = journal::scan(&path, |rec, _| {
        print(&rec);
        Ok(())
    })
    .map_err(usage)?;
    if follow {
        super::follow::follow(&path, scan.valid_len, scan.records, dir, &print).map_err(usage)?;
    }
    Ok(EXIT_OK)
}

/// `pitboss dlq DIR [--json]`.
pub fn dlq_list(dir: &Path, json_out: bool) -> CmdResult {
    let state = load(dir)?;
    let letters: Vec<(usize, &str)> = state
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.state {
            TaskState::DeadLettered { reason } => Some((i, reason.as_str())),
            _ => None,
        })
        .collect();
    if json_out {
        let list: Vec<Value> = letters
            .iter()
            .map(|(i, reason)| {
                json!({"id": state.task_id(*i), "reason": reason, "attempts": state.tasks[*i].attempts, "pool": state.tasks[*i].pool})
            })
            .collect();
        println!("{}", json!({"run_id": state.run_id, "dead_letters": list}));
    } else if letters.is_empty() {
        println!("no dead letters in run {:?}", state.workflow.name);
    } else {
        for (i, reason) in &letters {
            println!("{:20} attempts {:<3} {}", state.task_id(*i), state.tasks[*i].attempts, reason);
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
    let log = run_dir.path.join(LOG_FILE);
    let (mut state, scan) = journal::replay(&log).map_err(usage)?;
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
        chosen.join(", "),
        dir.display()
    );
    Ok(EXIT_OK)
}
