//! Running a validating task's gates (DESIGN §9), off the engine loop like attempts:
//! each gate is a spawned future that reports back through the engine's channel as an
//! [`Input::GateDone`], so the loop never waits on a check, and paused-time tests
//! drive gates through the injected runner and clock.
//!
//! A gate run sits in the engine's `running` table under its task, exactly like an
//! attempt: a cancel or the run's interruption stops it (its process group ended by
//! the runner), and the engine waits for it before it returns. A stopped gate reports
//! nothing; an interrupted run's validating task runs its current gate again when the
//! run is resumed (the result it checks is in the log).
//!
//! - `schema`: checked in the future against a schema compiled once per run.
//! - `command`: the check program through the runner, with `{task, result}` on stdin,
//!   the pool's `cwd`, a process group, the gate's timeout and bounded output (in the
//!   run's `output/gates/` folder). It starts from the manager's environment without
//!   secret-looking variables, never with the pool's `secret_env`: a test suite has no
//!   business with the agent's keys.
//! - `review`: a sub-attempt on the reviewer pool with `{"review":{…}}` on stdin,
//!   retried with the gate's policy; refused while that pool's breaker is open. Its
//!   failed tries (the reviewer's failure class, or `worker` for a nonsense answer)
//!   go back with the verdict as [`Input::ReviewDone`] and count on that breaker; a
//!   low score is a verdict and counts nothing. It takes no slot of the pool's
//!   concurrency yet.
//! - `security`: the built-in rules ([`crate::core::checks::security::scan`]) over the
//!   result, with the run's own secret values (from the runner, which holds them to
//!   pass and redact them; never recorded); with a clean result, the optional external
//!   scanner runs exactly like a `command` gate. Both must pass.
//! - `perf`: [`crate::io::perf::measure`] on a blocking thread (dropping its future
//!   kills the running group, so a stop or cancel ends it), in the pool's `cwd`, from
//!   the manager's environment without secret-looking variables. The median is held
//!   against `max_time`, `max_regression` × the baseline file or the best earlier
//!   passing measurement of the same gate (read back from the verdicts in the state,
//!   see [`crate::core::checks::verdict`]), and the peak RSS against `max_rss_mb`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::supervise::{supervise, Limits, Reports};
use super::{Engine, Msg};
use crate::core::backoff;
use crate::core::checks::security;
use crate::core::checks::verdict::{self, Measured, PerfLimits, Reference};
use crate::core::decide::Outcome;
use crate::core::escape::escape_text;
use crate::core::gates::{read_review, CompiledSchema, GateOutcome, VerdictKind};
use crate::core::protocol::{task_json, TaskView};
use crate::core::redact::Redactor;
use crate::core::text::human_ms;
use crate::core::workflow::{Gate, GateKind, PerfGate, PoolMode, RetryPolicy, StdinMode};
use crate::core::{FailureClass, Input, JsonText, SmallOutput};
use crate::io::clock::Clock;
use crate::io::guardian::MANAGER_PID_ENV;
use crate::io::perf::{measure, PerfError, PerfRun};
use crate::io::runner::env::looks_secret;
use crate::io::runner::{AttemptEnd, AttemptSpec, Runner, UsageReport};

/// The longest critique kept from a check program's output (its tail).
pub const CRITIQUE_BYTES: usize = 4096;

/// Schemas compiled so far in this run, by (task index, gate index).
pub(super) type Schemas = HashMap<(usize, usize), Arc<CompiledSchema>>;

/// Everything a gate's future needs, taken from the engine before it is spawned.
enum Job {
    Schema(Result<Arc<CompiledSchema>, String>, Value),
    Command(Box<AttemptSpec>),
    Review {
        specs: Vec<AttemptSpec>,
        retry: RetryPolicy,
        min_score: u8,
    },
    Refused(String),
    /// The built-in scan of the result with the run's secret values, then the
    /// external scanner if the gate names one.
    Security {
        result: Value,
        secrets: Vec<(String, String)>,
        scanner: Option<Box<AttemptSpec>>,
    },
    Perf {
        run: PerfRun,
        limits: PerfLimits,
        baseline: Option<PathBuf>,
        secrets: Vec<(String, String)>,
    },
}

