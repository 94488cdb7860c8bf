//! The MCP tools and what each asks of the control socket. Every tool is one ctl
//! request (DESIGN §12): its arguments are checked here only as far as the request's
//! shape needs (a string where a string goes, no spaces inside one task id, which the
//! ctl would split into two); whether the task exists, is held, or can be cancelled is
//! the manager's answer, in the ctl's own words. Pure: no I/O, so it is tested as data.

use serde_json::{json, Map, Value};

use crate::core::TaskStateName;

/// A tool: its name, what it does (read by the AI client to choose it), and the JSON
/// schema of its arguments.
pub struct ToolSpec {
    /// The name a `tools/call` uses.
    pub name: &'static str,
    /// For the client's model: what the tool does and when to use it.
    pub description: &'static str,
    /// The JSON schema of its arguments (an object schema).
    pub schema: Value,
}

/// Every tool the server lists, in the order it lists them.
pub fn specs() -> Vec<ToolSpec> {
    let id = json!({"type": "string", "description": "A task id, as list_tasks shows it."});
    let ids = json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Task ids."});
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    vec![
        ToolSpec {
            name: "submit",
            description: "Add tasks to the live run: TOML [[task]] entries, the syntax of `pitboss submit DIR FILE` \
                (id, pool, payload, depends_on, …). Checked against the run before anything is added: a bad entry \
                adds nothing and names its line and column.",
            schema: object(
                json!({
                    "toml": {"type": "string", "description": "The tasks as TOML, one [[task]] table each, e.g. a line [[task]] then id = \"t1\", pool = \"agents\", payload = { prompt = \"…\" } on lines of their own."},
                    "name": {"type": "string", "description": "A name for these tasks in messages and in the run's history (default: mcp)."}
                }),
                &["toml"],
            ),
        },
        ToolSpec {
            name: "list_tasks",
            description:
                "The run's tasks (id, state, attempts, pool, why), filtered. States: blocked, queued, running, \
                validating, retry_wait, awaiting_approval (or held), completed, dead_lettered, cancelled, skipped.",
            schema: object(
                json!({
                    "state": {"type": "string", "description": "Only tasks in this state (\"held\" = awaiting_approval)."},
                    "pool": {"type": "string", "description": "Only tasks of this pool."},
                    "text": {"type": "string", "description": "Only tasks whose id or reason contains this text."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "At most this many (default 200)."}
                }),
                &[],
            ),
        },
        ToolSpec {
            name: "get_task",
            description: "One task: state, attempts, result, history (its records from the event log) and the last \
                lines of its output.",
            schema: object(json!({"id": id}), &["id"]),
        },
        ToolSpec {
            name: "approve",
            description: "Approve tasks held for approval (awaiting_approval): they are dispatched.",
            schema: object(json!({"ids": ids}), &["ids"]),
        },
        ToolSpec {
            name: "reject",
            description: "Reject tasks held for approval: they are cancelled (not dead letters) and their dependents \
                skipped. A `reason` is recorded with the rejection and shown with the task.",
            schema: object(
                json!({
                    "ids": ids,
                    "reason": {"type": "string", "description": "Why, in a line (recorded in the run's history)."}
                }),
                &["ids"],
            ),
        },
        ToolSpec {
            name: "cancel",
            description: "Cancel a task: a running attempt's whole process group is ended; it is not retried.",
            schema: object(json!({"id": id}), &["id"]),
        },
        ToolSpec {
            name: "replay",
            description:
                "Requeue a dead letter (and revive its skipped dependents), or every dead letter with all = true. \
                With continue = true the next attempt continues the task's agent session (claude --resume, codex \
                resume) instead of starting afresh; refused for a task without a recorded session.",
            schema: object(
                json!({
                    "id": id,
                    "all": {"type": "boolean", "description": "Replay every dead letter (instead of one id)."},
                    "continue": {"type": "boolean", "description": "Continue the task's agent session (one id only)."}
                }),
                &[],
            ),
        },
        ToolSpec {
            name: "run_status",
            description: "The run: counts per state, pools (running, queued, paused, breaker), tasks held for \
                approval, and whether it finished. Answers from the run folder when no manager runs it.",
            schema: object(json!({}), &[]),
        },
    ]
}

