//! A consensus task's votes read back from its events, attempt by attempt: what
//! `inspect` and the TUI show. Pure: the events of one task in, [`Ballot`]s out. An
//! attempt run again after an interruption (same number) starts a new ballot, as the
//! run's state starts a new round.

use serde::Serialize;
use serde_json::Value;

use super::tally::{Candidate, Decision, Vote};
use crate::core::Event;

/// One replica's vote as the log recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CastVote {
    /// Replica index.
    pub replica: u32,
    /// The pool that ran it.
    pub worker: String,
    /// The compared answer's digest; none when it abstained.
    pub digest: Option<String>,
    /// Its result; none when it failed.
    pub result: Option<Value>,
    /// Whether it counted for nothing (failed, or nothing at the compared key).
    pub abstained: bool,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One consensus attempt: the votes in the order they were cast, and what settled it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ballot {
    /// Attempt number.
    pub attempt: u32,
    /// Votes, in the order cast.
    pub votes: Vec<CastVote>,
    /// `Reached` or `Failed` once decided; `None` while replicas still run (or the
    /// attempt was interrupted).
    pub outcome: Option<Decision>,
    /// The judge's reason, when a judge picked the winner.
    pub judge: Option<String>,
}

impl Ballot {
    /// Every consensus attempt among `events` (one task's, in log order), oldest first.
    pub fn read<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<Ballot> {
        let mut ballots: Vec<Ballot> = Vec::new();
        let mut open = false;
        for event in events {
            match event {
                Event::AttemptStarted { .. } => open = false,
                Event::VoteCast { attempt, replica, worker, result, digest, error, .. } => {
                    let ballot = current(&mut ballots, &mut open, *attempt);
                    ballot.votes.push(CastVote {
                        replica: *replica,
                        worker: worker.clone(),
                        digest: digest.clone(),
                        result: result.clone(),
                        abstained: digest.is_none(),
                        error: error.clone(),
                    });
                }
                Event::ConsensusReached { attempt, winner, digest, votes, dissenters, abstained, judge, .. } => {
                    let ballot = current(&mut ballots, &mut open, *attempt);
                    ballot.outcome = Some(Decision::Reached {
                        winner_replica: *winner,
                        digest: digest.clone(),
                        votes: votes.clone(),
                        dissenters: dissenters.clone(),
                        abstained: abstained.clone(),
                    });
                    ballot.judge = judge.clone();
                }
                Event::ConsensusFailed { attempt, reason, .. } => {
                    current(&mut ballots, &mut open, *attempt).outcome =
                        Some(Decision::Failed { reason: reason.clone() });
                }
                _ => {}
            }
        }
        ballots
    }

    /// The outcome in one line (`consensus reached: …`, `no consensus …`), or how
    /// many replicas have voted while it is open.
    pub fn outcome_line(&self, replicas: u32) -> String {
        match (&self.outcome, &self.judge) {
            (Some(d), Some(judge)) => format!("{}; picked by the judge: {judge}", d.describe()),
            (Some(d), None) => d.describe(),
            (None, _) => format!("{}/{replicas} replicas voted, no decision yet", self.votes.len()),
        }
    }

    /// The distinct answers (ranked as the tally ranks them) and the replicas that
    /// abstained, comparing at `key` as the task's consensus does.
    pub fn candidates(&self, replicas: u32, key: Option<&str>) -> (Vec<Candidate>, Vec<u32>) {
        let votes: Vec<Vote> =
            self.votes.iter().map(|v| Vote::new(v.replica, v.worker.clone(), v.result.clone(), key)).collect();
        super::tally::candidates(&votes, replicas)
    }
}

/// The ballot of `attempt` still open, or a new one.
fn current<'b>(ballots: &'b mut Vec<Ballot>, open: &mut bool, attempt: u32) -> &'b mut Ballot {
    let reuse = *open && ballots.last().is_some_and(|b| b.attempt == attempt);
    if !reuse {
        ballots.push(Ballot { attempt, votes: Vec::new(), outcome: None, judge: None });
        *open = true;
    }
    let last = ballots.len() - 1;
    &mut ballots[last]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vote(attempt: u32, replica: u32, result: Option<Value>) -> Event {
        Event::VoteCast {
            task: "q".into(),
            attempt,
            replica,
            worker: "w".into(),
            digest: result.as_ref().map(|_| format!("d{replica}")),
            result,
            error: None,
            class: None,
        }
    }

    #[test]
    fn attempts_are_read_apart_and_an_attempt_run_again_starts_afresh() {
        let started = |attempt| Event::AttemptStarted { task: "q".into(), attempt, pool: "w".into() };
        let events = [
            started(1),
            vote(1, 0, Some(json!(1))),
            started(1),
            vote(1, 0, Some(json!(2))),
            vote(1, 1, None),
            Event::ConsensusFailed { task: "q".into(), attempt: 1, reason: "no consensus".into() },
            started(2),
            vote(2, 2, Some(json!({"a": 1}))),
        ];
        let ballots = Ballot::read(&events);
        assert_eq!(ballots.len(), 3, "{ballots:#?}");
        assert_eq!(ballots[1].votes.len(), 2);
        assert!(ballots[1].votes[1].abstained);
        assert_eq!(ballots[1].outcome_line(3), "no consensus");
        assert_eq!(ballots[2].outcome_line(3), "1/3 replicas voted, no decision yet");
        let (candidates, abstained) = ballots[1].candidates(3, None);
        assert_eq!((candidates.len(), abstained), (1, vec![1]));
    }
}
