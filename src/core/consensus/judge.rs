//! The judge's side of the protocol (DESIGN §10): what a judge is sent
//! (`{"candidates":[…]}`, the distinct answers in the tally's rank order) and how its
//! answer (`{"pick": i, "reason": "…"}`, `i` counted from 0) is read.

use serde_json::{json, Value};

use super::tally::Candidate;
use crate::core::truncate::truncate_chars;

/// The fields a judge's stdin gets besides the task's own: `{"candidates": [result…]}`.
/// Only the results: who voted for what is left out so the judge weighs the answers,
/// not the crowd.
pub fn judge_input(candidates: &[Candidate]) -> Value {
    json!({ "candidates": candidates.iter().map(|c| c.value.clone()).collect::<Vec<Value>>() })
}

/// Reads a judge's answer: the picked index (checked against the number of
/// `candidates`) and its reason, if it gave one (a reason that is not text is kept as
/// its JSON). The error says what was wrong, in words fit for an `attempt_failed`.
pub fn judge_pick(answer: &Value, candidates: usize) -> Result<(usize, Option<String>), String> {
    const SHAPE: &str = r#"expected {"pick": i, "reason": "…"} with i counted from 0"#;
    let Some(fields) = answer.as_object() else {
        return Err(format!(
            "the judge's answer is not an object ({SHAPE}): {}",
            truncate_chars(&answer.to_string(), 80)
        ));
    };
    let Some(pick) = fields.get("pick") else {
        return Err(format!("the judge's answer has no \"pick\" ({SHAPE})"));
    };
    let index = match pick {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|x| x.fract() == 0.0 && *x >= 0.0).map(|x| x as u64))
        }
        _ => None,
    };
    let Some(index) = index else {
        return Err(format!(
            "the judge's \"pick\" is {}, not a candidate's number ({SHAPE})",
            truncate_chars(&pick.to_string(), 40)
        ));
    };
    if candidates == 0 {
        return Err("the judge picked a candidate, but there were none".to_string());
    }
    let index = usize::try_from(index).ok().filter(|i| *i < candidates).ok_or_else(|| {
        format!("the judge picked {index}, but there are only {candidates} candidates (0 to {})", candidates - 1)
    })?;
    let reason = match fields.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok((index, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_in_range_is_read_with_its_reason() {
        assert_eq!(
            judge_pick(&json!({"pick": 1, "reason": "cites sources"}), 3),
            Ok((1, Some("cites sources".into())))
        );
        assert_eq!(judge_pick(&json!({"pick": 0}), 1), Ok((0, None)));
        assert_eq!(judge_pick(&json!({"pick": 2.0, "reason": ["a"]}), 3), Ok((2, Some(r#"["a"]"#.into()))));
    }

    #[test]
    fn a_bad_pick_says_what_is_wrong() {
        let err = |v: Value, n| judge_pick(&v, n).unwrap_err();
        assert_eq!(err(json!({"pick": 3}), 3), "the judge picked 3, but there are only 3 candidates (0 to 2)");
        assert!(err(json!({"pick": -1}), 3).starts_with("the judge's \"pick\" is -1, not a candidate's number"));
        assert!(err(json!({"pick": "1"}), 3).starts_with("the judge's \"pick\" is \"1\""));
        assert!(err(json!({"pick": 1.5}), 3).contains("not a candidate's number"));
        assert!(err(json!({"choice": 1}), 3).starts_with("the judge's answer has no \"pick\""));
        assert!(err(json!([1]), 3).starts_with("the judge's answer is not an object"));
        assert_eq!(err(json!({"pick": 0}), 0), "the judge picked a candidate, but there were none");
        assert!(err(json!({"pick": u64::MAX}), 2).starts_with("the judge picked 18446744073709551615"));
    }

    #[test]
    fn the_judge_gets_the_results_only() {
        let c = |v: Value, voters: Vec<u32>| Candidate { digest: "d".into(), value: v, voters };
        let input = judge_input(&[c(json!("x"), vec![0, 2]), c(json!({"y": 1}), vec![1])]);
        assert_eq!(input, json!({"candidates": ["x", {"y": 1}]}));
    }
}
