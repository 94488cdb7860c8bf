//! The placeholder syntax of pool commands and stdin templates (`{id}`,
//! `{payload.prompt}`): finding placeholders, the names a template may use, and
//! following a `payload.KEY` path into a task's payload. Filling them is the worker
//! protocol's job (`core::protocol`); checking them is `check.rs`'s.

/// Placeholders a command or stdin template may use besides `{payload.KEY…}`.
pub const PLAIN_PLACEHOLDERS: &[&str] = &["id", "type", "attempt", "run_id", "payload", "pitboss", "state_dir"];

/// Placeholders a persistent worker's command may use: it serves many tasks, so only
/// run-wide values exist when it starts.
pub(super) const RUN_WIDE_PLACEHOLDERS: &[&str] = &["pitboss", "state_dir", "run_id"];

/// Names of the placeholders in a template. A placeholder is `{name}` where name is
/// made of letters, digits, `_`, `.` and `-` and starts with a letter or `_`
/// (`{id}`, `{payload.prompt}`); any other brace is literal, so JSON and shell code
/// in a command (`echo {"ok":true}`) need no escaping.
pub fn placeholders(template: &str) -> Vec<&str> {
    placeholder_spans(template).into_iter().map(|(start, end)| &template[start + 1..end - 1]).collect()
}

/// Byte ranges `{…}` of the placeholders in a template.
pub fn placeholder_spans(template: &str) -> Vec<(usize, usize)> {
    let bytes = template.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let name_start = i + 1;
            let mut j = name_start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.' | b'-')) {
                j += 1;
            }
            let starts_well = name_start < j && (bytes[name_start].is_ascii_alphabetic() || bytes[name_start] == b'_');
            if starts_well && j < bytes.len() && bytes[j] == b'}' {
                spans.push((i, j + 1));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    spans
}

/// Whether a template may use this placeholder: a plain one or `payload.KEY`.
pub(super) fn is_known(name: &str) -> bool {
    PLAIN_PLACEHOLDERS.contains(&name) || name.strip_prefix("payload.").is_some_and(|k| !k.is_empty())
}

/// Follows a dotted path (`a.b.c`) into a JSON payload.
pub fn lookup_payload<'v>(payload: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(payload, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_names_in_braces_and_other_braces_are_literal() {
        assert_eq!(placeholders("run {id} with {payload.a-b.c}"), ["id", "payload.a-b.c"]);
        assert!(placeholders(r#"echo {"ok":true} { } {1x} {_"#).is_empty());
        assert_eq!(placeholder_spans("x{_y}"), [(1, 5)]);
    }

    #[test]
    fn known_names_and_payload_paths() {
        assert!(is_known("run_id") && is_known("payload.k"));
        assert!(!is_known("payload.") && !is_known("nope"));
        let payload = serde_json::json!({"a": {"b": 1}});
        assert_eq!(lookup_payload(&payload, "a.b"), Some(&serde_json::json!(1)));
        assert_eq!(lookup_payload(&payload, "a.c"), None);
    }
}
