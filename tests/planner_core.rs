//! Planner subtasks and submitted tasks in the pure core (DESIGN §11): a spawn grows
//! the DAG under its parent (ids namespaced, the parent's dependents waiting for every
//! descendant, inputs nested), `[planner]` limits hold or refuse, an invalid spawn is
//! refused as a whole and fails the parent's attempt, a submit joins the live run, and
//! the fold of the log always equals the live state.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::spawn::{dependency_input, submit_refusal};
use pitboss::core::workflow::TaskSpec;
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskStateName};
use serde_json::{json, Value};

struct Core {
    state: RunState,
    log: Vec<Event>,
}

impl Core {
    fn new(toml: &str) -> Core {
        let workflow = config::parse(toml, "planner.toml", Path::new(".")).expect("test workflow is valid");
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).expect("run_started starts a state");
        let mut core = Core { state, log: vec![first] };
        core.batch(Input::Start { pid: 1, version: "t".into(), resumed: false });
        core
    }

    fn batch(&mut self, input: Input) -> Vec<Event> {
        let ctx = StepContext { now_ms: 1_000_000, jitter: 0.0 };
        let mut events = step(&mut self.state, input, ctx).expect("the core accepts its own events");
        events.extend(dispatch(&mut self.state, ctx).expect("dispatch accepts its own events"));
        self.log.extend(events.iter().cloned());
        events
    }

    fn name(&self, id: &str) -> TaskStateName {
        self.state.tasks[self.state.task_index(id).unwrap_or_else(|| panic!("no task {id}"))].state.name()
    }

    fn attempt(&self, id: &str) -> u32 {
        self.state.tasks[self.state.task_index(id).expect("task")].attempts
    }

    /// The spawn tasks as `config::tasks_from_json` reads them for this run.
    fn read(&self, tasks: Value) -> Vec<TaskSpec> {
        config::tasks_from_json(&tasks, &self.state.workflow).expect("spawn tasks are valid")
    }

    fn plan(&mut self, id: &str, tasks: Value) -> Vec<Event> {
        let spawn = Ok(self.read(tasks));
        let attempt = self.attempt(id);
        self.batch(Input::Planned { task: id.into(), attempt, outcome: success(json!("planned")), spawn })
    }

    fn finish(&mut self, id: &str, result: Value) -> Vec<Event> {
        let attempt = self.attempt(id);
        self.batch(Input::Finished { task: id.into(), attempt, outcome: success(result) })
    }

    fn fail(&mut self, id: &str) -> Vec<Event> {
        let attempt = self.attempt(id);
        let outcome = Outcome::Failure {
            class: pitboss::core::FailureClass::Worker,
            error: "boom".into(),
            exit_code: Some(1),
            signal: None,
            duration_ms: 1,
            output: SmallOutput::default(),
        };
        self.batch(Input::Finished { task: id.into(), attempt, outcome })
    }

    /// The live state equals the fold of its log (what `resume` rebuilds).
    fn assert_replays(&self) {
        let mut folded = RunState::from_first(&self.log[0]).expect("first event");
        for e in &self.log[1..] {
            folded.apply(e, 1_000_000).expect("the log replays");
        }
        assert_eq!(folded.tasks, self.state.tasks, "the fold of the log equals the live state");
        assert_eq!(*folded.workflow, *self.state.workflow, "the grown workflow replays");
        assert_eq!(folded.dependencies, self.state.dependencies);
        assert_eq!(folded.dependents, self.state.dependents);
        for i in 0..folded.tasks.len() {
            assert_eq!(folded.unsatisfied_dependencies(i), self.state.unsatisfied_dependencies(i));
            assert_eq!(folded.failed_dependencies(i), self.state.failed_dependencies(i));
        }
        assert_eq!(folded.finished, self.state.finished);
    }
}