impl Engine {
    /// Starts gate `index` of task `task`'s `attempt`; its verdict comes back as a
    /// [`Msg::RunnerDone`] carrying [`Input::GateDone`].
    pub(super) fn start_gate(&mut self, task: &str, attempt: u32, index: usize) {
        let Some(i) = self.state.task_index(task) else { return };
        let Some(gate) = self.state.workflow.tasks[i].gates().get(index).cloned() else { return };
        let result = self.state.tasks[i].result.as_ref().map_or(Value::Null, JsonText::value);
        let job = match &gate {
            Gate::Schema { schema, .. } => {
                let compiled = match self.schemas.get(&(i, index)) {
                    Some(c) => Ok(c.clone()),
                    None => CompiledSchema::new(schema).map(Arc::new).inspect(|c| {
                        self.schemas.insert((i, index), c.clone());
                    }),
                };
                Job::Schema(compiled, result)
            }
            Gate::Command { command, timeout_ms } => {
                let stdin = json!({ "task": self.task_doc(i, attempt), "result": result });
                let mut spec = self.gate_spec(i, attempt, index, 1, command.clone(), stdin, *timeout_ms);
                spec.pool = format!("{task} gate {}", index + 1);
                Job::Command(Box::new(spec))
            }
            Gate::Review { pool, min_score, criteria, timeout_ms, retry } => {
                match self.review_specs(i, attempt, index, pool, criteria, *timeout_ms, retry, &result) {
                    Ok(specs) => Job::Review { specs, retry: *retry, min_score: *min_score },
                    Err(why) => Job::Refused(why),
                }
            }
            Gate::Security { command } => {
                let scanner = command.as_ref().map(|argv| {
                    let stdin = json!({ "task": self.task_doc(i, attempt), "result": result });
                    // The scanner has no timeout of its own: the task's attempt timeout.
                    let timeout_ms = self.state.workflow.tasks[i].timeout_ms;
                    let mut spec = self.gate_spec(i, attempt, index, 1, argv.clone(), stdin, timeout_ms);
                    spec.pool = format!("{task} gate {}", index + 1);
                    Box::new(spec)
                });
                Job::Security { result, secrets: self.world.runner.secret_values(), scanner }
            }
            Gate::Perf(perf) => self.perf_job(i, attempt, index, perf),
        };
        // A gate's usage lines are the task's spend (DESIGN §13), on the pool that
        // spent it: a review's reviewer pool, else the pool the task ran on.
        let charged = match &gate {
            Gate::Review { pool, .. } => Some(pool.clone()),
            _ => self.state.tasks[i].pool.as_deref().map(str::to_string),
        };
        let usage: UsageReport = match charged {
            Some(pool) => super::usage::gate_usage_note(&self.tx, task, attempt, &pool, index as u32 + 1),
            None => Arc::new(|_| {}),
        };
        let (stop_tx, stop_rx) = watch::channel(None);
        self.running.insert(task.to_string(), (attempt, stop_tx));
        let (tx, runner, clock) = (self.tx.clone(), self.world.runner.clone(), self.world.clock.clone());
        let task = task.to_string();
        tokio::spawn(async move {
            let started = clock.now_ms();
            let outcome = run_job(job, Gear { runner, clock: clock.clone(), stop: stop_rx, usage }).await;
            let input = outcome.map(|(outcome, reviewer_failures)| {
                let (task, duration_ms) = (task.clone(), clock.now_ms().saturating_sub(started));
                if reviewer_failures.is_empty() {
                    Input::GateDone { task, attempt, index, outcome, duration_ms }
                } else {
                    Input::ReviewDone { task, attempt, index, outcome, duration_ms, reviewer_failures }
                }
            });
            let _ = tx.send(Msg::RunnerDone { task, attempt, input });
        });
    }

