//! Decisions: what happens when something happens. [`step`] turns one input (a
//! worker exit, a timer, an operator's command) into events, applies them, and
//! follows their consequences through the dependency graph (dependents become ready,
//! are skipped, or come back). [`dispatch`] chooses which queued tasks start now and
//! on which pool. Both are pure: the clock and the random draw for jitter are
//! arguments.
//!
//! What each input means (the events it calls for) is decided in `decide/facts.rs`;
//! this file applies them and follows their consequences, and dispatches.

use super::breaker::Circuit;
use super::event::Event;
use super::hold;
use super::state::{ApplyError, RunState, Standing};
use super::task::{TaskState, TaskStateName};
use crate::core::workflow::Strategy;

mod budget;
mod consensus;
mod facts;
mod input;
mod remote;

pub use budget::{blocked as budget_blocked, raise as raise_budget};
pub use facts::payload_unchanged;
use facts::{at_gate, decide, ended, failed, running};
pub use input::{Input, Outcome, StepContext};

/// A task in flight during this many manager crashes is a poison pill: dead-lettered.
pub const CRASH_LIMIT: u32 = 3;

/// Decides, applies and follows through one input; returns the events in order.
pub fn step(state: &mut RunState, input: Input, ctx: StepContext) -> Result<Vec<Event>, ApplyError> {
    if let Some(done) = consensus::step(state, &input, ctx) {
        return done;
    }
    let mut out = Vec::new();
    // The pool an ending attempt ran on: its breaker hears how it went.
    let ending_on = match &input {
        // A refused spawn fails the attempt, but its agent answered: the breaker
        // hears how the worker itself ended.
        Input::Finished { task, attempt, outcome } | Input::Planned { task, attempt, outcome, .. } => {
            state.task_index(task).and_then(|i| match &state.tasks[i].state {
                TaskState::Running { attempt: a, pool, .. } if a == attempt => {
                    let counts = match outcome {
                        Outcome::Success { .. } => None,
                        Outcome::Failure { class, .. } => Some(class.counts_against_pool()),
                    };
                    state.workflow.pool_index(pool).map(|p| (p, counts))
                }
                _ => None,
            })
        }
        // A review's failed tries count on the reviewer pool (the fold counts them
        // from the verdict event), which may open its breaker.
        Input::ReviewDone { task, attempt, index, reviewer_failures, .. }
            if reviewer_failures.iter().any(|c| c.counts_against_pool()) =>
        {
            at_gate(state, task, *attempt, *index).and_then(|i| state.reviewer_pool(i, *index)).map(|p| (p, Some(true)))
        }
        _ => None,
    };
    let primary = decide(state, input, ctx);
    for event in primary {
        apply_and_cascade(state, event, ctx, &mut out)?;
    }
    if let Some(event) = ending_on.and_then(|(p, failed)| breaker_after(state, p, failed, ctx)) {
        apply_and_cascade(state, event, ctx, &mut out)?;
    }
    Ok(out)
}

/// What a pool's breaker does after one of its attempts ended: `failed` is None for
/// a success, else whether the failure counts against the pool.
fn breaker_after(state: &RunState, p: usize, failed: Option<bool>, ctx: StepContext) -> Option<Event> {
    let pool = &state.workflow.pools[p];
    let breaker = &state.pools[p].breaker;
    match failed {
        Some(true) => {
            let reason = breaker.should_open(pool.breaker.as_ref())?;
            let until_ms = pool.breaker.map(|b| ctx.now_ms.saturating_add(b.cooldown_ms));
            Some(Event::BreakerOpened { pool: pool.name.clone(), until_ms, reason })
        }
        None if matches!(breaker.circuit, Circuit::HalfOpen { .. }) => {
            Some(Event::BreakerClosed { pool: pool.name.clone(), reason: "a probe attempt succeeded".into() })
        }
        _ => None,
    }
}

