//! Planner subtasks and submitted tasks (DESIGN §11), as pure decisions: the checks a
//! spawn or a submit must pass against the live run, the `tasks_spawned` event with
//! its held tasks, and the input a dependent gets from a task that spawned.
//!
//! A spawn is all or nothing: a duplicate id, a dependency that is not a sibling, a
//! cycle, a parent that already spawned, or (with `approve = "never"`) a task over a
//! `[planner]` limit refuses the whole of it, with one reason. Per-task rules (ids,
//! pools, capabilities, timeouts…) were checked by `config` when it read the tasks.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::checks::Finding;
use super::event::{Event, HeldAtSpawn};
use super::state::grow::PLANNER_RULE_PREFIX;
use super::state::RunState;
use crate::core::workflow::{Approve, TaskSpec};

/// Task `parent`'s tasks with their ids and dependencies namespaced under it
/// (`collect` → `plan/collect`).
pub fn namespaced(parent: &str, tasks: &[TaskSpec]) -> Vec<TaskSpec> {
    tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.id = format!("{parent}/{}", t.id);
            t.depends_on = t.depends_on.iter().map(|d| format!("{parent}/{d}")).collect();
            t
        })
        .collect()
}

/// The `tasks_spawned` event for task `i`'s `attempt` spawning `tasks` (as the worker
/// wrote them), or why the spawn is refused. `None` when the task already spawned
/// exactly these tasks: a planner rerun after its manager died between its
/// `tasks_spawned` and its result plans again, and the same plan adds nothing.
pub fn spawned(state: &RunState, i: usize, attempt: u32, tasks: &[TaskSpec]) -> Result<Option<Event>, String> {
    let parent = state.task_id(i);
    let tasks_full = namespaced(parent, tasks);
    let children = state.tasks[i].children();
    let same = children.len() == tasks_full.len()
        && children.iter().zip(&tasks_full).all(|(&c, t)| state.workflow.tasks[c] == *t);
    if same {
        return Ok(None);
    }
    if let Some(reason) = spawn_refusal(state, i, tasks) {
        return Err(reason);
    }
    let held = held(state, i, &tasks_full)?;
    Ok(Some(Event::TasksSpawned { task: parent.to_string(), attempt, tasks: tasks_full, held }))
}

/// Why task `i` may not spawn `tasks` (ids as the worker wrote them), or `None`: the
/// graph checks only (limits are [`spawned`]'s).
pub fn spawn_refusal(state: &RunState, i: usize, tasks: &[TaskSpec]) -> Option<String> {
    let parent = state.task_id(i);
    if !state.tasks[i].children().is_empty() {
        return Some(format!(
            "task {parent:?} already spawned other subtasks; a task spawns once (the same plan again adds nothing)"
        ));
    }
    let short: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    for t in tasks {
        if let Some(d) = t.depends_on.iter().find(|d| !short.contains(d.as_str())) {
            return Some(format!(
                "spawned task {:?} depends on {d:?}, which is not one of its siblings (a spawned task may depend on its siblings only)",
                t.id
            ));
        }
    }
    graph_refusal(state, &namespaced(parent, tasks))
}

/// Why `tasks` cannot be submitted to the live run, or `None`: each id new, each
/// dependency a task of the run or another submitted task, no cycle. The control
/// socket asks this before it sends a submit, to answer with the reason.
pub fn submit_refusal(state: &RunState, tasks: &[TaskSpec]) -> Option<String> {
    if tasks.is_empty() {
        return Some("nothing to submit: no [[task]] entries".to_string());
    }
    graph_refusal(state, tasks)
}

/// Duplicate ids (among `tasks` or with the run), unknown dependencies, cycles.
fn graph_refusal(state: &RunState, tasks: &[TaskSpec]) -> Option<String> {
    let mut seen = HashSet::new();
    for t in tasks {
        if state.task_index(&t.id).is_some() {
            return Some(format!("task id {:?} is already in the run", t.id));
        }
        if !seen.insert(t.id.as_str()) {
            return Some(format!("task id {:?} is given twice", t.id));
        }
    }
    for t in tasks {
        if let Some(d) = t.depends_on.iter().find(|d| state.task_index(d).is_none() && !seen.contains(d.as_str())) {
            return Some(format!("task {:?} depends on {d:?}, which is not a task of the run", t.id));
        }
    }
    cycle(tasks).map(|c| format!("the tasks' dependencies form a cycle: {}", c.join(" → ")))
}

