//! A JSON value held as its text (issue 14, memory): a completed task's result, kept
//! for the whole run in the state, costs its bytes instead of a tree of maps (a
//! `{"ok":true}` as a `serde_json::Value` is a 632-byte map node; as text, 11 bytes
//! behind a shared pointer). It is written exactly as the `Value` it was made from
//! (compact, keys in order), so logs, snapshots and `--json` documents do not change;
//! whoever needs the tree parses it on demand ([`JsonText::value`]).

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON value as compact text, shared between clones.
#[derive(Clone)]
pub struct JsonText(Arc<RawValue>);

impl JsonText {
    /// The text of `value` as `serde_json` writes it (compact).
    pub fn of(value: &Value) -> JsonText {
        let raw = serde_json::value::to_raw_value(value).unwrap_or_else(|_| null());
        JsonText(Arc::from(raw))
    }

    /// A text taken as it stands, without a tree or a second encoding: for documents
    /// this program wrote itself from `JsonText`s (a snapshot's payloads and results,
    /// already compact with their keys in order). Reading a quarter million results of
    /// a snapshot through a `Value` each was most of the body's parse (issue 14).
    pub fn from_raw(raw: Box<RawValue>) -> JsonText {
        JsonText(Arc::from(raw))
    }

    /// `text` if it is one JSON value (surrounding whitespace dropped, as a
    /// `RawValue` drops it), in one allocation: a format-4 snapshot's quarter million
    /// payloads and results were each checked into a `Box<RawValue>` and then copied
    /// again into the `Arc` (12.7 % of opening one, issue 14). The text is kept as it
    /// stands, so it is for texts this program wrote itself, as [`JsonText::from_raw`].
    pub fn from_checked(text: &str) -> Result<JsonText, serde_json::Error> {
        let text = JsonText::check(text)?;
        let shared: Arc<str> = Arc::from(text);
        // SAFETY: `RawValue` is `#[repr(transparent)]` over `str` (serde_json turns a
        // `Box<str>` into a `Box<RawValue>` the same way), so the pointer's layout and
        // metadata are the same; its one invariant, a valid JSON text without
        // surrounding whitespace, was checked just above.
        Ok(JsonText(unsafe { Arc::from_raw(Arc::into_raw(shared) as *const RawValue) }))
    }

    /// `text` checked to be one JSON value, trimmed as a `RawValue` holds it: what
    /// [`JsonText::from_checked`] keeps, without keeping it (a lazily read snapshot
    /// checks its specs' payloads at open and decodes them later, issue 14).
    pub fn check(text: &str) -> Result<&str, serde_json::Error> {
        if flat::is_flat_object(text.as_bytes()) {
            return Ok(text);
        }
        let mut checking = serde_json::Deserializer::from_str(text);
        serde::de::IgnoredAny::deserialize(&mut checking)?;
        checking.end()?;
        // Valid JSON has only JSON whitespace (a subset of `trim`'s) around its value.
        Ok(text.trim())
    }

    /// The value, parsed again (`null` if the text were not JSON, which none is: every
    /// text was written by `serde_json` or read by it).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

/// The common text checked without a parser: a compact object of plain strings, small
/// numbers, `true`, `false` and `null` (a snapshot's payloads and results are mostly
/// `{"n":17}` or `{"by":"agent","task":"t000017"}`; checking each with serde_json's
/// parser was 10 % of opening one, issue 14). It says yes only to valid JSON; anything
/// else (nesting, escapes, spaces, exponents, long numbers) goes to the parser.
mod flat {
    /// True when `text` is `{}` or `{"k":v,…}` with each `v` a plain string, a number
    /// of at most 15 integer and 30 fraction digits, `true`, `false` or `null`.
    pub fn is_flat_object(text: &[u8]) -> bool {
        if text == b"{}" {
            return true;
        }
        if text.first() != Some(&b'{') {
            return false;
        }
        let mut i = 1;
        loop {
            let Some(after_key) = string(text, i) else { return false };
            if text.get(after_key) != Some(&b':') {
                return false;
            }
            let Some(after_value) = scalar(text, after_key + 1) else { return false };
            match text.get(after_value) {
                Some(b',') => i = after_value + 1,
                Some(b'}') => return after_value + 1 == text.len(),
                _ => return false,
            }
        }
    }