/// One tool call as a ctl request, and what to do with the reply.
#[derive(Debug, PartialEq)]
pub struct Call {
    /// The request line sent to the control socket.
    pub request: Value,
    /// `list_tasks`: the filter applied to the reply's rows.
    pub filter: Option<TaskFilter>,
}

/// Why a call was not sent.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// No tool of that name (a protocol error, not a tool error).
    UnknownTool(String),
    /// The arguments do not fit the tool's schema; the message names the argument.
    BadArguments(String),
}

/// `list_tasks`'s filter (the ctl's `tasks FILTER` matches a substring of id, state or
/// pool at once; a manager asking for the running tasks of one pool wants each exact).
#[derive(Debug, PartialEq, Default)]
pub struct TaskFilter {
    /// An exact state name.
    pub state: Option<String>,
    /// An exact pool name.
    pub pool: Option<String>,
    /// A substring of the id or the reason.
    pub text: Option<String>,
    /// The most rows returned.
    pub limit: usize,
}

/// The rows `list_tasks` returns by default: enough to plan from, small enough for a
/// model's context (the reply says how many matched in all).
pub const DEFAULT_LIMIT: usize = 200;

/// The ctl request for `tool` called with `args`.
pub fn call(tool: &str, args: &Map<String, Value>) -> Result<Call, Refusal> {
    let Some(spec) = specs().into_iter().find(|s| s.name == tool) else {
        return Err(Refusal::UnknownTool(format!("no tool {tool:?}; tools: {}", names().join(", "))));
    };
    let allowed =
        spec.schema["properties"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    if let Some(extra) = args.keys().find(|k| !allowed.contains(k)) {
        let known = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        return Err(bad(format!("{tool}: no argument {extra:?} (arguments: {known})")));
    }
    let cmd = |line: String| Ok(Call { request: json!({"cmd": line}), filter: None });
    match tool {
        "submit" => {
            let toml =
                string(args, tool, "toml")?.ok_or_else(|| bad("submit: `toml` is required (the [[task]] entries)"))?;
            let name = string(args, tool, "name")?.unwrap_or_else(|| "mcp".to_string());
            Ok(Call { request: json!({"cmd": "submit", "file": name, "toml": toml}), filter: None })
        }
        "list_tasks" => {
            let state =
                string(args, tool, "state")?.map(|s| if s == "held" { "awaiting_approval".to_string() } else { s });
            if let Some(state) = &state {
                if !TaskStateName::ALL.iter().any(|n| n.as_str() == state) {
                    let names: Vec<&str> = TaskStateName::ALL.iter().map(|n| n.as_str()).collect();
                    return Err(bad(format!("list_tasks: no state {state:?} (states: {}, held)", names.join(", "))));
                }
            }
            let limit = match args.get("limit") {
                None | Some(Value::Null) => DEFAULT_LIMIT,
                Some(n) => match n.as_u64() {
                    Some(n @ 1..=10_000) => n as usize,
                    _ => {
                        return Err(bad(format!("list_tasks: `limit` must be a whole number from 1 to 10000, not {n}")))
                    }
                },
            };
            let filter =
                TaskFilter { state, pool: string(args, tool, "pool")?, text: string(args, tool, "text")?, limit };
            Ok(Call { request: json!({"cmd": "tasks"}), filter: Some(filter) })
        }
        "get_task" => cmd(format!("task {}", task_id(args, tool)?)),
        "cancel" => cmd(format!("cancel {}", task_id(args, tool)?)),
        "approve" => cmd(format!("approve {}", task_ids(args, tool)?.join(" "))),
        "reject" => {
            let ids = task_ids(args, tool)?.join(" ");
            match string(args, tool, "reason")?.filter(|r| !r.trim().is_empty()) {
                // One line: the ctl reads the rest of it as the reason.
                Some(reason) => {
                    cmd(format!("reject {ids} --reason {}", reason.split_whitespace().collect::<Vec<_>>().join(" ")))
                }
                None => cmd(format!("reject {ids}")),
            }
        }
        "replay" => {
            let all = match args.get("all") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(all)) => *all,
                Some(other) => return Err(bad(format!("replay: `all` must be true or false, not {other}"))),
            };
            let resume = match args.get("continue") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(c)) => *c,
                Some(other) => return Err(bad(format!("replay: `continue` must be true or false, not {other}"))),
            };
            match (all, args.contains_key("id")) {
                (true, _) if resume => Err(bad("replay: `continue` takes one `id`, not `all`")),
                (true, true) => Err(bad("replay: give `id` or `all`, not both")),
                (true, false) => cmd("replay all".into()),
                (false, false) => Err(bad("replay: which task? give `id` (or `all`: true for every dead letter)")),
                (false, true) => {
                    let id = task_id(args, tool)?;
                    if id == "all" {
                        return Err(bad("replay: to replay every dead letter, pass `all`: true"));
                    }
                    cmd(if resume { format!("replay {id} --continue") } else { format!("replay {id}") })
                }
            }
        }
        _ => cmd("status".into()),
    }
}

