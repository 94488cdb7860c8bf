//! Workflow TOML → a validated [`Workflow`].
//!
//! Parsing happens in two passes. serde reads the file into "raw" structs that keep
//! the byte span of every value an operator may get wrong; syntax errors and unknown
//! keys stop this pass (serde cannot go on past them). The second pass checks the
//! meaning (ids, dependencies, cycles, pools, capabilities, durations, placeholders)
//! and collects *every* problem, so one `pitboss validate` shows all of them, each as
//! `FILE:LINE:COL: message`.
//!
//! The validated [`Workflow`] is plain data with every default resolved and every
//! relative path made absolute: it is stored whole in the first event of a run, so
//! `resume` needs nothing but the run folder.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A workflow that passed validation, with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Run name shown in the header and reports.
    pub name: String,
    /// Global cap on attempts running at once, over all pools.
    pub max_parallel: usize,
    /// How long a worker gets between SIGTERM and SIGKILL.
    pub kill_grace_ms: u64,
    /// How tasks that may run on several pools pick one.
    pub balancer: Strategy,
    /// Worker pools, in file order.
    pub pools: Vec<PoolSpec>,
    /// Tasks, in file order (ids are unique).
    pub tasks: Vec<TaskSpec>,
}

/// Balancer strategy for tasks that can run on more than one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Rotate over the eligible pools.
    RoundRobin,
    /// The eligible pool with the lowest running/concurrency ratio.
    LeastConnections,
    /// Like least-connections; named for workflows that route by `requires`.
    Capability,
}

/// What a worker reads on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdinMode {
    /// The task JSON of the worker protocol, then EOF.
    Task,
    /// Nothing (stdin is /dev/null).
    None,
    /// A template filled like argv placeholders, then EOF.
    Template(String),
}

/// One pool of workers that share a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Unique pool name.
    pub name: String,
    /// argv with `{…}` placeholders; never run through a shell.
    pub command: Vec<String>,
    /// What tasks routed by `requires` may ask of this pool.
    pub capabilities: Vec<String>,
    /// Attempts of this pool running at once.
    pub concurrency: usize,
    /// What the worker reads on stdin.
    pub stdin: StdinMode,
    /// Extra environment for the worker.
    pub env: BTreeMap<String, String>,
    /// Variables passed through from the manager's environment; their values are
    /// never written to the log or shown.
    pub secret_env: Vec<String>,
    /// Working directory (absolute), or the manager's own when unset.
    pub cwd: Option<PathBuf>,
    /// Circuit breaker: stop spawning on a pool that keeps failing.
    #[serde(default)]
    pub breaker: Option<BreakerPolicy>,
    /// A worker silent for this long is flagged stalled (a warning).
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// A worker silent for this long is ended as a failed attempt.
    #[serde(default)]
    pub stall_kill_after_ms: Option<u64>,
    /// One process per attempt, or long-lived processes taking many tasks.
    #[serde(default)]
    pub mode: PoolMode,
    /// Persistent mode: tasks in flight per process at once.
    #[serde(default = "one")]
    pub per_worker: usize,
    /// Persistent mode: when to replace a worker process.
    #[serde(default)]
    pub recycle: Recycle,
}

fn one() -> usize {
    1
}

/// How a pool runs its agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// A process per attempt (the worker protocol of §4).
    #[default]
    Spawn,
    /// Long-lived processes: one task JSON per line in, one JSON line per task out.
    Persistent,
}

/// `recycle = { max_tasks, max_rss_mb }`: replace a persistent worker after it has
/// answered this many tasks, or when its resident memory passes this size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recycle {
    /// Tasks answered before the process is replaced.
    pub max_tasks: Option<u64>,
    /// Resident set size (MiB) above which the process is replaced.
    pub max_rss_mb: Option<u64>,
}

/// `breaker = { failures, window, cooldown, half_open }`: open after `failures` failed
/// attempts within `window`; stay open for `cooldown`; then let `half_open` probe
/// attempts through; a probe's success closes it, a failure opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerPolicy {
    /// Failed attempts that open the breaker.
    pub failures: u32,
    /// Window the failures are counted in.
    pub window_ms: u64,
    /// How long it stays open.
    pub cooldown_ms: u64,
    /// Probe attempts admitted when half-open.
    pub half_open: u32,
}

