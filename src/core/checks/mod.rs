//! Checks of task results and task inputs that need no process (DESIGN §9): the
//! built-in rules of the `security` gate ([`security`]), the input guard that holds a
//! prompt-injection-shaped task for approval ([`guard`]), and the `schema` gate's
//! validator ([`schema`]). All pure: a JSON value in, findings or messages out.
//!
//! A [`Finding`] names its rule, where it is, and a short excerpt that is safe to show
//! on a terminal and to record in the event log: control, bidi and zero-width
//! characters are escaped, and secret values are never copied, only described
//! (`AKIA…[20 chars]`).

pub mod guard;
pub mod schema;
pub mod security;
pub mod verdict;

use serde_json::Value;

use crate::core::escape::escape_line;
use crate::core::truncate::truncate_chars;

/// One thing a check found in a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The rule's stable name, `family/name` (e.g. `secret/aws-access-key`).
    pub rule: String,
    /// Where: the JSON Pointer of the string (prefixed for the input guard, e.g.
    /// `payload/prompt`), then `:line:column` inside it (both from 1, columns in
    /// characters). An object key is written `POINTER (key):line:column`, where
    /// POINTER is the member's own pointer.
    pub location: String,
    /// A short piece of the text around the hit, escaped for display, with every
    /// secret value in it masked.
    pub excerpt: String,
}

/// Longest excerpt, in characters.
const EXCERPT_CHARS: usize = 120;
/// Longest key segment written in a location, in characters.
const SEGMENT_CHARS: usize = 40;

/// A string visited by [`walk`]: its pointer and whether it is an object key.
pub(crate) struct Place<'a> {
    pub pointer: &'a str,
    pub is_key: bool,
}

impl Place<'_> {
    /// The finding location of byte `offset` inside `text`.
    pub fn at(&self, text: &str, offset: usize) -> String {
        let (line, col) = line_col(text, offset);
        let pointer = if self.pointer.is_empty() { "(root)" } else { self.pointer };
        if self.is_key {
            format!("{pointer} (key):{line}:{col}")
        } else {
            format!("{pointer}:{line}:{col}")
        }
    }
}

