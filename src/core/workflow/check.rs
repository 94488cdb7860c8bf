//! The rules a workflow must follow that need no file text: limits, pool commands and
//! placeholders, task ids, pools and capabilities, fallbacks, payload keys, and the
//! dependency graph (`graph.rs`). `config` runs them on every workflow file and
//! places each error at a line and column; the engine can run them on tasks spawned or
//! submitted during a run ([`Workflow::check_new_tasks`]).
//!
//! Every check reports every problem (a file with five mistakes shows five lines), in
//! a stable order: run settings, then each pool, then each task, then the graph.

use std::collections::HashSet;

use super::error::{Limit, Site, Template, WorkflowError, MULTIPLIER_RANGE};
use super::template::{is_known, lookup_payload, placeholders, RUN_WIDE_PLACEHOLDERS};
use super::{graph, shell, BreakerPolicy, Fallback, PoolMode, PoolSpec, RetryPolicy, StdinMode, TaskSpec, Workflow};

impl Workflow {
    /// Every problem of the workflow, in a stable order (run, pools, tasks, graph);
    /// empty when it is valid.
    pub fn check(&self) -> Vec<WorkflowError> {
        let mut errors = Vec::new();
        errors.extend(out_of_range(
            Site::Run,
            Limit::MaxParallel,
            u64::try_from(self.max_parallel).unwrap_or(u64::MAX),
        ));
        for (i, pool) in self.pools.iter().enumerate() {
            check_pool(i, pool, self.broker.is_some(), &mut errors);
        }
        let mut names = HashSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            if !names.insert(pool.name.as_str()) {
                errors.push(WorkflowError::DuplicatePool { pool: i, name: pool.name.clone() });
            }
        }
        if self.pools.is_empty() && !self.tasks.is_empty() {
            errors.push(WorkflowError::NoPools);
        }
        errors.extend(check_tasks(&self.pools, &|_| false, &self.tasks));
        errors
    }

    /// Problems of tasks to be added to this (valid) workflow, such as tasks a planner
    /// spawned or an operator submitted: each is held to the rules of a workflow file's
    /// tasks, and may depend on the workflow's tasks or on each other. Task indices in
    /// the errors are positions in `tasks`.
    pub fn check_new_tasks(&self, tasks: &[TaskSpec]) -> Vec<WorkflowError> {
        let ids: HashSet<&str> = self.tasks.iter().map(|t| t.id.as_str()).collect();
        self.check_tasks_in_run(tasks, &|id| ids.contains(id))
    }

    /// [`Workflow::check_new_tasks`] against a run whose task ids `known` answers for
    /// (the live run's own index, which already holds the tasks spawned and submitted
    /// since), instead of this workflow's list: nothing is built per run task, so a
    /// submit costs what it submits. Only this workflow's pools are looked at.
    pub fn check_tasks_in_run(&self, tasks: &[TaskSpec], known: &dyn Fn(&str) -> bool) -> Vec<WorkflowError> {
        check_tasks(&self.pools, known, tasks)
    }
}

impl RetryPolicy {
    /// Problems of this policy, reported at `site`.
    pub fn check(&self, site: Site) -> Vec<WorkflowError> {
        let mut errors: Vec<WorkflowError> =
            out_of_range(site, Limit::MaxAttempts, u64::from(self.max_attempts)).into_iter().collect();
        let (low, high) = MULTIPLIER_RANGE;
        if !(self.multiplier.is_finite() && (low..=high).contains(&self.multiplier)) {
            errors.push(WorkflowError::Multiplier { site, value: self.multiplier });
        }
        errors
    }
}

impl BreakerPolicy {
    /// Problems of this policy, reported at `site`.
    pub fn check(&self, site: Site) -> Vec<WorkflowError> {
        let limits = [(Limit::BreakerFailures, self.failures), (Limit::BreakerHalfOpen, self.half_open)];
        limits.into_iter().filter_map(|(limit, value)| out_of_range(site, limit, u64::from(value))).collect()
    }
}

/// The problem of a count outside 1..=[`Limit::max`], if it is.
fn out_of_range(site: Site, limit: Limit, value: u64) -> Option<WorkflowError> {
    if value == 0 {
        Some(WorkflowError::TooSmall { site, limit, value: 0 })
    } else if value > limit.max() {
        Some(WorkflowError::TooLarge { site, limit, value: i128::from(value) })
    } else {
        None
    }
}

