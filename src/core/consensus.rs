//! Consensus (DESIGN §10): one task answered by several replicas at once, their
//! answers compared and settled by a pure tally.
//!
//! This module owns everything about consensus that needs no process, clock or file:
//! the workflow's `consensus = {…}` as a checked value ([`ConsensusSpec`]), which pool
//! each replica runs on, the canonical form answers are compared by ([`canonical`]),
//! the tally ([`tally`]), the judge protocol ([`judge_input`], [`judge_pick`]) and the
//! paths where candidates differ ([`disagreement`]), and one attempt's votes as the
//! run's state keeps them ([`Round`]). The engine runs the replicas,
//! records each result as a `vote_cast`, and calls [`tally`] after each one.

mod ballot;
mod canonical;
pub mod diff;
mod judge;
mod round;
mod tally;

use serde::{Deserialize, Serialize};

pub use ballot::{Ballot, CastVote};
pub use canonical::{canonical, digest, same};
pub use diff::{differences, disagreement, DiffRow, Differences, MAX_DIFF_ROWS};
pub use judge::{judge_input, judge_pick};
pub use round::{Round, RoundError};
pub use tally::{candidates, default_quorum, judged, tally, Candidate, Decision, Strategy, Vote};

/// Most replicas one task may run at once.
pub const MAX_REPLICAS: u32 = 16;

/// A task's `consensus = { replicas, strategy, quorum, key, pools, judge }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusSpec {
    /// How many replicas run at once (2 to [`MAX_REPLICAS`]).
    pub replicas: u32,
    /// How their answers are settled.
    pub strategy: Strategy,
    /// Equal votes needed; `None` = [`default_quorum`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// JSON Pointer of the part of the result that is compared; `None` = all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Pools the replicas are spread over, in turn (replica `r` on `pools[r % len]`);
    /// empty = the task's own placement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// The judge pool (strategy `judge` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
}

/// A `consensus` entry that cannot run, in words for the workflow check (which adds
/// the file position, and checks that the named pools exist).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `replicas` out of range.
    #[error("`replicas` must be 2 to {MAX_REPLICAS}, not {0}")]
    Replicas(u32),
    /// `quorum` out of range for the strategy.
    #[error("`quorum` must be {low} to {replicas} for {replicas} replicas with this strategy, not {quorum}{why}")]
    Quorum {
        /// Given quorum.
        quorum: u32,
        /// Replicas.
        replicas: u32,
        /// Smallest allowed.
        low: u32,
        /// Why the bound, when it is not obvious.
        why: &'static str,
    },
    /// `key` is not a JSON Pointer.
    #[error("`key` must be a JSON Pointer such as \"/answer\" (`/` before each part, `~0` for `~`, `~1` for `/`), not {0:?}")]
    Key(String),
    /// Strategy `judge` without a `judge` pool.
    #[error("strategy \"judge\" needs a `judge` pool to send the candidates to")]
    NoJudge,
    /// A `judge` pool with another strategy.
    #[error("`judge` is only used with strategy \"judge\"")]
    JudgeUnused,
}

impl ConsensusSpec {
    /// The quorum in force.
    pub fn quorum(&self) -> u32 {
        self.quorum.unwrap_or_else(|| default_quorum(self.replicas, self.strategy))
    }

    /// Checks everything that needs no other part of the workflow.
    pub fn check(&self) -> Result<(), SpecError> {
        if !(2..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(SpecError::Replicas(self.replicas));
        }
        let (low, why) = match self.strategy {
            Strategy::Unanimous => (1, ""),
            // Two answers could each reach a quorum of half or fewer, and the first to
            // get there would be stopped short of a fair count.
            Strategy::Majority | Strategy::Judge => {
                (self.replicas / 2 + 1, " (a quorum of half or fewer could be reached by two answers)")
            }
        };
        let quorum = self.quorum();
        if quorum < low || quorum > self.replicas {
            return Err(SpecError::Quorum { quorum, replicas: self.replicas, low, why });
        }
        if let Some(key) = &self.key {
            if !is_pointer(key) {
                return Err(SpecError::Key(key.clone()));
            }
        }
        match (self.strategy, &self.judge) {
            (Strategy::Judge, None) => Err(SpecError::NoJudge),
            (Strategy::Majority | Strategy::Unanimous, Some(_)) => Err(SpecError::JudgeUnused),
            _ => Ok(()),
        }
    }

