//! Where candidates disagree: the JSON paths at which their values differ, for the
//! disagreement view and for `inspect`. Objects and arrays that every candidate has
//! are compared member by member; anywhere else (a scalar, a type change, a member
//! some candidates lack) the whole value at that path is one row. Equality is the
//! tally's (`1` and `1.0` are the same), so a row is a real disagreement.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical::same;

/// Rows kept by [`disagreement`]; the rest are counted in [`Differences::omitted`].
pub const MAX_DIFF_ROWS: usize = 200;

/// Below this depth a differing object or array is one row (results parsed by
/// serde_json are at most 128 deep; this keeps the walk shallow whatever the input).
const MAX_DEPTH: usize = 32;

/// One path where candidates differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffRow {
    /// JSON Pointer of the path (`""` is the whole result).
    pub path: String,
    /// Each candidate's value there, in candidate order; `None` = it has none.
    pub values: Vec<Option<Value>>,
}

/// The rows of a disagreement, bounded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Differences {
    /// The differing paths in document order (object members by key), at most the limit.
    pub rows: Vec<DiffRow>,
    /// Differing paths left out past the limit.
    pub omitted: usize,
}

/// The paths where `candidates` differ, at most [`MAX_DIFF_ROWS`].
pub fn disagreement(candidates: &[Value]) -> Vec<DiffRow> {
    differences(candidates, MAX_DIFF_ROWS).rows
}

/// The paths where `candidates` differ: the first `limit` rows, and how many more.
pub fn differences(candidates: &[Value], limit: usize) -> Differences {
    let mut out = Differences::default();
    let at: Vec<Option<&Value>> = candidates.iter().map(Some).collect();
    walk(&at, String::new(), 0, limit, &mut out);
    out
}

fn walk(at: &[Option<&Value>], path: String, depth: usize, limit: usize, out: &mut Differences) {
    let all_same = match at.first() {
        None => true,
        Some(first) => at.iter().all(|v| match (first, v) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        }),
    };
    if all_same {
        return;
    }
    let present: Vec<&Value> = at.iter().flatten().copied().collect();
    let everyone = present.len() == at.len();
    if everyone && depth < MAX_DEPTH && present.iter().all(|v| v.is_object()) {
        let keys: BTreeSet<&String> = present.iter().filter_map(|v| v.as_object()).flat_map(|m| m.keys()).collect();
        for k in keys {
            let below: Vec<Option<&Value>> = at.iter().map(|v| v.and_then(|v| v.get(k.as_str()))).collect();
            walk(&below, format!("{path}/{}", escape_token(k)), depth + 1, limit, out);
        }
    } else if everyone && depth < MAX_DEPTH && present.iter().all(|v| v.is_array()) {
        let len = present.iter().filter_map(|v| v.as_array()).map(Vec::len).max().unwrap_or(0);
        for i in 0..len {
            let below: Vec<Option<&Value>> = at.iter().map(|v| v.and_then(|v| v.get(i))).collect();
            walk(&below, format!("{path}/{i}"), depth + 1, limit, out);
        }
    } else if out.rows.len() < limit {
        out.rows.push(DiffRow { path, values: at.iter().map(|v| v.cloned()).collect() });
    } else {
        out.omitted += 1;
    }
}

/// A JSON Pointer reference token: `~` → `~0`, `/` → `~1` (RFC 6901).
fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(rows: &[DiffRow]) -> Vec<&str> {
        rows.iter().map(|r| r.path.as_str()).collect()
    }

    #[test]
    fn equal_candidates_have_no_rows() {
        assert!(disagreement(&[json!({"a": [1, 2]}), json!({"a": [1.0, 2]})]).is_empty());
        assert!(disagreement(&[]).is_empty());
        assert!(disagreement(&[json!(1)]).is_empty());
    }

    #[test]
    fn rows_name_the_differing_leaves_with_each_candidates_value() {
        let a = json!({"title": "Fix", "tags": ["x", "y"], "meta": {"n": 1, "ok": true}});
        let b = json!({"title": "Fix", "tags": ["x", "z", "w"], "meta": {"n": 2, "ok": true}, "extra": null});
        let rows = disagreement(&[a, b]);
        assert_eq!(paths(&rows), ["/extra", "/meta/n", "/tags/1", "/tags/2"]);
        assert_eq!(rows[0].values, [None, Some(Value::Null)]);
        assert_eq!(rows[1].values, [Some(json!(1)), Some(json!(2))]);
        assert_eq!(rows[3].values, [None, Some(json!("w"))]);
    }

    #[test]
    fn a_type_change_or_a_missing_object_is_one_row() {
        let rows = disagreement(&[json!({"a": {"b": 1}}), json!({"a": [1]}), json!({})]);
        assert_eq!(paths(&rows), ["/a"]);
        assert_eq!(rows[0].values, [Some(json!({"b": 1})), Some(json!([1])), None]);
        let whole = disagreement(&[json!("x"), json!({"x": 1})]);
        assert_eq!(paths(&whole), [""]);
    }

    #[test]
    fn keys_are_escaped_as_json_pointers() {
        let rows = disagreement(&[json!({"a/b": 1, "c~d": 1}), json!({"a/b": 2, "c~d": 2})]);
        assert_eq!(paths(&rows), ["/a~1b", "/c~0d"]);
        let v = json!({"a/b": 2});
        assert_eq!(v.pointer(&rows[0].path), Some(&json!(2)));
    }

    #[test]
    fn many_differences_are_bounded_and_counted() {
        let a: Vec<u32> = (0..500).collect();
        let b: Vec<u32> = (1..501).collect();
        let d = differences(&[json!(a), json!(b)], 10);
        assert_eq!(d.rows.len(), 10);
        assert_eq!(d.omitted, 490);
        assert_eq!(disagreement(&[json!(a), json!(b)]).len(), MAX_DIFF_ROWS);
    }

    #[test]
    fn deep_nesting_stops_at_a_bounded_depth() {
        let mut a = json!(1);
        let mut b = json!(2);
        for _ in 0..100 {
            a = json!([a]);
            b = json!([b]);
        }
        let rows = disagreement(&[a, b]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path.matches('/').count(), MAX_DEPTH);
    }
}
