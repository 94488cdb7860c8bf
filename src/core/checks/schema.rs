//! The `schema` gate's validator (DESIGN §9): JSON Schema draft 2020-12, by the
//! `jsonschema` crate, built without its HTTP and file resolvers. A schema is compiled
//! once (when the workflow is validated and when the run starts) and checked against
//! each result; a failing check lists every failing instance path with its message,
//! so the worker's next attempt sees all that is wrong at once.
//!
//! - `format` is asserted (`"format": "email"` fails a non-email), as an operator who
//!   writes it expects; unknown formats are ignored.
//! - `$ref` resolves inside the schema document (`#/$defs/…`) and to the bundled
//!   meta-schemas; a reference to another file or a URL is a compile error, since
//!   nothing is fetched (bundle such schemas into one document).
//! - Messages quote the failing value; each is cut to [`MESSAGE_CHARS`] characters and
//!   escaped for display, so a 1 MB string cannot flood a verdict.

use crate::core::escape::escape_line;
use crate::core::truncate::truncate_chars;

/// The longest message kept for one failing path, in characters.
pub const MESSAGE_CHARS: usize = 300;

/// A schema ready to check results against.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSchema")
    }
}

/// Compiles `schema` as draft 2020-12. The error says what is wrong with the schema
/// (e.g. `"type": 5` is not a valid type) or which reference could not be resolved.
pub fn compile(schema: &serde_json::Value) -> Result<CompiledSchema, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map(|validator| CompiledSchema { validator })
        .map_err(|e| {
            let at = e.instance_path().as_str();
            let what = truncate_chars(&escape_line(&e.to_string()), MESSAGE_CHARS);
            if at.is_empty() {
                format!("invalid JSON Schema: {what}")
            } else {
                format!("invalid JSON Schema at {at}: {what}")
            }
        })
}

impl CompiledSchema {
    /// Every way `value` fails the schema, one line each: `PATH: MESSAGE`, PATH being
    /// the instance's JSON Pointer (`(root)` for the whole value), e.g.
    /// `/title: 3 is not of type "string"`. Empty when `value` is valid.
    pub fn check(&self, value: &serde_json::Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .map(|e| {
                let path = e.instance_path().as_str();
                let path = if path.is_empty() { "(root)".to_string() } else { escape_line(path).into_owned() };
                format!("{path}: {}", truncate_chars(&escape_line(&e.to_string()), MESSAGE_CHARS))
            })
            .collect()
    }

    /// True when `value` passes: cheaper than [`CompiledSchema::check`], which
    /// collects every error.
    pub fn is_valid(&self, value: &serde_json::Value) -> bool {
        self.validator.is_valid(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn article() -> CompiledSchema {
        compile(&json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["title", "tags", "author"],
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "tags": {"type": "array", "items": {"type": "string"}},
                "author": {"$ref": "#/$defs/person"}
            },
            "$defs": {"person": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}},
            "additionalProperties": false
        }))
        .expect("a valid schema")
    }

    #[test]
    fn a_valid_result_has_no_errors() {
        let ok = json!({"title": "Hi", "tags": ["a"], "author": {"email": "a@b.org"}});
        assert_eq!(article().check(&ok), Vec::<String>::new());
        assert!(article().is_valid(&ok));
    }

    #[test]
    fn every_failing_path_is_listed() {
        let bad = json!({"title": 3, "tags": ["a", 7], "author": {"email": "not-an-email"}, "extra": true});
        let errors = article().check(&bad);
        assert!(errors.contains(&r#"/title: 3 is not of type "string""#.to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("/tags/1: 7 is not of type")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("/author/email: ") && e.contains("email")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("(root): ") && e.contains("extra")), "{errors:?}");
        assert_eq!(errors.len(), 4, "{errors:?}");
        let missing = article().check(&json!({}));
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(missing.iter().all(|e| e.starts_with("(root): ") && e.contains("is a required property")));
    }

    #[test]
    fn messages_are_bounded_and_escaped() {
        let schema = compile(&json!({"type": "integer"})).expect("schema");
        let errors = schema.check(&json!(format!("\x1b[2J{}", "x".repeat(100_000))));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].chars().count() <= MESSAGE_CHARS + 10, "{}", errors[0].len());
        assert!(!errors[0].contains('\x1b'), "{}", errors[0]);
    }

    #[test]
    fn bad_schemas_and_foreign_references_do_not_compile() {
        let err = compile(&json!({"type": 5})).expect_err("invalid type");
        assert!(err.starts_with("invalid JSON Schema"), "{err}");
        let err = compile(&json!({"$ref": "https://example.com/other.json"})).expect_err("no fetching");
        assert!(err.contains("example.com"), "{err}");
        let err = compile(&json!({"$ref": "other.json"})).expect_err("no files");
        assert!(err.starts_with("invalid JSON Schema"), "{err}");
    }
}