    /// Past a string at `i` without escapes or control characters (the text is UTF-8
    /// already, and JSON takes any other character in a string).
    fn string(text: &[u8], i: usize) -> Option<usize> {
        if text.get(i) != Some(&b'"') {
            return None;
        }
        let mut j = i + 1;
        loop {
            match *text.get(j)? {
                b'"' => return Some(j + 1),
                b'\\' => return None,
                b if b < 0x20 => return None,
                _ => j += 1,
            }
        }
    }

    fn scalar(text: &[u8], i: usize) -> Option<usize> {
        match *text.get(i)? {
            b'"' => string(text, i),
            b't' if text[i..].starts_with(b"true") => Some(i + 4),
            b'f' if text[i..].starts_with(b"false") => Some(i + 5),
            b'n' if text[i..].starts_with(b"null") => Some(i + 4),
            _ => number(text, i),
        }
    }

    /// `-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,30})?`: no exponent and no long number, which
    /// the parser may refuse as out of range.
    fn number(text: &[u8], i: usize) -> Option<usize> {
        let digits = |from: usize| text[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut j = i + usize::from(text.get(i) == Some(&b'-'));
        let whole = digits(j);
        if whole == 0 || whole > 15 || (whole > 1 && text[j] == b'0') {
            return None;
        }
        j += whole;
        if text.get(j) == Some(&b'.') {
            let fraction = digits(j + 1);
            if fraction == 0 || fraction > 30 {
                return None;
            }
            j += 1 + fraction;
        }
        Some(j)
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_string()).expect("null is JSON")
}

impl From<Value> for JsonText {
    fn from(value: Value) -> JsonText {
        JsonText::of(&value)
    }
}

impl PartialEq for JsonText {
    /// Equal texts (every text is compact with its keys in order, so equal values
    /// have equal texts).
    fn eq(&self, other: &JsonText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    /// Read as a value and written back compact: a text read from a document written
    /// some other way (spaces, another key order) compares and prints as one made from
    /// the same value; and a value works inside the log's tagged events, which serde
    /// reads through a buffer a raw text cannot come from.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonText, D::Error> {
        Value::deserialize(d).map(|value| JsonText::of(&value))
    }
}

/// `#[serde(with = "json_text::raw")]`: a field read by [`JsonText::from_raw`] (only
/// in documents this program writes: a text written some other way is kept as it is).
pub mod raw {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    use super::JsonText;

    /// Written as any `JsonText`.
    pub fn serialize<S: Serializer>(text: &JsonText, s: S) -> Result<S::Ok, S::Error> {
        text.serialize(s)
    }

    /// Read as its raw text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JsonText, D::Error> {
        Box::<RawValue>::deserialize(d).map(JsonText::from_raw)
    }
}

/// [`raw`] for an optional field (`#[serde(default, with = "json_text::raw_option")]`).
pub mod raw_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    use super::JsonText;

    /// Written as any `Option<JsonText>`.
    pub fn serialize<S: Serializer>(text: &Option<JsonText>, s: S) -> Result<S::Ok, S::Error> {
        text.serialize(s)
    }

    /// Read as its raw text; `null` is none (as for a derived `Option`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JsonText>, D::Error> {
        Option::<Box<RawValue>>::deserialize(d).map(|raw| raw.map(JsonText::from_raw))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::JsonText;