/// Starts as many queued tasks as pools and `max_parallel` allow; returns the
/// `attempt_started` events (already applied), then `run_finished` if every task is done.
pub fn dispatch(state: &mut RunState, ctx: StepContext) -> Result<Vec<Event>, ApplyError> {
    let mut out = Vec::new();
    if !state.interrupted && state.pools.iter().any(|p| p.breaker.is_open()) {
        // Queued tasks that can only go to open pools take their fallback now.
        let stuck: Vec<usize> = state
            .queue()
            .filter(|&i| state.workflow.tasks[i].fallback().is_some() && !state.tasks[i].degraded)
            .filter(|&i| state.pools_for(i).iter().all(|&p| state.pools[p].breaker.is_open()))
            .collect();
        for i in stuck {
            let pools: Vec<&str> = state.pools_for(i).iter().map(|&p| state.workflow.pools[p].name.as_str()).collect();
            let reason = format!("breaker open on {}", pools.join(", "));
            let event = Event::FallbackUsed { task: state.task_id(i).to_string(), reason };
            apply_and_cascade(state, event, ctx, &mut out)?;
        }
    }
    // A run that spent its budget starts nothing until an operator raises it
    // (DESIGN §13); its running attempts finish.
    if let Some(event) = budget::exhausted_now(state) {
        state.apply(&event, ctx.now_ms)?;
        out.push(event);
    }
    // While the broker is down nothing starts: an attempt handed to it now would wait
    // in the manager anyway, and its timeout must not run (DESIGN §7).
    if !state.interrupted && !state.remote.is_down() && !state.spend.exhausted {
        let picks = plan(state);
        for (task, pool) in picks {
            // A consensus attempt started before this one may have seated a replica
            // on this pool since the plan: the task then waits for the next round.
            if state.pools[pool].running >= state.pool_capacity(pool) {
                continue;
            }
            let event = Event::AttemptStarted {
                task: state.task_id(task).to_string(),
                attempt: state.tasks[task].attempts + 1,
                pool: state.workflow.pools[pool].name.clone(),
            };
            state.apply(&event, ctx.now_ms)?;
            out.push(event);
        }
    }
    if !state.finished && state.all_terminal() {
        let event = Event::RunFinished { success: state.count(TaskStateName::Completed) == state.tasks.len() };
        state.apply(&event, ctx.now_ms)?;
        out.push(event);
    }
    Ok(out)
}

/// Chooses (task, pool) pairs for queued tasks, in dispatch order.
fn plan(state: &RunState) -> Vec<(usize, usize)> {
    // The head (pools, limits, balancer): a lazily read run's specs stay undecoded.
    let wf = state.workflow.head();
    let mut running = state.pools.iter().map(|p| p.running).collect::<Vec<_>>();
    let mut total = state.running_total;
    let mut cursor = state.rr_cursor;
    let mut picks = Vec::new();
    // Each pool's limit: its concurrency, or fewer in broker mode (`pool_capacity`).
    let capacity: Vec<usize> = (0..wf.pools.len()).map(|p| state.pool_capacity(p)).collect();
    // Attempts planned per pool in this round (half-open breakers count probes).
    let mut planned = vec![0usize; wf.pools.len()];
    let pools_free =
        |running: &[usize]| (0..wf.pools.len()).any(|p| running[p] < capacity[p] && !state.pools[p].paused);
    // Queue order, but tasks that lost their remote worker first (`dispatch_order`).
    for task in state.dispatch_order() {
        if total >= wf.max_parallel || !pools_free(&running) {
            break;
        }
        let eligible = state.pools_for(task);
        let admits = |p: &usize| state.pools[*p].breaker.admits(wf.pools[*p].breaker.as_ref(), planned[*p] as u32);
        let free = |p: &usize| running[*p] < capacity[*p] && !state.pools[*p].paused && admits(p);
        let chosen = match wf.balancer {
            Strategy::RoundRobin => {
                // Strict rotation: the task waits for the pool whose turn it is
                // (skipping only pools whose breaker refuses), so equal pools get
                // equal shares even when attempts take different times.
                let n = wf.pools.len().max(1);
                (0..n).map(|k| (cursor + k) % n).find(|p| eligible.contains(p) && admits(p)).filter(|p| free(p))
            }
            Strategy::LeastConnections | Strategy::Capability => {
                eligible.iter().copied().filter(free).min_by(|a, b| {
                    // Compare running/concurrency as fractions without floating point;
                    // in u128, so that an operator's huge concurrency cannot overflow.
                    let la = running[*a] as u128 * capacity[*b] as u128;
                    let lb = running[*b] as u128 * capacity[*a] as u128;
                    la.cmp(&lb)
                })
            }
        };
        if let Some(pool) = chosen {
            running[pool] += 1;
            planned[pool] += 1;
            total += 1;
            // Only a choice among several pools moves the rotation on.
            if eligible.len() > 1 {
                cursor = pool + 1;
            }
            picks.push((task, pool));
        }
    }
    picks
}