fn success(result: Value) -> Outcome {
    Outcome::Success { result, exit_code: Some(0), duration_ms: 3, output: SmallOutput::default() }
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn workflow(planner: &str) -> String {
    format!(
        "{planner}\n[[pool]]\nname = \"p\"\ncommand = [\"true\"]\nconcurrency = 50\ncapabilities = [\"write\"]\n\
         [[task]]\nid = \"plan\"\nretry = {{ max_attempts = 1 }}\n\
         [[task]]\nid = \"publish\"\ndepends_on = [\"plan\"]\n"
    )
}

fn parts(n: usize) -> Value {
    let mut tasks: Vec<Value> = (1..=n).map(|k| json!({"id": format!("part-{k}")})).collect();
    let names: Vec<String> = (1..=n).map(|k| format!("part-{k}")).collect();
    tasks.push(json!({"id": "combine", "depends_on": names}));
    Value::Array(tasks)
}

#[test]
fn a_spawn_grows_the_dag_before_the_parent_completes_and_its_dependents_wait_for_every_descendant() {
    let mut core = Core::new(&workflow(""));
    let events = core.plan("plan", parts(2));
    let k = kinds(&events);
    let spawned = k.iter().position(|&e| e == "tasks_spawned").expect("tasks_spawned");
    let succeeded = k.iter().position(|&e| e == "attempt_succeeded").expect("attempt_succeeded");
    assert!(spawned < succeeded, "{k:?}");
    let Event::TasksSpawned { task, tasks, held, .. } = &events[spawned] else { unreachable!() };
    assert_eq!(task, "plan");
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["plan/part-1", "plan/part-2", "plan/combine"]);
    assert_eq!(tasks[2].depends_on, ["plan/part-1", "plan/part-2"]);
    assert!(held.is_empty());
    assert_eq!(core.name("plan"), TaskStateName::Completed);
    assert_eq!(core.name("publish"), TaskStateName::Blocked, "the parent's dependent waits for its children");
    assert_eq!(core.name("plan/part-1"), TaskStateName::Running);
    core.finish("plan/part-1", json!("one"));
    core.finish("plan/part-2", json!("two"));
    assert_eq!(core.name("publish"), TaskStateName::Blocked, "publish waits for combine too");
    // combine is a grandchild planner: its dependents (publish too) wait for its children.
    core.plan("plan/combine", json!([{"id": "polish"}]));
    assert_eq!(core.name("publish"), TaskStateName::Blocked, "publish waits for the grandchild");
    core.finish("plan/combine/polish", json!("shiny"));
    assert_eq!(core.name("publish"), TaskStateName::Running);
    let i = core.state.task_index("plan").unwrap();
    assert_eq!(
        dependency_input(&core.state, i),
        json!({"result": "planned", "children": {
            "part-1": "one", "part-2": "two",
            "combine": {"result": "planned", "children": {"polish": "shiny"}}
        }})
    );
    // A task's inputs are keyed by its declared dependencies only.
    let combine = core.state.task_index("plan/combine").unwrap();
    let inputs = pitboss::core::spawn::inputs(&core.state, combine);
    assert_eq!(inputs.keys().collect::<Vec<_>>(), ["plan/part-1", "plan/part-2"]);
    core.finish("publish", json!("done"));
    assert!(core.state.finished);
    core.assert_replays();
}

#[test]
fn a_failed_child_skips_the_parents_dependents_and_its_replay_revives_them() {
    let mut core = Core::new(&workflow(""));
    core.plan("plan", json!([{"id": "a", "retry": {"max_attempts": 1}}]));
    core.fail("plan/a");
    assert_eq!(core.name("plan/a"), TaskStateName::DeadLettered);
    assert_eq!(core.name("publish"), TaskStateName::Skipped, "a failed child skips its parent's dependents");
    let events = core.batch(Input::Requeue { task: "plan/a".into(), reason: "replay".into() });
    assert!(kinds(&events).contains(&"task_revived"), "{:?}", kinds(&events));
    assert_eq!(core.name("publish"), TaskStateName::Blocked);
    core.finish("plan/a", json!(1));
    assert_eq!(core.name("publish"), TaskStateName::Running);
    core.assert_replays();
}

