//! The binary rows of a format-4 snapshot (issue 14): every task spec and every task
//! as fixed-width numbers and length-prefixed texts (`bytes`), so that a reader of a
//! quarter million tasks runs no JSON parser per field and no serde machinery per
//! row. What few specs and tasks have (a fallback, gates, a running attempt's round, a
//! held task's finding, a planner's links) is written as a small JSON document inside
//! the row, behind a flag; a plain row has none.
//!
//! ```text
//! spec row:  flags:u8 id:str payload:json deps:u32 (dep:str)* [timeout:u64] [retry:29] [rare:json]
//! task row:  tag:u8 flags:u8 attempts:u32 [budget_start crashes deferrals:u32×3] [state data]
//!            [result:json] [last_error:str] [pool:str] [ticket:u64] [links:json]
//!            unsatisfied:u32 failed:u32 standing:u8
//! ```
//!
//! (`str` and `json` are a `u32` length and the bytes.) The mirrors destructure
//! `TaskSpec`, `Task`, `TaskLinks` and `TaskState` without `..`: a field added to one
//! does not compile until it is written here.

use std::io::{Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::bytes::{BodyError, Sink, Src};
use super::chunked::Filling;
use super::readiness::Readiness;
use super::task_part::state_in;
use super::task_record::Ticket;
use super::{Links, Standing, Task, TaskLinks, Tasks};
use crate::core::checks::Finding;
use crate::core::consensus::ConsensusSpec;
use crate::core::event::OutputStream;
use crate::core::gates::Verdict;
use crate::core::json_text::JsonText;
use crate::core::task::TaskState;
use crate::core::workflow::{Fallback, Gate, RetryPolicy, TaskExtras, TaskSpec, Workspace};

const SPEC_RARE: u8 = 1;
const SPEC_RETRY: u8 = 2;
const SPEC_TIMEOUT: u8 = 4;

const TASK_RESULT: u8 = 1;
const TASK_ERROR: u8 = 2;
const TASK_POOL: u8 = 4;
const TASK_DEGRADED: u8 = 8;
const TASK_LINKS: u8 = 16;
const TASK_TICKET: u8 = 32;
const TASK_COUNTERS: u8 = 64;

/// A spec's rare fields, as one small document.
#[derive(Serialize, Deserialize, Default, PartialEq)]
struct SpecRare {
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    requires: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    never_on: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback: Option<Fallback>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_guard: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consensus: Option<Box<ConsensusSpec>>,
    // Added after format 4 first shipped: an older row has none, as its task had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace: Option<Workspace>,
}

/// Writes every spec's row.
fn write_specs<W: Write>(specs: &[TaskSpec], out: &mut Sink<W>) -> std::io::Result<()> {
    for spec in specs {
        let TaskSpec { id, kind, pool, requires, payload, depends_on, timeout_ms, retry, extras: _, consensus } = spec;
        let rare = SpecRare {
            kind: kind.clone(),
            pool: pool.clone(),
            requires: requires.clone(),
            never_on: spec.never_on().to_vec(),
            fallback: spec.fallback().cloned(),
            gates: spec.gates().to_vec(),
            input_guard: spec.input_guard(),
            consensus: consensus.clone(),
            workspace: spec.workspace().cloned(),
        };
        let rare = (rare != SpecRare::default()).then_some(rare);
        let custom_retry = **retry != RetryPolicy::default();
        let custom_timeout = *timeout_ms != super::USUAL_TIMEOUT_MS;
        let flags = if rare.is_some() { SPEC_RARE } else { 0 }
            | if custom_retry { SPEC_RETRY } else { 0 }
            | if custom_timeout { SPEC_TIMEOUT } else { 0 };
        out.u8(flags)?;
        out.bytes(id.as_bytes())?;
        out.bytes(payload.as_str().as_bytes())?;
        out.u32(u32::try_from(depends_on.len()).map_err(std::io::Error::other)?)?;
        for d in depends_on {
            out.bytes(d.as_bytes())?;
        }
        if custom_timeout {
            out.u64(*timeout_ms)?;
        }
        if custom_retry {
            let RetryPolicy { max_attempts, initial_ms, max_ms, multiplier, jitter } = **retry;
            out.u32(max_attempts)?;
            out.u64(initial_ms)?;
            out.u64(max_ms)?;
            out.u64(multiplier.to_bits())?;
            out.u8(u8::from(jitter))?;
        }
        if let Some(rare) = rare {
            out.doc(&rare)?;
        }
    }
    Ok(())
}

/// Reads `n` spec rows (the whole section).
pub fn read_specs<R: Read>(n: usize, src: &mut Src<R>) -> Result<Vec<TaskSpec>, BodyError> {
    // Each row is at least 13 bytes: a count past that is a damaged file, not a
    // reason to reserve gigabytes.
    if n as u64 > src.remaining() / 13 {
        return Err(format!("{n} specs in a section of {} bytes", src.remaining()));
    }
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        specs.push(read_spec(src).map_err(|e| format!("spec {i}: {e}"))?);
    }
    if src.remaining() != 0 {
        return Err(format!("{} bytes after the last spec", src.remaining()));
    }
    Ok(specs)
}

