//! Redaction of secret values (DESIGN §4, §14): every value of a pool's `secret_env`
//! variables is replaced by `[REDACTED:NAME]` in worker output before pitboss records,
//! draws, logs or writes it anywhere.
//!
//! - A [`Redactor`] holds the values (never stored: the log's first record holds only
//!   the names) and redacts whole texts and JSON values.
//! - A [`RedactStream`] redacts output as it is read, chunk by chunk. A value split
//!   between two reads is still found: the last `longest - 1` bytes of a chunk are held
//!   back until the next one shows whether they start a secret. When no value holds a
//!   newline, a secret cannot span one, so everything up to the last newline goes
//!   through at once (live panes lag at most one unfinished line).
//! - Values shorter than [`MIN_SECRET_LEN`] bytes are passed to the worker but not
//!   redacted: replacing every "42" or "on" in a worker's output would shred it and
//!   hide nothing worth hiding. The run warns about them when it starts.
//! - The JSON-escaped form of a value (a worker printing it inside a JSON string, where
//!   `"` and `\` are escaped) is redacted too.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

/// Secret values shorter than this many bytes are not redacted (see the module notes).
pub const MIN_SECRET_LEN: usize = 4;

/// The secret values of a run and what replaces them. Its `Debug` shows only the
/// replacements, never a value (a redactor may end up in a log line or a panic).
#[derive(Clone, Default)]
pub struct Redactor {
    /// (value bytes, replacement), longest value first so that a value containing
    /// another is replaced whole.
    patterns: Vec<(Vec<u8>, String)>,
    /// True where a byte starts some value: most bytes are rejected with one lookup.
    first: Vec<bool>,
    longest: usize,
    any_newline: bool,
}

impl Redactor {
    /// A redactor for `(name, value)` pairs; also returns the names whose values are
    /// too short to redact (empty values are not reported: there is nothing to leak).
    pub fn new<N: AsRef<str>, V: AsRef<str>>(secrets: impl IntoIterator<Item = (N, V)>) -> (Redactor, Vec<String>) {
        let mut patterns: Vec<(Vec<u8>, String)> = Vec::new();
        let mut too_short = Vec::new();
        for (name, value) in secrets {
            let (name, value) = (name.as_ref(), value.as_ref());
            if value.is_empty() {
                continue;
            }
            if value.len() < MIN_SECRET_LEN {
                too_short.push(name.to_string());
                continue;
            }
            let mark = format!("[REDACTED:{name}]");
            let json = serde_json::to_string(value).unwrap_or_default();
            let escaped = json.get(1..json.len().saturating_sub(1)).unwrap_or_default();
            if escaped != value && !escaped.is_empty() {
                patterns.push((escaped.as_bytes().to_vec(), mark.clone()));
            }
            patterns.push((value.as_bytes().to_vec(), mark));
        }
        patterns.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        patterns.dedup_by(|a, b| a.0 == b.0);
        let mut first = vec![false; 256];
        for (p, _) in &patterns {
            first[p[0] as usize] = true;
        }
        let longest = patterns.first().map_or(0, |p| p.0.len());
        let any_newline = patterns.iter().any(|(p, _)| p.contains(&b'\n'));
        too_short.sort();
        too_short.dedup();
        (Redactor { patterns, first, longest, any_newline }, too_short)
    }

    /// True when there is nothing to redact (no secrets, or only short ones).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The secret starting at `at` in `bytes` (whole, within `bytes`), if any.
    fn match_at(&self, bytes: &[u8], at: usize) -> Option<(usize, &str)> {
        if !self.first[bytes[at] as usize] {
            return None;
        }
        self.patterns.iter().find(|(p, _)| bytes[at..].starts_with(p)).map(|(p, mark)| (p.len(), mark.as_str()))
    }

    /// Redacts `bytes[..end]` into `out`, where secrets may extend to `bytes.len()`;
    /// returns where it stopped (at or past `end`, past when a secret crossed it).
    fn redact_into(&self, bytes: &[u8], end: usize, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        let mut plain_from = 0;
        while i < end {
            match self.match_at(bytes, i) {
                Some((len, mark)) => {
                    out.extend_from_slice(&bytes[plain_from..i]);
                    out.extend_from_slice(mark.as_bytes());
                    i += len;
                    plain_from = i;
                }
                None => i += 1,
            }
        }
        out.extend_from_slice(&bytes[plain_from..i.max(plain_from)]);
        i
    }

    /// `bytes` with every secret replaced.
    pub fn bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.is_empty() || !bytes.iter().any(|b| self.first[*b as usize]) {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        self.redact_into(bytes, bytes.len(), &mut out);
        if out == bytes {
            Cow::Borrowed(bytes)
        } else {
            Cow::Owned(out)
        }
    }

    /// `text` with every secret replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Secrets and marks are whole UTF-8 strings, so the result is UTF-8 too;
            // the lossy conversion never changes anything, it only avoids a panic path.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// Replaces secrets in a string in place.
    pub fn string(&self, s: &mut String) {
        if let Cow::Owned(clean) = self.text(s) {
            *s = clean;
        }
    }

    /// Replaces secrets in every string (keys included) of a JSON value.
    pub fn value(&self, v: &mut Value) {
        if self.is_empty() {
            return;
        }
        match v {
            Value::String(s) => self.string(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (mut key, mut item) in entries {
                    self.string(&mut key);
                    self.value(&mut item);
                    map.insert(key, item);
                }
            }
            _ => {}
        }
    }

