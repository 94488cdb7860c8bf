//! The second pass: raw structs → a [`Workflow`], with every problem at its line and
//! column. What only the file can show is reported while building (bad durations,
//! unknown modes and strategies, negative counts, keys not supported or not applying);
//! everything else is the core's `Workflow::check`, whose errors are placed here at the
//! value they are about ([`place`](Checker::place)).

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::core::workflow::{
    Approve, BreakerPolicy, BrokerUrl, Fallback, Limit, PlannerSpec, PoolMode, PoolSpec, Recycle, RetryPolicy, Site,
    StdinMode, Strategy, TaskSpec, Template, Workflow, WorkflowError, EXIT_CODE_RANGE, MAX_DURATION_MS,
};

use super::defaults::{self, TaskDefaults};
use super::gates::GateDefaults;
use super::parse::{
    line_col, parse_duration, RawBreaker, RawFallback, RawPlanner, RawPool, RawRecycle, RawRetry, RawRun, RawTask,
    RawWorkflow,
};
use super::Problem;

/// Builds and checks a workflow; on failure, every problem in file order.
pub(super) fn check(
    text: &str,
    raw: &RawWorkflow,
    base: &Path,
    broker: Option<&BrokerUrl>,
) -> Result<Workflow, Vec<Problem>> {
    let pool_names = raw.pool.iter().map(|p| p.name.get_ref().clone()).collect();
    let mut checker = Checker::new(text, base, pool_names);
    checker.broker_flag = broker.cloned();
    let mut workflow = checker.workflow(raw);
    for error in workflow.check() {
        checker.place(raw, &error);
    }
    // After the core's problems, so that at one position "per_worker must be at least 1"
    // comes before "`per_worker` only applies…" (the value first, then the key).
    checker.spawn_only_keys(raw, &workflow);
    checker.consensus_pools(raw, &workflow);
    if !checker.problems.is_empty() {
        let mut problems = checker.problems;
        // Stable: problems at one position keep the order they were found in.
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        return Err(problems);
    }
    // Only now: the checks look at the commands as the operator wrote them.
    resolve_paths(&mut workflow, base);
    Ok(workflow)
}

/// Builds and checks tasks to add to the run of `workflow` (a file of `[[task]]`
/// entries only), resolved against its pools and `[defaults]`; they may depend on or
/// clash with the run's tasks whose ids `known` answers for (a submit's: the run's;
/// a planner's: none, its dependencies are its siblings). Relative paths (gate
/// programs, schema files) resolve against `base`. Every problem in file order.
pub(super) fn tasks(
    text: &str,
    raw: &RawWorkflow,
    workflow: &Workflow,
    known: &dyn Fn(&str) -> bool,
    base: &Path,
) -> Result<Vec<TaskSpec>, Vec<Problem>> {
    let pool_names = workflow.pools.iter().map(|p| p.name.clone()).collect();
    let mut checker = Checker::new(text, base, pool_names);
    let defaults = workflow.defaults.clone().unwrap_or_else(defaults::builtin);
    let tasks: Vec<TaskSpec> = raw.task.iter().enumerate().map(|(i, t)| checker.task(i, t, &defaults)).collect();
    for error in workflow.check_tasks_in_run(&tasks, known) {
        checker.place(raw, &error);
    }
    for (raw_task, task) in raw.task.iter().zip(&tasks) {
        checker.consensus_pools_of(raw_task, task, &workflow.pools);
    }
    if !checker.problems.is_empty() {
        let mut problems = checker.problems;
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        return Err(problems);
    }
    Ok(tasks)
}