/// Checks `n` spec rows (the whole section) as [`read_specs`] would read them, keeping
/// only where each row starts: a lazily read snapshot (`lazy`) decodes them on first
/// use, and that decoding must not fail after the snapshot was accepted.
/// Also tells whether any row has rare fields (none: every spec is plain).
pub fn skim_specs(n: usize, bytes: &[u8]) -> Result<(Vec<u32>, bool), BodyError> {
    let len = bytes.len() as u64;
    if u32::try_from(len).is_err() {
        return Err(format!("a specs section of {len} bytes"));
    }
    let mut src = Src::new(bytes, len);
    if n as u64 > src.remaining() / 13 {
        return Err(format!("{n} specs in a section of {} bytes", src.remaining()));
    }
    let (mut starts, mut rare) = (Vec::with_capacity(n), false);
    for i in 0..n {
        starts.push((len - src.remaining()) as u32);
        rare |= skim_spec(&mut src).map_err(|e| format!("spec {i}: {e}"))?;
    }
    if src.remaining() != 0 {
        return Err(format!("{} bytes after the last spec", src.remaining()));
    }
    Ok((starts, rare))
}

/// [`read_spec`]'s checks, in its order, without building the spec; true when the
/// row has rare fields.
fn skim_spec<R: Read>(src: &mut Src<R>) -> Result<bool, BodyError> {
    let flags = src.u8()?;
    src.str()?;
    let payload = src.str()?;
    JsonText::check(payload).map_err(|e| format!("a JSON text that does not parse ({e})"))?;
    let deps = src.u32()? as usize;
    if deps as u64 > src.remaining() / 4 {
        return Err(format!("{deps} dependencies past the section's end"));
    }
    for _ in 0..deps {
        src.str()?;
    }
    if flags & SPEC_TIMEOUT != 0 {
        src.u64()?;
    }
    if flags & SPEC_RETRY != 0 {
        src.take(29)?;
    }
    if flags & SPEC_RARE != 0 {
        let _: SpecRare = src.doc()?;
    }
    Ok(flags & SPEC_RARE != 0)
}

/// The id of the spec row starting at `start` of a section [`skim_specs`] accepted.
pub fn spec_id(bytes: &[u8], start: u32) -> &str {
    let at = start as usize + 1;
    let len = bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    bytes.get(at + 4..at + 4 + len).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
}

/// The spec row starting at `start` of a section [`skim_specs`] accepted, alone
/// (`inspect TASK` of a lazily read run needs a few specs, not a quarter million).
pub fn spec_at(bytes: &[u8], start: u32) -> Result<TaskSpec, BodyError> {
    let row = bytes.get(start as usize..).ok_or("a row past the section's end")?;
    read_spec(&mut Src::new(row, row.len() as u64))
}

fn read_spec<R: Read>(src: &mut Src<R>) -> Result<TaskSpec, BodyError> {
    let flags = src.u8()?;
    let id = src.str()?.to_string();
    let payload = src.json()?;
    let deps = src.u32()? as usize;
    if deps as u64 > src.remaining() / 4 {
        return Err(format!("{deps} dependencies past the section's end"));
    }
    let mut depends_on = Vec::with_capacity(deps);
    for _ in 0..deps {
        depends_on.push(src.str()?.to_string());
    }
    let timeout_ms = if flags & SPEC_TIMEOUT != 0 { src.u64()? } else { super::USUAL_TIMEOUT_MS };
    let retry = if flags & SPEC_RETRY != 0 {
        RetryPolicy {
            max_attempts: src.u32()?,
            initial_ms: src.u64()?,
            max_ms: src.u64()?,
            multiplier: f64::from_bits(src.u64()?),
            jitter: src.u8()? != 0,
        }
    } else {
        RetryPolicy::default()
    };
    let retry = retry.into();
    if flags & SPEC_RARE == 0 {
        // A plain spec: no extras to build and compare.
        let (kind, pool, requires, extras, consensus) = (String::new(), None, Vec::new(), None, None);
        return Ok(TaskSpec { id, kind, pool, requires, payload, depends_on, timeout_ms, retry, extras, consensus });
    }
    let SpecRare { kind, pool, requires, never_on, fallback, gates, input_guard, consensus, workspace } = src.doc()?;
    let mut spec = TaskSpec {
        id,
        kind,
        pool,
        requires,
        payload,
        depends_on,
        timeout_ms,
        retry,
        extras: TaskExtras::boxed(never_on, fallback, gates, input_guard),
        consensus,
    };
    if workspace.is_some() {
        spec.extras_mut().workspace = workspace;
    }
    Ok(spec)
}

