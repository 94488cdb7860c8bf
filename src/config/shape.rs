//! The first look at a workflow file, before any value is read: is every key one the
//! file format knows, and is every value of the kind its key takes (text, a whole
//! number, a duration, a table, `[[sections]]`…)? The answer comes in the operator's
//! words, at the value's line and column, and for every problem at once.
//!
//! serde could say the same things, but in its own words (`expected struct RawRetry`,
//! `$__toml_private_datetime`, `invalid type: map, expected a string` for `[[run]]`),
//! and only the first one. So the file's shape is written down here ([`WORKFLOW`]) and
//! checked on the parsed TOML document; serde then reads a file whose shape is known to
//! be right. The shape must match the raw structs of `parse.rs`: a key added there is
//! added here (a missing one is refused as unknown, which the tests show at once).

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// How wide a number may be: any TOML value (a payload) holds 64 bits; a count is
/// read wider, so that its range check can quote it as written.
#[derive(Clone, Copy)]
enum Width {
    Data,
    Count,
}

/// What a key's value must be.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// A string.
    Text,
    /// An integer (its range is checked later, with the key's own limits).
    Whole,
    /// An integer or a float.
    Number,
    /// A boolean.
    Flag,
    /// A string such as "30s" (parsed later).
    Duration,
    /// An array of strings.
    Texts,
    /// An array of integers.
    Wholes,
    /// A table whose values are strings (`env`).
    TextTable,
    /// One table (`[run]`, `retry = { … }`) with these keys.
    Table(&'static [Key]),
    /// An array of tables (`[[pool]]`) with these keys.
    Sections(&'static [Key]),
    /// `true`/`false`, or a table with these keys (`security = { command = … }`).
    Switch(&'static [Key]),
    /// Any TOML but dates and times, which have no JSON form (a payload, a result).
    Data,
}

/// One key a table may hold.
#[derive(Clone, Copy)]
pub(super) struct Key {
    name: &'static str,
    shape: Shape,
    required: bool,
    /// A table read as free TOML (`consensus`): its counts are 64-bit TOML values
    /// there, so a wider one must be caught here, not by the reader's own words.
    free: bool,
}

const fn key(name: &'static str, shape: Shape) -> Key {
    Key { name, shape, required: false, free: false }
}

const fn required(name: &'static str, shape: Shape) -> Key {
    Key { name, shape, required: true, free: false }
}

/// A table with these keys that is read as free TOML (see [`Key::free`]).
const fn free_table(name: &'static str, keys: &'static [Key]) -> Key {
    Key { name, shape: Shape::Table(keys), required: false, free: true }
}

const RETRY: &[Key] = &[
    key("max_attempts", Shape::Whole),
    key("initial", Shape::Duration),
    key("max", Shape::Duration),
    key("multiplier", Shape::Number),
    key("jitter", Shape::Flag),
    key("never_on", Shape::Wholes),
];

const BREAKER: &[Key] = &[
    required("failures", Shape::Whole),
    required("window", Shape::Duration),
    required("cooldown", Shape::Duration),
    key("half_open", Shape::Whole),
];

const RECYCLE: &[Key] = &[key("max_tasks", Shape::Whole), key("max_rss_mb", Shape::Whole)];

const FALLBACK: &[Key] = &[key("result", Shape::Data), key("pool", Shape::Text), key("skip", Shape::Flag)];

const CONSENSUS: &[Key] = &[
    required("replicas", Shape::Whole),
    required("strategy", Shape::Text),
    key("quorum", Shape::Whole),
    key("key", Shape::Text),
    key("pools", Shape::Texts),
    key("judge", Shape::Text),
];

const SECURITY: &[Key] = &[key("command", Shape::Texts)];

const PERF: &[Key] = &[
    required("command", Shape::Texts),
    key("max_time", Shape::Duration),
    key("max_rss_mb", Shape::Whole),
    key("runs", Shape::Whole),
    key("max_regression", Shape::Number),
    key("baseline", Shape::Text),
    key("timeout", Shape::Duration),
];

/// One entry of `gates = [...]` (which keys go with which kind is checked later).
const GATE: &[Key] = &[
    key("schema", Shape::Text),
    key("command", Shape::Texts),
    key("timeout", Shape::Duration),
    key("review", Shape::Text),
    key("min_score", Shape::Whole),
    key("criteria", Shape::Texts),
    key("retry", Shape::Table(RETRY)),
    key("security", Shape::Switch(SECURITY)),
    key("perf", Shape::Table(PERF)),
];

const RUN: &[Key] = &[
    key("name", Shape::Text),
    key("max_parallel", Shape::Whole),
    key("kill_grace", Shape::Duration),
    key("broker", Shape::Text),
    key("broker_lease", Shape::Duration),
    key("broker_password_file", Shape::Text),
];

const DEFAULTS: &[Key] =
    &[key("timeout", Shape::Duration), key("retry", Shape::Table(RETRY)), key("gates", Shape::Sections(GATE))];

const BALANCER: &[Key] = &[required("strategy", Shape::Text)];

const PLANNER: &[Key] = &[
    key("max_depth", Shape::Whole),
    key("max_children", Shape::Whole),
    key("max_tasks", Shape::Whole),
    key("approve", Shape::Text),
];

const POOL: &[Key] = &[
    required("name", Shape::Text),
    key("command", Shape::Texts),
    key("capabilities", Shape::Texts),
    key("concurrency", Shape::Whole),
    key("stdin", Shape::Text),
    key("env", Shape::TextTable),
    key("secret_env", Shape::Texts),
    key("clean_env", Shape::Flag),
    key("cwd", Shape::Text),
    key("preset", Shape::Text),
    key("mode", Shape::Text),
    key("per_worker", Shape::Whole),
    key("recycle", Shape::Table(RECYCLE)),
    key("breaker", Shape::Table(BREAKER)),
    key("stall_after", Shape::Duration),
    key("stall_kill_after", Shape::Duration),
    key("input_guard", Shape::Flag),
    key("task_cost_usd", Shape::Number),
    key("workspace", Shape::Text),
    key("repo", Shape::Text),
    key("model", Shape::Text),
    key("args", Shape::Texts),
    key("prompt", Shape::Text),
];

const TASK: &[Key] = &[
    required("id", Shape::Text),
    key("type", Shape::Text),
    key("pool", Shape::Text),
    key("requires", Shape::Texts),
    key("payload", Shape::Data),
    key("depends_on", Shape::Texts),
    key("timeout", Shape::Duration),
    key("retry", Shape::Table(RETRY)),
    key("gates", Shape::Sections(GATE)),
    free_table("consensus", CONSENSUS),
    key("fallback", Shape::Table(FALLBACK)),
    key("input_guard", Shape::Flag),
    key("workspace", Shape::Text),
    key("repo", Shape::Text),
];

/// `[[notify]]` (DESIGN §12; values checked in `notify.rs`).
const NOTIFY: &[Key] = &[
    required("on", Shape::Texts),
    required("command", Shape::Texts),
    key("timeout", Shape::Duration),
    key("concurrency", Shape::Whole),
];

/// The whole file.
pub(super) const WORKFLOW: &[Key] = &[
    key("run", Shape::Table(RUN)),
    key("defaults", Shape::Table(DEFAULTS)),
    key("balancer", Shape::Table(BALANCER)),
    key("planner", Shape::Table(PLANNER)),
    key("pool", Shape::Sections(POOL)),
    key("task", Shape::Sections(TASK)),
    key("notify", Shape::Sections(NOTIFY)),
    key("budget", Shape::Table(BUDGET)),
];

/// `[budget]` (DESIGN §13; values checked in `budget.rs`).
const BUDGET: &[Key] = &[key("max_cost_usd", Shape::Number), key("task_cost_usd", Shape::Number)];

/// A file of tasks to add to a run (`pitboss submit`, a planner's spawn): `[[task]]`
/// entries only.
pub(super) const TASKS: &[Key] = &[key("task", Shape::Sections(TASK))];

/// A problem with the file's shape: the byte span it is about and what is wrong.
pub(super) type ShapeProblem = (Range<usize>, String);

/// Every shape problem of a parsed document whose top level takes `keys` (a workflow
/// file: [`WORKFLOW`]), in no particular order.
pub(super) fn check_keys(text: &str, document: &Spanned<DeTable<'_>>, keys: &'static [Key]) -> Vec<ShapeProblem> {
    let mut walk = Walk { text, problems: Vec::new(), free_depth: 0 };
    walk.table(document.get_ref(), document.span(), keys, &Place::File);
    walk.problems
}

/// Where a table is, for paths and messages.
enum Place<'a> {
    /// The top of the file.
    File,
    /// One `[[pool]]` or `[[task]]`: its keys are named bare (`concurrency`).
    Section(&'a str),
    /// A top-level table (`[run]`): its keys are named `run.max_parallel`.
    Top(&'a str),
    /// A table under a key (`run`, `retry`): its keys are named `run.max_parallel`.
    Under(String),
}

impl Place<'_> {
    /// How a key of this table is named in messages.
    fn path(&self, key: &str) -> String {
        match self {
            Place::File | Place::Section(_) => key.to_string(),
            Place::Top(prefix) => format!("{prefix}.{key}"),
            Place::Under(prefix) => format!("{prefix}.{key}"),
        }
    }

    /// The table itself, as a message's subject.
    fn subject(&self) -> String {
        match self {
            Place::File => "the workflow".to_string(),
            Place::Section(name) => format!("this [[{name}]]"),
            Place::Top(name) => format!("[{name}]"),
            Place::Under(prefix) => prefix.clone(),
        }
    }
}

struct Walk<'t> {
    text: &'t str,
    problems: Vec<ShapeProblem>,
    /// How many free-TOML tables (see [`Key::free`]) enclose the current key.
    free_depth: usize,
}

impl Walk<'_> {
    fn report(&mut self, span: Range<usize>, message: String) {
        self.problems.push((span, message));
    }

    fn table(&mut self, table: &DeTable<'_>, span: Range<usize>, keys: &[Key], place: &Place<'_>) {
        for (name, value) in table.iter() {
            match keys.iter().find(|k| k.name == name.get_ref().as_ref()) {
                Some(k) => self.value(value, k, place),
                None => {
                    let message = unknown_key(name.get_ref(), keys, place);
                    self.report(name.span(), message);
                }
            }
        }
        for k in keys.iter().filter(|k| k.required) {
            if !table.iter().any(|(name, _)| name.get_ref().as_ref() == k.name) {
                self.report(span.clone(), format!("{} has no {}", place.subject(), k.name));
            }
        }
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, key: &Key, place: &Place<'_>) {
        let path = place.path(key.name);
        let span = value.span();
        let v = value.get_ref();
        let fits = match (key.shape, v) {
            (Shape::Data, _) => {
                self.no_datetimes(value);
                true
            }
            (Shape::Text | Shape::Duration, DeValue::String(_)) => true,
            (Shape::Whole, DeValue::Integer(_)) => true,
            (Shape::Number, DeValue::Integer(_) | DeValue::Float(_)) => true,
            (Shape::Flag, DeValue::Boolean(_)) => true,
            (Shape::Texts | Shape::Wholes, DeValue::Array(items)) => {
                for item in items {
                    let ok = match key.shape {
                        Shape::Texts => matches!(item.get_ref(), DeValue::String(_)),
                        _ => matches!(item.get_ref(), DeValue::Integer(_)),
                    };
                    if !ok {
                        let message = format!("{path} must be {}, not {}", expected(key), self.found(item));
                        self.report(item.span(), message);
                    }
                }
                true
            }
            (Shape::TextTable, DeValue::Table(entries)) => {
                for (name, item) in entries.iter() {
                    if !matches!(item.get_ref(), DeValue::String(_)) {
                        let message =
                            format!("{path}.{} must be text in quotes, not {}", name.get_ref(), self.found(item));
                        self.report(item.span(), message);
                    }
                }
                true
            }
            (Shape::Switch(_), DeValue::Boolean(_)) => true,
            (Shape::Table(keys) | Shape::Switch(keys), DeValue::Table(table)) => {
                let inner = match place {
                    Place::File => Place::Top(key.name),
                    _ => Place::Under(path.clone()),
                };
                self.free_depth += usize::from(key.free);
                self.table(table, span.clone(), keys, &inner);
                self.free_depth -= usize::from(key.free);
                true
            }
            (Shape::Sections(keys), DeValue::Array(items)) if items.iter().all(|i| i.get_ref().is_table()) => {
                for item in items {
                    if let DeValue::Table(table) = item.get_ref() {
                        // `[[task]]` at the top; an inline list of tables (`gates`) is named by its path.
                        let inner = match place {
                            Place::File => Place::Section(key.name),
                            _ => Place::Under(path.clone()),
                        };
                        self.table(table, item.span(), keys, &inner);
                    }
                }
                true
            }
            _ => false,
        };
        if fits {
            // serde reads data as 64-bit numbers and counts as 128-bit ones: a number
            // wider than that would stop it with its own words.
            match key.shape {
                Shape::Whole | Shape::Wholes => self.numbers_fit(value, &path, Width::Count),
                Shape::Number | Shape::Data => self.numbers_fit(value, &path, Width::Data),
                _ => true,
            };
            return;
        }
        let message = match (key.shape, self.header(&span)) {
            (Shape::Table(_), Some(header)) if header.starts_with("[[") => {
                let name = header.trim_start_matches('[').trim_end_matches(']');
                format!("{header} makes a list of sections, but there is only one {} section: write [{name}]", key.name)
            }
            (Shape::Sections(_), Some(header)) if !header.starts_with("[[") => {
                format!("{header} is a single section, but {0}s are a list: write [[{0}]] for each {0}", key.name)
            }
            _ => format!("{path} must be {}, not {}", expected(key), self.found(value)),
        };
        self.report(span, message);
    }

    /// Reports the numbers in `value` too large to read (past 64 bits in data, past
    /// 128 in a count, whose range is checked later in its own words; a float that
    /// overflows to infinity); true when all of them fit. A whole number where a float
    /// is meant is read as a float, and fits.
    fn numbers_fit(&mut self, value: &Spanned<DeValue<'_>>, path: &str, width: Width) -> bool {
        let fits = match value.get_ref() {
            DeValue::Integer(n) => match width {
                Width::Data => i64::from_str_radix(n.as_str(), n.radix()).is_ok(),
                Width::Count if self.free_depth > 0 => i64::from_str_radix(n.as_str(), n.radix()).is_ok(),
                Width::Count => i128::from_str_radix(n.as_str(), n.radix()).is_ok(),
            },
            DeValue::Float(f) => {
                f.as_str().contains("inf") || f.as_str().parse::<f64>().is_ok_and(|f| !f.is_infinite())
            }
            DeValue::Array(items) => {
                // Every number is looked at (and reported), not only up to the first.
                let mut all = true;
                for item in items {
                    all &= self.numbers_fit(item, path, width);
                }
                return all;
            }
            DeValue::Table(table) => {
                let mut all = true;
                for (_, item) in table.iter() {
                    all &= self.numbers_fit(item, path, width);
                }
                return all;
            }
            _ => true,
        };
        if !fits {
            let written = self.source(value);
            let message = match (value.get_ref(), width) {
                (DeValue::Float(_), _) => format!("{path}: the number {written} is too large"),
                (_, Width::Data) => {
                    format!("{path}: the number {written} does not fit 64 bits; write it as text in quotes")
                }
                (_, Width::Count) => format!("{path}: the number {written} is out of range"),
            };
            self.report(value.span(), message);
        }
        fits
    }

    /// Dates and times inside free-form data (they have no JSON form).
    fn no_datetimes(&mut self, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Datetime(_) => {
                let written = self.source(value);
                let message = format!("a date or time cannot be passed to a worker; write it as text: \"{written}\"");
                self.report(value.span(), message);
            }
            DeValue::Array(items) => items.iter().for_each(|i| self.no_datetimes(i)),
            DeValue::Table(table) => table.iter().for_each(|(_, v)| self.no_datetimes(v)),
            _ => {}
        }
    }

    /// The section header a value was written with (`[run]`, `[[task.retry]]`), if it
    /// was: a bracket first on its line (an inline list `["p"]` follows a `=`).
    fn header(&self, span: &Range<usize>) -> Option<&str> {
        let rest = self.text.get(span.start..)?;
        let before = self.text.get(..span.start)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        if !rest.starts_with('[') || !before[line_start..].trim().is_empty() {
            return None;
        }
        let end = rest.find(']')?;
        let close = rest[end..].chars().take_while(|c| *c == ']').count();
        Some(&rest[..end + close])
    }

    /// The value as written, short.
    fn source(&self, value: &Spanned<DeValue<'_>>) -> String {
        let written = self.text.get(value.span()).unwrap_or("").trim();
        shorten(written)
    }

    /// What a value is, for "must be X, not Y".
    fn found(&self, value: &Spanned<DeValue<'_>>) -> String {
        match value.get_ref() {
            DeValue::String(_) | DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => self.source(value),
            DeValue::Datetime(_) => format!("a date or time ({})", self.source(value)),
            DeValue::Array(_) => match self.header(&value.span()) {
                Some(header) => format!("{header} sections"),
                None => "a list".to_string(),
            },
            DeValue::Table(_) => match self.header(&value.span()) {
                Some(header) => format!("a {header} section"),
                None => "a table".to_string(),
            },
        }
    }
}