#[test]
fn children_over_max_children_are_held_and_never_dispatched_until_approved() {
    let mut core = Core::new(&workflow("[planner]\nmax_children = 2\n"));
    let events = core.plan("plan", parts(3));
    let Event::TasksSpawned { held, .. } = &events[0] else { panic!("{:?}", kinds(&events)) };
    let held_ids: Vec<&str> = held.iter().map(|h| h.task.as_str()).collect();
    assert_eq!(held_ids, ["plan/part-3", "plan/combine"]);
    assert_eq!(held[0].finding.rule, "planner/max-children");
    assert_eq!(held[0].finding.location, "spawned by plan");
    assert_eq!(held[0].finding.excerpt, "child 3 of 4; max_children = 2");
    assert_eq!(core.name("plan/part-3"), TaskStateName::AwaitingApproval);
    let why = core.state.tasks[core.state.task_index("plan/part-3").unwrap()].why().unwrap();
    assert!(why.starts_with("held for approval: planner/max-children at spawned by plan"), "{why}");
    core.finish("plan/part-1", json!(1));
    core.finish("plan/part-2", json!(2));
    assert!(pitboss::core::hold::only_held_remain(&core.state), "only held tasks can move the run");
    assert!(!core.log.iter().any(|e| matches!(e, Event::AttemptStarted { task, .. } if task == "plan/part-3")));
    // Approved: blocked, then ready in the same step (its dependencies are met).
    let events = core.batch(Input::Approve { task: "plan/part-3".into() });
    assert_eq!(kinds(&events), ["task_approved", "task_ready", "attempt_started"]);
    // combine still waits for part-3, though approved.
    let events = core.batch(Input::Approve { task: "plan/combine".into() });
    assert_eq!(kinds(&events), ["task_approved"]);
    assert_eq!(core.name("plan/combine"), TaskStateName::Blocked);
    core.finish("plan/part-3", json!(3));
    assert_eq!(core.name("plan/combine"), TaskStateName::Running);
    core.assert_replays();
}

#[test]
fn rejecting_a_held_child_cancels_it_and_skips_its_siblings_and_the_parents_dependents() {
    let mut core = Core::new(&workflow("[planner]\napprove = \"always\"\n"));
    let events = core.plan("plan", parts(1));
    let Event::TasksSpawned { held, .. } = &events[0] else { panic!() };
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].finding.rule, "planner/approve-always");
    core.batch(Input::Reject { task: "plan/part-1".into(), reason: None });
    assert_eq!(core.name("plan/part-1"), TaskStateName::Cancelled);
    assert_eq!(core.name("publish"), TaskStateName::Skipped);
    // combine is held, not blocked: it stays for its own answer.
    core.batch(Input::Reject { task: "plan/combine".into(), reason: None });
    assert!(core.state.finished);
    core.assert_replays();
}

#[test]
fn depth_and_run_size_limits_hold_what_goes_past_them() {
    let mut core = Core::new(&workflow("[planner]\nmax_depth = 1\nmax_tasks = 3\n"));
    let events = core.plan("plan", json!([{"id": "a"}, {"id": "b"}, {"id": "c"}]));
    let Event::TasksSpawned { held, .. } = &events[0] else { panic!() };
    // Two tasks in the workflow: the 4th and 5th tasks of the run are past max_tasks = 3.
    assert_eq!(held.iter().map(|h| h.task.as_str()).collect::<Vec<_>>(), ["plan/b", "plan/c"]);
    assert_eq!(held[0].finding.rule, "planner/max-tasks");
    let events = core.plan("plan/a", json!([{"id": "deep"}]));
    let Event::TasksSpawned { held, .. } = &events[0] else { panic!() };
    assert_eq!(held[0].finding.rule, "planner/max-depth");
    assert_eq!(held[0].finding.excerpt, "depth 2; max_depth = 1");
    core.assert_replays();
}

#[test]
fn an_invalid_spawn_is_refused_as_a_whole_and_fails_the_parents_attempt() {
    let cases: [(&str, Value, &str); 4] = [
        ("", json!([{"id": "a"}, {"id": "a"}]), "given twice"),
        ("", json!([{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}]), "cycle"),
        ("", json!([{"id": "a", "depends_on": ["publish"]}]), "not one of its siblings"),
        (
            "[planner]\nmax_children = 1\napprove = \"never\"\n",
            json!([{"id": "a"}, {"id": "b"}]),
            "approve = \"never\"",
        ),
    ];
    for (planner, tasks, why) in cases {
        let mut core = Core::new(&workflow(planner));
        // Graph problems are refused by the core; read the tasks without config's graph check.
        let spawn = Ok(tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let one = core.read(json!([{"id": t["id"]}])).remove(0);
                let deps =
                    t["depends_on"].as_array().map(|d| d.iter().map(|x| x.as_str().unwrap().to_string()).collect());
                TaskSpec { depends_on: deps.unwrap_or_default(), ..one }
            })
            .collect());
        let events = core.batch(Input::Planned { task: "plan".into(), attempt: 1, outcome: success(json!(1)), spawn });
        assert_eq!(kinds(&events)[..2], ["spawn_refused", "attempt_failed"], "{why}");
        let Event::SpawnRefused { reason, .. } = &events[0] else { unreachable!() };
        assert!(reason.contains(why), "{reason} should say {why}");
        assert_eq!(core.state.tasks.len(), 2, "nothing of a refused spawn is added");
        assert_eq!(core.name("plan"), TaskStateName::DeadLettered);
        let error = core.state.tasks[0].why().unwrap();
        assert!(error.contains("spawn refused") && error.contains(why), "{error}");
        core.assert_replays();
    }
}

