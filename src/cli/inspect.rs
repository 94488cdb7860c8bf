//! `pitboss inspect DIR [TASK] [--json]`: the task table of a run, or one task's whole
//! history with the tails of its attempts' output. Only reads.

mod task_records;
mod workspace;

use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::report::{counts_json, counts_line, task_json};
use super::run::CmdResult;
use super::{load, logcheck, usage, EXIT_OK};
use crate::core::consensus::{Ballot, Decision};
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{clock, describe, human_ms, iso};
use crate::core::truncate::truncate_chars as truncate;
use crate::core::workflow::gate_label;
use crate::core::{AfterFailure, Event, RunState, TaskState, TaskStateName};
use crate::io::journal::Record;
use crate::io::rundir::OUTPUT_DIR;
use crate::io::segments;

/// `pitboss inspect DIR [TASK] [--json]`.
pub fn inspect(dir: &Path, task: Option<&str>, json_out: bool) -> CmdResult {
    match task {
        None => {
            let state = load(dir)?;
            if json_out { write_document(&state, dir) } else { print_table(&state) }.map_err(usage)?;
            // The process ends here: freeing a big run's state task by task costs
            // ~6 % of `inspect` on 250,000 tasks (issue 14), and buys nothing.
            std::mem::forget(state);
        }
        Some(id) => {
            let TaskLog { state, history, path } = task_log(dir, id)?;
            let i = state.task_index(id).ok_or_else(|| usage(format!("run has no task {id:?}")))?;
            if json_out {
                let summary = task_json(&state, i);
                let ballots = Ballot::read(history.iter().map(|r| &r.event));
                let history_events: Vec<Event> = history.iter().map(|r| r.event.clone()).collect();
                let history: Vec<Value> =
                    history.iter().map(|r| json!({"seq": r.seq, "ts": r.ts, "event": r.event})).collect();
                let mut doc = json!({"task": summary, "spec": state.workflow.tasks[i], "history": history});
                // Only a task with votes gets the key: documents of other tasks (and
                // of logs from before consensus) stay as they were.
                if !ballots.is_empty() {
                    doc["votes"] = Value::Array(ballots.iter().map(ballot_json).collect());
                }
                if let Some(ws) = workspace::workspace_json(history_events.iter()) {
                    doc["workspace"] = ws;
                }
                println!("{}", escape_json(&doc.to_string()));
            } else {
                print_task(dir, &state, i, &history, &path);
            }
        }
    }
    Ok(EXIT_OK)
}

/// `inspect --json`: the run's document (`report::json_document`, byte for byte)
/// written task by task to stdout, never built whole in memory. Keys in the order
/// serde_json sorts them; each piece escaped for the terminal as the whole was.
fn write_document(state: &RunState, dir: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let piece = |out: &mut BufWriter<_>, value: &Value| -> std::io::Result<()> {
        out.write_all(escape_json(&value.to_string()).as_bytes())
    };
    out.write_all(b"{\"counts\":")?;
    piece(&mut out, &counts_json(state))?;
    out.write_all(b",\"run_id\":")?;
    piece(&mut out, &Value::String(state.run_id.clone()))?;
    if let Some(spend) = state.spend_json() {
        out.write_all(b",\"spend\":")?;
        piece(&mut out, &spend)?;
    }
    out.write_all(b",\"state_dir\":")?;
    piece(&mut out, &Value::String(dir.display().to_string()))?;
    out.write_all(b",\"tasks\":[")?;
    let workspaces = workspace::all_workspaces(dir, state);
    for i in 0..state.tasks.len() {
        if i > 0 {
            out.write_all(b",")?;
        }
        match workspaces.get(state.task_id(i)) {
            Some(ws) => {
                let mut task = task_json(state, i);
                task["workspace"] = ws.clone();
                piece(&mut out, &task)?;
            }
            None => piece(&mut out, &task_json(state, i))?,
        }
    }
    out.write_all(b"]}\n")?;
    out.flush()
}

