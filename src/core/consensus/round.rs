//! One consensus attempt as the run's state keeps it: the set-up, the votes cast so
//! far, and what they decide. The engine's fold holds one per consensus task in
//! `running`, casts each `vote_cast` into it, and stops the [`Round::outstanding`]
//! replicas once the decision is no longer `Pending`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tally::{tally, Decision, Strategy, Vote};
use super::ConsensusSpec;

/// A vote the round cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundError {
    /// The replica already voted in this attempt (a log with this is damaged).
    #[error("replica {0} already voted in this attempt")]
    AlreadyVoted(u32),
    /// No such replica.
    #[error("there is no replica {replica}: this task runs replicas 0 to {}", replicas.saturating_sub(1))]
    NoSuchReplica {
        /// The replica named.
        replica: u32,
        /// Replicas the task runs.
        replicas: u32,
    },
}

/// One attempt's replicas and votes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// Replicas run.
    pub replicas: u32,
    /// Equal votes needed.
    pub quorum: u32,
    /// How answers are settled.
    pub strategy: Strategy,
    /// The JSON Pointer compared, if any.
    pub key: Option<String>,
    /// Votes in the order they were cast.
    pub votes: Vec<Vote>,
}

impl Round {
    /// A round with no votes yet.
    pub fn new(spec: &ConsensusSpec) -> Round {
        Round {
            replicas: spec.replicas,
            quorum: spec.quorum(),
            strategy: spec.strategy,
            key: spec.key.clone(),
            votes: Vec::new(),
        }
    }

    /// Records `replica`'s result (`None`: it failed, and abstains) and returns what
    /// the votes now decide.
    pub fn cast(&mut self, replica: u32, worker: &str, result: Option<Value>) -> Result<Decision, RoundError> {
        if replica >= self.replicas {
            return Err(RoundError::NoSuchReplica { replica, replicas: self.replicas });
        }
        if self.votes.iter().any(|v| v.replica == replica) {
            return Err(RoundError::AlreadyVoted(replica));
        }
        self.votes.push(Vote::new(replica, worker, result, self.key.as_deref()));
        Ok(self.decision())
    }

    /// What the votes so far decide.
    pub fn decision(&self) -> Decision {
        tally(&self.votes, self.replicas, self.quorum, self.strategy)
    }

    /// Replicas that have not voted: still running, and to be stopped once the
    /// decision is no longer `Pending`.
    pub fn outstanding(&self) -> Vec<u32> {
        (0..self.replicas).filter(|r| !self.votes.iter().any(|v| v.replica == *r)).collect()
    }

    /// The result the task completes with when `decision` is reached: the winning
    /// replica's whole result.
    pub fn result_of(&self, decision: &Decision) -> Option<&Value> {
        let Decision::Reached { winner_replica, .. } = decision else { return None };
        self.votes.iter().find(|v| v.replica == *winner_replica)?.result.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(strategy: Strategy) -> ConsensusSpec {
        ConsensusSpec { replicas: 3, strategy, quorum: None, key: Some("/a".into()), pools: vec![], judge: None }
    }

    #[test]
    fn votes_decide_and_name_the_replicas_to_stop() {
        let mut round = Round::new(&spec(Strategy::Majority));
        assert_eq!(round.outstanding(), [0, 1, 2]);
        assert_eq!(round.cast(2, "w2", Some(json!({"a": 1, "why": "two"}))), Ok(Decision::Pending));
        let d = round.cast(0, "w0", Some(json!({"a": 1.0, "why": "zero"}))).unwrap();
        assert!(matches!(&d, Decision::Reached { winner_replica: 0, votes, .. } if votes == &[0, 2]), "{d:?}");
        assert_eq!(round.outstanding(), [1]);
        assert_eq!(round.result_of(&d), Some(&json!({"a": 1.0, "why": "zero"})));
        assert_eq!(round.result_of(&Decision::Pending), None);
    }

    #[test]
    fn a_second_vote_or_an_unknown_replica_is_refused() {
        let mut round = Round::new(&spec(Strategy::Unanimous));
        round.cast(1, "w", None).unwrap();
        assert_eq!(round.cast(1, "w", Some(json!({"a": 1}))), Err(RoundError::AlreadyVoted(1)));
        let err = round.cast(3, "w", None).unwrap_err();
        assert_eq!(err.to_string(), "there is no replica 3: this task runs replicas 0 to 2");
        // Unanimous of 3 with one abstention is out of reach at once.
        assert!(matches!(round.decision(), Decision::Failed { .. }));
    }
}