/// What a key takes, in the operator's words.
fn expected(key: &Key) -> String {
    match key.shape {
        Shape::Text => "text in quotes".to_string(),
        Shape::Whole => "a whole number".to_string(),
        Shape::Number => "a number".to_string(),
        Shape::Flag => "true or false".to_string(),
        Shape::Duration => "a duration in quotes, such as \"30s\" or \"1m30s\"".to_string(),
        Shape::Texts => "a list of text, such as [\"a\", \"b\"]".to_string(),
        Shape::Wholes => "a list of whole numbers, such as [2, 64]".to_string(),
        Shape::TextTable => format!("a table of text, such as {} = {{ NAME = \"value\" }}", key.name),
        Shape::Table(keys) => {
            let first = keys.first().map_or("", |k| k.name);
            format!("a table, such as {} = {{ {first} = … }}", key.name)
        }
        Shape::Sections(_) if key.name == "gates" => {
            "a list of tables, such as gates = [{ schema = \"out.json\" }]".to_string()
        }
        Shape::Sections(_) => format!("[[{0}]] sections, one for each {0}", key.name),
        Shape::Switch(keys) => {
            let first = keys.first().map_or("", |k| k.name);
            format!("true, false or a table, such as {} = {{ {first} = … }}", key.name)
        }
        Shape::Data => "a value".to_string(),
    }
}

