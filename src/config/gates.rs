//! `gates = [...]` on a task or in `[defaults]` → [`Gate`]s, each problem at its line
//! and column: an entry that is not exactly one kind, keys that do not apply to its
//! kind, numbers out of range, an unknown review pool, and a schema file that is
//! missing, not JSON, or not a JSON Schema (read here, at `validate` time, relative to
//! the workflow file, and stored in the workflow so a resumed run never reads it again).

use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::core::workflow::{Gate, PerfGate, RetryPolicy, Site, PERF_RUNS_RANGE, REGRESSION_RANGE, SCORE_RANGE};

use super::check::Checker;
use super::parse::{RawGate, RawPerf};

/// What gates inherit when their entry leaves it out.
pub(super) struct GateDefaults {
    /// `[defaults] timeout` (or the built-in one).
    pub(super) timeout_ms: u64,
    /// `[defaults] retry` (or the built-in one), for review gates.
    pub(super) retry: RetryPolicy,
}

impl Checker<'_> {
    /// Every gate of a list; a bad entry is reported and left out.
    pub(super) fn gates(&mut self, raw: &[Spanned<RawGate>], site: Site, defaults: &GateDefaults) -> Vec<Gate> {
        raw.iter().filter_map(|g| self.gate(g, site, defaults)).collect()
    }

    fn gate(&mut self, raw: &Spanned<RawGate>, site: Site, defaults: &GateDefaults) -> Option<Gate> {
        let g = raw.get_ref();
        let kinds = [
            ("schema", g.schema.is_some()),
            ("review", g.review.is_some()),
            ("security", g.security.is_some()),
            ("perf", g.perf.is_some()),
        ];
        let named: Vec<&str> = kinds.iter().filter(|(_, set)| *set).map(|(k, _)| *k).collect();
        // `command` is a kind of its own only without another kind (a security gate has
        // its scanner inside `security = { command }`).
        let kind = match (named.as_slice(), g.command.is_some()) {
            ([], true) => "command",
            ([one], false) => one,
            ([], false) => {
                self.report(raw.span(), "a gate needs one of schema, command, review, security or perf");
                return None;
            }
            _ => {
                let mut all: Vec<&str> = named.clone();
                if g.command.is_some() {
                    all.push("command");
                }
                let message =
                    format!("a gate is one kind: this one has {} (write one gate for each)", all.join(" and "));
                self.report(raw.span(), message);
                return None;
            }
        };
        self.keys_apply(g, kind);
        let timeout_ms = match &g.timeout {
            Some(t) => self.timeout(t, "gate timeout")?,
            None => defaults.timeout_ms,
        };
        match kind {
            "schema" => self.schema_gate(g.schema.as_ref()?),
            "command" => {
                let command = self.gate_command(g.command.as_ref()?, "gate command")?;
                Some(Gate::Command { command, timeout_ms })
            }
            "review" => self.review_gate(g, site, defaults, timeout_ms),
            "security" => self.security_gate(g.security.as_ref()?),
            _ => self.perf_gate(g.perf.as_ref()?, defaults),
        }
    }

    /// Keys written for another kind of gate: refused, never ignored.
    fn keys_apply(&mut self, g: &RawGate, kind: &str) {
        let review_only = [
            ("min_score", g.min_score.as_ref().map(Spanned::span)),
            ("criteria", g.criteria.as_ref().map(Spanned::span)),
            ("retry", g.retry.as_ref().map(Spanned::span)),
        ];
        if kind != "review" {
            for (key, span) in review_only {
                if let Some(span) = span {
                    self.report(span, format!("`{key}` only applies to a review gate"));
                }
            }
        }
        if let (Some(t), false) = (&g.timeout, matches!(kind, "command" | "review")) {
            let message = match kind {
                "perf" => "a perf gate's timeout goes inside perf = { timeout = … }",
                _ => "`timeout` only applies to command and review gates",
            };
            self.report(t.span(), message);
        }
    }

    /// A gate's time limit: a duration of at least 1ms.
    fn timeout(&mut self, raw: &Spanned<String>, key: &str) -> Option<u64> {
        match self.duration(raw, key)? {
            0 => {
                self.report(raw.span(), format!("{key} must be at least 1ms"));
                None
            }
            ms => Some(ms),
        }
    }

    /// A check program: not empty; a relative program path is relative to the workflow.
    fn gate_command(&mut self, raw: &Spanned<Vec<Spanned<String>>>, key: &str) -> Option<Vec<String>> {
        let mut argv: Vec<String> = raw.get_ref().iter().map(|a| a.get_ref().clone()).collect();
        let Some(program) = argv.first_mut() else {
            self.report(raw.span(), format!("{key} is empty: give the program and its arguments"));
            return None;
        };
        if program.contains('/') && Path::new(program.as_str()).is_relative() {
            *program = self.base.join(&*program).display().to_string();
        }
        Some(argv)
    }

    /// A schema file, read and compiled now so that `validate` catches every problem.
    fn schema_gate(&mut self, raw: &Spanned<String>) -> Option<Gate> {
        let path = self.base.join(raw.get_ref());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "there is no such file".to_string(),
                    _ => e.to_string(),
                };
                self.report(raw.span(), format!("cannot read the schema {}: {why}", path.display()));
                return None;
            }
        };
        let schema: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let message = format!(
                    "the schema {} is not JSON: {} at line {} column {}",
                    path.display(),
                    plain_json_error(&e),
                    e.line(),
                    e.column()
                );
                self.report(raw.span(), message);
                return None;
            }
        };
        if let Err(e) = jsonschema::draft202012::new(&schema) {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
            let message = format!("the schema {} is not a valid JSON Schema{at}: {e}", path.display());
            self.report(raw.span(), message);
            return None;
        }
        Some(Gate::Schema { path, schema })
    }

    fn review_gate(&mut self, g: &RawGate, site: Site, defaults: &GateDefaults, timeout_ms: u64) -> Option<Gate> {
        let pool = g.review.as_ref()?;
        if !self.pool_names.iter().any(|p| p == pool.get_ref()) {
            let message = format!("review pool {:?} is not defined (add a [[pool]] with that name)", pool.get_ref());
            self.report(pool.span(), message);
        }
        let (low, high) = SCORE_RANGE;
        let min_score = match &g.min_score {
            None => 7,
            Some(n) if (i128::from(low)..=i128::from(high)).contains(n.get_ref()) => *n.get_ref() as u8,
            Some(n) => {
                self.report(n.span(), format!("min_score must be {low} to {high}, got {}", n.get_ref()));
                return None;
            }
        };
        let retry = match &g.retry {
            Some(r) => {
                let policy = self.retry(r.get_ref(), defaults.retry, site);
                for error in policy.check(site) {
                    self.report(r.span(), format!("review retry: {error}"));
                }
                policy
            }
            None => defaults.retry,
        };
        Some(Gate::Review {
            pool: pool.get_ref().clone(),
            min_score,
            criteria: g.criteria.as_ref().map(|c| c.get_ref().clone()).unwrap_or_default(),
            timeout_ms,
            retry,
        })
    }

    fn security_gate(&mut self, raw: &Spanned<toml::Value>) -> Option<Gate> {
        match raw.get_ref() {
            toml::Value::Boolean(true) => Some(Gate::Security { command: None }),
            toml::Value::Boolean(false) => None,
            toml::Value::Table(table) => {
                let Some(toml::Value::Array(items)) = table.get("command") else {
                    return Some(Gate::Security { command: None });
                };
                let argv: Vec<String> = items.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
                if argv.is_empty() {
                    self.report(raw.span(), "security command is empty: give the program and its arguments");
                    return None;
                }
                let mut argv = argv;
                if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
                    argv[0] = self.base.join(&argv[0]).display().to_string();
                }
                Some(Gate::Security { command: Some(argv) })
            }
            // The shape check allows nothing else.
            _ => None,
        }
    }

    fn perf_gate(&mut self, raw: &Spanned<RawPerf>, defaults: &GateDefaults) -> Option<Gate> {
        let p = raw.get_ref();
        // Every problem of the entry is reported, not only the first.
        let mut bad = false;
        let command = self.gate_command(&p.command, "perf command")?;
        let max_time_ms = match &p.max_time {
            Some(t) => Some(self.timeout(t, "perf max_time")?),
            None => None,
        };
        let max_rss_mb = match &p.max_rss_mb {
            Some(n) if (1..=1_048_576).contains(n.get_ref()) => Some(*n.get_ref() as u64),
            Some(n) => {
                self.report(n.span(), format!("perf max_rss_mb must be 1 to 1048576, got {}", n.get_ref()));
                bad = true;
                None
            }
            None => None,
        };
        let (low, high) = PERF_RUNS_RANGE;
        let runs = match &p.runs {
            Some(n) if (i128::from(low)..=i128::from(high)).contains(n.get_ref()) => *n.get_ref() as u32,
            Some(n) => {
                self.report(n.span(), format!("perf runs must be {low} to {high}, got {}", n.get_ref()));
                bad = true;
                1
            }
            None => 3,
        };
        let (low, high) = REGRESSION_RANGE;
        let max_regression = match &p.max_regression {
            Some(f) if (low..=high).contains(f.get_ref()) => Some(*f.get_ref()),
            Some(f) => {
                let message = format!("perf max_regression must be {low:.1} to {high:.1}, got {}", f.get_ref());
                self.report(f.span(), message);
                bad = true;
                None
            }
            None => None,
        };
        let timeout_ms = match &p.timeout {
            Some(t) => self.timeout(t, "perf timeout")?,
            None => defaults.timeout_ms,
        };
        if bad {
            return None;
        }
        let baseline: Option<PathBuf> = p.baseline.as_ref().map(|b| self.base.join(b.get_ref()));
        Some(Gate::Perf(PerfGate { command, max_time_ms, max_rss_mb, runs, max_regression, baseline, timeout_ms }))
    }
}

/// serde_json's message without its own " at line L column C" (the caller places it).
fn plain_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}