/// The task table, through one buffer: a line-buffered stdout wrote each of a big
/// run's rows with its own system call (issue 14). Each row is built in one reused
/// line (no allocation for a plain row: a quarter million `format!`s were a third of
/// `inspect`'s time once the snapshot read fast), laid out as `format!("{:w$}  {:13}
/// {:>8}  {:12}  {}")` would.
fn print_table(state: &RunState) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // Every line below may quote a worker (results, reasons, ids): escaped for the terminal.
    // The workflow's head and the ids only: a finished run's specs are not decoded
    // for its table (`core::state::lazy`).
    writeln!(out, "{}", escape_line(&format!("run {:?}  ({})", state.workflow.head().name, state.run_id)))?;
    writeln!(out, "{}", counts_line(state))?;
    writeln!(out)?;
    let width = (0..state.tasks.len()).map(|i| state.task_id(i).len()).max().unwrap_or(4).max(4);
    writeln!(out, "{:width$}  {:13}  {:>8}  {:12}  DETAIL", "TASK", "STATE", "ATTEMPTS", "POOL")?;
    let mut row = String::with_capacity(256);
    let mut number = itoa_buffer();
    for (i, t) in state.tasks.iter().enumerate() {
        row.clear();
        pad(&mut row, state.task_id(i), width, false);
        row.push_str("  ");
        pad(&mut row, t.state.name().as_str(), 13, false);
        row.push_str("  ");
        pad(&mut row, format_u32(&mut number, t.attempts), 8, true);
        row.push_str("  ");
        pad(&mut row, t.pool.as_deref().unwrap_or("-"), 12, false);
        row.push_str("  ");
        match &t.state {
            // A result within 60 characters is its own detail (the common row).
            TaskState::Completed { .. } => match &t.result {
                Some(r) if r.as_str().len() <= 60 || r.as_str().chars().nth(60).is_none() => row.push_str(r.as_str()),
                Some(r) => row.push_str(&truncate(&truncate(r.as_str(), 60), 100)),
                None => {}
            },
            _ => row.push_str(&truncate(&detail(state, i, t), 100)),
        }
        out.write_all(escape_line(&row).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A row's detail for a task not completed.
fn detail(state: &RunState, i: usize, t: &crate::core::Task) -> String {
    match &t.state {
        TaskState::DeadLettered { .. }
        | TaskState::Cancelled { .. }
        | TaskState::Skipped { .. }
        | TaskState::AwaitingApproval { .. } => t.why().unwrap_or_default(),
        TaskState::RetryWait { due_ms } => format!("retry at {}", clock(*due_ms)),
        TaskState::Validating { attempt, gate } => match state.workflow.tasks[i].gates().get(*gate) {
            Some(g) => format!("attempt {attempt}: {} running", gate_label(*gate, g.kind())),
            None => String::new(),
        },
        TaskState::Blocked => {
            let waiting: Vec<&str> = state.dependencies[i]
                .iter()
                .filter(|&&d| !matches!(state.tasks[d].state, TaskState::Completed { .. }))
                .map(|&d| state.task_id(d))
                .collect();
            format!("waiting on {}", waiting.join(", "))
        }
        _ => String::new(),
    }
}

/// `text` into `row`, padded with spaces to `width` characters (on the left when
/// `right`), as `{:width$}` and `{:>width$}` pad.
fn pad(row: &mut String, text: &str, width: usize, right: bool) {
    let chars = if text.is_ascii() { text.len() } else { text.chars().count() };
    let fill = width.saturating_sub(chars);
    if right {
        spaces(row, fill);
        row.push_str(text);
    } else {
        row.push_str(text);
        spaces(row, fill);
    }
}

/// `n` spaces onto `row`, a slice at a time (a `char` at a time was 2 % of printing
/// a quarter million rows, issue 14).
fn spaces(row: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let take = n.min(SPACES.len());
        row.push_str(&SPACES[..take]);
        n -= take;
    }
}

fn itoa_buffer() -> [u8; 10] {
    [0; 10]
}

/// `n` in decimal, in `buf`.
fn format_u32(buf: &mut [u8; 10], mut n: u32) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// What `inspect TASK` shows of the log: the run's state at its end, the task's
/// records, and the states it went through.
struct TaskLog {
    state: RunState,
    history: Vec<Record>,
    path: Vec<TaskStateName>,
}

/// Set (to anything), `inspect TASK` fails where its prefilter cannot tell instead of
/// folding the whole log: for tests.
pub const PREFILTER_ONLY_ENV: &str = "PITBOSS_INSPECT_PREFILTER_ONLY";

/// Set (to anything), `inspect TASK` fails where the run's task index did not give the
/// records up to where it ends (none, stale, damaged): for tests.
pub const INDEX_ONLY_ENV: &str = "PITBOSS_INSPECT_INDEX_ONLY";

/// The run's state as `inspect` opens it (its newest snapshot and the records after
/// it), then the task's records and states from the lines that can matter to it
/// ([`task_records`]); the whole fold ([`fold_task_log`]) where that cannot tell.
fn task_log(dir: &Path, id: &str) -> Result<TaskLog, (u8, String)> {
    let mut state = load(dir)?;
    let Some(i) = state.task_index(id) else {
        return Err(usage(format!("run has no task {id:?}")));
    };
    let Ok(Some(found)) = task_records::find(dir, &mut state, i) else {
        // Tests set it to know the prefilter answered, not the fold behind it.
        if std::env::var_os(PREFILTER_ONLY_ENV).is_some() {
            return Err(usage(format!("inspect {id}: the prefilter could not tell ({PREFILTER_ONLY_ENV} is set)")));
        }
        return fold_task_log(dir, id);
    };
    if !found.indexed && std::env::var_os(INDEX_ONLY_ENV).is_some() {
        return Err(usage(format!("inspect {id}: the task index did not answer ({INDEX_ONLY_ENV} is set)")));
    }
    // Debug builds (every test) check the prefilter against the whole fold.
    #[cfg(debug_assertions)]
    {
        let folded = fold_task_log(dir, id)?;
        let seqs = |h: &[Record]| h.iter().map(|r| r.seq).collect::<Vec<_>>();
        if seqs(&folded.history) != seqs(&found.history) || folded.path != found.path {
            return Err(usage(format!(
                "inspect {id}: the prefilter's records {:?} or states {:?} differ from the fold's {:?} {:?}",
                seqs(&found.history),
                found.path,
                seqs(&folded.history),
                folded.path
            )));
        }
    }
    Ok(TaskLog { state, history: found.history, path: found.path })
}

/// One pass over the whole log (every segment): the fold, the records naming task
/// `id`, and each change of its state once (a torn tail was noted by `load`). The log is folded again, since events
/// alone do not say where a task went (a success may enter `validating` or complete
/// it); the same pass gives the state at the end, so neither a snapshot nor a
/// second scan is read (a pass per question cost three times the log).
fn fold_task_log(dir: &Path, id: &str) -> Result<TaskLog, (u8, String)> {
    let mut fold: Option<RunState> = None;
    let mut history = Vec::new();
    let mut path = vec![TaskStateName::Blocked];
    segments::scan(dir, |rec, _| {
        let Some(state) = &mut fold else {
            fold = Some(RunState::from_first(&rec.event)?);
            return Ok(());
        };
        state.apply(&rec.event, rec.ts)?;
        if let Some(i) = state.task_index(id) {
            let now = state.tasks[i].state.name();
            if path.last() != Some(&now) {
                path.push(now);
            }
        }
        if rec.event.task() == Some(id) {
            history.push(rec);
        }
        Ok(())
    })
    .map_err(|e| usage(logcheck::explain(e)))?;
    let state = fold.ok_or_else(|| usage(format!("{}: the log holds no record", dir.display())))?;
    Ok(TaskLog { state, history, path })
}

/// One line per gate verdict: gate, kind, verdict, score, time, reason; then the
/// critique, one line each.
/// `spent: $1.20 · 3.4k in / 800 out (budget $2.00)` and a line per attempt, for a
/// task that reported usage (DESIGN §13).
fn print_spend(state: &RunState, i: usize, say: &dyn Fn(String)) {
    let Some(spend) = state.spend.task(i) else { return };
    let budget = state.task_cost_usd(i).map(|b| format!(" (budget {b})")).unwrap_or_default();
    say(format!("spent: {}{budget}", spend.total.describe()));
    for (attempt, s) in &spend.attempts {
        say(format!("  attempt {attempt}: {}", s.describe()));
    }
}

fn print_verdicts(task: &crate::core::Task, say: &dyn Fn(String)) {
    if task.verdicts().is_empty() {
        return;
    }
    say("gates:".to_string());
    for v in task.verdicts() {
        let score = v.score.map(|s| format!(" score {s}")).unwrap_or_default();
        let label = gate_label(v.index, v.kind);
        // A failure's reason starts with the gate's label and verdict, shown already.
        let reason = v.reason.strip_prefix(&label).map_or(v.reason.as_str(), |rest| {
            rest.trim_start_matches(" failed: ").trim_start_matches(" could not run: ")
        });
        say(format!(
            "  attempt {} {label} {}{score} ({}): {}",
            v.attempt,
            v.verdict.as_str(),
            human_ms(v.duration_ms),
            truncate(reason, 300)
        ));
        if let Some(critique) = &v.critique {
            for line in last_lines(critique, 8) {
                say(format!("      | {}", truncate(&line, 150)));
            }
        }
    }
}

/// One consensus attempt for `inspect TASK --json`: its votes (in the order cast)
/// and the outcome (`null` while undecided).
fn ballot_json(ballot: &Ballot) -> Value {
    let outcome = match &ballot.outcome {
        Some(Decision::Reached { winner_replica, digest, votes, dissenters, abstained }) => json!({
            "decision": "reached",
            "winner": winner_replica,
            "digest": digest,
            "votes": votes,
            "dissenters": dissenters,
            "abstained": abstained,
            "judge": ballot.judge,
        }),
        Some(Decision::Failed { reason }) => json!({"decision": "failed", "reason": reason}),
        _ => Value::Null,
    };
    json!({"attempt": ballot.attempt, "cast": ballot.votes, "outcome": outcome})
}

/// Each consensus attempt: one line per vote (replica, worker, answer digest or why
/// it abstained), then the outcome.
fn print_votes(state: &RunState, i: usize, history: &[Record], say: &dyn Fn(String)) {
    let spec = state.workflow.spec(i);
    let Some(spec) = &spec.consensus else { return };
    for ballot in Ballot::read(history.iter().map(|r| &r.event)) {
        say(format!("votes (attempt {}):", ballot.attempt));
        let mut votes = ballot.votes.clone();
        votes.sort_by_key(|v| v.replica);
        for v in &votes {
            let what = match (&v.digest, &v.error) {
                (Some(digest), _) => {
                    let result = v.result.as_ref().map(Value::to_string).unwrap_or_default();
                    format!("voted for answer {digest}: {}", truncate(&result, 100))
                }
                (None, Some(error)) => format!("abstained: {}", truncate(error, 150)),
                (None, None) => "abstained: nothing at the compared key".to_string(),
            };
            say(format!("  replica {} on {} {what}", v.replica, v.worker));
        }
        say(format!("  {}", truncate(&ballot.outcome_line(spec.replicas), 400)));
    }
}

fn print_task(dir: &Path, state: &RunState, i: usize, history: &[Record], path: &[TaskStateName]) {
    let spec = &*state.workflow.spec(i);
    let task = &state.tasks[i];
    // Every line below may quote a worker (results, errors, output): escaped for the
    // terminal, one line each.
    let say = |line: String| println!("{}", escape_line(&line));
    say(format!("task {}  type {:?}  state {}", spec.id, spec.kind, task.state.name()));
    if !spec.depends_on.is_empty() {
        say(format!("depends on: {}", spec.depends_on.join(", ")));
    }
    say(format!("payload: {}", truncate(&spec.payload.to_string(), 200)));
    if let Some(r) = &task.result {
        say(format!("result: {}", truncate(&r.to_string(), 400)));
    }
    let states: Vec<&str> = path.iter().map(|n| n.as_str()).collect();
    say(format!("states: {}", states.join(" → ")));
    if let Some(finding) = task.finding() {
        let answer = if task.approved() { " (approved by an operator)" } else { "" };
        say(format!("input guard: {}{answer}", crate::core::hold::finding_text(finding)));
    }
    print_verdicts(task, &say);
    if let Some(agent) = task.agent() {
        for line in agent.lines() {
            say(line);
        }
    }
    print_votes(state, i, history, &say);
    print_spend(state, i, &say);

    workspace::print_workspace(history, &say);
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
        say(format!("  #{:<6} {}  {:20} {}", rec.seq, iso(rec.ts), rec.event.kind(), detail));
        if let Event::AttemptSucceeded { attempt, output, .. } | Event::AttemptFailed { attempt, output, .. } =
            &rec.event
        {
            for (stream, small) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                // Small output lives in the event; larger output in a capped file.
                let path = dir
                    .join(OUTPUT_DIR)
                    .join(format!("{}.{attempt}.{stream}", crate::core::spawn::file_stem(&spec.id)));
                let (from, tail) = match small {
                    Some(text) => ("the log".to_string(), last_lines(text, 5)),
                    None => (path.display().to_string(), tail_lines(&path, 5)),
                };
                if !tail.is_empty() {
                    say(format!("           {stream} (last lines, from {from}):"));
                    for line in tail {
                        say(format!("             | {}", truncate(&line, 150)));
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

#[cfg(test)]
mod tests {
    use super::{format_u32, itoa_buffer, pad};

    #[test]
    fn a_row_is_laid_out_as_format_lays_it_out() {
        for (id, state, attempts, pool) in [
            ("t1", "completed", 1, "p1"),
            ("ünï-long-id-past-width", "dead_lettered", 4_000_000_000, "-"),
            ("", "", 0, ""),
        ] {
            let mut row = String::new();
            let mut number = itoa_buffer();
            pad(&mut row, id, 8, false);
            row.push_str("  ");
            pad(&mut row, state, 13, false);
            row.push_str("  ");
            pad(&mut row, format_u32(&mut number, attempts), 8, true);
            row.push_str("  ");
            pad(&mut row, pool, 12, false);
            assert_eq!(row, format!("{id:8}  {state:13}  {attempts:>8}  {pool:12}"));
        }
        // Ids longer than the spaces are laid out a slice at a time.
        for width in [63, 64, 65, 200] {
            let (mut left, mut right) = (String::new(), String::new());
            pad(&mut left, "x", width, false);
            pad(&mut right, "é", width, true);
            assert_eq!((left, right), (format!("{:width$}", "x"), format!("{:>width$}", "é")));
        }
        let mut number = itoa_buffer();
        assert_eq!(format_u32(&mut number, u32::MAX), u32::MAX.to_string());
    }
}