/// `remote`: the run has a broker, whose `pitboss worker`s run their own command, so
/// a pool may leave `command` out (one it gives is still checked).
fn check_pool(i: usize, pool: &PoolSpec, remote: bool, errors: &mut Vec<WorkflowError>) {
    let site = Site::Pool(i);
    errors.extend(out_of_range(site, Limit::PerWorker, u64::try_from(pool.per_worker).unwrap_or(u64::MAX)));
    errors.extend(pool.recycle.max_tasks.and_then(|n| out_of_range(site, Limit::RecycleMaxTasks, n)));
    errors.extend(pool.recycle.max_rss_mb.and_then(|n| out_of_range(site, Limit::RecycleMaxRssMb, n)));
    if pool.mode == PoolMode::Persistent {
        for (arg, text) in pool.command.iter().enumerate() {
            for name in placeholders(text).into_iter().filter(|n| !RUN_WIDE_PLACEHOLDERS.contains(n)) {
                errors.push(WorkflowError::TaskPlaceholder { pool: i, arg, placeholder: name.to_string() });
            }
        }
        if pool.stdin != StdinMode::Task {
            errors.push(WorkflowError::PersistentStdin { pool: i });
        }
    }
    if let Some(breaker) = &pool.breaker {
        errors.extend(breaker.check(site));
    }
    if remote && pool.command.is_empty() {
        // The worker's CMD runs (DESIGN §7: the broker carries no command line).
    } else if pool.command.first().is_none_or(|program| program.trim().is_empty()) {
        errors.push(WorkflowError::EmptyCommand { pool: i, name: pool.name.clone() });
    } else {
        for (arg, text) in pool.command.iter().enumerate() {
            unknown_placeholders(i, Template::Arg(arg), text, errors);
        }
        for arg in shell::script_args(&pool.command) {
            for name in placeholders(&pool.command[arg]) {
                errors.push(WorkflowError::ShellPlaceholder { pool: i, arg, placeholder: name.to_string() });
            }
        }
    }
    errors.extend(out_of_range(site, Limit::Concurrency, u64::try_from(pool.concurrency).unwrap_or(u64::MAX)));
    if let StdinMode::Template(text) = &pool.stdin {
        unknown_placeholders(i, Template::Stdin, text, errors);
    }
    for (entry, name) in pool.secret_env.iter().enumerate() {
        if name.is_empty() || name.contains('=') {
            errors.push(WorkflowError::SecretEnv { pool: i, entry, name: name.clone() });
        }
    }
}

fn unknown_placeholders(pool: usize, at: Template, text: &str, errors: &mut Vec<WorkflowError>) {
    for name in placeholders(text).into_iter().filter(|n| !is_known(n)) {
        errors.push(WorkflowError::UnknownPlaceholder { pool, at, placeholder: name.to_string() });
    }
}

/// Each task's own rules against the pools, then the graph of `known` and `tasks`.
fn check_tasks(pools: &[PoolSpec], known: &dyn Fn(&str) -> bool, tasks: &[TaskSpec]) -> Vec<WorkflowError> {
    let mut errors = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        check_task(i, task, pools, &mut errors);
    }
    graph::check(known, tasks, &mut errors);
    errors
}

fn check_task(i: usize, task: &TaskSpec, pools: &[PoolSpec], errors: &mut Vec<WorkflowError>) {
    let id = &task.id;
    if let Some(Fallback::Pool(name)) = task.fallback() {
        if !pools.iter().any(|p| &p.name == name) {
            errors.push(WorkflowError::UnknownFallbackPool { task: i, id: id.clone(), pool_name: name.clone() });
        }
    }
    if id.is_empty()
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || id.starts_with('.')
    {
        errors.push(WorkflowError::BadTaskId { task: i, id: id.clone() });
    }
    if task.timeout_ms == 0 {
        errors.push(WorkflowError::ZeroTimeout { task: i });
    }
    errors.extend(task.retry.check(Site::Task(i)));
    match &task.pool {
        Some(name) => match pools.iter().find(|p| &p.name == name) {
            None => errors.push(WorkflowError::UnknownPool { task: i, id: id.clone(), pool_name: name.clone() }),
            Some(pool) => {
                for (requirement, cap) in task.requires.iter().enumerate() {
                    if !pool.capabilities.contains(cap) {
                        errors.push(WorkflowError::MissingCapability {
                            task: i,
                            id: id.clone(),
                            requirement,
                            capability: cap.clone(),
                            pool_name: pool.name.clone(),
                        });
                    }
                }
            }
        },
        None if !task.requires.is_empty() && !pools.is_empty() && !pools.iter().any(|p| can_run(p, task)) => {
            errors.push(WorkflowError::NoCapablePool { task: i, id: id.clone(), requires: task.requires.clone() });
        }
        None => {}
    }
    missing_payload_keys(i, task, pools, errors);
}

fn can_run(pool: &PoolSpec, task: &TaskSpec) -> bool {
    task.requires.iter().all(|c| pool.capabilities.contains(c))
}