/// A cycle among `tasks` (the run's own tasks cannot depend on new ones, so any cycle
/// is among them), as the ids around it with the first repeated at the end.
fn cycle(tasks: &[TaskSpec]) -> Option<Vec<String>> {
    let at: HashMap<&str, usize> = tasks.iter().enumerate().map(|(k, t)| (t.id.as_str(), k)).collect();
    // 0 unseen, 1 on the current path, 2 done.
    let mut mark = vec![0u8; tasks.len()];
    for start in 0..tasks.len() {
        if mark[start] != 0 {
            continue;
        }
        // Iterative depth-first walk: (task, next dependency to look at).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = 1;
        while let Some(&mut (k, ref mut next)) = path.last_mut() {
            let deps = &tasks[k].depends_on;
            if *next == deps.len() {
                mark[k] = 2;
                path.pop();
                continue;
            }
            let d = &deps[*next];
            *next += 1;
            let Some(&j) = at.get(d.as_str()) else { continue };
            match mark[j] {
                0 => {
                    mark[j] = 1;
                    path.push((j, 0));
                }
                1 => {
                    let from = path.iter().position(|&(p, _)| p == j).unwrap_or(0);
                    let mut ids: Vec<String> = path[from..].iter().map(|&(p, _)| tasks[p].id.clone()).collect();
                    ids.push(tasks[j].id.clone());
                    return Some(ids);
                }
                _ => {}
            }
        }
    }
    None
}

/// How deep task `i` is: 0 for the workflow's and submitted tasks, 1 for their
/// children, and so on.
pub fn depth(state: &RunState, i: usize) -> u32 {
    let mut depth = 0;
    let mut at = i;
    while let Some(p) = state.tasks[at].parent() {
        depth += 1;
        at = p;
    }
    depth
}

/// Which of task `i`'s new `tasks` (namespaced) wait for an operator, by the
/// workflow's `[planner]`; an error when a limit is passed with `approve = "never"`.
fn held(state: &RunState, i: usize, tasks: &[TaskSpec]) -> Result<Vec<HeldAtSpawn>, String> {
    let planner = state.workflow.planner;
    let parent = state.task_id(i);
    let depth = depth(state, i) + 1;
    let before = state.tasks.len();
    let mut held = Vec::new();
    for (k, t) in tasks.iter().enumerate() {
        let child = k + 1;
        let over = if depth > planner.max_depth {
            Some(("max-depth", format!("depth {depth}; max_depth = {}", planner.max_depth)))
        } else if child > planner.max_children as usize {
            Some(("max-children", format!("child {child} of {}; max_children = {}", tasks.len(), planner.max_children)))
        } else if before + child > planner.max_tasks as usize {
            Some(("max-tasks", format!("task {} of the run; max_tasks = {}", before + child, planner.max_tasks)))
        } else {
            None
        };
        let rule = match (over, planner.approve) {
            (Some((_, excerpt)), Approve::Never) => {
                return Err(format!("over the [planner] limits (approve = \"never\"): {}: {excerpt}", t.id));
            }
            (Some((rule, excerpt)), _) => Some((rule, excerpt)),
            (None, Approve::Always) => Some(("approve-always", "approve = \"always\"".to_string())),
            (None, _) => None,
        };
        if let Some((rule, excerpt)) = rule {
            let finding = Finding {
                rule: format!("{PLANNER_RULE_PREFIX}{rule}"),
                location: format!("spawned by {parent}"),
                excerpt,
            };
            held.push(HeldAtSpawn { task: t.id.clone(), finding });
        }
    }
    Ok(held)
}

/// What a dependent gets for dependency `d` in its `inputs`: its result, or, when it
/// spawned, `{"result": …, "children": {child: …}}` with each child's id without the
/// parent's prefix and each child that spawned nested the same way. The one builder
/// for the worker's stdin and the input guard.
pub fn dependency_input(state: &RunState, d: usize) -> Value {
    let result = state.tasks[d].result.as_ref().map_or(Value::Null, super::json_text::JsonText::value);
    let children = state.tasks[d].children();
    if children.is_empty() {
        return result;
    }
    let prefix = format!("{}/", state.task_id(d));
    let mut out = Map::new();
    for &c in children {
        let id = state.task_id(c);
        out.insert(id.strip_prefix(&prefix).unwrap_or(id).to_string(), dependency_input(state, c));
    }
    serde_json::json!({ "result": result, "children": out })
}

/// Task `i`'s `inputs`: each dependency it declared, by id (the edges from a
/// dependency's descendants are waited for, but reach it nested in that dependency's
/// input).
pub fn inputs(state: &RunState, i: usize) -> Map<String, Value> {
    state.workflow.tasks[i]
        .depends_on
        .iter()
        .filter_map(|id| Some((id.clone(), dependency_input(state, state.task_index(id)?))))
        .collect()
}

/// The file-name form of a task id: a spawned task's `/` would make a folder.
pub fn file_stem(id: &str) -> String {
    id.replace('/', "~")
}