/// What a task does instead of failing (DESIGN §3 `fallback`), used when its attempts
/// are spent or every pool it may run on has an open breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Complete with this result, marked degraded.
    Result(serde_json::Value),
    /// Run on this pool instead (fresh attempts), marked degraded when it completes.
    Pool(String),
    /// End skipped; dependents still run (they get `null` for its result).
    Skip,
}

/// Retry policy of a task: attempts and exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// Delay after the first failure.
    pub initial_ms: u64,
    /// Cap on any delay.
    pub max_ms: u64,
    /// Growth factor per failed attempt.
    pub multiplier: f64,
    /// Draw each delay from [delay/2, delay] so that a failing fleet does not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, initial_ms: 1_000, max_ms: 60_000, multiplier: 2.0, jitter: true }
    }
}

/// One task of the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique id; letters, digits, `_`, `-`, `.` (it names files in the run folder).
    pub id: String,
    /// Free-form type passed to the worker.
    #[serde(rename = "type")]
    pub kind: String,
    /// Pinned pool, if any.
    pub pool: Option<String>,
    /// Capabilities a pool must have to run this task.
    pub requires: Vec<String>,
    /// Opaque payload passed to the worker.
    pub payload: serde_json::Value,
    /// Tasks whose results this one needs.
    pub depends_on: Vec<String>,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Exit codes that are never retried (`retry.never_on`): dead-lettered at once.
    #[serde(default)]
    pub never_on: Vec<i32>,
    /// What to do instead of dead-lettering, if anything.
    #[serde(default)]
    pub fallback: Option<Fallback>,
}

impl Workflow {
    /// Index of a pool by name.
    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }

    /// Pools a task may run on, in file order.
    pub fn eligible_pools(&self, task: &TaskSpec) -> Vec<usize> {
        match &task.pool {
            Some(name) => self.pool_index(name).into_iter().collect(),
            None => self
                .pools
                .iter()
                .enumerate()
                .filter(|(_, p)| task.requires.iter().all(|c| p.capabilities.contains(c)))
                .map(|(i, _)| i)
                .collect(),
        }
    }
}

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
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        problems: vec![Problem { line: 1, col: 1, message: format!("cannot read the workflow: {e}") }],
    })?;
    let base =
        path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    parse(&text, &file, &base)
}

/// Validates workflow text; `base` resolves relative paths (the file's folder).
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Workflow, ConfigError> {
    let raw: RawWorkflow = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, col) = line_col(text, span.start);
        let message = e.message().trim().replace('\n', " ");
        ConfigError { file: file.to_string(), problems: vec![Problem { line, col, message }] }
    })?;
    let mut checker = Checker { text, problems: Vec::new() };
    let workflow = checker.workflow(raw, base);
    if checker.problems.is_empty() {
        Ok(workflow)
    } else {
        let mut problems = checker.problems;
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        Err(ConfigError { file: file.to_string(), problems })
    }
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