/// A `{payload.KEY}` the task's payload lacks would fail every attempt: catch it now.
fn missing_payload_keys(i: usize, task: &TaskSpec, pools: &[PoolSpec], errors: &mut Vec<WorkflowError>) {
    let candidates = pools.iter().filter(|p| match &task.pool {
        Some(name) => &p.name == name,
        None => can_run(p, task),
    });
    for pool in candidates {
        let mut templates: Vec<&str> = pool.command.iter().map(String::as_str).collect();
        if let StdinMode::Template(t) = &pool.stdin {
            templates.push(t);
        }
        for name in templates.into_iter().flat_map(placeholders) {
            if let Some(path) = name.strip_prefix("payload.") {
                if lookup_payload(&task.payload.value(), path).is_none() {
                    errors.push(WorkflowError::MissingPayloadKey {
                        task: i,
                        id: task.id.clone(),
                        pool_name: pool.name.clone(),
                        placeholder: name.to_string(),
                        path: path.to_string(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Strategy;
    use super::*;

    fn pool(name: &str, command: &[&str]) -> PoolSpec {
        PoolSpec {
            name: name.to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            capabilities: vec!["write".to_string()],
            concurrency: 1,
            stdin: StdinMode::Task,
            env: Default::default(),
            secret_env: Vec::new(),
            clean_env: false,
            cwd: None,
            breaker: None,
            stall_after_ms: None,
            stall_kill_after_ms: None,
            mode: PoolMode::Spawn,
            per_worker: 1,
            recycle: Default::default(),
            input_guard: false,
            task_cost_usd: None,

            workspace: None,

            agent: None,
        }
    }

    fn task(id: &str) -> TaskSpec {
        TaskSpec {
            id: id.to_string(),
            kind: String::new(),
            pool: None,
            requires: Vec::new(),
            payload: serde_json::json!({}).into(),
            depends_on: Vec::new(),
            timeout_ms: 1_000,
            retry: RetryPolicy::default().into(),
            extras: None,
            consensus: None,
        }
    }

    fn workflow(pools: Vec<PoolSpec>, tasks: Vec<TaskSpec>) -> Workflow {
        Workflow {
            name: "w".to_string(),
            max_parallel: 1,
            kill_grace_ms: 1,
            balancer: Strategy::LeastConnections,
            pools,
            tasks,
            notify: Vec::new(),
            planner: Default::default(),
            defaults: None,
            folder: None,
            broker: None,
            budget: Default::default(),
        }
    }

    fn messages(errors: &[WorkflowError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_valid_workflow_has_no_problems() {
        let mut a = task("a");
        a.requires = vec!["write".to_string()];
        let mut b = task("b");
        b.depends_on = vec!["a".to_string()];
        assert_eq!(workflow(vec![pool("p", &["echo", "{id}"])], vec![a, b]).check(), []);
    }

    #[test]
    fn limits_name_their_site_and_key() {
        let mut w = workflow(vec![pool("p", &["echo"])], vec![task("a")]);
        w.max_parallel = 0;
        w.pools[0].concurrency = 0;
        w.pools[0].breaker = Some(BreakerPolicy { failures: 0, window_ms: 1, cooldown_ms: 1, half_open: 1 });
        w.tasks[0].retry.max_attempts = 0;
        w.tasks[0].retry.multiplier = f64::NAN;
        w.tasks[0].timeout_ms = 0;
        let errors = w.check();
        assert!(errors.contains(&WorkflowError::TooSmall { site: Site::Run, limit: Limit::MaxParallel, value: 0 }));
        assert!(errors.contains(&WorkflowError::TooSmall {
            site: Site::Pool(0),
            limit: Limit::BreakerFailures,
            value: 0
        }));
        assert!(errors.contains(&WorkflowError::ZeroTimeout { task: 0 }));
        assert_eq!(
            messages(&errors),
            [
                "run.max_parallel must be at least 1, got 0",
                "breaker.failures must be at least 1, got 0",
                "concurrency must be at least 1, got 0",
                "timeout must be more than 0",
                "retry.max_attempts must be at least 1, got 0",
                "retry.multiplier must be a number from 1.0 to 100.0, got NaN",
            ]
        );
    }

    #[test]
    fn counts_have_a_ceiling_as_well_as_a_floor() {
        let mut w = workflow(vec![pool("p", &["echo"])], vec![task("a")]);
        w.max_parallel = 10_001;
        w.pools[0].concurrency = usize::MAX;
        w.pools[0].recycle.max_rss_mb = Some(u64::MAX);
        w.tasks[0].retry.max_attempts = 1_000;
        assert_eq!(
            messages(&w.check()),
            [
                "run.max_parallel must be at most 10000, got 10001",
                "recycle.max_rss_mb must be at most 1048576, got 18446744073709551615",
                "concurrency must be at most 10000, got 18446744073709551615",
            ]
        );
    }

    #[test]
    fn a_placeholder_in_a_shell_script_is_refused_and_one_passed_as_an_argument_is_not() {
        let unsafe_pool = pool("p", &["sh", "-c", "echo {payload.x} {id}"]);
        let safe_pool = pool("q", &["sh", "-c", "echo \"$1\"", "_", "{payload.x}"]);
        let w = workflow(vec![unsafe_pool, safe_pool], Vec::new());
        assert_eq!(
            w.check(),
            [
                WorkflowError::ShellPlaceholder { pool: 0, arg: 2, placeholder: "payload.x".to_string() },
                WorkflowError::ShellPlaceholder { pool: 0, arg: 2, placeholder: "id".to_string() },
            ]
        );
    }

    #[test]
    fn retry_multiplier_bounds() {
        let policy = |multiplier| RetryPolicy { multiplier, ..RetryPolicy::default() };
        assert_eq!(policy(1.0).check(Site::Defaults), []);
        assert_eq!(
            policy(0.99).check(Site::Defaults),
            [WorkflowError::Multiplier { site: Site::Defaults, value: 0.99 }]
        );
        assert_eq!(policy(f64::INFINITY).check(Site::Task(2)).len(), 1);
        assert_eq!(policy(100.0).check(Site::Defaults), []);
        assert_eq!(policy(100.5).check(Site::Defaults).len(), 1);
    }

    #[test]
    fn pool_commands_and_placeholders() {
        let mut persistent = pool("q", &["run", "{id}", "{run_id}", "{nope}"]);
        persistent.mode = PoolMode::Persistent;
        persistent.stdin = StdinMode::None;
        let mut empty = pool("p", &[" "]);
        empty.secret_env = vec!["A=B".to_string()];
        let w = workflow(vec![empty, persistent, pool("p", &["x"])], Vec::new());
        assert_eq!(
            w.check(),
            [
                WorkflowError::EmptyCommand { pool: 0, name: "p".to_string() },
                WorkflowError::SecretEnv { pool: 0, entry: 0, name: "A=B".to_string() },
                WorkflowError::TaskPlaceholder { pool: 1, arg: 1, placeholder: "id".to_string() },
                WorkflowError::TaskPlaceholder { pool: 1, arg: 3, placeholder: "nope".to_string() },
                WorkflowError::PersistentStdin { pool: 1 },
                WorkflowError::UnknownPlaceholder { pool: 1, at: Template::Arg(3), placeholder: "nope".to_string() },
                WorkflowError::DuplicatePool { pool: 2, name: "p".to_string() },
            ]
        );
        assert!(w.check()[5].to_string().starts_with("unknown placeholder {nope}: use {payload.KEY}, {id}, {type}"));
    }

    #[test]
    fn tasks_against_pools() {
        let mut pinned = task("bad id");
        pinned.pool = Some("p".to_string());
        pinned.requires = vec!["write".to_string(), "fly".to_string()];
        let mut lost = task("b");
        lost.pool = Some("gpu".to_string());
        lost.extras_mut().fallback = Some(Fallback::Pool("ghost".to_string()));
        let mut unable = task("c");
        unable.requires = vec!["fly".to_string()];
        let w = workflow(vec![pool("p", &["echo", "{payload.prompt}"])], vec![pinned, lost, unable]);
        assert_eq!(
            messages(&w.check()),
            [
                "task id \"bad id\" must be letters, digits, '_', '-' or '.' (it names files)",
                "task \"bad id\" requires \"fly\" but its pool \"p\" does not have it",
                "task \"bad id\" runs on pool \"p\" whose command uses {payload.prompt}, but its payload has no \"prompt\"",
                "task \"b\": fallback pool \"ghost\" does not exist",
                "task \"b\" names unknown pool \"gpu\"",
                "task \"c\": no pool has all of the capabilities [\"fly\"]",
            ]
        );
        assert_eq!(workflow(Vec::new(), vec![task("a")]).check(), [WorkflowError::NoPools]);
    }

    #[test]
    fn new_tasks_are_checked_against_the_workflow() {
        let w = workflow(vec![pool("p", &["echo"])], vec![task("a")]);
        let mut ok = task("b");
        ok.depends_on = vec!["a".to_string()];
        assert_eq!(w.check_new_tasks(&[ok]), []);
        let mut bad = task("a");
        bad.pool = Some("gpu".to_string());
        bad.depends_on = vec!["zz".to_string()];
        assert_eq!(
            messages(&w.check_new_tasks(&[bad])),
            [
                "task \"a\" names unknown pool \"gpu\"",
                "duplicate task id \"a\"",
                "task \"a\" depends on unknown task \"zz\""
            ]
        );
    }
}