    /// A perf gate's measurement: where and how the gate's command runs, and its
    /// limits with the best earlier passing median of this gate as the reference
    /// (the baseline file, when the gate names one, is read when it runs).
    fn perf_job(&self, i: usize, attempt: u32, index: usize, perf: &PerfGate) -> Job {
        let spec = self.gate_spec(i, attempt, index, 1, perf.command.clone(), Value::Null, perf.timeout_ms);
        // The manager's environment without secret-looking variables, as for a
        // check program, plus pitboss's marks.
        let mut env: Vec<(String, String)> = std::env::vars_os()
            .filter(|(k, _)| !looks_secret(k))
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        env.extend(spec.env);
        let earlier = self.state.tasks[i]
            .verdicts()
            .iter()
            .filter(|v| v.index == index && v.kind == GateKind::Perf && v.verdict == VerdictKind::Passed)
            .filter_map(|v| verdict::measured_median(&v.reason))
            .min();
        let limits = PerfLimits {
            max_time_ms: perf.max_time_ms,
            max_rss_mb: perf.max_rss_mb,
            max_regression: perf.max_regression.unwrap_or(verdict::DEFAULT_REGRESSION),
            reference: earlier.map(Reference::Earlier),
        };
        let run = PerfRun {
            command: perf.command.clone(),
            cwd: spec.cwd,
            env,
            clear_env: true,
            runs: perf.runs,
            timeout: Duration::from_millis(perf.timeout_ms),
        };
        let secrets = self.world.runner.secret_values();
        Job::Perf { run, limits, baseline: perf.baseline.clone(), secrets }
    }

    /// The task JSON of the worker protocol for task `i`'s `attempt` (what a check
    /// program or a reviewer is told about the task).
    fn task_doc(&self, i: usize, attempt: u32) -> Value {
        let spec = &self.state.workflow.tasks[i];
        let payload = &self.state.tasks[i].payload().unwrap_or(&spec.payload).value();
        let view = TaskView { id: &spec.id, kind: &spec.kind, payload, attempt, run_id: &self.state.run_id };
        let inputs: Map<String, Value> = self.state.dependencies[i]
            .iter()
            .map(|&d| {
                (
                    self.state.task_id(d).to_string(),
                    self.state.tasks[d].result.as_ref().map_or(Value::Null, JsonText::value),
                )
            })
            .collect();
        task_json(view, inputs)
    }

    /// A process a gate runs: where the task's worker ran (its pool's `cwd`), marked as
    /// this run's, its output in `output/gates/TASK.gN[.rK].ATTEMPT.*`.
    #[allow(clippy::too_many_arguments)]
    fn gate_spec(
        &self,
        i: usize,
        attempt: u32,
        index: usize,
        try_no: u32,
        argv: Vec<String>,
        stdin: Value,
        timeout_ms: u64,
    ) -> AttemptSpec {
        let wf = &self.state.workflow;
        let id = &wf.tasks[i].id;
        // DESIGN §9: the task's workspace when it has one, else its pool's `cwd`.
        let pool_cwd =
            || self.state.tasks[i].pool.as_deref().and_then(|p| wf.pool_index(p)).and_then(|p| wf.pools[p].cwd.clone());
        let cwd = self.gate_workspace(i).or_else(pool_cwd);
        let mut bytes = serde_json::to_vec(&stdin).unwrap_or_default();
        bytes.push(b'\n');
        let env = vec![
            ("PITBOSS_TASK_ID".to_string(), id.clone()),
            ("PITBOSS_ATTEMPT".to_string(), attempt.to_string()),
            ("PITBOSS_GATE".to_string(), (index + 1).to_string()),
            ("PITBOSS_RUN_ID".to_string(), self.state.run_id.clone()),
            (MANAGER_PID_ENV.to_string(), std::process::id().to_string()),
            ("PITBOSS_STATE_DIR".to_string(), self.config.state_dir.display().to_string()),
        ];
        let name = if try_no > 1 { format!("{id}.g{}.r{try_no}", index + 1) } else { format!("{id}.g{}", index + 1) };
        AttemptSpec {
            pool: String::new(),
            task: name,
            attempt,
            argv,
            stdin: Some(bytes),
            env,
            cwd,
            timeout: Duration::from_millis(timeout_ms),
            kill_grace: Duration::from_millis(wf.kill_grace_ms),
            output_dir: self.config.output_dir.join("gates"),
            live: None,
            persistent: None,
            file_base: None,
            reattach: false,
            agent: None,
            on_control: None,
        }
    }

