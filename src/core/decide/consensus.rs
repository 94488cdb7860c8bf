//! Decisions for a consensus attempt (DESIGN §10): a replica's end becomes a
//! `vote_cast`, and the tally after it decides. Reached: `consensus_reached`, then
//! the ordinary success of the attempt with the winner's result (so whatever follows
//! a success, follows it here too). Failed: `consensus_failed`, then the ordinary
//! failed attempt (retry or dead letter); when every vote is a replica that could
//! not start (a permanent spawn error), the attempt fails with that error's class,
//! so it is dead-lettered at once as a plain attempt would be. Judge needed: nothing yet; the engine runs
//! the judge, whose end is read here with `judge_pick`. Late or repeated words from a
//! replica of an attempt that is no longer running are ignored, never charged.

use serde_json::Value;

use super::{apply_and_cascade, breaker_after, ended, failed, running, Input, Outcome, StepContext};
use crate::core::consensus::{digest, judge_pick, judged, Decision, Round};
use crate::core::event::{Event, FailureClass, SmallOutput};
use crate::core::state::{ApplyError, RunState};
use crate::core::task::TaskState;

/// Handles the inputs of consensus attempts; `None` for any other input.
pub(super) fn step(state: &mut RunState, input: &Input, ctx: StepContext) -> Option<Result<Vec<Event>, ApplyError>> {
    match input {
        Input::ReplicaFinished { task, attempt, replica, pool, outcome } => {
            Some(replica_ended(state, task, *attempt, *replica, pool, outcome, ctx))
        }
        Input::JudgeFinished { task, attempt, outcome } => Some(judge_ended(state, task, *attempt, outcome, ctx)),
        _ => None,
    }
}

/// The running attempt's round as it stands (a fresh one before the first vote).
fn round_of(state: &RunState, i: usize) -> Option<Round> {
    let spec = state.workflow.tasks[i].consensus.as_ref()?;
    match &state.tasks[i].state {
        TaskState::Running { round, .. } => Some(round.as_deref().cloned().unwrap_or_else(|| Round::new(spec))),
        _ => None,
    }
}

fn replica_ended(
    state: &mut RunState,
    task: &str,
    attempt: u32,
    replica: u32,
    pool: &str,
    outcome: &Outcome,
    ctx: StepContext,
) -> Result<Vec<Event>, ApplyError> {
    let mut out = Vec::new();
    let Some(i) = running(state, task, attempt) else { return Ok(out) };
    let Some(mut round) = round_of(state, i) else { return Ok(out) };
    let (result, error, class) = match outcome {
        Outcome::Success { result, .. } => (Some(result.clone()), None, None),
        Outcome::Failure { class, error, .. } => (None, Some(error.clone()), Some(*class)),
    };
    // A second word from one replica (the engine never sends one) changes nothing.
    let Ok(decision) = round.cast(replica, pool, result.clone()) else { return Ok(out) };
    let digest = round.votes.last().and_then(|v| v.canonical.as_deref()).map(digest);
    let vote = Event::VoteCast {
        task: task.to_string(),
        attempt,
        replica,
        worker: pool.to_string(),
        result,
        digest,
        error,
        class,
    };
    apply_and_cascade(state, vote, ctx, &mut out)?;
    // The replica's pool hears how it went, as after any attempt.
    if let Some(p) = state.workflow.pool_index(pool) {
        if let Some(event) = breaker_after(state, p, class.map(FailureClass::counts_against_pool), ctx) {
            apply_and_cascade(state, event, ctx, &mut out)?;
        }
    }
    settle(state, i, attempt, &round, decision, None, ctx, &mut out)?;
    Ok(out)
}

fn judge_ended(
    state: &mut RunState,
    task: &str,
    attempt: u32,
    outcome: &Outcome,
    ctx: StepContext,
) -> Result<Vec<Event>, ApplyError> {
    let mut out = Vec::new();
    let Some(i) = running(state, task, attempt) else { return Ok(out) };
    let Some(round) = round_of(state, i) else { return Ok(out) };
    let Decision::NeedJudge { candidates, abstained } = round.decision() else { return Ok(out) };
    let picked = match outcome {
        Outcome::Success { result, .. } => judge_pick(result, candidates.len()),
        Outcome::Failure { error, .. } => Err(format!("the judge failed: {error}")),
    };
    let (decision, reason) = match picked {
        Ok((pick, reason)) => {
            (judged(&candidates, &abstained, pick), Some(reason.unwrap_or_else(|| "no reason given".to_string())))
        }
        Err(why) => (Decision::Failed { reason: format!("no consensus (no usable pick from the judge): {why}") }, None),
    };
    settle(state, i, attempt, &round, decision, reason, ctx, &mut out)?;
    Ok(out)
}

/// What a decision makes of the attempt: nothing while pending or judging; else
/// `consensus_reached` + the attempt's success, or `consensus_failed` + its failure.
#[allow(clippy::too_many_arguments)]
fn settle(
    state: &mut RunState,
    i: usize,
    attempt: u32,
    round: &Round,
    decision: Decision,
    judge: Option<String>,
    ctx: StepContext,
    out: &mut Vec<Event>,
) -> Result<(), ApplyError> {
    let task = state.task_id(i).to_string();
    let duration_ms = match &state.tasks[i].state {
        TaskState::Running { started_ms, .. } => ctx.now_ms.saturating_sub(*started_ms),
        _ => 0,
    };
    match decision {
        Decision::Pending | Decision::NeedJudge { .. } => Ok(()),
        Decision::Reached { winner_replica, digest, votes, dissenters, abstained } => {
            let result = round
                .votes
                .iter()
                .find(|v| v.replica == winner_replica)
                .and_then(|v| v.result.clone())
                .unwrap_or(Value::Null);
            let reached = Event::ConsensusReached {
                task: task.clone(),
                attempt,
                winner: winner_replica,
                digest,
                votes,
                dissenters,
                abstained,
                judge,
            };
            apply_and_cascade(state, reached, ctx, out)?;
            let success = Outcome::Success { result, exit_code: None, duration_ms, output: SmallOutput::default() };
            let event = ended(state, i, task, attempt, success, ctx);
            apply_and_cascade(state, event, ctx, out)
        }
        Decision::Failed { reason } => {
            let (class, error) = match cannot_start(state, i, round) {
                Some(spawn_error) => (FailureClass::SpawnPermanent, format!("no replica could start: {spawn_error}")),
                None => (FailureClass::NoConsensus, reason.clone()),
            };
            let failed_event = Event::ConsensusFailed { task, attempt, reason };
            apply_and_cascade(state, failed_event, ctx, out)?;
            let failure = Outcome::Failure {
                class,
                error,
                exit_code: None,
                signal: None,
                duration_ms,
                output: SmallOutput::default(),
            };
            let event = failed(state, i, attempt, failure, ctx);
            apply_and_cascade(state, event, ctx, out)
        }
    }
}

/// The spawn error, when every vote of the failed round is a replica that could not
/// start: the same permanent error that dead-letters a plain attempt at once, so
/// the attempt fails with it instead of as "no consensus" (which would be retried,
/// to fail the same way).
fn cannot_start(state: &RunState, i: usize, round: &Round) -> Option<String> {
    let errors = &state.seats.get(&i)?.cannot_start;
    (!round.votes.is_empty() && errors.len() == round.votes.len()).then(|| errors[0].clone())
}