    /// The pool replica `replica` runs on, when `pools` lists some; `None` = the
    /// task's own placement.
    pub fn replica_pool(&self, replica: u32) -> Option<&str> {
        if self.pools.is_empty() {
            return None;
        }
        self.pools.get(replica as usize % self.pools.len()).map(String::as_str)
    }
}

/// The base of a replica's output file names: `TASK.ATTEMPT.rR` (then `.stdout`,
/// `.stderr`), beside the plain `TASK.ATTEMPT` of a task without replicas.
pub fn replica_file_base(task_file: &str, attempt: u32, replica: u32) -> String {
    format!("{task_file}.{attempt}.r{replica}")
}

/// RFC 6901: empty, or `/`-separated tokens where `~` is followed by `0` or `1`.
fn is_pointer(key: &str) -> bool {
    if key.is_empty() {
        return true;
    }
    key.starts_with('/') && key.split('~').skip(1).all(|after| after.starts_with('0') || after.starts_with('1'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: u32, strategy: Strategy) -> ConsensusSpec {
        ConsensusSpec { replicas, strategy, quorum: None, key: None, pools: Vec::new(), judge: None }
    }

    #[test]
    fn a_good_spec_passes_and_reads_from_its_json() {
        let s: ConsensusSpec =
            serde_json::from_str(r#"{"replicas":3,"strategy":"judge","key":"/answer","judge":"judges"}"#).unwrap();
        assert_eq!(s.check(), Ok(()));
        assert_eq!(s.quorum(), 2);
        assert_eq!(spec(4, Strategy::Unanimous).quorum(), 4);
        assert_eq!(spec(3, Strategy::Majority).check(), Ok(()));
    }

    #[test]
    fn bad_specs_are_refused_in_words() {
        assert_eq!(spec(1, Strategy::Majority).check().unwrap_err().to_string(), "`replicas` must be 2 to 16, not 1");
        assert_eq!(spec(17, Strategy::Majority).check(), Err(SpecError::Replicas(17)));
        let low = ConsensusSpec { quorum: Some(2), ..spec(4, Strategy::Majority) };
        assert_eq!(
            low.check().unwrap_err().to_string(),
            "`quorum` must be 3 to 4 for 4 replicas with this strategy, not 2 (a quorum of half or fewer could be reached by two answers)"
        );
        assert!(ConsensusSpec { quorum: Some(5), ..spec(4, Strategy::Unanimous) }.check().is_err());
        assert_eq!(ConsensusSpec { quorum: Some(1), ..spec(4, Strategy::Unanimous) }.check(), Ok(()));
        for bad in ["answer", "/a~2", "/a~"] {
            let s = ConsensusSpec { key: Some(bad.into()), ..spec(3, Strategy::Majority) };
            assert_eq!(s.check(), Err(SpecError::Key(bad.into())), "{bad}");
        }
        assert_eq!(spec(3, Strategy::Judge).check(), Err(SpecError::NoJudge));
        let unused = ConsensusSpec { judge: Some("j".into()), ..spec(3, Strategy::Majority) };
        assert_eq!(unused.check(), Err(SpecError::JudgeUnused));
    }

    #[test]
    fn replicas_take_the_listed_pools_in_turn() {
        let s = ConsensusSpec { pools: vec!["a".into(), "b".into()], ..spec(3, Strategy::Majority) };
        assert_eq!([0, 1, 2].map(|r| s.replica_pool(r)), [Some("a"), Some("b"), Some("a")]);
        assert_eq!(spec(3, Strategy::Majority).replica_pool(1), None);
        assert_eq!(replica_file_base("draft", 2, 1), "draft.2.r1");
    }
}
