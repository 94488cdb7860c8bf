//! The schema gate's cost (issue 12: ≤ 50 µs per 10 KB result): checking one result of
//! about 10 KB (a code-writing agent's answer: files with their content, tests, a
//! summary, tags) against a realistic draft 2020-12 schema, compiled once as the
//! gate does. Also a failing result, whose check lists every error.
//!
//!     cargo bench --bench schema_gate

use criterion::{criterion_group, criterion_main, Criterion};
use pitboss::core::checks::schema::compile;
use serde_json::{json, Value};

fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["title", "summary", "files", "tests", "confidence", "tags"],
        "additionalProperties": false,
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 120},
            "summary": {"type": "string", "minLength": 20},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}, "uniqueItems": true},
            "files": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/file"}},
            "tests": {"type": "array", "items": {"$ref": "#/$defs/test"}},
            "notes": {"type": ["string", "null"]}
        },
        "$defs": {
            "file": {
                "type": "object",
                "required": ["path", "language", "content", "changes"],
                "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "pattern": "^[A-Za-z0-9_./-]+$"},
                    "language": {"enum": ["python", "rust", "typescript", "go", "markdown"]},
                    "content": {"type": "string", "maxLength": 100000},
                    "changes": {"type": "array", "items": {"$ref": "#/$defs/change"}}
                }
            },
            "change": {
                "type": "object",
                "required": ["line", "kind", "text"],
                "properties": {
                    "line": {"type": "integer", "minimum": 1},
                    "kind": {"enum": ["add", "remove", "modify"]},
                    "text": {"type": "string"}
                }
            },
            "test": {
                "type": "object",
                "required": ["name", "passed"],
                "properties": {
                    "name": {"type": "string"},
                    "passed": {"type": "boolean"},
                    "duration_ms": {"type": "integer", "minimum": 0}
                }
            }
        }
    })
}

/// A result of about 10 KB that passes the schema.
fn result() -> Value {
    let body: String =
        (0..60).map(|i| format!("def handler_{i}(request):\n    return respond(request, {i})\n")).collect();
    let files: Vec<Value> = (0..4)
        .map(|f| {
            let changes: Vec<Value> = (1..=12)
                .map(|l| {
                    let kind = ["add", "remove", "modify"][l % 3];
                    json!({"line": l * 3, "kind": kind, "text": format!("changed line {l} of file {f}")})
                })
                .collect();
            json!({"path": format!("src/app/module_{f}.py"), "language": "python", "content": body[..1_500].to_string(), "changes": changes})
        })
        .collect();
    let tests: Vec<Value> = (0..20)
        .map(|t| json!({"name": format!("test_handler_{t}"), "passed": t % 7 != 0, "duration_ms": 12 + t}))
        .collect();
    json!({
        "title": "Add request handlers for the billing module",
        "summary": "Adds sixty handlers, each returning the request's response; tests cover each of them. ".repeat(4),
        "confidence": 0.82,
        "tags": ["billing", "handlers", "python", "tests"],
        "files": files,
        "tests": tests,
        "notes": null
    })
}

fn bench(c: &mut Criterion) {
    let schema = compile(&schema()).expect("the bench schema compiles");
    let good = result();
    let size = serde_json::to_vec(&good).map(|v| v.len()).unwrap_or(0);
    assert!((9_000..=12_000).contains(&size), "the bench result should be about 10 KB, is {size} bytes");
    assert!(schema.check(&good).is_empty(), "the bench result passes: {:?}", schema.check(&good));
    let mut bad = good.clone();
    bad["title"] = json!(3);
    bad["files"][2]["language"] = json!("cobol");
    bad["tests"][5]["passed"] = json!("yes");
    assert_eq!(schema.check(&bad).len(), 3, "{:?}", schema.check(&bad));

    let mut group = c.benchmark_group(format!("schema_gate_{}B", size));
    group.bench_function("check_passing", |b| b.iter(|| schema.check(std::hint::black_box(&good))));
    group.bench_function("check_failing_3_errors", |b| b.iter(|| schema.check(std::hint::black_box(&bad))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
