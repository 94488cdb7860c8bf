//! `ctl submit` into a big run (issue 14): what one submit of one task costs, on the
//! control socket's side (the TOML read and checked against the run: before, against
//! the workflow's list of tasks, `config::tasks_from_toml`; now against the run's own
//! index, `config::tasks_for_run`) and on the engine's (the submit decided and
//! applied, `core::step`), in a run of 1,000 and of 100,000 tasks. A submit should
//! cost what is submitted, so both sizes should take about the same.
//!
//!     cargo bench --bench submit

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pitboss::config;
use pitboss::core::workflow::Workflow;
use pitboss::core::{step, Event, Input, RunState, StepContext};

/// A workflow of `tasks` tasks on one pool, as a big planner-free run has them.
fn workflow(tasks: usize) -> Workflow {
    let mut text = "[run]\nname = \"submit\"\nmax_parallel = 16\n".to_string();
    text += "[[pool]]\nname = \"p\"\ncommand = [\"agent\", \"{id}\"]\nconcurrency = 16\n";
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:07}\"\npayload = {{ prompt = \"part {i}\" }}\n");
    }
    config::parse(&text, "submit.toml", Path::new(".")).expect("the bench's workflow is valid")
}

/// One task depending on a task of the run (so the check must look the run up).
fn one_task(k: u64) -> String {
    format!("[[task]]\nid = \"extra-{k}\"\ndepends_on = [\"task-0000000\"]\npayload = {{ prompt = \"more\" }}\n")
}

fn submit(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit_one_task");
    for tasks in [1_000usize, 100_000] {
        let workflow = Arc::new(workflow(tasks));
        let first = Event::RunStarted { run_id: "bench".into(), workflow: workflow.clone() };
        let mut state = RunState::from_first(&first).expect("a fresh run folds");
        drop(first);
        let text = one_task(0);
        // As the control socket checked a submit before: against the workflow's list
        // of tasks (a set of all their ids built per submit).
        group.bench_with_input(BenchmarkId::new("check_against_workflow", tasks), &tasks, |b, _| {
            b.iter(|| config::tasks_from_toml(&text, "more.toml", &workflow).expect("the submit is valid"))
        });
        // As it checks one now (`ctl/submit.rs`): against the run's own index.
        group.bench_with_input(BenchmarkId::new("check_against_run_index", tasks), &tasks, |b, _| {
            let known = |id: &str| state.task_index(id).is_some();
            b.iter(|| config::tasks_for_run(&text, "more.toml", &state.workflow, &known).expect("the submit is valid"))
        });
        drop(workflow);
        // The engine's side: each iteration submits a new task to the same (growing) run,
        // whose workflow nothing else shares, as in the manager.
        let ctx = StepContext { now_ms: 1_790_000_000_000, jitter: 0.5 };
        // Tasks resolved against a workflow of their own: one sharing the run's would make
        // the engine copy the run's on apply, which the manager never does (the control
        // socket drops its handle before it sends the submit).
        let small = self::workflow(1);
        let mut k = 0u64;
        group.bench_with_input(BenchmarkId::new("engine_apply", tasks), &tasks, |b, _| {
            b.iter_batched(
                || {
                    k += 1;
                    let tasks = config::tasks_from_toml(&one_task(k), "more.toml", &small).expect("valid");
                    Input::Submit { tasks, source: "bench".into() }
                },
                |input| step(&mut state, input, ctx).expect("the submit applies"),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, submit);
criterion_main!(benches);