/// A task's rare fields, as one small document.
#[derive(Serialize, Deserialize)]
struct LinksDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool_override: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::core::json_text::raw_option")]
    payload: Option<JsonText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    capture_failures: Vec<(u32, OutputStream)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    verdicts: Vec<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finding: Option<Box<Finding>>,
    #[serde(default)]
    approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<Box<super::agent::AgentState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    winner: Option<u32>,
}

fn tag(state: &TaskState) -> u8 {
    match state {
        TaskState::Blocked => 0,
        TaskState::Queued => 1,
        TaskState::Running { .. } => 2,
        TaskState::Validating { .. } => 3,
        TaskState::RetryWait { .. } => 4,
        TaskState::Completed { degraded: false } => 5,
        TaskState::Completed { degraded: true } => 6,
        TaskState::DeadLettered { .. } => 7,
        TaskState::Cancelled { .. } => 8,
        TaskState::Skipped { .. } => 9,
        TaskState::AwaitingApproval { .. } => 10,
    }
}

fn standing_tag(s: Standing) -> u8 {
    match s {
        Standing::Pending => 0,
        Standing::Satisfied => 1,
        Standing::Failed => 2,
    }
}

/// Writes the state's spec rows, then its task rows; gives each section's length.
pub fn write_rows<W: Write>(state: &super::RunState, out: &mut Sink<W>) -> std::io::Result<(u64, u64)> {
    let start = out.written;
    match state.workflow.rows() {
        // A lazily read snapshot's rows, as they were read (and checked): the specs
        // cannot have changed without being decoded first.
        Some(rows) => out.raw(rows)?,
        None => write_specs(&state.workflow.tasks, out)?,
    }
    let specs = out.written - start;
    write_tasks(&state.tasks, &state.readiness, out)?;
    Ok((specs, out.written - start - specs))
}

/// The task rows read back: the tasks and their readiness counts.
pub struct TaskRows {
    pub(super) tasks: Tasks,
    pub(super) readiness: Readiness,
}

/// Writes every task's row, with its readiness counts.
fn write_tasks<W: Write>(tasks: &Tasks, readiness: &Readiness, out: &mut Sink<W>) -> std::io::Result<()> {
    let rows = tasks.iter().zip(readiness.unsatisfied.iter()).zip(readiness.failed.iter());
    for (((task, unsatisfied), failed), standing) in rows.zip(readiness.standing.iter()) {
        write_task(task, out)?;
        out.u32(*unsatisfied)?;
        out.u32(*failed)?;
        out.u8(standing_tag(*standing))?;
    }
    Ok(())
}

fn write_task<W: Write>(task: &Task, out: &mut Sink<W>) -> std::io::Result<()> {
    let Task {
        state,
        attempts,
        budget_start,
        crashes,
        deferrals,
        result,
        last_error,
        pool,
        degraded,
        links,
        queue_ticket,
    } = task;
    let counters = (*budget_start, *crashes, *deferrals) != (0, 0, 0);
    // Equal to the defaults when no field is set (boxed or not).
    let has_links = *links.get() != TaskLinks::default();
    let flags = [
        (result.is_some(), TASK_RESULT),
        (last_error.is_some(), TASK_ERROR),
        (pool.is_some(), TASK_POOL),
        (*degraded, TASK_DEGRADED),
        (has_links, TASK_LINKS),
        (queue_ticket.get().is_some(), TASK_TICKET),
        (counters, TASK_COUNTERS),
    ]
    .iter()
    .fold(0, |f, (on, bit)| if *on { f | bit } else { f });
    out.u8(tag(state))?;
    out.u8(flags)?;
    out.u32(*attempts)?;
    if counters {
        out.u32(*budget_start)?;
        out.u32(*crashes)?;
        out.u32(*deferrals)?;
    }
    match state {
        TaskState::Running { .. } | TaskState::AwaitingApproval { .. } => {
            out.doc(&super::task_part::state_out(state))?
        }
        TaskState::Validating { attempt, gate } => {
            out.u32(*attempt)?;
            out.u64(*gate as u64)?;
        }
        TaskState::RetryWait { due_ms } => out.u64(*due_ms)?,
        TaskState::DeadLettered { reason } | TaskState::Cancelled { reason } => out.bytes(reason.as_bytes())?,
        TaskState::Skipped { because } => out.bytes(because.as_bytes())?,
        TaskState::Blocked | TaskState::Queued | TaskState::Completed { .. } => {}
    }
    if let Some(result) = result {
        out.bytes(result.as_str().as_bytes())?;
    }
    if let Some(error) = last_error {
        out.bytes(error.as_bytes())?;
    }
    if let Some(pool) = pool {
        out.bytes(pool.as_bytes())?;
    }
    if let Some(ticket) = queue_ticket.get() {
        out.u64(ticket)?;
    }
    if has_links {
        let TaskLinks {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        } = links.get().clone();
        out.doc(&LinksDoc {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        })?;
    }
    Ok(())
}

