//! Reading a file one `[[task]]` section at a time (issue 14): memory in proportion
//! to the file, not to its TOML tree. `split.rs` finds the sections; the rest of the
//! file (everything but the tasks) is read first, then each section alone through the
//! same shape check and serde path as a whole file, its raw task dropped as soon as
//! its [`TaskSpec`] is built.
//!
//! Only valid files are read this way. At the first problem of any kind (a syntax
//! error, a shape problem, a bad value, a core check such as a duplicate id across
//! sections), the caller reads the whole document instead, as before: its messages,
//! lines and columns are then exactly what they were, and a file with a problem costs
//! the memory it did. Spans here are a section's or the joined rest's, not the
//! file's: problems are only counted ([`Checker::unplaced`]), never placed or shown.

use std::path::Path;

use super::check::{self, Checker};
use super::defaults::TaskDefaults;
use super::{defaults, parse, shape, split};
use crate::core::workflow::{BrokerUrl, PoolSpec, TaskSpec, Workflow};

/// A valid workflow read in sections, or `None` when the file cannot be split with
/// certainty (`split.rs`) or has any problem.
pub(super) fn workflow(text: &str, base: &Path, broker: Option<&BrokerUrl>) -> Option<Workflow> {
    workflow_on(text, base, broker, threads_here())
}

/// [`workflow`] with its tasks read on up to `threads` threads.
pub(super) fn workflow_on(text: &str, base: &Path, broker: Option<&BrokerUrl>, threads: usize) -> Option<Workflow> {
    let split::Sections { rest, tasks } = split::split(text)?;
    let rest = parse::read_rest(&rest, shape::WORKFLOW)?;
    let pool_names = rest.pool.iter().map(|p| p.name.get_ref().clone()).collect();
    let mut checker = Checker::unplaced(base, pool_names);
    checker.broker_flag = broker.cloned();
    let mut built = None;
    let mut workflow = checker.workflow_with(&rest, |checker, defaults, pools| {
        built = build(checker, defaults, pools, text, &tasks, threads);
        Vec::new()
    });
    workflow.tasks = built?;
    if checker.has_problems() || !workflow.check().is_empty() {
        return None;
    }
    checker.spawn_only_keys(&rest, &workflow);
    if checker.has_problems() {
        return None;
    }
    check::resolve_paths(&mut workflow, base);
    Some(workflow)
}

/// Valid tasks to add to the run of `workflow` whose task ids `known` answers for
/// (`tasks_for_run`), read in sections, or `None` as for [`workflow`]. A file of tasks
/// has nothing but tasks.
pub(super) fn tasks(
    text: &str,
    workflow: &Workflow,
    known: &dyn Fn(&str) -> bool,
    base: &Path,
) -> Option<Vec<TaskSpec>> {
    let split::Sections { rest, tasks } = split::split(text)?;
    parse::read_rest(&rest, shape::TASKS)?;
    let pool_names = workflow.pools.iter().map(|p| p.name.clone()).collect();
    let mut checker = Checker::unplaced(base, pool_names);
    let defaults = workflow.defaults.clone().unwrap_or_else(defaults::builtin);
    let tasks = build(&mut checker, &defaults, &workflow.pools, text, &tasks, threads_here())?;
    workflow.check_tasks_in_run(&tasks, known).is_empty().then_some(tasks)
}

/// Sections below which a file is read on one thread: a thread costs more than
/// reading a few hundred small tasks.
const SECTIONS_PER_THREAD: usize = 256;
/// Threads reading one file, at most.
const MAX_THREADS: usize = 4;

/// Threads worth using on this machine: one per core, up to [`MAX_THREADS`].
fn threads_here() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS)
}

/// Each section's task, built and checked on its own; `None` at the first problem.
/// A large file's sections are read in contiguous shares on up to `threads` threads (each
/// with a checker of its own, [`like`] this one) and joined in order: reading the tasks
/// is nearly all of a run's start on a big file (benchmark P1: 6 of the 14 ms
/// before the first worker starts, for 2,000 tasks). Memory stays in proportion to
/// the file: each thread holds one raw task at a time.
fn build(
    checker: &mut Checker<'_>,
    defaults: &TaskDefaults,
    pools: &[PoolSpec],
    text: &str,
    sections: &[std::ops::Range<usize>],
    threads: usize,
) -> Option<Vec<TaskSpec>> {
    let threads = (sections.len() / SECTIONS_PER_THREAD).clamp(1, threads.max(1));
    if threads == 1 {
        return build_share(checker, defaults, pools, text, sections, 0);
    }
    let share = sections.len().div_ceil(threads);
    let shares: Vec<Option<Vec<TaskSpec>>> = std::thread::scope(|scope| {
        // A share whose thread cannot start (a process limit) is read here after the first.
        let others: Vec<_> = sections
            .chunks(share)
            .enumerate()
            .skip(1)
            .map(|(k, chunk)| {
                let mut own = like(checker);
                let read = move || build_share(&mut own, defaults, pools, text, chunk, k * share);
                std::thread::Builder::new().spawn_scoped(scope, read).map_err(|_| (k, chunk))
            })
            .collect();
        let first = build_share(checker, defaults, pools, text, &sections[..share], 0);
        let rest = others.into_iter().map(|other| match other {
            // A thread that panicked is a bug: its own panic goes on, not a problem of the file.
            Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err((k, chunk)) => build_share(&mut like(checker), defaults, pools, text, chunk, k * share),
        });
        std::iter::once(first).chain(rest).collect()
    });
    let mut shares = shares.into_iter();
    let mut tasks = shares.next()??;
    tasks.reserve_exact(sections.len() - tasks.len());
    for share in shares {
        tasks.extend(share?);
    }
    Some(tasks)
}

/// An unplaced checker like `checker` (same folder, pools and broker), for a share of
/// the sections read on another thread.
fn like<'a>(checker: &Checker<'a>) -> Checker<'a> {
    let mut own = Checker::unplaced(checker.base, checker.pool_names.clone());
    own.broker_flag = checker.broker_flag.clone();
    own
}

/// The tasks of `sections`, the first being task number `first` of the file.
fn build_share(
    checker: &mut Checker<'_>,
    defaults: &TaskDefaults,
    pools: &[PoolSpec],
    text: &str,
    sections: &[std::ops::Range<usize>],
    first: usize,
) -> Option<Vec<TaskSpec>> {
    let mut tasks = Vec::with_capacity(sections.len());
    for (i, section) in sections.iter().enumerate() {
        let raw = parse::read_task(&text[section.clone()])?;
        let task = checker.task(first + i, &raw, defaults);
        checker.consensus_pools_of(&raw, &task, pools);
        if checker.has_problems() {
            return None;
        }
        tasks.push(task);
    }
    Some(tasks)
}
