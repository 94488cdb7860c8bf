//! Worker text made safe to show on an operator's terminal (DESIGN §4, §14).
//!
//! A worker is untrusted: what it prints (and the errors, results, ids and progress
//! messages made from it) could hold terminal escape sequences that retitle the
//! window, clear the screen, move the cursor or rewrite what is already shown. Every
//! place that prints or draws such text passes it through one of these functions
//! first, so control characters are *shown* (as `\x1b`, `\r`, `\u{202e}`) rather than
//! *obeyed*. The bytes a worker printed stay as they were in its output files.
//!
//! What is escaped: C0 controls (U+0000–U+001F, tab excepted), DEL, C1 controls
//! (U+0080–U+009F, which some terminals obey as 8-bit CSI/OSC/DCS) and the Unicode
//! bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069),
//! which can make a line read differently from what it holds. A backslash is not
//! doubled: the escaped form is for reading, not for parsing back.

use std::borrow::Cow;

/// True for a character that a terminal could obey instead of show.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// True when no character of `text` is unsafe: first by its bytes (printable ASCII
/// and tabs, the common row, with no character decoded: decoding was 8 % of printing
/// a quarter million rows, issue 14), then, for text with other bytes, by its
/// characters.
fn all_safe(text: &str) -> bool {
    // Folded without stopping early, so the compiler compares many bytes at once.
    let other = text.as_bytes().iter().fold(false, |other, &b| other | ((b < b' ') & (b != b'\t')) | (b > b'~'));
    !other || !text.chars().any(is_unsafe)
}

/// `text` for one line of a terminal: every unsafe character escaped, newlines
/// included (a worker's newline must not start a line that looks like pitboss's own).
/// Borrowed when there is nothing to escape, which is the common case.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    if all_safe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`escape_line`], but newlines stay line breaks (a CR right before one is
/// dropped, so CRLF output reads as lines): for multi-line text printed as such.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\r' if chars.peek() == Some(&'\n') => {}
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialised JSON made safe for a terminal without changing its value: serde_json
/// escapes C0 controls already, but writes DEL, C1 controls and bidi controls raw.
/// They can only occur inside strings, where `\uXXXX` means the same character.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if all_safe(json) {
        return Cow::Borrowed(json);
    }
    use std::fmt::Write;
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one \u escape.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte test agrees with the character test: over random texts of printable
    /// ASCII, tabs, controls, DEL, C1 and bidi controls and other non-ASCII, a text is
    /// borrowed exactly when no character is unsafe, and escaped as char by char.
    #[test]
    fn the_byte_check_agrees_with_the_characters() {
        use crate::core::json_text::draws::Draws;
        let pool = [
            'a', 'Z', ' ', '~', '\t', '\n', '\r', '\u{0}', '\u{1b}', '\u{7f}', '\u{80}', '\u{9f}', '\u{a0}', 'é',
            '\u{61c}', '\u{200e}', '\u{202e}', '\u{2069}', '\u{2028}', '😀', '\\', '"',
        ];
        let mut rng = Draws(8);
        let (mut borrowed, mut owned) = (0, 0);
        for _ in 0..20_000 {
            let len = rng.below(12);
            // Mostly plain rows, as a table prints them.
            let plain = rng.coin(0.5);
            let text: String =
                (0..len).map(|_| if plain { pool[rng.below(4)] } else { pool[rng.below(pool.len())] }).collect();
            let unsafe_chars = text.chars().any(is_unsafe);
            let expected: String = text
                .chars()
                .map(|c| {
                    if is_unsafe(c) {
                        let mut e = String::new();
                        push_escaped(&mut e, c);
                        e
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            match escape_line(&text) {
                Cow::Borrowed(same) => {
                    assert!(!unsafe_chars && same == text, "{text:?}");
                    borrowed += 1;
                }
                Cow::Owned(escaped) => {
                    assert!(unsafe_chars && escaped == expected, "{text:?}");
                    owned += 1;
                }
            }
            assert_eq!(matches!(escape_json(&text), Cow::Borrowed(_)), !unsafe_chars, "{text:?}");
        }
        assert!(borrowed > 5_000 && owned > 5_000, "{borrowed} borrowed, {owned} escaped");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape_line("hello\tworld ünïcode ✓"), Cow::Borrowed(_)));
        assert!(matches!(escape_text("two\nlines"), Cow::Borrowed(_)));
        assert!(matches!(escape_json(r#"{"a":"b"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(escape_line("\x1b]0;pwned\x07\x1b[2J"), r"\x1b]0;pwned\x07\x1b[2J");
        assert_eq!(escape_line("a\rb\x08c\x7f"), r"a\rb\x08c\x7f");
        assert_eq!(escape_line("x\u{9b}31m \u{202e}evil\u{2066}"), r"x\u{9b}31m \u{202e}evil\u{2066}");
        assert_eq!(escape_line("one\ntwo"), r"one\ntwo");
    }

    #[test]
    fn multi_line_text_keeps_its_lines() {
        assert_eq!(escape_text("one\r\ntwo\rthree\n\x1b[2J"), "one\ntwo\\rthree\n\\x1b[2J");
    }

    #[test]
    fn json_keeps_its_value() {
        let value = serde_json::json!({"s": "a\u{9b}b\u{202e}c\u{7f}\x1b"});
        let text = value.to_string();
        let safe = escape_json(&text);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), value);
    }
}