/// Placeholders a command or stdin template may use besides `{payload.KEY…}`.
const PLAIN_PLACEHOLDERS: &[&str] = &["id", "type", "attempt", "run_id", "payload", "pitboss", "state_dir"];

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

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    run: Option<RawRun>,
    defaults: Option<RawDefaults>,
    balancer: Option<RawBalancer>,
    #[serde(default)]
    pool: Vec<RawPool>,
    #[serde(default)]
    task: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    name: Option<String>,
    max_parallel: Option<Spanned<i64>>,
    kill_grace: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout: Option<Spanned<String>>,
    retry: Option<RawRetry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBalancer {
    strategy: Spanned<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<Spanned<i64>>,
    initial: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
    multiplier: Option<Spanned<f64>>,
    jitter: Option<bool>,
    never_on: Option<Vec<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    failures: Spanned<i64>,
    window: Spanned<String>,
    cooldown: Spanned<String>,
    half_open: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecycle {
    max_tasks: Option<Spanned<i64>>,
    max_rss_mb: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    result: Option<toml::Value>,
    pool: Option<Spanned<String>>,
    skip: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    name: Spanned<String>,
    command: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    stdin: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secret_env: Vec<Spanned<String>>,
    cwd: Option<Spanned<String>>,
    // Keys of the contract whose features are not built yet: refused, never ignored.
    preset: Option<Spanned<toml::Value>>,
    mode: Option<Spanned<String>>,
    per_worker: Option<Spanned<i64>>,
    recycle: Option<Spanned<RawRecycle>>,
    breaker: Option<Spanned<RawBreaker>>,
    stall_after: Option<Spanned<String>>,
    stall_kill_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    pool: Option<Spanned<String>>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    payload: Option<toml::Value>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retry: Option<RawRetry>,
    gates: Option<Spanned<toml::Value>>,
    consensus: Option<Spanned<toml::Value>>,
    fallback: Option<Spanned<RawFallback>>,
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = line_col(self.text, span.start);
        self.problems.push(Problem { line, col, message: message.into() });
    }

    fn not_supported<T>(&mut self, value: &Option<Spanned<T>>, key: &str) {
        if let Some(v) = value {
            self.report(v.span(), format!("`{key}` is not supported yet (see the README for what this version runs)"));
        }
    }

    fn duration(&mut self, value: &Spanned<String>) -> Option<u64> {
        match parse_duration(value.get_ref()) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.report(value.span(), e);
                None
            }
        }
    }

    fn positive(&mut self, value: &Spanned<i64>, what: &str) -> Option<i64> {
        if *value.get_ref() < 1 {
            self.report(value.span(), format!("{what} must be at least 1, got {}", value.get_ref()));
            None
        } else {
            Some(*value.get_ref())
        }
    }

    fn retry(&mut self, raw: &RawRetry, base: RetryPolicy) -> RetryPolicy {
        let mut policy = base;
        if let Some(n) = &raw.max_attempts {
            if let Some(n) = self.positive(n, "retry.max_attempts") {
                policy.max_attempts = n.min(u32::MAX as i64) as u32;
            }
        }
        if let Some(d) = &raw.initial {
            policy.initial_ms = self.duration(d).unwrap_or(policy.initial_ms);
        }
        if let Some(d) = &raw.max {
            policy.max_ms = self.duration(d).unwrap_or(policy.max_ms);
        }
        if let Some(m) = &raw.multiplier {
            if !(m.get_ref().is_finite() && *m.get_ref() >= 1.0) {
                self.report(m.span(), format!("retry.multiplier must be a number ≥ 1.0, got {}", m.get_ref()));
            } else {
                policy.multiplier = *m.get_ref();
            }
        }
        if let Some(j) = raw.jitter {
            policy.jitter = j;
        }
        policy
    }

    fn workflow(&mut self, raw: RawWorkflow, base: &Path) -> Workflow {
        let mut name = "workflow".to_string();
        let mut max_parallel = 8;
        let mut kill_grace_ms = 5_000;
        if let Some(run) = &raw.run {
            if let Some(n) = &run.name {
                name = n.clone();
            }
            if let Some(n) = &run.max_parallel {
                max_parallel = self.positive(n, "run.max_parallel").unwrap_or(1) as usize;
            }
            if let Some(d) = &run.kill_grace {
                kill_grace_ms = self.duration(d).unwrap_or(kill_grace_ms);
            }
        }
        let mut default_timeout = 5 * 60_000;
        let mut default_retry = RetryPolicy::default();
        let mut default_never_on: Vec<i32> = Vec::new();
        if let Some(defaults) = &raw.defaults {
            if let Some(codes) = defaults.retry.as_ref().and_then(|r| r.never_on.as_ref()) {
                default_never_on = codes.iter().map(|c| *c as i32).collect();
            }
            if let Some(d) = &defaults.timeout {
                default_timeout = self.duration(d).unwrap_or(default_timeout);
            }
            if let Some(r) = &defaults.retry {
                default_retry = self.retry(r, default_retry);
            }
        }
        let balancer = match &raw.balancer {
            None => Strategy::LeastConnections,
            Some(b) => match b.strategy.get_ref().as_str() {
                "round-robin" => Strategy::RoundRobin,
                "least-connections" => Strategy::LeastConnections,
                "capability" => Strategy::Capability,
                other => {
                    self.report(
                        b.strategy.span(),
                        format!("unknown balancer strategy {other:?}: expected round-robin, least-connections or capability"),
                    );
                    Strategy::LeastConnections
                }
            },
        };

        let pools: Vec<PoolSpec> = raw.pool.iter().map(|p| self.pool(p, base)).collect();
        let mut seen_pools: HashMap<&str, ()> = HashMap::new();
        for p in &raw.pool {
            if seen_pools.insert(p.name.get_ref(), ()).is_some() {
                self.report(p.name.span(), format!("duplicate pool name {:?}", p.name.get_ref()));
            }
        }
        if raw.pool.is_empty() && !raw.task.is_empty() {
            self.report(0..0, "the workflow has tasks but no [[pool]] to run them");
        }

        let tasks: Vec<TaskSpec> =
            raw.task.iter().map(|t| self.task(t, &pools, default_timeout, default_retry, &default_never_on)).collect();
        self.check_graph(&raw.task);

        Workflow { name, max_parallel, kill_grace_ms, balancer, pools, tasks }
    }

    fn pool(&mut self, raw: &RawPool, base: &Path) -> PoolSpec {
        self.not_supported(&raw.preset, "preset");
        let mode = match &raw.mode {
            None => PoolMode::Spawn,
            Some(m) => match m.get_ref().as_str() {
                "spawn" => PoolMode::Spawn,
                "persistent" => PoolMode::Persistent,
                other => {
                    self.report(m.span(), format!("unknown mode {other:?}: expected spawn or persistent"));
                    PoolMode::Spawn
                }
            },
        };
        let per_worker = raw.per_worker.as_ref().and_then(|n| self.positive(n, "per_worker")).unwrap_or(1) as usize;
        let mut recycle = Recycle::default();
        if let Some(r) = &raw.recycle {
            recycle.max_tasks =
                r.get_ref().max_tasks.as_ref().and_then(|n| self.positive(n, "recycle.max_tasks")).map(|n| n as u64);
            recycle.max_rss_mb =
                r.get_ref().max_rss_mb.as_ref().and_then(|n| self.positive(n, "recycle.max_rss_mb")).map(|n| n as u64);
        }
        if mode == PoolMode::Spawn {
            if let Some(r) = &raw.recycle {
                self.report(r.span(), "`recycle` only applies to mode = \"persistent\"");
            }
            if let Some(n) = &raw.per_worker {
                self.report(n.span(), "`per_worker` only applies to mode = \"persistent\"");
            }
        } else if let Some(cmd) = &raw.command {
            // One process serves many tasks: only run-wide placeholders can be filled.
            for arg in cmd.get_ref() {
                for name in placeholders(arg.get_ref()) {
                    if !matches!(name, "pitboss" | "state_dir" | "run_id") {
                        self.report(
                            arg.span(),
                            format!("{{{name}}} names a task, but a persistent worker serves many tasks; it gets each task on stdin"),
                        );
                    }
                }
            }
        }
        if let (PoolMode::Persistent, Some(s)) = (mode, &raw.stdin) {
            if s.get_ref() != "task" {
                self.report(
                    s.span(),
                    "a persistent pool reads one task JSON per line on stdin; `stdin` must be \"task\"",
                );
            }
        }
        let breaker = raw.breaker.as_ref().and_then(|b| self.breaker(b.get_ref()));
        let stall_after_ms = raw.stall_after.as_ref().and_then(|d| self.duration(d));
        let stall_kill_after_ms = raw.stall_kill_after.as_ref().and_then(|d| self.duration(d));
        let name = raw.name.get_ref().clone();
        let mut command: Vec<String> = Vec::new();
        match &raw.command {
            None => self.report(raw.name.span(), format!("pool {name:?} has no `command`")),
            Some(cmd) if cmd.get_ref().is_empty() || cmd.get_ref()[0].get_ref().trim().is_empty() => {
                self.report(cmd.span(), format!("pool {name:?} has an empty command"))
            }
            Some(cmd) => {
                for arg in cmd.get_ref() {
                    self.check_template(arg.get_ref(), arg.span());
                    command.push(arg.get_ref().clone());
                }
                // `./agent.sh` means "next to the workflow", not "wherever pitboss was started".
                let program = &command[0];
                if program.contains('/') && !program.starts_with('{') && Path::new(program).is_relative() {
                    command[0] = base.join(program).display().to_string();
                }
            }
        }
        let concurrency = match &raw.concurrency {
            Some(c) => self.positive(c, "concurrency").unwrap_or(1) as usize,
            None => 1,
        };
        let stdin = match &raw.stdin {
            None => StdinMode::Task,
            Some(s) => match s.get_ref().as_str() {
                "task" => StdinMode::Task,
                "none" => StdinMode::None,
                template => {
                    self.check_template(template, s.span());
                    StdinMode::Template(template.to_string())
                }
            },
        };
        let cwd = raw.cwd.as_ref().map(|c| {
            let p = Path::new(c.get_ref());
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        });
        for s in &raw.secret_env {
            if s.get_ref().is_empty() || s.get_ref().contains('=') {
                self.report(s.span(), format!("secret_env entry {:?} is not a variable name", s.get_ref()));
            }
        }
        PoolSpec {
            name,
            command,
            capabilities: raw.capabilities.iter().map(|c| c.get_ref().clone()).collect(),
            concurrency,
            stdin,
            env: raw.env.clone(),
            secret_env: raw.secret_env.iter().map(|s| s.get_ref().clone()).collect(),
            cwd,
            breaker,
            stall_after_ms,
            stall_kill_after_ms,
            mode,
            per_worker,
            recycle,
        }
    }

    fn breaker(&mut self, raw: &RawBreaker) -> Option<BreakerPolicy> {
        let failures = self.positive(&raw.failures, "breaker.failures");
        let window_ms = self.duration(&raw.window);
        let cooldown_ms = self.duration(&raw.cooldown);
        let half_open = match &raw.half_open {
            Some(h) => self.positive(h, "breaker.half_open"),
            None => Some(1),
        };
        Some(BreakerPolicy {
            failures: failures?.min(u32::MAX as i64) as u32,
            window_ms: window_ms?,
            cooldown_ms: cooldown_ms?,
            half_open: half_open?.min(u32::MAX as i64) as u32,
        })
    }

    fn fallback(&mut self, raw: &Spanned<RawFallback>, pools: &[PoolSpec], id: &str) -> Option<Fallback> {
        let f = raw.get_ref();
        let chosen = [f.result.is_some(), f.pool.is_some(), f.skip.is_some()].iter().filter(|x| **x).count();
        if chosen != 1 {
            self.report(raw.span(), format!("task {id:?}: fallback takes exactly one of result, pool or skip"));
            return None;
        }
        if let Some(v) = &f.result {
            return Some(Fallback::Result(serde_json::to_value(v).unwrap_or(serde_json::Value::Null)));
        }
        if let Some(pool) = &f.pool {
            if !pools.iter().any(|p| &p.name == pool.get_ref()) {
                self.report(pool.span(), format!("task {id:?}: fallback pool {:?} does not exist", pool.get_ref()));
                return None;
            }
            return Some(Fallback::Pool(pool.get_ref().clone()));
        }
        match f.skip {
            Some(true) => Some(Fallback::Skip),
            _ => {
                self.report(raw.span(), format!("task {id:?}: fallback skip must be true (or leave fallback out)"));
                None
            }
        }
    }

    fn check_template(&mut self, template: &str, span: Range<usize>) {
        for name in placeholders(template) {
            let known =
                PLAIN_PLACEHOLDERS.contains(&name) || name.strip_prefix("payload.").is_some_and(|k| !k.is_empty());
            if !known {
                let list: Vec<String> = PLAIN_PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
                self.report(
                    span.clone(),
                    format!("unknown placeholder {{{name}}}: use {{payload.KEY}}, {}", list.join(", ")),
                );
            }
        }
    }

    fn task(
        &mut self,
        raw: &RawTask,
        pools: &[PoolSpec],
        default_timeout: u64,
        default_retry: RetryPolicy,
        default_never_on: &[i32],
    ) -> TaskSpec {
        self.not_supported(&raw.gates, "gates");
        self.not_supported(&raw.consensus, "consensus");
        let id = raw.id.get_ref().clone();
        let fallback = raw.fallback.as_ref().and_then(|f| self.fallback(f, pools, &id));
        if id.is_empty()
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || id.starts_with('.')
        {
            self.report(
                raw.id.span(),
                format!("task id {id:?} must be letters, digits, '_', '-' or '.' (it names files)"),
            );
        }
        let timeout_ms = raw.timeout.as_ref().and_then(|t| self.duration(t)).unwrap_or(default_timeout);
        if timeout_ms == 0 {
            self.report(raw.timeout.as_ref().map(|t| t.span()).unwrap_or(raw.id.span()), "timeout must be more than 0");
        }
        let retry = match &raw.retry {
            Some(r) => self.retry(r, default_retry),
            None => default_retry,
        };
        let never_on = match raw.retry.as_ref().and_then(|r| r.never_on.as_ref()) {
            Some(codes) => codes.iter().map(|c| *c as i32).collect(),
            None => default_never_on.to_vec(),
        };
        let requires: Vec<String> = raw.requires.iter().map(|c| c.get_ref().clone()).collect();
        match &raw.pool {
            Some(pool_name) => match pools.iter().find(|p| &p.name == pool_name.get_ref()) {
                None => {
                    self.report(pool_name.span(), format!("task {id:?} names unknown pool {:?}", pool_name.get_ref()))
                }
                Some(pool) => {
                    for cap in &raw.requires {
                        if !pool.capabilities.contains(cap.get_ref()) {
                            self.report(
                                cap.span(),
                                format!(
                                    "task {id:?} requires {:?} but its pool {:?} does not have it",
                                    cap.get_ref(),
                                    pool.name
                                ),
                            );
                        }
                    }
                }
            },
            None if !requires.is_empty()
                && !pools.is_empty()
                && !pools.iter().any(|p| requires.iter().all(|c| p.capabilities.contains(c))) =>
            {
                let span = raw.requires[0].span();
                self.report(span, format!("task {id:?}: no pool has all of the capabilities {requires:?}"));
            }
            None => {}
        }
        let payload = match &raw.payload {
            None => serde_json::Value::Object(Default::default()),
            Some(v) => serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        };
        // A `{payload.KEY}` the task's payload lacks would fail every attempt: catch it now.
        let candidate_pools: Vec<&PoolSpec> = match &raw.pool {
            Some(name) => pools.iter().filter(|p| &p.name == name.get_ref()).collect(),
            None => pools.iter().filter(|p| requires.iter().all(|c| p.capabilities.contains(c))).collect(),
        };
        for pool in candidate_pools {
            let mut templates: Vec<&str> = pool.command.iter().map(String::as_str).collect();
            if let StdinMode::Template(t) = &pool.stdin {
                templates.push(t);
            }
            for template in templates {
                for name in placeholders(template) {
                    if let Some(path) = name.strip_prefix("payload.") {
                        if lookup_payload(&payload, path).is_none() {
                            self.report(
                                raw.id.span(),
                                format!("task {id:?} runs on pool {:?} whose command uses {{{name}}}, but its payload has no {path:?}", pool.name),
                            );
                        }
                    }
                }
            }
        }
        TaskSpec {
            id,
            kind: raw.kind.clone().unwrap_or_default(),
            pool: raw.pool.as_ref().map(|p| p.get_ref().clone()),
            requires,
            payload,
            depends_on: raw.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
            timeout_ms,
            retry,
            never_on,
            fallback,
        }
    }

    fn check_graph(&mut self, tasks: &[RawTask]) {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            if index.insert(t.id.get_ref(), i).is_some() {
                self.report(t.id.span(), format!("duplicate task id {:?}", t.id.get_ref()));
            }
        }
        for t in tasks {
            let mut seen = HashSet::new();
            for dep in &t.depends_on {
                if !index.contains_key(dep.get_ref().as_str()) {
                    self.report(
                        dep.span(),
                        format!("task {:?} depends on unknown task {:?}", t.id.get_ref(), dep.get_ref()),
                    );
                } else if dep.get_ref() == t.id.get_ref() {
                    self.report(dep.span(), format!("task {:?} depends on itself", t.id.get_ref()));
                } else if !seen.insert(dep.get_ref()) {
                    self.report(
                        dep.span(),
                        format!("task {:?} lists {:?} twice in depends_on", t.id.get_ref(), dep.get_ref()),
                    );
                }
            }
        }
        // Colour DFS: a back edge closes a cycle; report it once, named in order.
        let n = tasks.len();
        let mut colour = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        let mut reported: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let deps = &tasks[node].depends_on;
                if *next < deps.len() {
                    let dep_span = deps[*next].span();
                    let dep = index.get(deps[*next].get_ref().as_str()).copied();
                    *next += 1;
                    let Some(dep) = dep else { continue };
                    if dep == node {
                        continue; // reported above as "depends on itself"
                    }
                    match colour[dep] {
                        0 => {
                            colour[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 => {
                            let pos = stack.iter().position(|(t, _)| *t == dep).unwrap_or(0);
                            let mut members: Vec<usize> = stack[pos..].iter().map(|(t, _)| *t).collect();
                            let mut key = members.clone();
                            key.sort_unstable();
                            if reported.insert(key) {
                                members.push(dep);
                                let names: Vec<&str> =
                                    members.iter().map(|&t| tasks[t].id.get_ref().as_str()).collect();
                                self.report(dep_span, format!("dependency cycle: {}", names.join(" -> ")));
                            }
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = 2;
                    stack.pop();
                }
            }
        }
    }
}