/// Reads `n` task rows (the whole section): the tasks and their readiness counts.
pub fn read_tasks<R: Read>(n: usize, src: &mut Src<R>) -> Result<TaskRows, BodyError> {
    // Each row is at least 15 bytes.
    if n as u64 > src.remaining() / 15 {
        return Err(format!("{n} tasks in a section of {} bytes", src.remaining()));
    }
    // Filled a chunk at a time, sized from the head's count (checked just above).
    let mut tasks = Filling::with_len(n);
    let mut unsatisfied = Filling::with_len(n);
    let mut failed = Filling::with_len(n);
    let mut standing = Filling::with_len(n);
    let mut names: Vec<Arc<str>> = Vec::new();
    for i in 0..n {
        let row = (|| {
            let task = read_task(src, &mut names)?;
            let counts = (src.u32()?, src.u32()?);
            let s = match src.u8()? {
                0 => Standing::Pending,
                1 => Standing::Satisfied,
                2 => Standing::Failed,
                other => return Err(format!("standing {other}")),
            };
            Ok::<_, BodyError>((task, counts, s))
        })()
        .map_err(|e| format!("task {i}: {e}"))?;
        let (task, (u, f), s) = row;
        tasks.push(task);
        unsatisfied.push(u);
        failed.push(f);
        standing.push(s);
    }
    if src.remaining() != 0 {
        return Err(format!("{} bytes after the last task", src.remaining()));
    }
    let (tasks, unsatisfied, failed, standing) = (tasks.done(), unsatisfied.done(), failed.done(), standing.done());
    Ok(TaskRows { tasks, readiness: Readiness { unsatisfied, failed, standing } })
}

fn read_task<R: Read>(src: &mut Src<R>, names: &mut Vec<Arc<str>>) -> Result<Task, BodyError> {
    let tag = src.u8()?;
    let flags = src.u8()?;
    let attempts = src.u32()?;
    let (budget_start, crashes, deferrals) =
        if flags & TASK_COUNTERS != 0 { (src.u32()?, src.u32()?, src.u32()?) } else { (0, 0, 0) };
    let state = match tag {
        0 => TaskState::Blocked,
        1 => TaskState::Queued,
        2 | 10 => state_in(src.doc()?),
        3 => TaskState::Validating {
            attempt: src.u32()?,
            gate: usize::try_from(src.u64()?).map_err(|_| "a gate past the address space".to_string())?,
        },
        4 => TaskState::RetryWait { due_ms: src.u64()? },
        5 => TaskState::Completed { degraded: false },
        6 => TaskState::Completed { degraded: true },
        7 => TaskState::DeadLettered { reason: src.str()?.to_string() },
        8 => TaskState::Cancelled { reason: src.str()?.to_string() },
        9 => TaskState::Skipped { because: src.str()?.to_string() },
        other => return Err(format!("state tag {other}")),
    };
    if matches!(tag, 2 | 10) && tag != self::tag(&state) {
        return Err("a state document that disagrees with its tag".into());
    }
    let result = if flags & TASK_RESULT != 0 { Some(src.json()?) } else { None };
    let last_error = if flags & TASK_ERROR != 0 { Some(Arc::from(src.str()?)) } else { None };
    let pool = if flags & TASK_POOL != 0 { Some(shared(names, src.str()?)) } else { None };
    let queue_ticket = Ticket::new(if flags & TASK_TICKET != 0 { Some(src.u64()?) } else { None });
    let links = if flags & TASK_LINKS != 0 {
        let LinksDoc {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        } = src.doc()?;
        Links::new(TaskLinks {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        })
    } else {
        Links::default()
    };
    Ok(Task {
        state,
        attempts,
        budget_start,
        crashes,
        deferrals,
        result,
        last_error,
        pool,
        degraded: flags & TASK_DEGRADED != 0,
        links,
        queue_ticket,
    })
}

/// `name` as the one shared copy in `names` (a run has a few pools and a quarter
/// million tasks naming them), added the first time.
fn shared(names: &mut Vec<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(known) = names.iter().find(|n| n.as_ref() == name) {
        return Arc::clone(known);
    }
    let new: Arc<str> = Arc::from(name);
    if names.len() < 64 {
        names.push(Arc::clone(&new));
    }
    new
}
