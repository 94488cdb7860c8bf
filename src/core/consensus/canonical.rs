//! The canonical form of an answer: the text two replicas' results are compared by.
//!
//! Rules (so that answers equal as JSON data compare equal as text):
//! - object keys are sorted by their UTF-8 bytes; no whitespace anywhere;
//! - a number with no fractional part that converts exactly to a 64-bit integer is
//!   written as that integer, so `1`, `1.0` and `1e0` are one answer, as are `-0.0`
//!   and `0`; any other number is written in the shortest form that reads back as the
//!   same `f64` (serde_json's float format), so `0.10` and `0.1` are one answer;
//! - strings are escaped as serde_json escapes them (`\"`, `\\`, `\n`…, other control
//!   characters as `\u00XX`); Unicode is not normalised (`é` precomposed and `e` +
//!   combining accent are different answers: the bytes differ, and so may a program
//!   that reads them).
//!
//! With a JSON Pointer `key` only that part of the result is compared; a result that
//! has nothing at the pointer gives no canonical form, and its replica abstains (as a
//! failed replica does) rather than voting for "nothing".

use std::fmt::Write;

use serde_json::{Number, Value};

/// The canonical text of `value`, or of the part at the JSON Pointer `key`; `None`
/// when `key` points at nothing (that replica abstains).
pub fn canonical(value: &Value, key: Option<&str>) -> Option<String> {
    let part = match key {
        None => value,
        Some(pointer) => value.pointer(pointer)?,
    };
    let mut out = String::new();
    write_value(part, &mut out);
    Some(out)
}

/// A short, stable fingerprint of a canonical text (12 hex digits of its 64-bit
/// FNV-1a hash), to name an answer in events and on screens. Only for display: the
/// tally compares the canonical texts themselves, so a collision cannot merge answers.
pub fn digest(canonical: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h >> 16)
}

/// Whether two values are the same answer (equal canonical forms), without building
/// the texts.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_text(x) == number_text(y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order: a build with
            // serde_json's `preserve_order` keeps insertion order.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_value(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// The number rule of the module docs.
fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let Some(x) = n.as_f64() else { return n.to_string() };
    if x.fract() == 0.0 {
        // `as` saturates, so the round trip tells whether the integer is exact; the
        // bounds (2^63, 2^64 as f64) leave out the saturated ends.
        let i = x as i64;
        if i as f64 == x && x < i64::MAX as f64 {
            return i.to_string();
        }
        let u = x as u64;
        if x >= 0.0 && u as f64 == x && x < u64::MAX as f64 {
            return u.to_string();
        }
    }
    n.to_string()
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(json: &str) -> String {
        let v: Value = serde_json::from_str(json).unwrap();
        canonical(&v, None).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_whitespace_is_gone() {
        assert_eq!(text(r#"{ "b": [1, 2], "a": {"d": null, "c": true} }"#), r#"{"a":{"c":true,"d":null},"b":[1,2]}"#);
    }

    #[test]
    fn whole_numbers_are_integers_whatever_their_spelling() {
        assert_eq!(text("[1, 1.0, 1e0, 10E-1, -0.0, 0]"), "[1,1,1,1,0,0]");
        assert_eq!(text("[0.10, 1.5e-7, 2.5]"), "[0.1,1.5e-7,2.5]");
        // Exact integers beyond 2^53, whichever way they were written.
        assert_eq!(text("[1e19, 10000000000000000000]"), "[10000000000000000000,10000000000000000000]");
        assert_eq!(text("[-9007199254740993, 18446744073709551615]"), "[-9007199254740993,18446744073709551615]");
        // Beyond u64 a whole float stays a float.
        assert_eq!(text("1e300"), "1e+300");
    }

    #[test]
    fn strings_are_escaped_like_serde_json_and_not_normalised() {
        let v = json!(["a\"b\\c\n\u{1b}[31m", "é", "e\u{301}"]);
        let c = canonical(&v, None).unwrap();
        assert_eq!(c, "[\"a\\\"b\\\\c\\n\\u001b[31m\",\"é\",\"e\u{301}\"]");
        assert_eq!(serde_json::from_str::<Value>(&c).unwrap(), v);
    }

    #[test]
    fn a_key_compares_only_that_part_and_a_missing_part_abstains() {
        let v = json!({"answer": {"n": 2.0}, "notes": "long"});
        assert_eq!(canonical(&v, Some("/answer")), Some(r#"{"n":2}"#.to_string()));
        assert_eq!(canonical(&v, Some("/answer/n")), Some("2".to_string()));
        assert_eq!(canonical(&v, Some("")), canonical(&v, None));
        assert_eq!(canonical(&v, Some("/missing")), None);
        assert_eq!(canonical(&json!([1, 2]), Some("/5")), None);
    }

    #[test]
    fn same_agrees_with_the_canonical_text() {
        let pairs = [
            (json!({"a": 1, "b": [1.0]}), json!({"b": [1], "a": 1.0}), true),
            (json!({"a": 1}), json!({"a": 1, "b": null}), false),
            (json!([1, 2]), json!([2, 1]), false),
            (json!("1"), json!(1), false),
        ];
        for (a, b, equal) in pairs {
            assert_eq!(same(&a, &b), equal, "{a} vs {b}");
            assert_eq!(canonical(&a, None) == canonical(&b, None), equal, "{a} vs {b}");
        }
    }

    #[test]
    fn digests_are_short_stable_and_differ_for_different_answers() {
        assert_eq!(digest("{\"a\":1}"), digest("{\"a\":1}"));
        assert_ne!(digest("{\"a\":1}"), digest("{\"a\":2}"));
        assert_eq!(digest("").len(), 12);
        // Fixed forever: events and screens of old runs name answers by it.
        assert_eq!(digest("1"), format!("{:012x}", 0xaf63_ac4c_8601_9afc_u64 >> 16));
    }
}