/// Applies an event, then walks the dependency graph from the task it touched.
/// The walk holds task indices, not events: each task's next move is decided when it
/// is reached, against the state as it is then, so no stale event is ever applied.
/// Only a change of a task's standing (pending, satisfied, failed) can move its
/// dependents, so only then are they visited: a task's progress through its attempts
/// costs its dependents nothing, and a whole run visits each edge a bounded number of
/// times (`core::state::readiness`).
fn apply_and_cascade(
    state: &mut RunState,
    event: Event,
    ctx: StepContext,
    out: &mut Vec<Event>,
) -> Result<(), ApplyError> {
    let touched = event.task().and_then(|t| state.task_index(t));
    let before = touched.map(|i| state.standing(i));
    state.apply(&event, ctx.now_ms)?;
    let mut work: Vec<usize> = Vec::new();
    if matches!(event, Event::ManagerStarted { .. }) {
        // A resumed log may end between an event and its consequences: settle all.
        work.extend((0..state.tasks.len()).rev());
    } else if let Some(i) = touched {
        if before != Some(state.standing(i)) {
            push_dependents(state, i, &mut work);
        }
        // A task that came back may still have another failed dependency; a task
        // approved at its spawn is blocked, and its dependencies decide.
        if matches!(event, Event::TaskRequeued { .. } | Event::TaskApproved { .. }) {
            work.push(i);
        }
    }
    // New tasks are settled like any blocked task: ready, skipped, or left waiting.
    if let Event::TasksSpawned { tasks, .. } | Event::TasksSubmitted { tasks, .. } = &event {
        work.extend(tasks.iter().rev().filter_map(|t| state.task_index(&t.id)));
    }
    out.push(event);
    // A guarded task the event queued (requeued, approved…) is inspected before it can
    // be dispatched; the walk below does the same for tasks it makes ready.
    if let Some(i) = touched {
        hold_if_flagged(state, i, ctx, out)?;
    }
    while let Some(i) = work.pop() {
        if hold_if_flagged(state, i, ctx, out)? {
            continue;
        }
        let Some(next) = settle(state, i) else {
            continue;
        };
        let before = state.standing(i);
        state.apply(&next, ctx.now_ms)?;
        out.push(next);
        if before != state.standing(i) {
            push_dependents(state, i, &mut work);
        }
        if matches!(state.tasks[i].state, TaskState::Blocked) {
            work.push(i);
        }
        if matches!(state.tasks[i].state, TaskState::Queued) {
            // Just made ready: the guard looks at it on the next turn.
            work.push(i);
        }
    }
    Ok(())
}

/// Holds task `i` (`task_held`, applied and recorded) when the input guard flags it;
/// true when it did. A held task leaves the queue, which changes no dependent.
fn hold_if_flagged(state: &mut RunState, i: usize, ctx: StepContext, out: &mut Vec<Event>) -> Result<bool, ApplyError> {
    let Some(held) = hold::check(state, i) else {
        return Ok(false);
    };
    state.apply(&held, ctx.now_ms)?;
    out.push(held);
    Ok(true)
}

/// Queues task `i`'s dependents for settling, in workflow order.
fn push_dependents(state: &mut RunState, i: usize, work: &mut Vec<usize>) {
    state.dependency_visits += state.dependents[i].len() as u64;
    work.extend(state.dependents[i].iter().rev());
}

/// What a task should do given its dependencies' standing, if anything: O(1) from the
/// counts, except the one scan that names the dependency a skip is blamed on.
fn settle(state: &mut RunState, i: usize) -> Option<Event> {
    let id = || state.task_id(i).to_string();
    match &state.tasks[i].state {
        TaskState::Blocked if state.failed_dependencies(i) > 0 => {
            // The first failed dependency in workflow order, as the skip's reason.
            let deps = &state.dependencies[i];
            let k = deps.iter().position(|&d| state.standing(d) == Standing::Failed)?;
            let event = Event::TaskSkipped { task: id(), because: state.task_id(deps[k]).to_string() };
            state.dependency_visits += k as u64 + 1;
            Some(event)
        }
        TaskState::Blocked if state.unsatisfied_dependencies(i) == 0 => Some(Event::TaskReady { task: id() }),
        TaskState::Skipped { because } => {
            let cause = state.task_index(because)?;
            let cause_is_back = !matches!(
                state.tasks[cause].state.name(),
                TaskStateName::DeadLettered | TaskStateName::Cancelled | TaskStateName::Skipped
            );
            cause_is_back.then(|| Event::TaskRevived { task: id(), because: because.clone() })
        }
        _ => None,
    }
}
