//! The tally: replica votes in, a decision out. Pure and a function of the *set* of
//! votes (never of their order), so the live engine, a resumed run and a replay decide
//! alike, and the engine can run it after every `vote_cast` to stop the losers early.
//!
//! - Failed replicas, and replicas whose result has nothing at the `key`, abstain:
//!   they are counted as having answered (nothing more to wait for) but are never a
//!   vote for anything.
//! - Each replica counts once. Votes of replicas outside `0..replicas` are ignored; if
//!   one replica appears twice (the engine never records that), the vote that sorts
//!   first (abstention first, then by canonical text, worker and result) is kept, so
//!   the result still does not depend on order.
//! - Answers are ranked by their number of votes, then by their lowest voting replica;
//!   an answer is represented by the result of its lowest voting replica (with a
//!   `key`, replicas may agree on the key and differ elsewhere).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical::{canonical, digest};
use crate::core::truncate::truncate_chars;

/// How replicas' answers are settled (DESIGN §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The first answer with `quorum` equal votes wins; the other replicas are stopped.
    Majority,
    /// Every replica that answers must agree, and at least `quorum` must answer.
    Unanimous,
    /// As `Majority`; without a quorum once all have voted, a judge picks among the
    /// distinct answers.
    Judge,
}

/// One replica's vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    /// Replica index, `0..replicas`.
    pub replica: u32,
    /// The worker (pool) that ran it, for display.
    pub worker: String,
    /// The replica's result; `None` when the replica failed (it abstains).
    pub result: Option<Value>,
    /// The canonical form compared by the tally; `None` = abstains (failed, or the
    /// result has nothing at the `key`).
    pub canonical: Option<String>,
}

impl Vote {
    /// A vote with its canonical form computed from `result` and `key`.
    pub fn new(replica: u32, worker: impl Into<String>, result: Option<Value>, key: Option<&str>) -> Vote {
        let canonical = result.as_ref().and_then(|r| canonical(r, key));
        Vote { replica, worker: worker.into(), result, canonical }
    }

    /// Whether this vote counts for nothing.
    pub fn abstains(&self) -> bool {
        self.canonical.is_none()
    }
}

/// One distinct answer, as sent to a judge and shown in the disagreement view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The answer's [`digest`].
    pub digest: String,
    /// The result of its lowest voting replica.
    pub value: Value,
    /// The replicas that gave it, ascending.
    pub voters: Vec<u32>,
}

/// What the votes so far decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// An answer has its quorum: it is the task's result, and no later vote can
    /// change that (the remaining replicas can be stopped).
    Reached {
        /// The replica whose result is the task's result (the lowest that gave it).
        winner_replica: u32,
        /// The winning answer's digest.
        digest: String,
        /// The replicas that gave the winning answer, ascending.
        votes: Vec<u32>,
        /// The replicas that gave another answer, ascending.
        dissenters: Vec<u32>,
        /// The replicas that abstained, ascending.
        abstained: Vec<u32>,
    },
    /// Not decided: replicas still running may decide it.
    Pending,
    /// Every replica is in, no answer has a quorum: a judge picks among these
    /// (ranked: most votes first, then lowest voter). Only with `Strategy::Judge`.
    NeedJudge {
        /// The distinct answers, at least two.
        candidates: Vec<Candidate>,
        /// The replicas that abstained, ascending.
        abstained: Vec<u32>,
    },
    /// No consensus is possible: a failed attempt. Decided as early as it is certain.
    Failed {
        /// `no consensus …` with the answers summarised (bounded).
        reason: String,
    },
}

impl Decision {
    /// One line for `inspect`, the detail screen and event descriptions.
    pub fn describe(&self) -> String {
        match self {
            Decision::Reached { winner_replica, digest, votes, dissenters, abstained } => {
                let mut line = format!(
                    "consensus reached: answer {digest} from {} (result of replica {winner_replica})",
                    replica_list(votes)
                );
                if !dissenters.is_empty() {
                    line += &format!("; dissent: {}", replica_list(dissenters));
                }
                if !abstained.is_empty() {
                    line += &format!("; abstained: {}", replica_list(abstained));
                }
                line
            }
            Decision::Pending => "waiting for more replicas to vote".to_string(),
            Decision::NeedJudge { candidates, .. } => {
                format!("no quorum: {} answers go to the judge", candidates.len())
            }
            Decision::Failed { reason } => reason.clone(),
        }
    }
}