    /// A stream redactor over this redactor's secrets.
    pub fn stream(self: &Arc<Self>) -> RedactStream {
        RedactStream { redactor: self.clone(), carry: Vec::new() }
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.patterns.iter().map(|(_, replacement)| replacement.as_str()).collect();
        f.debug_struct("Redactor").field("replaces", &names).finish_non_exhaustive()
    }
}

/// Redacts a stream read in chunks (see the module notes on split values).
pub struct RedactStream {
    redactor: Arc<Redactor>,
    carry: Vec<u8>,
}

impl std::fmt::Debug for RedactStream {
    // The carry may hold the start of a secret: only its length is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactStream")
            .field("redactor", &self.redactor)
            .field("carry_bytes", &self.carry.len())
            .finish()
    }
}

impl RedactStream {
    /// The redacted bytes that can be released after `chunk`; some of its end may be
    /// held back until the next chunk or [`RedactStream::finish`].
    pub fn push<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        let r = &*self.redactor;
        if r.is_empty() {
            return Cow::Borrowed(chunk);
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut hold_from = buf.len().saturating_sub(r.longest - 1);
        if !r.any_newline {
            // No secret spans a newline: complete lines need not wait.
            if let Some(nl) = buf[hold_from..].iter().rposition(|&b| b == b'\n') {
                hold_from += nl + 1;
            }
        }
        let mut out = Vec::with_capacity(buf.len());
        let stopped = r.redact_into(&buf, hold_from, &mut out);
        self.carry = buf[stopped..].to_vec();
        Cow::Owned(out)
    }

    /// Whatever was held back, redacted: the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.carry);
        self.redactor.bytes(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(pairs: &[(&str, &str)]) -> Arc<Redactor> {
        Arc::new(Redactor::new(pairs.iter().copied()).0)
    }

    #[test]
    fn debug_output_names_the_secrets_but_never_shows_a_value() {
        let r = redactor(&[("API_KEY", "sk-123456")]);
        let mut stream = r.stream();
        let _ = stream.push(b"text then sk-12");
        let shown = format!("{r:?} {stream:?}");
        assert!(shown.contains("[REDACTED:API_KEY]"), "{shown}");
        assert!(!shown.contains("sk-12") && !shown.contains("115, 107"), "a value in debug output: {shown}");
    }

    #[test]
    fn values_are_replaced_by_their_names() {
        let r = redactor(&[("API_KEY", "sk-123456"), ("DB_PASSWORD", "hunter22")]);
        assert_eq!(r.text("key sk-123456, pw hunter22."), "key [REDACTED:API_KEY], pw [REDACTED:DB_PASSWORD].");
        assert!(matches!(r.text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_value_wins_when_one_contains_another() {
        let r = redactor(&[("SHORT", "abcd"), ("LONG", "abcdefgh")]);
        assert_eq!(r.text("abcdefgh abcd"), "[REDACTED:LONG] [REDACTED:SHORT]");
    }

    #[test]
    fn short_and_empty_values_are_reported_not_redacted() {
        let (r, short) = Redactor::new([("PIN", "123"), ("EMPTY", ""), ("OK", "1234")]);
        assert_eq!(short, ["PIN"]);
        assert_eq!(r.text("123 1234"), "123 [REDACTED:OK]");
    }

    #[test]
    fn json_escaped_values_and_json_strings_are_redacted() {
        let r = redactor(&[("TOKEN", r#"a"b\c-long"#)]);
        assert_eq!(r.text(r#"{"t":"a\"b\\c-long"}"#), r#"{"t":"[REDACTED:TOKEN]"}"#);
        let mut v = serde_json::json!({"a": ["x a\"b\\c-long y"], "a\"b\\c-long": 1});
        r.value(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [REDACTED:TOKEN] y"], "[REDACTED:TOKEN]": 1}));
    }

    /// Every way of cutting the stream in two (and into single bytes) gives the same
    /// redacted output as redacting it whole.
    #[test]
    fn a_value_split_between_reads_is_still_redacted() {
        let r = redactor(&[("K", "secret-value"), ("L", "line\nspanning")]);
        let input = b"a secret-value b secret-valu\nline\nspanning secret-value";
        let whole = r.bytes(input).into_owned();
        assert!(!whole.windows(12).any(|w| w == b"secret-value"));
        for cut in 0..=input.len() {
            let mut s = r.stream();
            let mut out = s.push(&input[..cut]).into_owned();
            out.extend_from_slice(&s.push(&input[cut..]));
            out.extend(s.finish());
            assert_eq!(out, whole, "cut at {cut}");
        }
        let mut s = r.stream();
        let mut out = Vec::new();
        for b in input {
            out.extend_from_slice(&s.push(std::slice::from_ref(b)));
        }
        out.extend(s.finish());
        assert_eq!(out, whole, "byte by byte");
    }

    #[test]
    fn complete_lines_are_not_held_back() {
        let r = redactor(&[("K", "secret-value")]);
        let mut s = r.stream();
        assert_eq!(&*s.push(b"one line\nsecr"), b"one line\n");
        assert_eq!(&*s.push(b"et-value\n"), b"[REDACTED:K]\n");
        assert!(s.finish().is_empty());
    }

    #[test]
    fn no_secrets_costs_nothing() {
        let r = Arc::new(Redactor::default());
        let mut s = r.stream();
        assert!(matches!(s.push(b"abc"), Cow::Borrowed(_)));
        assert!(s.finish().is_empty());
    }
}