#[test]
fn a_spawn_the_config_cannot_read_fails_the_parent_with_the_reason() {
    let mut core = Core::new(&workflow(""));
    let err = config::tasks_from_json(&json!([{"id": "a", "pool": "nope"}]), &core.state.workflow).unwrap_err();
    assert!(err.contains("spawned task 1 (\"a\")") && err.contains("nope"), "{err}");
    let events = core.batch(Input::Planned {
        task: "plan".into(),
        attempt: 1,
        outcome: success(json!(1)),
        spawn: Err(err.clone()),
    });
    assert_eq!(kinds(&events)[..2], ["spawn_refused", "attempt_failed"]);
    core.assert_replays();
}

#[test]
fn a_parent_spawns_once_and_the_same_plan_again_adds_nothing() {
    let mut core = Core::new(&workflow(""));
    let i = 0;
    let first = core.read(json!([{"id": "a"}]));
    let event = pitboss::core::spawn::spawned(&core.state, i, 1, &first).expect("first plan");
    assert!(event.is_some());
    core.plan("plan", json!([{"id": "a"}]));
    assert_eq!(pitboss::core::spawn::spawned(&core.state, i, 2, &first), Ok(None), "the same plan adds nothing");
    let other = core.read(json!([{"id": "b"}]));
    let again = pitboss::core::spawn::spawned(&core.state, i, 2, &other).unwrap_err();
    assert!(again.contains("already spawned other subtasks"), "{again}");
}

#[test]
fn submitted_tasks_join_the_live_run_are_never_held_and_reopen_a_finished_run() {
    let mut core = Core::new(&workflow("[planner]\napprove = \"always\"\n"));
    core.finish("plan", json!(1));
    core.finish("publish", json!(2));
    assert!(core.state.finished);
    let text =
        "[[task]]\nid = \"extra\"\ndepends_on = [\"publish\"]\n[[task]]\nid = \"later\"\ndepends_on = [\"extra\"]\n";
    let tasks = config::tasks_from_toml(text, "submit.toml", &core.state.workflow).expect("valid submit");
    assert_eq!(submit_refusal(&core.state, &tasks), None);
    let events = core.batch(Input::Submit { tasks: tasks.clone(), source: "operator (test)".into() });
    assert_eq!(kinds(&events)[..2], ["tasks_submitted", "task_ready"]);
    assert!(!core.state.finished, "a submit reopens a finished run");
    assert_eq!(core.name("extra"), TaskStateName::Running);
    assert_eq!(core.name("later"), TaskStateName::Blocked);
    // The same ids again: refused, nothing recorded.
    assert!(submit_refusal(&core.state, &tasks).unwrap().contains("already in the run"));
    assert!(core.batch(Input::Submit { tasks, source: "again".into() }).is_empty());
    core.finish("extra", json!(3));
    core.finish("later", json!(4));
    assert!(core.state.finished);
    core.assert_replays();
}

#[test]
fn a_submitted_task_whose_dependency_failed_is_skipped_at_once() {
    let mut core = Core::new(&workflow(""));
    core.fail("plan");
    assert_eq!(core.name("publish"), TaskStateName::Skipped);
    let tasks =
        config::tasks_from_toml("[[task]]\nid = \"x\"\ndepends_on = [\"plan\"]\n", "s.toml", &core.state.workflow)
            .expect("valid");
    let events = core.batch(Input::Submit { tasks, source: "t".into() });
    assert_eq!(kinds(&events)[..2], ["tasks_submitted", "task_skipped"]);
    core.assert_replays();
}