    /// One spec per review try on the reviewer pool, or why the review cannot run.
    #[allow(clippy::too_many_arguments)]
    fn review_specs(
        &self,
        i: usize,
        attempt: u32,
        index: usize,
        pool: &str,
        criteria: &[String],
        timeout_ms: u64,
        retry: &RetryPolicy,
        result: &Value,
    ) -> Result<Vec<AttemptSpec>, String> {
        let wf = &self.state.workflow;
        let p = wf.pool_index(pool).ok_or_else(|| format!("no reviewer pool {pool:?}"))?;
        if self.state.pools[p].breaker.is_open() {
            return Err(format!("the reviewer pool {pool:?} has its breaker open"));
        }
        let reviewer = &wf.pools[p];
        let doc = json!({ "review": { "task": self.task_doc(i, attempt), "result": result, "criteria": criteria } });
        let argv = self.filled(i, attempt, &reviewer.command)?;
        let stdin_doc = match &reviewer.stdin {
            StdinMode::Task => Some(doc),
            StdinMode::None => None,
            StdinMode::Template(t) => Some(Value::String(self.filled(i, attempt, std::slice::from_ref(t))?.concat())),
        };
        let tries = retry.max_attempts.max(1);
        Ok((1..=tries)
            .map(|k| {
                let mut s = self.gate_spec(i, attempt, index, k, argv.clone(), Value::Null, timeout_ms);
                s.stdin = match &stdin_doc {
                    Some(Value::String(text)) => Some(text.clone().into_bytes()),
                    Some(doc) => serde_json::to_vec(doc).ok().map(|mut b| {
                        b.push(b'\n');
                        b
                    }),
                    None => None,
                };
                s.pool = pool.to_string();
                // A persistent reviewer pool takes the review as one more line.
                s.persistent = (reviewer.mode == PoolMode::Persistent).then(|| self.worker_spec(pool));
                s.env.extend(reviewer.env.iter().map(|(k, v)| (k.clone(), v.clone())));
                s.env.push(("PITBOSS_POOL".into(), pool.to_string()));
                s.cwd = reviewer.cwd.clone();
                s
            })
            .collect())
    }
}

/// What a gate runs with: the runner and clock, its stop, and where its usage lines go.
#[derive(Clone)]
struct Gear {
    runner: Arc<dyn Runner>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<Option<crate::io::runner::Stop>>,
    usage: UsageReport,
}

/// Runs one gate to its verdict, with how a review's failed tries failed (they count
/// on the reviewer pool's breaker); `None` when the engine stopped it.
async fn run_job(job: Job, gear: Gear) -> Option<(GateOutcome, Vec<FailureClass>)> {
    match job {
        Job::Review { specs, retry, min_score } => review(specs, retry, min_score, gear).await,
        other => run_check(other, gear).await.map(|outcome| (outcome, Vec::new())),
    }
}

/// Runs one gate other than a review to its verdict; `None` when the engine stopped it.
async fn run_check(job: Job, gear: Gear) -> Option<GateOutcome> {
    match job {
        Job::Refused(reason) => Some(GateOutcome::Error { reason }),
        Job::Schema(Err(why), _) => Some(GateOutcome::Error { reason: format!("the schema does not compile: {why}") }),
        Job::Schema(Ok(schema), result) => Some(match schema.check(&result) {
            Ok(()) => {
                GateOutcome::Passed { reason: "the result matches the schema".into(), score: None, critique: None }
            }
            Err(problems) => GateOutcome::Failed { reason: problems.clone(), score: None, critique: Some(problems) },
        }),
        Job::Command(spec) => {
            let dir = spec.output_dir.clone();
            let base = format!("{}.{}", crate::core::spawn::file_stem(&spec.task), spec.attempt);
            let program = spec.argv.first().cloned().unwrap_or_default();
            let end = run_process(gear, *spec).await?;
            Some(command_verdict(end, &program, &dir, &base))
        }
        // `run_job` runs reviews itself, keeping their failures; this arm only keeps
        // the match total without a panic.
        Job::Review { specs, retry, min_score } => {
            review(specs, retry, min_score, gear).await.map(|(outcome, _)| outcome)
        }
        Job::Security { result, secrets, scanner } => {
            // Off the engine loop: a large result takes a while to scan.
            let found = security::scan(&result, &secrets);
            if !found.is_empty() {
                let (reason, critique) = verdict::security_failure(&found);
                return Some(GateOutcome::Failed { reason, score: None, critique: Some(critique) });
            }
            let Some(spec) = scanner else {
                let reason = "no findings by the built-in rules".into();
                return Some(GateOutcome::Passed { reason, score: None, critique: None });
            };
            let dir = spec.output_dir.clone();
            let base = format!("{}.{}", crate::core::spawn::file_stem(&spec.task), spec.attempt);
            let program = spec.argv.first().cloned().unwrap_or_default();
            let end = run_process(gear, *spec).await?;
            Some(match command_verdict(end, &program, &dir, &base) {
                GateOutcome::Passed { reason, score, critique } => GateOutcome::Passed {
                    reason: format!("no findings by the built-in rules; the scanner {reason}"),
                    score,
                    critique,
                },
                GateOutcome::Failed { reason, score, critique } => {
                    GateOutcome::Failed { reason: format!("the scanner {program} failed: {reason}"), score, critique }
                }
                GateOutcome::Error { reason } => GateOutcome::Error { reason: format!("the scanner: {reason}") },
            })
        }
        Job::Perf { run, limits, baseline, secrets } => {
            let mut stopped = gear.stop.clone();
            tokio::select! {
                outcome = perf(run, limits, baseline, &secrets) => Some(outcome),
                // Dropping the measurement kills its running process group.
                _ = stopped.wait_for(|s| s.is_some()) => None,
            }
        }
    }
}

