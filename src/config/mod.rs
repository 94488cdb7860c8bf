//! Workflow TOML → a validated [`Workflow`] (the `core::workflow` types).
//!
//! Parsing happens in two passes. `parse.rs` reads the file into "raw" structs that
//! keep the byte span of every value an operator may get wrong, after `shape.rs` has
//! checked every key and the kind of every value (in plain words, all at once); syntax
//! errors and shape problems stop this pass. `check.rs` builds the
//! workflow with the values of `defaults.rs` for what the file leaves out, reporting
//! what only the file can show (bad durations, unknown modes, keys that do not apply),
//! then runs the core's own checks (`Workflow::check`: ids, dependencies, cycles, pools,
//! capabilities, limits, placeholders) and places each of their errors at the value it
//! is about. It collects *every* problem, so one `pitboss validate` shows all of them,
//! each as `FILE:LINE:COL: message`.
//!
//! A valid file is read one `[[task]]` section at a time (`split.rs` finds them,
//! `sections.rs` reads them), so that memory follows the file, not its TOML tree;
//! a file with any problem, or one the split cannot place, is read whole as above,
//! which alone places problems (issue 14).
//!
//! The validated [`Workflow`] is plain data with every default resolved and every
//! relative path made absolute: it is stored whole in the first event of a run, so
//! `resume` needs nothing but the run folder.

mod agents;
mod broker;
mod budget;
mod check;
mod consensus;
mod defaults;
mod gates;
mod notify;
mod parse;
mod sections;
mod shape;
mod split;
mod workspace;

use std::fmt;
use std::path::Path;

use crate::core::workflow::{BrokerUrl, Workflow};

pub use parse::parse_duration;

/// One problem found in a workflow file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong, in plain words.
    pub message: String,
}

/// Every problem found in one workflow file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file as the operator named it.
    pub file: String,
    /// Problems in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, p.line, p.col, p.message)?;
        }
        Ok(())
    }
}

/// Reads and validates a workflow file.
pub fn load(path: &Path) -> Result<Workflow, ConfigError> {
    load_with_broker(path, None)
}

/// [`load`] for a run given `--broker URL`: the workflow is checked, and returned,
/// as a broker run's (its `[run] broker` URL replaced, or a default broker spec
/// added), so its pools may leave `command` out as with `[run] broker`.
pub fn load_with_broker(path: &Path, broker: Option<&BrokerUrl>) -> Result<Workflow, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let message = match e.kind() {
            std::io::ErrorKind::InvalidData => "the workflow is not UTF-8 text".to_string(),
            _ => format!("cannot read the workflow: {e}"),
        };
        ConfigError { file: file.clone(), problems: vec![Problem { line: 1, col: 1, message }] }
    })?;
    let base =
        path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    parse_with_broker(&text, &file, &base, broker)
}

/// Validates workflow text; `base` resolves relative paths (the file's folder).
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Workflow, ConfigError> {
    parse_with_broker(text, file, base, None)
}

/// [`parse`] with the command line's broker (see [`load_with_broker`]).
pub fn parse_with_broker(
    text: &str,
    file: &str,
    base: &Path,
    broker: Option<&BrokerUrl>,
) -> Result<Workflow, ConfigError> {
    if let Some(workflow) = sections::workflow(text, base, broker) {
        return Ok(workflow);
    }
    // The whole document at once: a file that cannot be split (no `[[task]]` header,
    // `task = [...]` written inline, a sub-table of a task after another table…), or
    // one with a problem, whose messages come from here and only here.
    let error = |problems| ConfigError { file: file.to_string(), problems };
    let raw = parse::read(text).map_err(error)?;
    check::check(text, &raw, base, broker).map_err(error)
}

/// Tasks to add to a live run (`pitboss submit DIR FILE`, DESIGN §11): `[[task]]`
/// entries in `text`, read with the workflow file's syntax and resolved against the
/// run's `workflow` (its pools, defaults and capabilities); they may depend on its
/// tasks. `file` names the text in errors, and relative paths in it (gate programs,
/// schema files) resolve against its folder: give it as the operator's path to the file
/// (absolute when the manager may run in another folder).
pub fn tasks_from_toml(
    text: &str,
    file: &str,
    workflow: &Workflow,
) -> Result<Vec<crate::core::workflow::TaskSpec>, ConfigError> {
    let ids: std::collections::HashSet<&str> = workflow.tasks.iter().map(|t| t.id.as_str()).collect();
    tasks_for_run(text, file, workflow, &|id| ids.contains(id))
}