/// `quorum` when the workflow gives none: a strict majority (⌊N/2⌋+1), or every
/// replica for `unanimous`.
pub fn default_quorum(replicas: u32, strategy: Strategy) -> u32 {
    match strategy {
        Strategy::Unanimous => replicas,
        Strategy::Majority | Strategy::Judge => replicas / 2 + 1,
    }
}

/// Decides what `votes` (any order; not every replica need have voted) mean for a
/// task run as `replicas` replicas needing `quorum` equal votes (0 is taken as 1).
///
/// With `quorum` at most half the replicas two answers could both reach it; the
/// ranking then picks one, but a later vote could outrank it, so the workflow check
/// refuses such quorums for `majority` and `judge` (see `ConsensusSpec::check`).
pub fn tally(votes: &[Vote], replicas: u32, quorum: u32, strategy: Strategy) -> Decision {
    let quorum = quorum.max(1);
    if quorum > replicas {
        return Decision::Failed {
            reason: format!("no consensus: quorum {quorum} needs more than the {replicas} replicas"),
        };
    }
    let count = Count::of(votes, replicas);
    let top = count.answers.first().map_or(0, |a| a.voters.len() as u32);
    match strategy {
        Strategy::Majority | Strategy::Judge => {
            if top >= quorum {
                return count.reached(0);
            }
            if top + count.pending >= quorum {
                return Decision::Pending;
            }
            if strategy == Strategy::Majority {
                return count.failed(&format!("quorum {quorum} of {replicas} out of reach"));
            }
            if count.pending > 0 {
                // The judge should see every answer: wait for the rest.
                Decision::Pending
            } else if count.answers.len() >= 2 {
                Decision::NeedJudge { candidates: count.candidates(), abstained: count.abstained.clone() }
            } else {
                count.failed(&format!("quorum {quorum} of {replicas} not reached and nothing to judge"))
            }
        }
        Strategy::Unanimous => {
            let may_answer = replicas - count.abstained.len() as u32;
            if count.answers.len() >= 2 {
                count.failed("unanimity required")
            } else if may_answer < quorum {
                count.failed(&format!("unanimity of at least {quorum} of {replicas} out of reach"))
            } else if count.pending > 0 {
                Decision::Pending
            } else {
                count.reached(0)
            }
        }
    }
}

/// The distinct answers among `votes` ranked as [`tally`] ranks them (most votes
/// first, then lowest voter), and the replicas that abstained: what the
/// disagreement view and `inspect` show, whatever was decided.
pub fn candidates(votes: &[Vote], replicas: u32) -> (Vec<Candidate>, Vec<u32>) {
    let count = Count::of(votes, replicas);
    (count.candidates(), count.abstained.clone())
}

/// The decision once a judge picked candidate `pick` of a `NeedJudge`.
pub fn judged(candidates: &[Candidate], abstained: &[u32], pick: usize) -> Decision {
    let Some(chosen) = candidates.get(pick) else {
        return Decision::Failed {
            reason: format!("no consensus: the judge picked {pick} of {} candidates", candidates.len()),
        };
    };
    let mut dissenters: Vec<u32> =
        candidates.iter().enumerate().filter(|(i, _)| *i != pick).flat_map(|(_, c)| c.voters.iter().copied()).collect();
    dissenters.sort_unstable();
    Decision::Reached {
        winner_replica: chosen.voters.first().copied().unwrap_or(0),
        digest: chosen.digest.clone(),
        votes: chosen.voters.clone(),
        dissenters,
        abstained: abstained.to_vec(),
    }
}

/// One distinct answer while counting.
struct Answer<'a> {
    canonical: &'a str,
    /// Ascending.
    voters: Vec<u32>,
    /// The lowest voter's vote (its result represents the answer).
    first: &'a Vote,
}