/// "unknown key `retries` in [[task]] (did you mean retry?)", with the keys it could be.
fn unknown_key(name: &str, keys: &[Key], place: &Place<'_>) -> String {
    let within = match place {
        Place::File => " at the top of the file".to_string(),
        Place::Section(section) => format!(" in [[{section}]]"),
        Place::Top(name) => format!(" in [{name}]"),
        Place::Under(prefix) => format!(" in {prefix}"),
    };
    let mut message = format!("unknown key `{}`{within}", shorten(name));
    if let Place::Section(section) = place {
        if WORKFLOW.iter().any(|k| k.name == name) {
            message.push_str(&format!(
                ": keys after a [[{section}]] header belong to it; move {name} above the first section"
            ));
            return message;
        }
    }
    match keys.iter().map(|k| k.name).find(|k| close_to(name, k)) {
        Some(near) => message.push_str(&format!(" (did you mean {near}?)")),
        None => {
            let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
            message.push_str(&format!("; the keys here are {}", names.join(", ")));
        }
    }
    message
}

/// Whether two names are at most two edits apart: a typo (`concurency`).
fn close_to(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()] <= 2
}

/// Long text cut to 40 characters, on one line, so that a message stays a line.
fn shorten(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.chars().count() <= 40 {
        return line;
    }
    let cut: String = line.chars().take(39).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_close_and_other_names_are_not() {
        assert!(close_to("retyr", "retry"));
        assert!(close_to("concurency", "concurrency"));
        assert!(!close_to("bogus", "retry"));
        assert!(!close_to("x", "max_attempts"));
    }

    #[test]
    fn long_or_multi_line_text_is_cut_to_one_line() {
        assert_eq!(shorten("a\nb"), "a b");
        assert_eq!(shorten(&"x".repeat(50)).chars().count(), 40);
    }
}