#[test]
fn submit_checks_ids_dependencies_and_cycles_against_the_run() {
    let core = Core::new(&workflow(""));
    let wf = &core.state.workflow;
    let unknown = config::tasks_from_toml("[[task]]\nid = \"x\"\ndepends_on = [\"nope\"]\n", "s.toml", wf).unwrap_err();
    assert!(unknown.to_string().starts_with("s.toml:3:"), "{unknown}");
    let dup = config::tasks_from_toml("[[task]]\nid = \"plan\"\n", "s.toml", wf).unwrap_err();
    assert!(dup.to_string().contains("plan"), "{dup}");
    let cycle = config::tasks_from_toml(
        "[[task]]\nid = \"x\"\ndepends_on = [\"y\"]\n[[task]]\nid = \"y\"\ndepends_on = [\"x\"]\n",
        "s.toml",
        wf,
    )
    .unwrap_err();
    assert!(cycle.to_string().contains("cycle"), "{cycle}");
    let shape = config::tasks_from_toml("[run]\nname = \"x\"\n", "s.toml", wf).unwrap_err();
    assert!(shape.to_string().starts_with("s.toml:1:"), "{shape}");
    assert!(submit_refusal(&core.state, &[]).unwrap().contains("nothing to submit"));
}

#[test]
fn spawned_tasks_take_the_runs_defaults_and_durations() {
    let core = Core::new(&format!("[defaults]\ntimeout = \"42s\"\n{}", workflow("")));
    let tasks = core.read(json!([{"id": "a"}, {"id": "b", "timeout": "3s", "retry": {"max_attempts": 5}}]));
    assert_eq!(tasks[0].timeout_ms, 42_000);
    assert_eq!(tasks[1].timeout_ms, 3_000);
    assert_eq!(tasks[1].retry.max_attempts, 5);
    let bad = config::tasks_from_json(&json!([{"id": "a/b"}]), &core.state.workflow).unwrap_err();
    assert!(bad.contains("spawned task 1"), "{bad}");
    let null =
        config::tasks_from_json(&json!([{"id": "a", "payload": {"x": null}}]), &core.state.workflow).unwrap_err();
    assert!(null.contains("null"), "{null}");
    let unknown = config::tasks_from_json(&json!([{"id": "a", "colour": "red"}]), &core.state.workflow).unwrap_err();
    assert!(unknown.contains("colour"), "{unknown}");
}

#[test]
fn a_manager_that_died_between_the_spawn_and_the_result_reruns_the_planner_into_the_same_dag() {
    let mut core = Core::new(&workflow(""));
    core.plan("plan", parts(2));
    // The log as a manager killed right after `tasks_spawned` left it.
    let cut = core.log.iter().position(|e| matches!(e, Event::TasksSpawned { .. })).expect("tasks_spawned") + 1;
    let mut resumed = Core { state: RunState::from_first(&core.log[0]).unwrap(), log: core.log[..cut].to_vec() };
    for e in &core.log[1..cut] {
        resumed.state.apply(e, 1_000_000).expect("the prefix replays");
    }
    let events = resumed.batch(Input::Start { pid: 2, version: "t".into(), resumed: true });
    assert!(kinds(&events).contains(&"attempt_interrupted"), "{:?}", kinds(&events));
    assert_eq!(resumed.name("plan"), TaskStateName::Running, "the planner runs again");
    let events = resumed.plan("plan", parts(2));
    assert!(!kinds(&events).contains(&"tasks_spawned") && kinds(&events).contains(&"attempt_succeeded"));
    assert_eq!(resumed.state.tasks.len(), 5, "the same DAG");
    resumed.assert_replays();
}

#[test]
fn the_control_panels_model_folds_a_growing_run() {
    let mut core = Core::new(&workflow("[planner]\nmax_children = 1\n"));
    core.plan("plan", parts(1));
    let records: Vec<pitboss::io::journal::Record> = core
        .log
        .iter()
        .enumerate()
        .map(|(k, e)| pitboss::io::journal::Record { seq: k as u64 + 1, ts: 1_000_000, event: e.clone() })
        .collect();
    let fleet = pitboss::tui::model::Fleet::from_records(&records).expect("the TUI folds a spawn");
    assert_eq!(fleet.state.tasks.len(), 4);
    let held = fleet.state.task_index("plan/combine").unwrap();
    assert_eq!(fleet.state.tasks[held].state.name(), TaskStateName::AwaitingApproval);
    assert!(fleet.history(held).is_empty() || fleet.history(held).len() == 1);
    // The Held view lists from the model's own set, not the state: a child held at
    // its spawn (no `task_held` of its own) must be in it.
    assert_eq!(fleet.held().collect::<Vec<_>>(), vec![held], "the TUI's held set misses the held child");
    assert_eq!(fleet.held_at(held), Some(1_000_000));
}