/// The tools' names, for messages.
pub fn names() -> Vec<&'static str> {
    specs().iter().map(|s| s.name).collect()
}

/// `list_tasks`: the rows of a `tasks` reply that pass `filter`, at most its limit,
/// and a line saying how many matched.
pub fn filter_rows(rows: &Value, filter: &TaskFilter) -> (String, Value) {
    let empty = Vec::new();
    let field = |row: &Value, name: &str| row[name].as_str().unwrap_or_default().to_string();
    let matched: Vec<&Value> = rows
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|row| filter.state.as_ref().is_none_or(|s| field(row, "state") == *s))
        .filter(|row| filter.pool.as_ref().is_none_or(|p| field(row, "pool") == *p))
        .filter(|row| {
            filter.text.as_ref().is_none_or(|t| field(row, "id").contains(t) || field(row, "why").contains(t))
        })
        .collect();
    let shown: Vec<Value> = matched.iter().take(filter.limit).map(|r| (*r).clone()).collect();
    let message = if shown.len() < matched.len() {
        format!("{} task(s) match; the first {} shown (raise `limit` or narrow the filter)", matched.len(), shown.len())
    } else {
        format!("{} task(s) match", matched.len())
    };
    (message, Value::Array(shown))
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::BadArguments(message.into())
}

/// An optional string argument; any other type is refused by name.
fn string(args: &Map<String, Value>, tool: &str, name: &str) -> Result<Option<String>, Refusal> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("{tool}: `{name}` must be a string, not {other}"))),
    }
}

/// The required `id`: one word (the ctl splits its command at spaces).
fn task_id(args: &Map<String, Value>, tool: &str) -> Result<String, Refusal> {
    let id = string(args, tool, "id")?.ok_or_else(|| bad(format!("{tool}: `id` is required (a task id)")))?;
    one_word(tool, id)
}

/// The required `ids`: a non-empty array of task ids.
fn task_ids(args: &Map<String, Value>, tool: &str) -> Result<Vec<String>, Refusal> {
    let list = match args.get("ids") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => return Err(bad(format!("{tool}: `ids` is empty; name at least one task"))),
        None | Some(Value::Null) => return Err(bad(format!("{tool}: `ids` is required (an array of task ids)"))),
        Some(other) => return Err(bad(format!("{tool}: `ids` must be an array of task ids, not {other}"))),
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) => one_word(tool, s.clone()),
            other => Err(bad(format!("{tool}: each of `ids` must be a string, not {other}"))),
        })
        .collect()
}

fn one_word(tool: &str, id: String) -> Result<String, Refusal> {
    if id.trim().is_empty() {
        return Err(bad(format!("{tool}: the task id is empty")));
    }
    if id.chars().any(char::is_whitespace) {
        return Err(bad(format!("{tool}: task id {id:?} has a space; task ids never do")));
    }
    Ok(id)
}

#[cfg(test)]
mod tests;
