//! Reading Redis replies by hand: stream replies come as RESP2 arrays or RESP3 maps,
//! and entries deleted under a pending list come back with no fields; both are
//! handled here so the transport sees plain entries.

use redis::Value;

use crate::io::broker::wire::{WireError, FIELD};

/// One stream entry: its id and the bytes of its message field (or why there are none).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry id.
    pub id: String,
    /// The message field's bytes; `Err` when the entry has no such field.
    pub body: Result<Vec<u8>, WireError>,
}

/// Text of a simple or bulk string.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

/// An integer, from an integer or a numeric string.
pub fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// The items of an array or set (a nil is empty).
pub fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(v) | Value::Set(v) => v,
        _ => &[],
    }
}

/// Key/value pairs of a RESP3 map or a RESP2 array of pairs (`[k, v]` or flat).
pub fn pairs(value: &Value) -> Vec<(&Value, &Value)> {
    match value {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(v) if v.iter().all(|i| matches!(i, Value::Array(p) if p.len() == 2)) => v
            .iter()
            .filter_map(|i| match items(i) {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        Value::Array(v) => v.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

/// Entries of one stream (`[[id, [f, v, …]], …]`).
pub fn entries(value: &Value) -> Vec<Entry> {
    items(value).iter().filter_map(entry).collect()
}

fn entry(value: &Value) -> Option<Entry> {
    let [id, fields] = items(value) else {
        return None;
    };
    let id = text(id)?;
    let fields: Vec<(&Value, &Value)> = match fields {
        Value::Nil => Vec::new(),
        Value::Array(f) => f.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        other => pairs(other),
    };
    let body = fields
        .iter()
        .find(|(k, _)| text(k).as_deref() == Some(FIELD))
        .and_then(|(_, v)| match v {
            Value::BulkString(b) => Some(b.clone()),
            other => text(other).map(String::into_bytes),
        })
        .ok_or_else(|| WireError::NoField { fields: shortened_names(&fields) });
    Some(Entry { id, body })
}

fn shortened_names(fields: &[(&Value, &Value)]) -> String {
    if fields.is_empty() {
        return "none: deleted".to_string();
    }
    let names: Vec<String> =
        fields.iter().take(8).map(|(k, _)| text(k).unwrap_or_else(|| "?".into()).chars().take(32).collect()).collect();
    names.join(", ")
}

/// A XREAD / XREADGROUP reply: (stream key, its entries) for each stream with any.
pub fn streams(value: &Value) -> Vec<(String, Vec<Entry>)> {
    pairs(value).into_iter().filter_map(|(k, v)| Some((text(k)?, entries(v)))).collect()
}
