//! Property tests of the consensus tally (DESIGN §10): random replica counts, quorums,
//! strategies and votes (some replicas abstaining, some not voted yet), checked for the
//! promises the engine relies on when it stops the losing replicas:
//!
//! - the tally is a function of the *set* of votes: any order of arrival decides the same;
//! - a quorum is never declared with fewer equal, non-abstaining votes than `quorum`;
//! - once decided, a decision stands whatever the remaining replicas answer, so stopping
//!   them never loses the winner (and an early failure stays a failure);
//! - abstentions never count as votes;
//! - the judge is asked only once every replica is in, with every distinct answer.

use std::collections::BTreeSet;

use pitboss::core::consensus::{
    canonical, default_quorum, differences, digest, same, tally, Decision, Strategy as Kind, Vote,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The answers replicas choose from: `1` and `1.0` are the same answer once canonical,
/// and so are the two key orders of the last pair.
fn answer(i: u8) -> Option<Value> {
    match i {
        0 => Some(json!({"a": 1})),
        1 => Some(json!({"a": 1.0})),
        2 => Some(json!({"a": 2})),
        3 => Some(json!({"a": 3, "b": [1, 2]})),
        4 => serde_json::from_str(r#"{"b":[1,2],"a":3}"#).ok(),
        5 => Some(json!("text")),
        // A failed replica: abstains.
        _ => None,
    }
}

fn vote(replica: u32, choice: u8) -> Vote {
    Vote::new(replica, format!("w{replica}"), answer(choice), None)
}

/// A consensus set-up and the full list of votes (one per replica, in arrival order).
#[derive(Debug, Clone)]
struct Case {
    replicas: u32,
    quorum: u32,
    strategy: Kind,
    votes: Vec<Vote>,
}

fn case() -> impl Strategy<Value = Case> {
    case_of(0u8..3)
}

/// A case whose strategy is one of `kinds` (0 majority, 1 unanimous, 2 judge).
fn case_of(kinds: std::ops::Range<u8>) -> impl Strategy<Value = Case> {
    (1u32..=7, kinds)
        .prop_flat_map(|(n, s)| {
            let strategy = [Kind::Majority, Kind::Unanimous, Kind::Judge][s as usize];
            // Majority and judge need a strict majority (two answers can never both win);
            // unanimous takes any number of required voters.
            let low = if strategy == Kind::Unanimous { 1 } else { n / 2 + 1 };
            let choices = proptest::collection::vec(0u8..8, n as usize);
            (Just(n), Just(strategy), low..=n, choices)
        })
        .prop_flat_map(|(n, strategy, quorum, choices)| {
            let votes: Vec<Vote> = choices.iter().enumerate().map(|(r, &c)| vote(r as u32, c)).collect();
            (Just(votes).prop_shuffle(), Just((n, strategy, quorum)))
        })
        .prop_map(|(votes, (replicas, strategy, quorum))| Case { replicas, quorum, strategy, votes })
}

/// The decision's kind and answer, without the replica chosen to represent it.
fn kind(d: &Decision) -> String {
    match d {
        Decision::Reached { digest, .. } => format!("reached {digest}"),
        Decision::Pending => "pending".into(),
        Decision::NeedJudge { .. } => "judge".into(),
        Decision::Failed { .. } => "failed".into(),
    }
}

fn canonical_of(votes: &[Vote], replica: u32) -> Option<String> {
    votes.iter().find(|v| v.replica == replica).and_then(|v| v.canonical.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_tally_does_not_depend_on_the_order_votes_arrive(c in case(), cut in 0usize..8, seed in any::<u64>()) {
        let cut = cut.min(c.votes.len());
        let some = &c.votes[..cut];
        let mut other = some.to_vec();
        // A second order: rotate and reverse by the seed.
        if !other.is_empty() {
            let k = (seed as usize) % other.len();
            other.rotate_left(k);
            if seed % 2 == 0 { other.reverse(); }
        }
        prop_assert_eq!(
            tally(some, c.replicas, c.quorum, c.strategy),
            tally(&other, c.replicas, c.quorum, c.strategy)
        );
    }

    #[test]
    fn a_quorum_is_never_declared_with_fewer_equal_votes(c in case(), cut in 0usize..8) {
        let some = &c.votes[..cut.min(c.votes.len())];
        if let Decision::Reached { winner_replica, digest: d, votes, dissenters, .. } =
            tally(some, c.replicas, c.quorum, c.strategy)
        {
            prop_assert!(votes.len() as u32 >= c.quorum, "{} votes, quorum {}", votes.len(), c.quorum);
            let win = canonical_of(some, winner_replica);
            prop_assert!(win.is_some(), "the winner abstained");
            let win = win.unwrap();
            prop_assert_eq!(digest(&win), d);
            prop_assert!(votes.contains(&winner_replica));
            for r in &votes {
                prop_assert_eq!(canonical_of(some, *r), Some(win.clone()), "replica {} counted for the winner", r);
            }
            for r in &dissenters {
                let theirs = canonical_of(some, *r);
                prop_assert!(theirs.is_some() && theirs.as_ref() != Some(&win), "replica {} is no dissenter", r);
            }
            if c.strategy == Kind::Unanimous {
                prop_assert!(dissenters.is_empty());
            }
        }
    }

    #[test]
    fn a_decision_stands_whatever_the_remaining_replicas_answer(c in case(), later in proptest::collection::vec(0u8..8, 7)) {
        // Walk the arrival order; at the first decision, replace everything after it
        // by other answers (or by nothing: the losers were stopped).
        for k in 0..=c.votes.len() {
            let first = tally(&c.votes[..k], c.replicas, c.quorum, c.strategy);
            if matches!(first, Decision::Pending) {
                continue;
            }
            let mut more = c.votes[..k].to_vec();
            for (j, v) in c.votes[k..].iter().enumerate() {
                more.push(vote(v.replica, later[j]));
                let after = tally(&more, c.replicas, c.quorum, c.strategy);
                prop_assert_eq!(kind(&after), kind(&first), "after {} more votes", j + 1);
            }
            break;
        }
    }

    #[test]
    fn abstentions_never_count_as_votes(c in case()) {
        let abstainers: BTreeSet<u32> =
            c.votes.iter().filter(|v| v.canonical.is_none()).map(|v| v.replica).collect();
        let answered: Vec<Vote> = c.votes.iter().filter(|v| v.canonical.is_some()).cloned().collect();
        let full = tally(&c.votes, c.replicas, c.quorum, c.strategy);
        match &full {
            Decision::Reached { votes, dissenters, abstained, .. } => {
                prop_assert!(votes.iter().chain(dissenters).all(|r| !abstainers.contains(r)));
                prop_assert_eq!(abstained.iter().copied().collect::<BTreeSet<u32>>(), abstainers.clone());
            }
            Decision::NeedJudge { candidates, .. } => {
                let voters: BTreeSet<u32> = candidates.iter().flat_map(|c| c.voters.iter().copied()).collect();
                prop_assert!(voters.is_disjoint(&abstainers));
            }
            _ => {}
        }
        // For majority, abstentions can only take a quorum out of reach, never give one.
        if c.strategy == Kind::Majority {
            let without = tally(&answered, c.replicas, c.quorum, c.strategy);
            prop_assert_eq!(matches!(full, Decision::Reached { .. }), matches!(without, Decision::Reached { .. }));
        }
    }

    #[test]
    fn the_judge_is_asked_once_all_are_in_with_every_distinct_answer(c in case_of(2..3)) {
        for k in 0..=c.votes.len() {
            let some = &c.votes[..k];
            if let Decision::NeedJudge { candidates, .. } = tally(some, c.replicas, c.quorum, c.strategy) {
                prop_assert_eq!(k as u32, c.replicas, "judge asked before every replica voted");
                let answers: BTreeSet<String> = some.iter().filter_map(|v| v.canonical.clone()).collect();
                prop_assert_eq!(candidates.len(), answers.len());
                prop_assert!(candidates.len() >= 2);
                let digests: BTreeSet<String> = candidates.iter().map(|c| c.digest.clone()).collect();
                prop_assert_eq!(digests.len(), candidates.len());
                for cand in &candidates {
                    prop_assert!((cand.voters.len() as u32) < c.quorum);
                }
            }
        }
    }

    #[test]
    fn canonical_form_ignores_key_order_spacing_and_number_spelling(
        pairs in proptest::collection::btree_map("[a-c]{1,2}", -3i64..3, 0..5),
        as_float in any::<bool>(),
    ) {
        let forward: Vec<String> = pairs
            .iter()
            .map(|(k, v)| if as_float { format!("\"{k}\": {v}.0") } else { format!("\"{k}\":{v}") })
            .collect();
        let backward: Vec<String> = pairs.iter().rev().map(|(k, v)| format!("\"{k}\" : {v}")).collect();
        let a: Value = serde_json::from_str(&format!("{{{}}}", forward.join(", "))).unwrap();
        let b: Value = serde_json::from_str(&format!("{{ {} }}", backward.join(" ,\n"))).unwrap();
        let ca = canonical(&a, None).unwrap();
        prop_assert_eq!(Some(ca.clone()), canonical(&b, None));
        // The canonical text is itself canonical, and has no whitespace.
        let again: Value = serde_json::from_str(&ca).unwrap();
        prop_assert_eq!(canonical(&again, None), Some(ca.clone()));
        prop_assert!(!ca.contains(' ') && !ca.contains('\n'));
    }
}

/// Small random JSON documents that often share parts (few keys, small numbers).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(|n| json!(n)),
        (-2i64..3).prop_map(|n| json!(n as f64)),
        "[ab/~]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[ab/~]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn disagreement_rows_are_exactly_where_candidates_differ(cands in proptest::collection::vec(json_value(), 1..4)) {
        let d = differences(&cands, usize::MAX);
        prop_assert_eq!(d.omitted, 0);
        let all_same = cands.iter().all(|c| same(c, &cands[0]));
        prop_assert_eq!(d.rows.is_empty(), all_same, "rows {:?}", d.rows);
        for row in &d.rows {
            prop_assert_eq!(row.values.len(), cands.len());
            // Each value is what the candidate holds at that pointer (None = nothing).
            for (c, v) in cands.iter().zip(&row.values) {
                prop_assert_eq!(c.pointer(&row.path), v.as_ref(), "at {:?}", row.path);
            }
            // And they really differ there.
            let first = &row.values[0];
            prop_assert!(row.values.iter().any(|v| match (first, v) {
                (Some(a), Some(b)) => !same(a, b),
                (None, None) => false,
                _ => true,
            }), "row {:?} shows no difference", row);
        }
        // No row is inside another (a path is reported once, at its top).
        for a in &d.rows {
            let below = a.path.clone() + "/";
            for b in &d.rows {
                prop_assert!(a.path == b.path || !b.path.starts_with(&below), "{:?} inside {:?}", b.path, a.path);
            }
        }
    }
}

#[test]
fn default_quorum_is_a_strict_majority_and_all_for_unanimous() {
    assert_eq!(default_quorum(3, Kind::Majority), 2);
    assert_eq!(default_quorum(4, Kind::Majority), 3);
    assert_eq!(default_quorum(5, Kind::Judge), 3);
    assert_eq!(default_quorum(3, Kind::Unanimous), 3);
}