/// Follows a dotted path (`a.b.c`) into a JSON payload.
pub fn lookup_payload<'v>(payload: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(payload, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Workflow, ConfigError> {
        parse(text, "wf.toml", Path::new("/base"))
    }

    const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\ncapabilities = [\"write\"]\n";

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
    fn minimal_workflow_gets_defaults() {
        let wf = check(&format!("{POOL}[[task]]\nid = \"a\"\n")).unwrap();
        assert_eq!(wf.max_parallel, 8);
        assert_eq!(wf.tasks[0].retry, RetryPolicy::default());
        assert_eq!(wf.tasks[0].timeout_ms, 300_000);
        assert_eq!(wf.pools[0].stdin, StdinMode::Task);
    }

    #[test]
    fn relative_command_resolves_next_to_the_workflow() {
        let wf = check("[[pool]]\nname = \"p\"\ncommand = [\"./agent.sh\", \"x\"]\n").unwrap();
        assert_eq!(wf.pools[0].command[0], "/base/./agent.sh");
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let err = check(&format!("{POOL}[[task]]\nid = \"a\"\nbogus = 1\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("wf.toml:7:1: "), "{text}");
        assert!(text.contains("bogus"), "{text}");
    }

    #[test]
    fn every_semantic_problem_is_reported() {
        let text = format!(
            "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"ghost\"]\ntimeout = \"soon\"\n\
             [[task]]\nid = \"a\"\npool = \"nope\"\n\
             [[task]]\nid = \"c\"\nrequires = [\"fly\"]\n"
        );
        let err = check(&text).unwrap_err();
        let msgs: Vec<String> = err.problems.iter().map(|p| format!("{}:{} {}", p.line, p.col, p.message)).collect();
        let all = msgs.join("\n");
        assert!(all.contains("7:15 task \"a\" depends on unknown task \"ghost\""), "{all}");
        assert!(all.contains("8:11 bad duration"), "{all}");
        assert!(all.contains("10:6 duplicate task id"), "{all}");
        assert!(all.contains("unknown pool \"nope\""), "{all}");
        assert!(all.contains("no pool has all of the capabilities"), "{all}");
    }

    #[test]
    fn cycle_is_named() {
        let text = format!(
            "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"c\"]\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n"
        );
        let err = check(&text).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].message.contains("dependency cycle: a -> c -> b -> a"), "{err}");
    }

    #[test]
    fn empty_command_and_unsupported_keys_are_refused() {
        let err = check("[[pool]]\nname = \"p\"\ncommand = []\npreset = \"claude\"\n").unwrap_err();
        let all = err.to_string();
        assert!(all.contains("wf.toml:3:11: pool \"p\" has an empty command"), "{all}");
        assert!(all.contains("wf.toml:4:10: `preset` is not supported yet"), "{all}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = check("[run\nname = 1").unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].line, 1, "{err}");
    }

    #[test]
    fn missing_payload_key_for_placeholder() {
        let text = "[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{payload.prompt}\"]\n[[task]]\nid = \"a\"\n";
        let err = check(text).unwrap_err();
        assert!(err.to_string().contains("payload has no \"prompt\""), "{err}");
        let ok = "[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{payload.prompt}\"]\n[[task]]\nid = \"a\"\npayload = { prompt = \"hi\" }\n";
        assert!(check(ok).is_ok());
    }

    #[test]
    fn unknown_placeholder_is_refused() {
        let err = check("[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{nope}\"]\n").unwrap_err();
        assert!(err.to_string().contains("unknown placeholder {nope}"), "{err}");
    }
}