/// Calls `visit` with every string in `value`, object keys included (a key before its
/// value), depth first in document order. `base` prefixes every pointer;
/// `segment` turns a key into the pointer segment written for it (so that a check
/// can mask a key that is itself a secret). Stops early when `visit` returns false.
pub(crate) fn walk(
    value: &Value,
    base: &str,
    segment: &dyn Fn(&str) -> String,
    visit: &mut dyn FnMut(&Place<'_>, &str) -> bool,
) -> bool {
    let mut pointer = base.to_string();
    walk_in(value, &mut pointer, segment, visit)
}

fn walk_in(
    value: &Value,
    pointer: &mut String,
    segment: &dyn Fn(&str) -> String,
    visit: &mut dyn FnMut(&Place<'_>, &str) -> bool,
) -> bool {
    match value {
        Value::String(s) => visit(&Place { pointer, is_key: false }, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                let go_on = walk_in(item, pointer, segment, visit);
                pointer.truncate(len);
                if !go_on {
                    return false;
                }
            }
            true
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&segment(key));
                let go_on = visit(&Place { pointer, is_key: true }, key) && walk_in(item, pointer, segment, visit);
                pointer.truncate(len);
                if !go_on {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

/// A key as a JSON Pointer segment (`~` → `~0`, `/` → `~1`), made safe to show and
/// cut to a readable length.
pub(crate) fn plain_segment(key: &str) -> String {
    let escaped = key.replace('~', "~0").replace('/', "~1");
    truncate_chars(&display(&escaped), SEGMENT_CHARS)
}

/// Line and column (both from 1; the column counted in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// True for the invisible characters the input guard reports and excerpts escape:
/// zero-width space, non-joiner, joiner, word joiner and the byte-order mark.
pub(crate) fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

/// `text` safe for one terminal line: what [`escape_line`] escapes, and zero-width
/// characters too (invisible text is what an excerpt must make visible).
pub(crate) fn display(text: &str) -> String {
    let escaped = escape_line(text);
    if !escaped.chars().any(is_zero_width) {
        return escaped.into_owned();
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        if is_zero_width(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A secret described without its value: the first four characters of a long token
/// (a key's prefix says what kind it is and is not secret), then its length.
pub(crate) fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n >= 16 {
        let head: String = secret.chars().take(4).collect();
        format!("{}…[{n} chars]", display(&head))
    } else {
        format!("…[{n} chars]")
    }
}

/// A part of a string replaced by a description when shown (a secret's byte range).
#[derive(Debug, Clone)]
pub(crate) struct Masked {
    pub start: usize,
    pub end: usize,
    pub shown: String,
}

/// The excerpt for a hit at bytes `start..end` of `text`: the hit on its line with a
/// little context either side, every range in `masks` that overlaps the window
/// replaced whole by its description, escaped and cut to [`EXCERPT_CHARS`].
pub(crate) fn excerpt(text: &str, start: usize, end: usize, masks: &[Masked]) -> String {
    let start = floor_char_boundary(text, start);
    let end = floor_char_boundary(text, end.max(start));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let mut from = back_chars(text, start, 30).max(line_start);
    let mut to = forward_chars(text, end, 30).min(line_end.max(end));
    // A mask that straddles the window's edge is taken whole, so no part of a secret
    // is ever cut into view.
    for m in masks {
        if m.start < to && m.end > from {
            from = from.min(m.start);
            to = to.max(m.end);
        }
    }
    let mut out = String::new();
    if from > line_start {
        out.push('…');
    }
    let mut at = from;
    let mut overlapping: Vec<&Masked> = masks.iter().filter(|m| m.start < to && m.end > from).collect();
    overlapping.sort_by_key(|m| m.start);
    for m in overlapping {
        if m.start < at {
            continue; // nested in one already shown
        }
        out.push_str(&display(&text[at..m.start]));
        out.push_str(&m.shown);
        at = m.end;
    }
    if at < to {
        out.push_str(&display(&text[at..to]));
    }
    if to < line_end {
        out.push('…');
    }
    truncate_chars(out.trim(), EXCERPT_CHARS)
}

fn back_chars(text: &str, from: usize, n: usize) -> usize {
    text[..from].char_indices().rev().nth(n.saturating_sub(1)).map_or(0, |(i, _)| i)
}

fn forward_chars(text: &str, from: usize, n: usize) -> usize {
    text[from..].char_indices().nth(n).map_or(text.len(), |(i, _)| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walk_visits_keys_and_strings_with_pointers() {
        let value = json!({"a/b": ["x", {"c~": "y"}], "n": 1});
        let mut seen = Vec::new();
        walk(&value, "payload", &plain_segment, &mut |place, s| {
            seen.push(format!("{}{} {s}", place.pointer, if place.is_key { " key" } else { "" }));
            true
        });
        assert_eq!(
            seen,
            [
                "payload/a~1b key a/b",
                "payload/a~1b/0 x",
                "payload/a~1b/1/c~0 key c~",
                "payload/a~1b/1/c~0 y",
                "payload/n key n"
            ]
        );
    }

    #[test]
    fn locations_count_lines_and_characters() {
        let place = Place { pointer: "/files/0/content", is_key: false };
        assert_eq!(place.at("ab\ncdé f", 9), "/files/0/content:2:6");
        assert_eq!(Place { pointer: "", is_key: false }.at("x", 0), "(root):1:1");
        assert_eq!(Place { pointer: "/k", is_key: true }.at("x", 0), "/k (key):1:1");
    }

    #[test]
    fn excerpts_mask_whole_secrets_and_escape_controls() {
        let text = "key = AKIAABCDEFGHIJKLMNOP and \x1b[2J then more text that goes on for a long while";
        let masks = [Masked { start: 6, end: 26, shown: "AKIA…[20 chars]".into() }];
        let e = excerpt(text, 27, 30, &masks);
        assert!(e.contains("AKIA…[20 chars]"), "{e}");
        assert!(!e.contains("ABCDEFGH"), "{e}");
        assert!(e.contains("\\x1b"), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS);
        // Zero-width characters are shown.
        assert_eq!(display("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(mask("AKIAABCDEFGHIJKLMNOP"), "AKIA…[20 chars]");
        assert_eq!(mask("hunter22"), "…[8 chars]");
    }
}
