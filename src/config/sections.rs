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
    let split::Sections { rest, tasks } = split::split(text)?;
    let rest = parse::read_rest(&rest, shape::WORKFLOW)?;
    let pool_names = rest.pool.iter().map(|p| p.name.get_ref().clone()).collect();
    let mut checker = Checker::unplaced(base, pool_names);
    checker.broker_flag = broker.cloned();
    let mut built = None;
    let mut workflow = checker.workflow_with(&rest, |checker, defaults, pools| {
        built = build(checker, defaults, pools, text, &tasks);
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
    let tasks = build(&mut checker, &defaults, &workflow.pools, text, &tasks)?;
    workflow.check_tasks_in_run(&tasks, known).is_empty().then_some(tasks)
}

/// Each section's task, built and checked on its own; `None` at the first problem.
fn build(
    checker: &mut Checker<'_>,
    defaults: &TaskDefaults,
    pools: &[PoolSpec],
    text: &str,
    sections: &[std::ops::Range<usize>],
) -> Option<Vec<TaskSpec>> {
    let mut tasks = Vec::with_capacity(sections.len());
    for (i, section) in sections.iter().enumerate() {
        let raw = parse::read_task(&text[section.clone()])?;
        let task = checker.task(i, &raw, defaults);
        checker.consensus_pools_of(&raw, &task, pools);
        if checker.has_problems() {
            return None;
        }
        tasks.push(task);
    }
    Some(tasks)
}
