//! TOML text → raw structs that keep the byte span of every value an operator may get
//! wrong, and the small value parsers (durations, line:col) the checks use. Syntax
//! errors and unknown keys stop here: serde cannot go on past them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{shape, Problem};

/// Reads workflow text into raw structs, or the problems that stop it: a syntax error
/// (the first one: the parser cannot go on past it), or every key that is unknown or
/// holds the wrong kind of value (`shape.rs`).
pub(super) fn read(text: &str) -> Result<RawWorkflow, Vec<Problem>> {
    read_keys(text, shape::WORKFLOW)
}

/// As [`read`], for a document whose top level takes `keys` (a file of `[[task]]`
/// entries only: [`shape::TASKS`]).
pub(super) fn read_keys(text: &str, keys: &'static [shape::Key]) -> Result<RawWorkflow, Vec<Problem>> {
    let at = |offset: usize, message: String| {
        let (line, col) = line_col(text, offset);
        Problem { line, col, message }
    };
    let document = toml::de::DeTable::parse(text).map_err(|e| {
        let start = e.span().unwrap_or(0..0).start;
        vec![at(start, format!("not valid TOML: {}", plain_syntax(syntax_message(e.message()), text, start)))]
    })?;
    let mut problems: Vec<Problem> =
        shape::check_keys(text, &document, keys).into_iter().map(|(span, message)| at(span.start, message)).collect();
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.col));
        return Err(problems);
    }
    // The shape is right, so serde has nothing left to refuse; should it still, its
    // message is the best there is. serde reads the document already parsed (and
    // frees it as it goes): parsing the text again would hold a second tree, which for
    // a 100,000-task file is hundreds of MB (each small table is a whole B-tree node).
    RawWorkflow::deserialize(toml::de::Deserializer::from(document))
        .map_err(|e| vec![at(e.span().unwrap_or(0..0).start, syntax_message(e.message()))])
}

/// The part of a file outside its task sections (`split.rs`), read alone: `None` when
/// it has any problem, or a `task` key of its own (`task = [...]`, which the task
/// sections would extend), so that the caller reads the whole file instead.
pub(super) fn read_rest(rest: &str, keys: &'static [shape::Key]) -> Option<RawWorkflow> {
    let document = toml::de::DeTable::parse(rest).ok()?;
    if document.get_ref().iter().any(|(name, _)| name.get_ref() == "task") {
        return None;
    }
    if !shape::check_keys(rest, &document, keys).is_empty() {
        return None;
    }
    RawWorkflow::deserialize(toml::de::Deserializer::from(document)).ok()
}

/// One `[[task]]` section of a file (`split.rs`), read alone through the same shape
/// check and serde path as a whole file: `None` when it has any problem.
pub(super) fn read_task(section: &str) -> Option<RawTask> {
    let document = toml::de::DeTable::parse(section).ok()?;
    if !shape::check_keys(section, &document, shape::TASKS).is_empty() {
        return None;
    }
    let raw = RawWorkflow::deserialize(toml::de::Deserializer::from(document)).ok()?;
    let mut tasks = raw.task.into_iter();
    match (tasks.next(), tasks.next()) {
        (Some(task), None) => Some(task),
        _ => None,
    }
}

/// The parser's words for the two mistakes operators make most, in theirs: a value
/// without quotes, and a key or section written twice (named).
fn plain_syntax(message: String, text: &str, start: usize) -> String {
    if message.starts_with("string values must be quoted") {
        return "text must be in quotes, such as name = \"value\"".to_string();
    }
    if message == "duplicate key" {
        let rest = text.get(start..).unwrap_or("");
        let word: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).collect();
        let section = text.get(..start).is_some_and(|before| before.ends_with('['));
        match (word.is_empty(), section) {
            (true, _) => {}
            (false, true) => {
                return format!(
                    "[{word}] is written twice; a section appears once (for a list, write [[{word}]] every time)"
                )
            }
            (false, false) => return format!("`{word}` is written twice in this table"),
        }
    }
    message
}

/// A TOML parser message on one line.
fn syntax_message(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join("; ")
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // A span of another text must not cut a character (a panic); it would be wrong anyway.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Parses durations such as `500ms`, `30s`, `5m`, `1h`, `1m30s` into milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad =
        || format!("bad duration {text:?}: expected a number and a unit (ms, s, m, h), such as \"30s\" or \"1m30s\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add((number * scale).round() as u64);
    }
    Ok(total)
}

/// A workflow file as written: every value an operator may get wrong keeps its span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkflow {
    pub(super) run: Option<RawRun>,
    pub(super) defaults: Option<RawDefaults>,
    pub(super) balancer: Option<RawBalancer>,
    pub(super) planner: Option<RawPlanner>,
    #[serde(default)]
    pub(super) pool: Vec<RawPool>,
    #[serde(default)]
    pub(super) task: Vec<RawTask>,
    #[serde(default)]
    pub(super) notify: Vec<super::notify::RawNotify>,
    pub(super) budget: Option<RawBudget>,
}