/// The votes sorted out: distinct answers ranked, abstentions, replicas not in yet.
struct Count<'a> {
    answers: Vec<Answer<'a>>,
    abstained: Vec<u32>,
    pending: u32,
    replicas: u32,
}

impl<'a> Count<'a> {
    fn of(votes: &'a [Vote], replicas: u32) -> Count<'a> {
        let mut by_replica: BTreeMap<u32, &Vote> = BTreeMap::new();
        for v in votes.iter().filter(|v| v.replica < replicas) {
            by_replica
                .entry(v.replica)
                .and_modify(|kept| {
                    if order_key(v) < order_key(kept) {
                        *kept = v;
                    }
                })
                .or_insert(v);
        }
        let mut abstained = Vec::new();
        let mut groups: BTreeMap<&str, Answer> = BTreeMap::new();
        for (&r, &v) in &by_replica {
            match v.canonical.as_deref() {
                None => abstained.push(r),
                Some(c) => {
                    groups.entry(c).or_insert(Answer { canonical: c, voters: Vec::new(), first: v }).voters.push(r)
                }
            }
        }
        let mut answers: Vec<Answer> = groups.into_values().collect();
        answers.sort_by_key(|a| (std::cmp::Reverse(a.voters.len()), a.voters[0]));
        let pending = replicas - by_replica.len() as u32;
        Count { answers, abstained, pending, replicas }
    }

    fn reached(&self, winner: usize) -> Decision {
        let a = &self.answers[winner];
        let mut dissenters: Vec<u32> = self
            .answers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != winner)
            .flat_map(|(_, a)| a.voters.iter().copied())
            .collect();
        dissenters.sort_unstable();
        Decision::Reached {
            winner_replica: a.voters[0],
            digest: digest(a.canonical),
            votes: a.voters.clone(),
            dissenters,
            abstained: self.abstained.clone(),
        }
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.answers
            .iter()
            .map(|a| Candidate {
                digest: digest(a.canonical),
                value: a.first.result.clone().unwrap_or(Value::Null),
                voters: a.voters.clone(),
            })
            .collect()
    }

    /// `no consensus (WHY): 2 answers — {"a":1} (replicas 0, 2), {"a":2} (replica 1);
    /// replica 3 abstained`, each answer cut to 60 characters, at most 4 answers.
    fn failed(&self, why: &str) -> Decision {
        const SHOWN: usize = 4;
        let n = self.answers.len();
        let mut reason = format!("no consensus ({why}): ");
        reason += &match n {
            0 => "no answers".to_string(),
            1 => "1 answer — ".to_string(),
            _ => format!("{n} answers — "),
        };
        let listed: Vec<String> = self
            .answers
            .iter()
            .take(SHOWN)
            .map(|a| format!("{} ({})", truncate_chars(a.canonical, 60), replica_list(&a.voters)))
            .collect();
        reason += &listed.join(", ");
        if n > SHOWN {
            reason += &format!(", and {} more", n - SHOWN);
        }
        if !self.abstained.is_empty() {
            reason += &format!("; {} abstained", replica_list(&self.abstained));
        }
        if self.pending > 0 {
            reason += &format!("; {} of {} not in yet", self.pending, self.replicas);
        }
        Decision::Failed { reason }
    }
}

/// The order that picks which of a replica's duplicate votes is kept.
fn order_key(v: &Vote) -> (Option<&str>, &str, String) {
    (v.canonical.as_deref(), v.worker.as_str(), v.result.as_ref().map(Value::to_string).unwrap_or_default())
}

