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
