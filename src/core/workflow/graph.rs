//! The dependency graph's rules: unique ids, dependencies that exist (once each, never
//! the task itself), and no cycles.

use std::collections::{HashMap, HashSet};

use super::error::WorkflowError;
use super::TaskSpec;

/// Checks `tasks` as additions to the tasks already accepted, whose ids `known`
/// answers for (they are trusted: their dependencies never point at the new ones, so
/// any cycle is among `tasks`). A lookup rather than a list, so that a run's own index
/// answers and adding one task to a big run costs one task. Whole workflows know none.
pub(super) fn check(known: &dyn Fn(&str) -> bool, tasks: &[TaskSpec], errors: &mut Vec<WorkflowError>) {
    // A repeated id maps to its last task, as the cycle search below expects.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if index.insert(&t.id, i).is_some() || known(t.id.as_str()) {
            errors.push(WorkflowError::DuplicateTask { task: i, id: t.id.clone() });
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        let mut seen = HashSet::new();
        for (dep, name) in t.depends_on.iter().enumerate() {
            let id = || t.id.clone();
            if !index.contains_key(name.as_str()) && !known(name.as_str()) {
                errors.push(WorkflowError::UnknownDependency { task: i, id: id(), dep, name: name.clone() });
            } else if name == &t.id {
                errors.push(WorkflowError::SelfDependency { task: i, id: id(), dep });
            } else if !seen.insert(name) {
                errors.push(WorkflowError::RepeatedDependency { task: i, id: id(), dep, name: name.clone() });
            }
        }
    }
    cycles(tasks, &index, errors);
}

/// Colour DFS: a back edge closes a cycle; each cycle is reported once, named in order
/// from where the search entered it.
fn cycles(tasks: &[TaskSpec], index: &HashMap<&str, usize>, errors: &mut Vec<WorkflowError>) {
    const NEW: u8 = 0;
    const ON_STACK: u8 = 1;
    const DONE: u8 = 2;
    let mut colour = vec![NEW; tasks.len()];
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..tasks.len() {
        if colour[start] != NEW {
            continue;
        }
        // (task, next dependency to follow)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = ON_STACK;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &tasks[node].depends_on;
            if *next >= deps.len() {
                colour[node] = DONE;
                stack.pop();
                continue;
            }
            let edge = *next;
            *next += 1;
            // Dependencies on unknown or already accepted tasks end the path.
            let Some(&dep) = index.get(deps[edge].as_str()) else { continue };
            if dep == node {
                continue; // reported as "depends on itself"
            }
            match colour[dep] {
                NEW => {
                    colour[dep] = ON_STACK;
                    stack.push((dep, 0));
                }
                ON_STACK => {
                    let pos = stack.iter().position(|(t, _)| *t == dep).unwrap_or(0);
                    let mut members: Vec<usize> = stack[pos..].iter().map(|(t, _)| *t).collect();
                    let mut key = members.clone();
                    key.sort_unstable();
                    if reported.insert(key) {
                        members.push(dep);
                        let cycle = members.iter().map(|&t| tasks[t].id.clone()).collect();
                        errors.push(WorkflowError::Cycle { task: node, dep: edge, cycle });
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workflow::RetryPolicy;

    fn task(id: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.to_string(),
            kind: String::new(),
            pool: None,
            requires: Vec::new(),
            payload: serde_json::Value::Null.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            timeout_ms: 1,
            retry: RetryPolicy::default().into(),
            extras: None,
            consensus: None,
        }
    }

    fn run(known: &[TaskSpec], tasks: &[TaskSpec]) -> Vec<String> {
        let mut errors = Vec::new();
        let ids: HashSet<&str> = known.iter().map(|t| t.id.as_str()).collect();
        check(&|id| ids.contains(id), tasks, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn cycles_are_named_once_in_order() {
        let tasks = [task("a", &["c"]), task("b", &["a"]), task("c", &["b"])];
        let mut errors = Vec::new();
        check(&|_| false, &tasks, &mut errors);
        let cycle = ["a", "c", "b", "a"].map(String::from).to_vec();
        assert_eq!(errors, [WorkflowError::Cycle { task: 1, dep: 0, cycle }]);
    }

    #[test]
    fn overlapping_cycles_are_each_reported() {
        let tasks = [task("x", &["y"]), task("y", &["x", "z"]), task("z", &["y"])];
        assert_eq!(run(&[], &tasks), ["dependency cycle: x -> y -> x", "dependency cycle: y -> z -> y"]);
    }

    #[test]
    fn bad_dependencies() {
        let tasks = [task("a", &["b", "a", "zz", "b"]), task("b", &[]), task("a", &[])];
        assert_eq!(
            run(&[], &tasks),
            [
                "duplicate task id \"a\"",
                "task \"a\" depends on itself",
                "task \"a\" depends on unknown task \"zz\"",
                "task \"a\" lists \"b\" twice in depends_on",
            ]
        );
    }

    #[test]
    fn new_tasks_may_depend_on_known_ones_but_not_reuse_their_ids() {
        let known = [task("a", &[])];
        assert!(run(&known, &[task("b", &["a"]), task("c", &["b", "a"])]).is_empty());
        assert_eq!(run(&known, &[task("a", &[])]), ["duplicate task id \"a\""]);
        assert_eq!(run(&known, &[task("b", &["c"]), task("c", &["b"])]), ["dependency cycle: b -> c -> b"]);
    }
}