/// Collects problems while the workflow is built.
pub(super) struct Checker<'a> {
    /// The text the spans index, or `None` when they index no one text (a file read
    /// in sections, `sections.rs`, whose problems are counted, never shown).
    text: Option<&'a str>,
    problems: Vec<Problem>,
    /// The workflow file's folder: gate files and programs are relative to it.
    pub(super) base: &'a Path,
    /// Every pool name the file defines (a review gate names one).
    pub(super) pool_names: Vec<String>,
    /// The broker given on the command line (`--broker`), which makes this a broker
    /// run whatever the file says (see `config/broker.rs`).
    pub(super) broker_flag: Option<BrokerUrl>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(text: &'a str, base: &'a Path, pool_names: Vec<String>) -> Self {
        Checker { text: Some(text), problems: Vec::new(), base, pool_names, broker_flag: None }
    }

    /// A checker whose problems are not placed (see [`Checker::text`]).
    pub(super) fn unplaced(base: &'a Path, pool_names: Vec<String>) -> Self {
        Checker { text: None, problems: Vec::new(), base, pool_names, broker_flag: None }
    }

    pub(super) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Records a problem at the start of `span`.
    pub(super) fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.text.map_or((0, 0), |text| line_col(text, span.start));
        self.problems.push(Problem { line, col, message: message.into() });
    }

    /// A duration in milliseconds, or `None` after reporting why it is not one (not a
    /// duration, or longer than [`MAX_DURATION_MS`]). `key` names it as the file does.
    pub(super) fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<u64> {
        match parse_duration(value.get_ref()) {
            Ok(ms) if ms > MAX_DURATION_MS => {
                let message = format!("{key} must be at most 720h (30 days), got {:?}", value.get_ref());
                self.report(value.span(), message);
                None
            }
            Ok(ms) => Some(ms),
            Err(e) => {
                self.report(value.span(), e);
                None
            }
        }
    }

    /// A count as written, when it is within its limit's range; otherwise `None` after
    /// reporting it in the core's words, with the value as written (the workflow's
    /// types cannot hold a negative number or one past 64 bits). A value out of range
    /// is replaced by the default, so nothing is reported twice.
    fn count(&mut self, value: &Spanned<i128>, site: Site, limit: Limit) -> Option<u64> {
        let n = *value.get_ref();
        let error = if n < 1 {
            WorkflowError::TooSmall { site, limit, value: n }
        } else if n > i128::from(limit.max()) {
            WorkflowError::TooLarge { site, limit, value: n }
        } else {
            return u64::try_from(n).ok();
        };
        self.report(value.span(), error.to_string());
        None
    }

    /// `retry.never_on`: exit codes, each in [`EXIT_CODE_RANGE`] (a wider number could
    /// never match, and would once have wrapped into a code it does not name).
    pub(super) fn exit_codes(&mut self, codes: &[Spanned<i128>]) -> Vec<i32> {
        let (low, high) = EXIT_CODE_RANGE;
        let mut valid = Vec::new();
        for code in codes {
            match i32::try_from(*code.get_ref()) {
                Ok(c) if (i128::from(low)..=i128::from(high)).contains(code.get_ref()) => valid.push(c),
                _ => {
                    let message = format!("retry.never_on: an exit code is {low} to {high}, got {}", code.get_ref());
                    self.report(code.span(), message);
                }
            }
        }
        valid
    }

    /// `base` with what `raw` sets; the core checks the values.
    pub(super) fn retry(&mut self, raw: &RawRetry, base: RetryPolicy, site: Site) -> RetryPolicy {
        let mut policy = base;
        if let Some(n) = raw.max_attempts.as_ref().and_then(|n| self.count(n, site, Limit::MaxAttempts)) {
            policy.max_attempts = saturate(n);
        }
        if let Some(d) = &raw.initial {
            policy.initial_ms = self.duration(d, "retry.initial").unwrap_or(policy.initial_ms);
        }
        if let Some(d) = &raw.max {
            policy.max_ms = self.duration(d, "retry.max").unwrap_or(policy.max_ms);
        }
        if let Some(m) = &raw.multiplier {
            policy.multiplier = *m.get_ref();
        }
        if let Some(j) = raw.jitter {
            policy.jitter = j;
        }
        policy
    }

    fn workflow(&mut self, raw: &RawWorkflow) -> Workflow {
        self.workflow_with(raw, |checker, defaults, _| {
            raw.task.iter().enumerate().map(|(i, t)| checker.task(i, t, defaults)).collect()
        })
    }

    /// The workflow of `raw` but its tasks, which `tasks` builds (with the task
    /// defaults and the pools): from `raw.task`, or section by section.
    pub(super) fn workflow_with(
        &mut self,
        raw: &RawWorkflow,
        tasks: impl FnOnce(&mut Self, &TaskDefaults, &[PoolSpec]) -> Vec<TaskSpec>,
    ) -> Workflow {
        let (name, max_parallel, kill_grace_ms) = self.run(raw.run.as_ref());
        let task_defaults = self.task_defaults(raw.defaults.as_ref());
        let balancer = match &raw.balancer {
            None => defaults::BALANCER,
            Some(b) => self.strategy(&b.strategy),
        };
        let pools: Vec<PoolSpec> = raw.pool.iter().enumerate().map(|(i, p)| self.pool(i, p)).collect();
        let tasks = tasks(self, &task_defaults, &pools);
        let notify = self.notify(&raw.notify);
        let planner = raw.planner.as_ref().map(|p| self.planner(p)).unwrap_or_default();
        let defaults = raw.defaults.is_some().then_some(task_defaults);
        // Absolute, so that a resume started elsewhere resolves spawned tasks' paths alike.
        let folder = Some(std::path::absolute(self.base).unwrap_or_else(|_| self.base.to_path_buf()));
        let broker = self.broker(raw.run.as_ref());
        let budget = self.budget(raw.budget.as_ref());
        let mut pools = pools;
        if broker.is_some() {
            self.no_workspaces_in_broker_run(raw);
            // A broker pool's limit is what its live workers offer (`pool_capacity`):
            // one that sets no `concurrency` takes them all, not the local default of
            // one attempt at a time (two workers of 2 slots ran one task at a time).
            for (pool, raw) in pools.iter_mut().zip(&raw.pool) {
                if raw.concurrency.is_none() {
                    pool.concurrency = Limit::Concurrency.max() as usize;
                }
            }
        }
        Workflow {
            name,
            max_parallel,
            kill_grace_ms,
            balancer,
            pools,
            tasks,
            planner,
            defaults,
            notify,
            folder,
            broker,
            budget,
        }
    }

    /// `[planner]`: each limit in its range, `approve` one of its three words.
    fn planner(&mut self, raw: &RawPlanner) -> PlannerSpec {
        let mut spec = PlannerSpec::default();
        let limits = [
            (&raw.max_depth, Limit::PlannerMaxDepth, &mut spec.max_depth),
            (&raw.max_children, Limit::PlannerMaxChildren, &mut spec.max_children),
            (&raw.max_tasks, Limit::PlannerMaxTasks, &mut spec.max_tasks),
        ];
        for (value, limit, slot) in limits {
            if let Some(n) = value.as_ref().and_then(|n| self.count(n, Site::Run, limit)) {
                *slot = saturate(n);
            }
        }
        if let Some(a) = &raw.approve {
            spec.approve = match a.get_ref().as_str() {
                "never" => Approve::Never,
                "over-limits" => Approve::OverLimits,
                "always" => Approve::Always,
                other => {
                    let message =
                        format!("planner.approve: unknown value {other:?}: expected never, over-limits or always");
                    self.report(a.span(), message);
                    Approve::OverLimits
                }
            };
        }
        spec
    }

    /// `[run]`: name, max_parallel, kill_grace.
    fn run(&mut self, raw: Option<&RawRun>) -> (String, usize, u64) {
        let mut name = defaults::NAME.to_string();
        let mut max_parallel = defaults::MAX_PARALLEL;
        let mut kill_grace_ms = defaults::KILL_GRACE_MS;
        if let Some(run) = raw {
            if let Some(n) = &run.name {
                name = n.clone();
            }
            if let Some(n) = run.max_parallel.as_ref().and_then(|n| self.count(n, Site::Run, Limit::MaxParallel)) {
                max_parallel = n as usize;
            }
            if let Some(d) = &run.kill_grace {
                kill_grace_ms = self.duration(d, "run.kill_grace").unwrap_or(kill_grace_ms);
            }
        }
        (name, max_parallel, kill_grace_ms)
    }

    fn strategy(&mut self, raw: &Spanned<String>) -> Strategy {
        match raw.get_ref().as_str() {
            "round-robin" => Strategy::RoundRobin,
            "least-connections" => Strategy::LeastConnections,
            "capability" => Strategy::Capability,
            other => {
                self.report(
                    raw.span(),
                    format!(
                        "unknown balancer strategy {other:?}: expected round-robin, least-connections or capability"
                    ),
                );
                defaults::BALANCER
            }
        }
    }

    fn pool(&mut self, i: usize, raw: &RawPool) -> PoolSpec {
        let site = Site::Pool(i);
        let agent = self.agent(raw);
        let mode = self.mode(raw.mode.as_ref());
        let per_worker = raw.per_worker.as_ref().and_then(|n| self.count(n, site, Limit::PerWorker));
        let recycle = raw.recycle.as_ref().map(|r| self.recycle(r.get_ref(), site)).unwrap_or_default();
        let breaker = raw.breaker.as_ref().map(|b| self.breaker(b.get_ref(), site));
        let stall_after_ms = raw.stall_after.as_ref().and_then(|d| self.duration(d, "stall_after"));
        let stall_kill_after_ms = raw.stall_kill_after.as_ref().and_then(|d| self.duration(d, "stall_kill_after"));
        let concurrency = raw.concurrency.as_ref().and_then(|c| self.count(c, site, Limit::Concurrency));
        let stdin = match raw.stdin.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("task") => StdinMode::Task,
            Some("none") => StdinMode::None,
            Some(template) => StdinMode::Template(template.to_string()),
        };
        let workspace = self.pool_workspace(raw, mode);
        let mut pool = PoolSpec {
            name: raw.name.get_ref().clone(),
            command: raw.command.iter().flat_map(|c| c.get_ref()).map(|a| a.get_ref().clone()).collect(),
            capabilities: raw.capabilities.iter().map(|c| c.get_ref().clone()).collect(),
            concurrency: concurrency.map_or(defaults::CONCURRENCY, |n| n as usize),
            stdin,
            env: raw.env.clone(),
            secret_env: raw.secret_env.iter().map(|s| s.get_ref().clone()).collect(),
            clean_env: raw.clean_env,
            cwd: raw.cwd.as_ref().map(|c| PathBuf::from(c.get_ref())),
            breaker,
            stall_after_ms,
            stall_kill_after_ms,
            mode,
            per_worker: per_worker.map_or(defaults::PER_WORKER, |n| n as usize),
            recycle,
            input_guard: raw.input_guard,
            task_cost_usd: raw.task_cost_usd.as_ref().and_then(|v| self.dollars(v, "task_cost_usd")),
            workspace,
            agent,
        };
        super::agents::apply(&mut pool);
        pool
    }

    fn mode(&mut self, raw: Option<&Spanned<String>>) -> PoolMode {
        let Some(m) = raw else { return PoolMode::Spawn };
        match m.get_ref().as_str() {
            "spawn" => PoolMode::Spawn,
            "persistent" => PoolMode::Persistent,
            other => {
                self.report(m.span(), format!("unknown mode {other:?}: expected spawn or persistent"));
                PoolMode::Spawn
            }
        }
    }

    fn recycle(&mut self, raw: &RawRecycle, site: Site) -> Recycle {
        Recycle {
            max_tasks: raw.max_tasks.as_ref().and_then(|n| self.count(n, site, Limit::RecycleMaxTasks)),
            max_rss_mb: raw.max_rss_mb.as_ref().and_then(|n| self.count(n, site, Limit::RecycleMaxRssMb)),
        }
    }

    /// A value already reported (a bad duration, a negative count) is replaced by a
    /// harmless one, so that the core still checks the rest and reports nothing twice.
    fn breaker(&mut self, raw: &RawBreaker, site: Site) -> BreakerPolicy {
        let failures = self.count(&raw.failures, site, Limit::BreakerFailures);
        let window_ms = self.duration(&raw.window, "breaker.window");
        let cooldown_ms = self.duration(&raw.cooldown, "breaker.cooldown");
        let half_open = match &raw.half_open {
            Some(h) => self.count(h, site, Limit::BreakerHalfOpen),
            None => Some(u64::from(defaults::HALF_OPEN)),
        };
        BreakerPolicy {
            failures: failures.map_or(1, saturate),
            window_ms: window_ms.unwrap_or_default(),
            cooldown_ms: cooldown_ms.unwrap_or_default(),
            half_open: half_open.map_or(defaults::HALF_OPEN, saturate),
        }
    }

    /// The fallback's shape; whether its pool exists is the core's check.
    fn fallback(&mut self, raw: &Spanned<RawFallback>, id: &str) -> Option<Fallback> {
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

    pub(super) fn task(&mut self, i: usize, raw: &RawTask, defaults: &TaskDefaults) -> TaskSpec {
        let consensus = raw.consensus.as_ref().and_then(|c| self.consensus(c));
        let id = raw.id.get_ref().clone();
        let fallback = raw.fallback.as_ref().and_then(|f| self.fallback(f, &id));
        let timeout_ms = raw.timeout.as_ref().and_then(|t| self.duration(t, "timeout")).unwrap_or(defaults.timeout_ms);
        let retry = match &raw.retry {
            Some(r) => self.retry(r, defaults.retry, Site::Task(i)),
            None => defaults.retry,
        };
        let never_on = match raw.retry.as_ref().and_then(|r| r.never_on.as_ref()) {
            Some(codes) => self.exit_codes(codes),
            None => defaults.never_on.clone(),
        };
        let gates = match &raw.gates {
            Some(g) => {
                let inherit = GateDefaults { timeout_ms: defaults.timeout_ms, retry: defaults.retry };
                self.gates(g.get_ref(), Site::Task(i), &inherit)
            }
            None => defaults.gates.clone(),
        };
        let payload = crate::core::JsonText::of(&match &raw.payload {
            None => serde_json::Value::Object(Default::default()),
            Some(v) => serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        });
        let workspace = self.workspace(raw.workspace.as_ref(), raw.repo.as_ref(), &format!("task {id:?}"));
        let mut spec = TaskSpec {
            id,
            kind: raw.kind.clone().unwrap_or_default(),
            pool: raw.pool.as_ref().map(|p| p.get_ref().clone()),
            requires: raw.requires.iter().map(|c| c.get_ref().clone()).collect(),
            payload,
            depends_on: raw.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
            timeout_ms,
            retry: retry.into(),
            extras: crate::core::workflow::TaskExtras::boxed(never_on, fallback, gates, raw.input_guard),
            consensus: consensus.map(Box::new),
        };
        if workspace.is_some() {
            spec.extras_mut().workspace = workspace;
        }
        spec
    }

    /// Reports one of the core's errors at the value it is about.
    fn place(&mut self, raw: &RawWorkflow, error: &WorkflowError) {
        if let WorkflowError::EmptyCommand { pool, name } = error {
            // No `command` key at all says more than "empty command".
            if let Some(p) = raw.pool.get(*pool).filter(|p| p.command.is_none()) {
                // Only a broker run's pools may leave it out (the workers' command runs).
                let message = format!(
                    "pool {name:?} has no `command` (only a broker run may leave it out: `[run] broker` or --broker URL)"
                );
                self.report(p.name.span(), message);
                return;
            }
        }
        let span = locate(raw, error).or_else(|| site_span(raw, error.site())).unwrap_or(0..0);
        self.report(span, error.to_string());
    }

    /// `recycle` and `per_worker` in a spawn pool: the keys, not their values, are wrong.
    pub(super) fn spawn_only_keys(&mut self, raw: &RawWorkflow, workflow: &Workflow) {
        for (raw, pool) in raw.pool.iter().zip(&workflow.pools) {
            if pool.mode != PoolMode::Spawn {
                continue;
            }
            if let Some(r) = &raw.recycle {
                self.report(r.span(), "`recycle` only applies to mode = \"persistent\"");
            }
            if let Some(n) = &raw.per_worker {
                self.report(n.span(), "`per_worker` only applies to mode = \"persistent\"");
            }
        }
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The span of the value a core error is about, when the file wrote one.
fn locate(raw: &RawWorkflow, error: &WorkflowError) -> Option<Range<usize>> {
    use WorkflowError as E;
    let pool = |i: &usize| raw.pool.get(*i);
    let task = |i: &usize| raw.task.get(*i);
    match error {
        E::TooSmall { site, limit, .. } | E::TooLarge { site, limit, .. } => limit_span(raw, *site, *limit),
        E::Multiplier { site, .. } => span_of(&retry_of(raw, *site)?.multiplier),
        E::NoPools => None,
        E::DuplicatePool { pool: i, .. } => Some(pool(i)?.name.span()),
        E::EmptyCommand { pool: i, .. } => span_of(&pool(i)?.command),
        E::UnknownPlaceholder { pool: i, at: Template::Stdin, .. } | E::PersistentStdin { pool: i } => {
            span_of(&pool(i)?.stdin)
        }
        E::UnknownPlaceholder { pool: i, at: Template::Arg(arg), .. }
        | E::TaskPlaceholder { pool: i, arg, .. }
        | E::ShellPlaceholder { pool: i, arg, .. } => Some(pool(i)?.command.as_ref()?.get_ref().get(*arg)?.span()),
        E::SecretEnv { pool: i, entry, .. } => Some(pool(i)?.secret_env.get(*entry)?.span()),
        E::BadTaskId { task: i, .. } | E::MissingPayloadKey { task: i, .. } | E::DuplicateTask { task: i, .. } => {
            Some(task(i)?.id.span())
        }
        E::ZeroTimeout { task: i } => span_of(&task(i)?.timeout),
        E::UnknownPool { task: i, .. } => span_of(&task(i)?.pool),
        E::MissingCapability { task: i, requirement, .. } => Some(task(i)?.requires.get(*requirement)?.span()),
        E::NoCapablePool { task: i, .. } => Some(task(i)?.requires.first()?.span()),
        E::UnknownFallbackPool { task: i, .. } => span_of(&task(i)?.fallback.as_ref()?.get_ref().pool),
        E::UnknownDependency { task: i, dep, .. }
        | E::SelfDependency { task: i, dep, .. }
        | E::RepeatedDependency { task: i, dep, .. }
        | E::Cycle { task: i, dep, .. } => Some(task(i)?.depends_on.get(*dep)?.span()),
    }
}

/// The span of a count the core found too small.
fn limit_span(raw: &RawWorkflow, site: Site, limit: Limit) -> Option<Range<usize>> {
    if limit == Limit::MaxAttempts {
        return span_of(&retry_of(raw, site)?.max_attempts);
    }
    let pool = match site {
        Site::Run => return span_of(&raw.run.as_ref()?.max_parallel),
        Site::Pool(i) => raw.pool.get(i)?,
        Site::Defaults | Site::Task(_) => return None,
    };
    let recycle = || pool.recycle.as_ref().map(Spanned::get_ref);
    let breaker = || pool.breaker.as_ref().map(Spanned::get_ref);
    match limit {
        Limit::Concurrency => span_of(&pool.concurrency),
        Limit::PerWorker => span_of(&pool.per_worker),
        Limit::RecycleMaxTasks => span_of(&recycle()?.max_tasks),
        Limit::RecycleMaxRssMb => span_of(&recycle()?.max_rss_mb),
        Limit::BreakerFailures => Some(breaker()?.failures.span()),
        Limit::BreakerHalfOpen => span_of(&breaker()?.half_open),
        Limit::MaxParallel | Limit::MaxAttempts => None,
        // Range-checked while building (`Checker::planner`), never by the core.
        Limit::PlannerMaxDepth | Limit::PlannerMaxChildren | Limit::PlannerMaxTasks => None,
    }
}

/// The retry table a policy problem is in.
fn retry_of(raw: &RawWorkflow, site: Site) -> Option<&RawRetry> {
    match site {
        Site::Defaults => raw.defaults.as_ref()?.retry.as_ref(),
        Site::Task(i) => raw.task.get(i)?.retry.as_ref(),
        Site::Run | Site::Pool(_) => None,
    }
}

/// Where a problem goes when its value is not written in the file (a default): the
/// pool's name or the task's id.
fn site_span(raw: &RawWorkflow, site: Site) -> Option<Range<usize>> {
    match site {
        Site::Pool(i) => Some(raw.pool.get(i)?.name.span()),
        Site::Task(i) => Some(raw.task.get(i)?.id.span()),
        Site::Run | Site::Defaults => None,
    }
}

fn span_of<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

/// Relative paths mean "next to the workflow", not "wherever pitboss was started":
/// a command's program when it names a path (`./agent.sh`), and a pool's `cwd`.
pub(super) fn resolve_paths(workflow: &mut Workflow, base: &Path) {
    for pool in &mut workflow.pools {
        if let Some(program) = pool.command.first_mut() {
            if program.contains('/') && !program.starts_with('{') && Path::new(program.as_str()).is_relative() {
                *program = base.join(&*program).display().to_string();
            }
        }
        if let Some(cwd) = &mut pool.cwd {
            if cwd.is_relative() {
                *cwd = base.join(&*cwd);
            }
        }
    }
}
