use serde_json::{json, Map, Value};

use super::*;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn request(tool: &str, v: Value) -> Value {
    call(tool, &args(v)).map(|c| c.request).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

fn refusal(tool: &str, v: Value) -> String {
    match call(tool, &args(v)) {
        Err(Refusal::BadArguments(m)) | Err(Refusal::UnknownTool(m)) => m,
        Ok(c) => panic!("{tool} was sent: {:?}", c.request),
    }
}

#[test]
fn each_tool_is_one_ctl_request_in_the_ctls_words() {
    assert_eq!(request("run_status", json!({})), json!({"cmd": "status"}));
    assert_eq!(request("get_task", json!({"id": "build"})), json!({"cmd": "task build"}));
    assert_eq!(request("cancel", json!({"id": "build"})), json!({"cmd": "cancel build"}));
    assert_eq!(request("approve", json!({"ids": ["a", "b"]})), json!({"cmd": "approve a b"}));
    assert_eq!(request("reject", json!({"ids": ["a"]})), json!({"cmd": "reject a"}));
    assert_eq!(request("replay", json!({"id": "a"})), json!({"cmd": "replay a"}));
    assert_eq!(request("replay", json!({"all": true})), json!({"cmd": "replay all"}));
    assert_eq!(request("list_tasks", json!({"state": "held"})), json!({"cmd": "tasks"}));
    assert_eq!(
        request("submit", json!({"toml": "[[task]]\nid = \"x\"\n"})),
        json!({"cmd": "submit", "file": "mcp", "toml": "[[task]]\nid = \"x\"\n"})
    );
}

#[test]
fn bad_arguments_are_named_and_nothing_is_sent() {
    assert!(refusal("get_task", json!({})).contains("`id` is required"));
    assert!(refusal("get_task", json!({"id": 3})).contains("`id` must be a string"));
    assert!(refusal("cancel", json!({"id": "a b"})).contains("has a space"));
    assert!(refusal("approve", json!({"ids": []})).contains("`ids` is empty"));
    assert!(refusal("approve", json!({"ids": "a"})).contains("must be an array"));
    assert!(refusal("replay", json!({})).contains("which task?"));
    assert!(refusal("replay", json!({"id": "a", "all": true})).contains("not both"));
    assert!(refusal("replay", json!({"id": "all"})).contains("`all`: true"));
    assert!(refusal("submit", json!({})).contains("`toml` is required"));
    assert!(refusal("list_tasks", json!({"state": "done"})).contains("no state \"done\""));
    assert!(refusal("list_tasks", json!({"limit": 0})).contains("`limit`"));
    assert!(refusal("run_status", json!({"x": 1})).contains("no argument \"x\""));
    assert!(matches!(call("rm_rf", &Map::new()), Err(Refusal::UnknownTool(_))));
}

#[test]
fn every_schema_names_the_arguments_the_tool_reads() {
    let specs = specs();
    assert_eq!(names(), ["submit", "list_tasks", "get_task", "approve", "reject", "cancel", "replay", "run_status"]);
    for spec in &specs {
        assert_eq!(spec.schema["type"], "object", "{}", spec.name);
        for required in spec.schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            assert!(spec.schema["properties"].get(name).is_some(), "{}: {name} required but not a property", spec.name);
        }
    }
}

#[test]
fn list_tasks_filters_each_field_exactly_and_says_what_it_left_out() {
    let rows = json!([
        {"id": "a1", "state": "running", "pool": "agents", "why": null},
        {"id": "a2", "state": "dead_lettered", "pool": "agents", "why": "exit 3: quota"},
        {"id": "b1", "state": "running", "pool": "agents-2", "why": null},
    ]);
    let ids = |f: TaskFilter| {
        let (message, rows) = filter_rows(&rows, &f);
        let ids: Vec<String> = rows.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        (message, ids)
    };
    let limit = DEFAULT_LIMIT;
    assert_eq!(ids(TaskFilter { pool: Some("agents".into()), limit, ..Default::default() }).1, ["a1", "a2"]);
    assert_eq!(ids(TaskFilter { state: Some("running".into()), limit, ..Default::default() }).1, ["a1", "b1"]);
    assert_eq!(ids(TaskFilter { text: Some("quota".into()), limit, ..Default::default() }).1, ["a2"]);
    let (message, shown) = ids(TaskFilter { limit: 1, ..Default::default() });
    assert_eq!(shown, ["a1"]);
    assert!(message.contains("3 task(s) match; the first 1 shown"), "{message}");
}