/// A perf gate's verdict: the measurement against the limits. A command that cannot
/// start, or a baseline file that cannot be read, is a gate that could not run; a
/// run that fails or times out fails the gate, with its output's tail (redacted and
/// escaped) as the critique.
async fn perf(
    run: PerfRun,
    mut limits: PerfLimits,
    baseline: Option<PathBuf>,
    secrets: &[(String, String)],
) -> GateOutcome {
    if let Some(path) = baseline {
        let read = match tokio::fs::read_to_string(&path).await {
            Ok(text) => verdict::read_baseline(&text),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(ms) => limits.reference = Some(Reference::Baseline(ms)),
            Err(why) => {
                return GateOutcome::Error { reason: format!("cannot use the baseline {}: {why}", path.display()) }
            }
        }
    }
    match measure(run).await {
        Ok(sample) => {
            let m = Measured { median_ms: sample.median_ms, peak_rss_kb: sample.peak_rss_kb, runs: sample.runs };
            match verdict::judge_perf(m, &limits) {
                Ok(reason) => GateOutcome::Passed { reason, score: None, critique: None },
                Err(reason) => GateOutcome::Failed { reason: reason.clone(), score: None, critique: Some(reason) },
            }
        }
        Err(e @ (PerfError::NotFound { .. } | PerfError::Io { .. })) => GateOutcome::Error { reason: e.to_string() },
        Err(e @ PerfError::TimedOut { .. }) => {
            let reason = e.to_string();
            GateOutcome::Failed { reason: reason.clone(), score: None, critique: Some(reason) }
        }
        Err(PerfError::Failed { program, run, runs, exit_code, signal, tail }) => {
            // The tail is the command's own output: secrets out, control characters escaped.
            let (redactor, _) = Redactor::new(secrets.iter().cloned());
            let tail = escape_text(&redactor.text(&tail)).into_owned();
            let error = PerfError::Failed { program, run, runs, exit_code, signal, tail: String::new() };
            let reason = error.to_string().trim_end_matches([':', ' ']).to_string();
            GateOutcome::Failed { reason, score: None, critique: Some(tail) }
        }
    }
}

/// Runs one gate process under the supervisor; `None` when the engine stopped it.
async fn run_process(gear: Gear, spec: AttemptSpec) -> Option<Outcome> {
    if let Err(e) = tokio::fs::create_dir_all(&spec.output_dir).await {
        let error = format!("cannot create {}: {e}", spec.output_dir.display());
        return Some(Outcome::Failure {
            class: FailureClass::SpawnResource,
            error,
            exit_code: None,
            signal: None,
            duration_ms: 0,
            output: SmallOutput::default(),
        });
    }
    let limits = Limits { timeout: spec.timeout, stall_after: None, stall_kill_after: None };
    // A check's output that cannot be saved is not an event yet: its tail still
    // reaches the verdict, and `output_capture_failed` names worker attempts only.
    // Its usage lines are the task's spend (issue 17).
    let reports = Reports {
        on_spawn: Box::new(|_, _| {}),
        on_stall: Box::new(|_| {}),
        on_capture_failed: Arc::new(|_, _| {}),
        on_usage: gear.usage,
    };
    match supervise(gear.runner, gear.clock, spec, limits, gear.stop, reports).await {
        // A reviewer cannot plan: its spawn lines are ignored (DESIGN-NOTES, issue 13).
        AttemptEnd::Outcome(outcome) | AttemptEnd::Planned(outcome, _) => Some(outcome),
        AttemptEnd::Lost { worker, reason, .. } => Some(AttemptEnd::lost_as_failure(&worker, &reason)),
        AttemptEnd::Stopped(..) => None,
    }
}