/// `replica 1`, `replicas 0, 2`, or the first 8 and a count.
fn replica_list(replicas: &[u32]) -> String {
    const SHOWN: usize = 8;
    let shown: Vec<String> = replicas.iter().take(SHOWN).map(u32::to_string).collect();
    let word = if replicas.len() == 1 { "replica" } else { "replicas" };
    if replicas.len() > SHOWN {
        format!("{word} {}, … ({} in all)", shown.join(", "), replicas.len())
    } else {
        format!("{word} {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(replica: u32, result: Option<Value>) -> Vote {
        Vote::new(replica, format!("pool-{replica}"), result, None)
    }

    fn reached(d: &Decision) -> (u32, Vec<u32>, Vec<u32>, Vec<u32>) {
        match d {
            Decision::Reached { winner_replica, votes, dissenters, abstained, .. } => {
                (*winner_replica, votes.clone(), dissenters.clone(), abstained.clone())
            }
            other => panic!("not reached: {other:?}"),
        }
    }

    #[test]
    fn majority_wins_as_soon_as_two_of_three_agree() {
        let a = json!({"a": 1});
        let first = [v(2, Some(a.clone()))];
        assert_eq!(tally(&first, 3, 2, Strategy::Majority), Decision::Pending);
        let two = [v(2, Some(a.clone())), v(0, Some(json!({"a": 1.0})))];
        assert_eq!(reached(&tally(&two, 3, 2, Strategy::Majority)), (0, vec![0, 2], vec![], vec![]));
        let all = [v(2, Some(a)), v(0, Some(json!({"a": 1.0}))), v(1, Some(json!({"a": 2})))];
        assert_eq!(reached(&tally(&all, 3, 2, Strategy::Majority)), (0, vec![0, 2], vec![1], vec![]));
    }

    #[test]
    fn no_majority_fails_with_both_answers_summarised() {
        let votes = [v(0, Some(json!({"a": 1}))), v(1, Some(json!({"a": 2}))), v(2, Some(json!({"a": 1})))];
        // Quorum 3 of 3 with a dissent is out of reach at once.
        let d = tally(&votes[..2], 3, 3, Strategy::Majority);
        assert_eq!(
            d,
            Decision::Failed {
                reason: r#"no consensus (quorum 3 of 3 out of reach): 2 answers — {"a":1} (replica 0), {"a":2} (replica 1); 1 of 3 not in yet"#
                    .into()
            }
        );
        let d = tally(&votes, 3, 3, Strategy::Majority);
        assert_eq!(
            d,
            Decision::Failed {
                reason: r#"no consensus (quorum 3 of 3 out of reach): 2 answers — {"a":1} (replicas 0, 2), {"a":2} (replica 1)"#
                    .into()
            }
        );
    }

    #[test]
    fn failed_replicas_abstain_and_too_many_fail_early() {
        let votes = [v(0, None), v(1, None)];
        match tally(&votes, 3, 2, Strategy::Majority) {
            Decision::Failed { reason } => {
                assert_eq!(
                    reason,
                    "no consensus (quorum 2 of 3 out of reach): no answers; replicas 0, 1 abstained; 1 of 3 not in yet"
                )
            }
            other => panic!("{other:?}"),
        }
        let votes = [v(0, None), v(1, Some(json!(7))), v(2, Some(json!(7.0)))];
        assert_eq!(reached(&tally(&votes, 3, 2, Strategy::Majority)), (1, vec![1, 2], vec![], vec![0]));
    }

    #[test]
    fn a_missing_key_abstains() {
        let votes = [
            Vote::new(0, "w", Some(json!({"answer": 4, "why": "a"})), Some("/answer")),
            Vote::new(1, "w", Some(json!({"why": "forgot"})), Some("/answer")),
            Vote::new(2, "w", Some(json!({"answer": 4, "why": "b"})), Some("/answer")),
        ];
        assert!(votes[1].abstains());
        assert_eq!(reached(&tally(&votes, 3, 2, Strategy::Majority)), (0, vec![0, 2], vec![], vec![1]));
    }

    #[test]
    fn unanimous_waits_for_all_and_fails_on_the_first_dissent() {
        let same = [v(0, Some(json!("x"))), v(1, Some(json!("x")))];
        assert_eq!(tally(&same, 3, 3, Strategy::Unanimous), Decision::Pending);
        let all = [v(0, Some(json!("x"))), v(1, Some(json!("x"))), v(2, Some(json!("x")))];
        assert_eq!(reached(&tally(&all, 3, 3, Strategy::Unanimous)), (0, vec![0, 1, 2], vec![], vec![]));
        let dissent = [v(0, Some(json!("x"))), v(1, Some(json!("y")))];
        assert!(matches!(tally(&dissent, 3, 3, Strategy::Unanimous), Decision::Failed { .. }));
        // A quorum below N lets failed replicas abstain.
        let one_failed = [v(0, Some(json!("x"))), v(1, None), v(2, Some(json!("x")))];
        assert_eq!(reached(&tally(&one_failed, 3, 2, Strategy::Unanimous)), (0, vec![0, 2], vec![], vec![1]));
        assert!(matches!(tally(&one_failed, 3, 3, Strategy::Unanimous), Decision::Failed { .. }));
    }

    #[test]
    fn judge_is_needed_only_when_all_differ_and_its_pick_wins() {
        let votes = [v(0, Some(json!("x"))), v(1, Some(json!("y"))), v(2, Some(json!("z")))];
        assert_eq!(tally(&votes[..2], 3, 2, Strategy::Judge), Decision::Pending);
        let Decision::NeedJudge { candidates, abstained } = tally(&votes, 3, 2, Strategy::Judge) else {
            panic!("no judge")
        };
        assert_eq!(
            candidates.iter().map(|c| c.value.clone()).collect::<Vec<_>>(),
            [json!("x"), json!("y"), json!("z")]
        );
        assert!(abstained.is_empty());
        let d = judged(&candidates, &abstained, 2);
        assert_eq!(reached(&d), (2, vec![2], vec![0, 1], vec![]));
        assert!(matches!(judged(&candidates, &abstained, 3), Decision::Failed { .. }));
        // Two agreeing still win without a judge.
        let two = [v(0, Some(json!("x"))), v(1, Some(json!("x")))];
        assert_eq!(reached(&tally(&two, 3, 2, Strategy::Judge)).1, vec![0, 1]);
        // One answer and two failures: nothing to judge.
        let lone = [v(0, Some(json!("x"))), v(1, None), v(2, None)];
        assert!(matches!(tally(&lone, 3, 2, Strategy::Judge), Decision::Failed { .. }));
    }

    #[test]
    fn decisions_describe_themselves_in_one_line() {
        let votes = [v(0, Some(json!(1))), v(1, Some(json!(2))), v(2, Some(json!(1))), v(3, None)];
        let d = tally(&votes, 4, 3, Strategy::Majority);
        assert!(matches!(d, Decision::Failed { .. }));
        let d = tally(&votes[..3], 3, 2, Strategy::Majority);
        assert_eq!(
            d.describe(),
            format!(
                "consensus reached: answer {} from replicas 0, 2 (result of replica 0); dissent: replica 1",
                digest("1")
            )
        );
        let d = tally(&[v(0, Some(json!(1))), v(1, None), v(2, Some(json!(1)))], 3, 2, Strategy::Majority);
        assert!(d.describe().ends_with("; abstained: replica 1"), "{}", d.describe());
        assert_eq!(Decision::Pending.describe(), "waiting for more replicas to vote");
        let judge = tally(&[v(0, Some(json!(1))), v(1, Some(json!(2)))], 2, 2, Strategy::Judge);
        assert_eq!(judge.describe(), "no quorum: 2 answers go to the judge");
    }

    #[test]
    fn odd_inputs_decide_without_panicking() {
        assert!(matches!(tally(&[], 0, 0, Strategy::Majority), Decision::Failed { .. }));
        assert!(matches!(tally(&[], 2, 3, Strategy::Unanimous), Decision::Failed { .. }));
        // A replica out of range is ignored; a duplicate counts once.
        let votes = [v(5, Some(json!(1))), v(0, Some(json!(1))), v(0, Some(json!(1)))];
        assert_eq!(tally(&votes, 3, 2, Strategy::Majority), Decision::Pending);
    }

    #[test]
    fn a_long_disagreement_is_summarised_within_bounds() {
        let votes: Vec<Vote> = (0..20).map(|r| v(r, Some(json!({"text": "x".repeat(500), "n": r})))).collect();
        let Decision::Failed { reason } = tally(&votes, 20, 11, Strategy::Majority) else { panic!() };
        assert!(reason.chars().count() < 600, "{reason}");
        assert!(reason.contains("20 answers") && reason.contains("and 16 more"), "{reason}");
    }
}