    #[test]
    fn it_writes_what_the_value_writes() {
        for value in [json!({"ok": true}), json!({"b": [1, 2.5, "x y"], "a": null}), json!("s"), json!(7)] {
            let text = JsonText::of(&value);
            assert_eq!(serde_json::to_string(&text).unwrap(), value.to_string());
            assert_eq!(serde_json::to_value(&text).unwrap(), value);
            assert_eq!(text.value(), value);
        }
    }

    #[test]
    fn text_read_with_spaces_or_keys_out_of_order_is_made_compact() {
        let read: JsonText = serde_json::from_str(r#"{ "b": 1, "a": [1, 2] }"#).unwrap();
        assert_eq!(read.as_str(), r#"{"a":[1,2],"b":1}"#);
        let read: JsonText = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(read, JsonText::of(&json!({"a": 2, "b": 1})));
        let kept: JsonText = serde_json::from_str(r#"{"a":"x, y","b":" "}"#).unwrap();
        assert_eq!(kept.as_str(), r#"{"a":"x, y","b":" "}"#);
        // Inside an internally tagged enum (the log's events), which buffers its fields.
        #[derive(serde::Deserialize)]
        #[serde(tag = "type")]
        enum Tagged {
            One { text: JsonText },
        }
        let Tagged::One { text } = serde_json::from_str(r#"{"type":"One","text":{"b":1,"a":2}}"#).unwrap();
        assert_eq!(text.as_str(), r#"{"a":2,"b":1}"#);
        let from_value: JsonText = serde_json::from_value(json!({"z": 1, "a": 2})).unwrap();
        assert_eq!(from_value.as_str(), r#"{"a":2,"z":1}"#);
    }

    /// `from_checked` (one allocation, an unchecked cast) against the way it replaced
    /// (`Box<RawValue>` then `Arc::from`): the same text kept, the same texts refused,
    /// over random token soups (mostly not JSON) and random values written compact,
    /// pretty and with whitespace around.
    #[test]
    fn a_checked_text_is_what_a_raw_value_would_hold() {
        use serde_json::value::RawValue;

        use super::draws::Draws;
        let tokens = [
            "{", "}", "[", "]", "\"", ":", ",", "1", "-2.5e3", "true", "null", " ", "\n", "\t", "\u{2028}", "é",
            "\"k\"", "\\", "\"x y\"", "01", "tru", "\u{0}",
        ];
        let mut rng = Draws(14);
        let (mut kept, mut refused) = (0, 0);
        let mut check = |text: &str| {
            let old = serde_json::from_str::<Box<RawValue>>(text).map(JsonText::from_raw);
            match (JsonText::from_checked(text), old) {
                (Ok(new), Ok(old)) => {
                    assert_eq!(new.as_str(), old.as_str(), "{text:?}");
                    assert_eq!(serde_json::to_string(&new).unwrap(), serde_json::to_string(&old).unwrap());
                    kept += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                (new, old) => panic!("{text:?}: checked {:?}, raw {:?}", new.is_ok(), old.is_ok()),
            }
        };
        for _ in 0..20_000 {
            let soup: String = (0..rng.below(8)).map(|_| tokens[rng.below(tokens.len())]).collect();
            check(&soup);
        }
        for _ in 0..2_000 {
            let value = random_value(&mut rng, 3);
            check(&value.to_string());
            check(&serde_json::to_string_pretty(&value).unwrap());
            check(&format!(" \n\t{value}\r\n "));
        }
        assert!(kept > 6_000 && refused > 10_000, "kept {kept}, refused {refused}");
    }

    /// The parser-free check says yes only to what serde_json reads: random flat
    /// objects (plain and not: escapes, controls, exponents, long numbers, nesting),
    /// each also with a byte cut, doubled or changed.
    #[test]
    fn a_flat_object_passed_without_the_parser_is_json() {
        use super::draws::Draws;
        let keys = ["n", "by", "task", "é", "", "a b", "q\\\"", "c\u{1}"];
        let values = [
            "1",
            "0",
            "-0",
            "17",
            "01",
            "-",
            "1.",
            "1.5",
            "-2.25",
            "1e5",
            "1E-2",
            "123456789012345",
            "1234567890123456",
            "1.000000000000000000000000000001",
            "true",
            "false",
            "null",
            "nul",
            "tru",
            "\"agent\"",
            "\"t000017\"",
            "\"\"",
            "\"x\\ny\"",
            "\"a\tb\"",
            "\"é😀\"",
            "{}",
            "[1]",
            "{\"a\":1}",
            "\"\u{7f}\"",
            " 1",
            "1e400",
        ];
        let mut rng = Draws(17);
        let (mut flat, mut total) = (0, 0);
        for _ in 0..30_000 {
            let fields: Vec<String> = (0..rng.below(4))
                .map(|_| {
                    let key = keys[rng.below(keys.len())];
                    format!("\"{key}\":{}", values[rng.below(values.len())])
                })
                .collect();
            let mut text = format!("{{{}}}", fields.join(",")).into_bytes();
            if rng.coin(0.3) && !text.is_empty() {
                let at = rng.below(text.len());
                match rng.below(3) {
                    0 => drop(text.remove(at)),
                    1 => text.insert(at, text[at]),
                    _ => text[at] = b"{}[]:,\"\\ 0-.e"[rng.below(13)],
                }
            }
            let Ok(text) = String::from_utf8(text) else { continue };
            total += 1;
            if super::flat::is_flat_object(text.as_bytes()) {
                flat += 1;
                let parsed = serde_json::from_str::<serde::de::IgnoredAny>(&text);
                assert!(parsed.is_ok(), "{text:?} passed as flat but does not parse");
                assert_eq!(JsonText::from_checked(&text).unwrap().as_str(), text);
            }
        }
        assert!(flat > 3_000 && flat < total - 3_000, "{flat} of {total} flat");
    }

    fn random_value(rng: &mut super::draws::Draws, depth: u32) -> serde_json::Value {
        use serde_json::Value;
        match rng.below(if depth == 0 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.coin(0.5)),
            2 => json!(rng.below(2_000_000) as f64 / 7.0 - 1e5),
            3 => Value::String(
                (0..rng.below(6)).map(|_| char::from_u32(rng.below(0x11000) as u32).unwrap_or('?')).collect(),
            ),
            4 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth - 1)).collect()),
            _ => {
                Value::Object((0..rng.below(4)).map(|k| (format!("k{k}\u{1}"), random_value(rng, depth - 1))).collect())
            }
        }
    }

    #[test]
    fn a_raw_field_keeps_the_text_it_reads_and_writes_it_back() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Doc {
            #[serde(with = "super::raw")]
            one: JsonText,
            #[serde(default, with = "super::raw_option")]
            two: Option<JsonText>,
        }
        for text in [r#"{"one":{"a":[1,"x, y"],"b":null},"two":"s"}"#, r#"{"one":7,"two":null}"#] {
            let doc: Doc = serde_json::from_reader(text.as_bytes()).unwrap();
            assert_eq!(serde_json::to_string(&doc).unwrap(), text);
        }
        let doc: Doc = serde_json::from_str(r#"{"one":{"a":1}}"#).unwrap();
        assert_eq!((doc.one, doc.two), (JsonText::of(&json!({"a": 1})), None));
        // A null inside `one` is the value null, not none.
        let doc: Doc = serde_json::from_str(r#"{"one":null}"#).unwrap();
        assert_eq!(doc.one.as_str(), "null");
    }
}

/// A small seeded generator for the tests of the core (which uses no `rand`:
/// tests/architecture.rs): splitmix64.
#[cfg(test)]
pub(crate) mod draws {
    pub struct Draws(pub u64);

    impl Draws {
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A number in `0..n` (`n` > 0).
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// True with probability `p`.
        pub fn coin(&mut self, p: f64) -> bool {
            ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
        }
    }
}