/// A check program's verdict: exit 0 passes; a program that cannot start could not
/// run; any other end fails, with the tail of its output as the critique.
fn command_verdict(end: Outcome, program: &str, dir: &Path, base: &str) -> GateOutcome {
    match end {
        Outcome::Success { output, result, .. } => {
            let mut tail = output_tail(&output, dir, base);
            if tail.is_empty() {
                tail = match result {
                    Value::String(text) => text,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
            }
            let critique = (!tail.is_empty()).then_some(tail);
            GateOutcome::Passed { reason: format!("{program} exited 0"), score: None, critique }
        }
        Outcome::Failure { class: FailureClass::SpawnPermanent | FailureClass::SpawnResource, error, .. } => {
            GateOutcome::Error { reason: error }
        }
        Outcome::Failure { error, output, .. } => {
            let tail = output_tail(&output, dir, base);
            let critique = Some(if tail.is_empty() { error.clone() } else { tail });
            GateOutcome::Failed { reason: error, score: None, critique }
        }
    }
}

/// The end of what a gate process printed (stdout, then stderr), at most
/// [`CRITIQUE_BYTES`]: from the log's small output, else from its capture files.
fn output_tail(output: &SmallOutput, dir: &Path, base: &str) -> String {
    let mut text = String::new();
    for (small, stream) in [(&output.stdout, "stdout"), (&output.stderr, "stderr")] {
        let part = match small {
            Some(s) => s.clone(),
            None => read_tail(&dir.join(format!("{base}.{stream}"))),
        };
        text.push_str(&part);
    }
    let text = text.trim_end();
    let mut start = text.len().saturating_sub(CRITIQUE_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The last [`CRITIQUE_BYTES`] of a capture file, or nothing when there is none.
fn read_tail(path: &PathBuf) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(CRITIQUE_BYTES);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(_) => String::new(),
    }
}

/// A review: tries on the reviewer pool until one answers `{"score","critique"}`,
/// with the gate's backoff between tries. A score below `min_score` fails; no usable
/// answer after every try means the gate could not run. Also returns how the failed
/// tries failed: the reviewer's own failure class, or `worker` for a nonsense answer
/// (a low score is a verdict on the result, not a failure of the reviewer).
async fn review(
    specs: Vec<AttemptSpec>,
    retry: RetryPolicy,
    min_score: u8,
    gear: Gear,
) -> Option<(GateOutcome, Vec<FailureClass>)> {
    let tries = specs.len() as u32;
    let mut failures = Vec::new();
    let pool = specs.first().map(|s| s.pool.clone()).unwrap_or_default();
    let mut last = String::from("no review ran");
    for (k, spec) in specs.into_iter().enumerate() {
        let try_no = k as u32 + 1;
        if try_no > 1 {
            let delay = backoff::delay_ms(&retry, try_no - 1, 0.5);
            let mut stopped = gear.stop.clone();
            tokio::select! {
                _ = gear.clock.sleep_until(gear.clock.now_ms().saturating_add(delay)) => {}
                _ = stopped.wait_for(|s| s.is_some()) => return None,
            }
        }
        match run_process(gear.clone(), spec).await? {
            Outcome::Success { result, .. } => match read_review(&result) {
                Ok((score, critique)) if score >= min_score => {
                    let reason = format!("score {score}, at least {min_score}");
                    let passed = GateOutcome::Passed { reason, score: Some(score), critique: Some(critique) };
                    return Some((passed, failures));
                }
                Ok((score, critique)) => {
                    let reason = format!("score {score} is below {min_score}");
                    let failed = GateOutcome::Failed { reason, score: Some(score), critique: Some(critique) };
                    return Some((failed, failures));
                }
                Err(why) => {
                    failures.push(FailureClass::Worker);
                    last = why;
                }
            },
            Outcome::Failure { class, error, duration_ms, .. } => {
                failures.push(class);
                last = format!("{error} (after {})", human_ms(duration_ms));
            }
        }
    }
    let reason = format!("the reviewer on pool {pool:?} gave no usable answer in {tries} tries; last: {last}");
    Some((GateOutcome::Error { reason }, failures))
}