/// `[budget]`: what the run and each task may spend, in dollars (DESIGN §13).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) max_cost_usd: Option<Spanned<f64>>,
    pub(super) task_cost_usd: Option<Spanned<f64>>,
}

/// `[run]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub(super) name: Option<String>,
    pub(super) max_parallel: Option<Spanned<i128>>,
    pub(super) kill_grace: Option<Spanned<String>>,
    /// `broker = "redis://…"` (DESIGN §7).
    pub(super) broker: Option<Spanned<String>>,
    /// `broker_lease = "30s"`.
    pub(super) broker_lease: Option<Spanned<String>>,
    /// `broker_password_file = "…"` (relative to the workflow file).
    pub(super) broker_password_file: Option<Spanned<String>>,
}

/// `[defaults]`: the timeout and retry policy of tasks that set none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) retry: Option<RawRetry>,
    pub(super) gates: Option<Spanned<Vec<Spanned<RawGate>>>>,
}

/// One entry of `gates = [...]`: exactly one of `schema`, `command`, `review`,
/// `security` or `perf`, with the keys that kind takes (checked in `gates.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    pub(super) schema: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) review: Option<Spanned<String>>,
    pub(super) min_score: Option<Spanned<i128>>,
    pub(super) criteria: Option<Spanned<Vec<String>>>,
    pub(super) retry: Option<Spanned<RawRetry>>,
    /// `true`, `false`, or `{ command = [...] }` (the shape check allows only these).
    pub(super) security: Option<Spanned<toml::Value>>,
    pub(super) perf: Option<Spanned<RawPerf>>,
}

/// A gate's `perf = {...}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerf {
    pub(super) command: Spanned<Vec<Spanned<String>>>,
    pub(super) max_time: Option<Spanned<String>>,
    pub(super) max_rss_mb: Option<Spanned<i128>>,
    pub(super) runs: Option<Spanned<i128>>,
    pub(super) max_regression: Option<Spanned<f64>>,
    pub(super) baseline: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

/// `[balancer]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBalancer {
    pub(super) strategy: Spanned<String>,
}

/// `[planner]`: limits on what planner workers spawn (DESIGN §11).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlanner {
    pub(super) max_depth: Option<Spanned<i128>>,
    pub(super) max_children: Option<Spanned<i128>>,
    pub(super) max_tasks: Option<Spanned<i128>>,
    pub(super) approve: Option<Spanned<String>>,
}

/// `retry = {…}`, in `[defaults]` or a task.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) max_attempts: Option<Spanned<i128>>,
    pub(super) initial: Option<Spanned<String>>,
    pub(super) max: Option<Spanned<String>>,
    pub(super) multiplier: Option<Spanned<f64>>,
    pub(super) jitter: Option<bool>,
    pub(super) never_on: Option<Vec<Spanned<i128>>>,
}

/// A pool's `breaker = {…}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) failures: Spanned<i128>,
    pub(super) window: Spanned<String>,
    pub(super) cooldown: Spanned<String>,
    pub(super) half_open: Option<Spanned<i128>>,
}

/// A persistent pool's `recycle = {…}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecycle {
    pub(super) max_tasks: Option<Spanned<i128>>,
    pub(super) max_rss_mb: Option<Spanned<i128>>,
}

/// A task's `fallback = {…}`: exactly one of the three keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFallback {
    pub(super) result: Option<toml::Value>,
    pub(super) pool: Option<Spanned<String>>,
    pub(super) skip: Option<bool>,
}

/// One `[[pool]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) name: Spanned<String>,
    pub(super) command: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) capabilities: Vec<Spanned<String>>,
    pub(super) concurrency: Option<Spanned<i128>>,
    pub(super) stdin: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) secret_env: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) clean_env: bool,
    pub(super) cwd: Option<Spanned<String>>,
    pub(super) preset: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) per_worker: Option<Spanned<i128>>,
    pub(super) recycle: Option<Spanned<RawRecycle>>,
    pub(super) breaker: Option<Spanned<RawBreaker>>,
    pub(super) stall_after: Option<Spanned<String>>,
    pub(super) stall_kill_after: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) input_guard: bool,
    pub(super) task_cost_usd: Option<Spanned<f64>>,

    pub(super) workspace: Option<Spanned<String>>,
    pub(super) repo: Option<Spanned<String>>,

    pub(super) model: Option<Spanned<String>>,
    pub(super) args: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) prompt: Option<Spanned<String>>,
}

/// One `[[task]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTask {
    pub(super) id: Spanned<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) pool: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) requires: Vec<Spanned<String>>,
    pub(super) payload: Option<toml::Value>,
    #[serde(default)]
    pub(super) depends_on: Vec<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) retry: Option<RawRetry>,
    pub(super) gates: Option<Spanned<Vec<Spanned<RawGate>>>>,
    pub(super) consensus: Option<Spanned<toml::Value>>,
    pub(super) fallback: Option<Spanned<RawFallback>>,
    pub(super) input_guard: Option<bool>,
    pub(super) workspace: Option<Spanned<String>>,
    pub(super) repo: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("five minutes").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nb = \"é\" x";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, text.len()), (2, 10));
    }
}