/// [`tasks_from_toml`] for a run whose task ids `known` answers for (the live run's
/// own index): nothing is built per task of the run, so a submit costs what it
/// submits (issue 14). `workflow` gives the pools, defaults and capabilities only.
pub fn tasks_for_run(
    text: &str,
    file: &str,
    workflow: &Workflow,
    known: &dyn Fn(&str) -> bool,
) -> Result<Vec<crate::core::workflow::TaskSpec>, ConfigError> {
    let error = |problems| ConfigError { file: file.to_string(), problems };
    // Relative paths mean "next to the submitted file", as a workflow's mean "next to
    // the workflow"; a bare name's parent is "" (the current folder).
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    // Section by section as a workflow is (`sections.rs`); whole for the messages.
    if let Some(tasks) = sections::tasks(text, workflow, known, base) {
        return Ok(tasks);
    }
    let raw = parse::read_keys(text, shape::TASKS).map_err(error)?;
    check::tasks(text, &raw, workflow, known, base).map_err(error)
}

/// A planner's spawned tasks (the `tasks` array of its `{"pitboss":"spawn"}` lines,
/// DESIGN §4, §11), read exactly as `[[task]]` entries of a workflow file are: the
/// JSON is written as TOML and goes through [`tasks_from_toml`]'s path, resolved
/// against the run's `workflow`. Ids are as the worker wrote them (the core
/// namespaces them under the parent); dependencies name siblings. The error names
/// the task (by position and id) and what is wrong, in one line.
pub fn tasks_from_json(
    value: &serde_json::Value,
    workflow: &Workflow,
) -> Result<Vec<crate::core::workflow::TaskSpec>, String> {
    let serde_json::Value::Array(items) = value else {
        return Err("\"tasks\" must be a list of task objects".to_string());
    };
    let mut entries = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(format!("spawned task {}: must be an object such as {{\"id\": …}}", k + 1));
        }
        let failed = |what: String| format!("spawned task {} ({}): {what}", k + 1, json_id(item));
        if let Some(at) = null_at(item, String::new()) {
            return Err(failed(format!("{at} is null, which a task cannot hold (leave the key out)")));
        }
        let entry = toml::Value::try_from(item).map_err(|e| failed(e.to_string()))?;
        entries.push(entry);
    }
    let mut document = toml::Table::new();
    document.insert("task".to_string(), toml::Value::Array(entries));
    let text = toml::to_string(&document).map_err(|e| format!("the spawned tasks cannot be read: {e}"))?;
    // Where each task begins in the text written, to name the task a problem is in.
    let starts: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.trim() == "[[task]]").map(|(n, _)| n + 1).collect();
    let raw = parse::read_keys(&text, shape::TASKS);
    // A planner's tasks belong to the workflow: its paths resolve next to the file.
    let base = workflow.folder.as_deref().unwrap_or(Path::new("."));
    // Its dependencies are its siblings: no task of the run is known to it.
    let checked = raw.and_then(|raw| check::tasks(&text, &raw, workflow, &|_| false, base));
    checked.map_err(|problems| {
        let said: Vec<String> = problems
            .iter()
            .map(|p| {
                let k = starts.iter().rposition(|&s| s <= p.line).unwrap_or(0);
                let id = items.get(k).map(json_id).unwrap_or_default();
                format!("spawned task {} ({id}): {}", k + 1, p.message)
            })
            .collect();
        said.join("; ")
    })
}

/// The path of the first `null` in `value` (TOML has none), such as `payload.x`.
fn null_at(value: &serde_json::Value, at: String) -> Option<String> {
    let join = |key: &str| if at.is_empty() { key.to_string() } else { format!("{at}.{key}") };
    match value {
        serde_json::Value::Null => Some(if at.is_empty() { "the value".to_string() } else { at }),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| null_at(v, join(&i.to_string()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| null_at(v, join(k))),
        _ => None,
    }
}

/// A spawned task's `id` as the worker gave it, for messages.
fn json_id(item: &serde_json::Value) -> String {
    match item.get("id") {
        Some(serde_json::Value::String(id)) => format!("{id:?}"),
        _ => "no id".to_string(),
    }
}

#[cfg(test)]
mod sections_tests;
#[cfg(test)]
mod tests;
