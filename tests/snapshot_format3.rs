//! Format-3 snapshots (issue 14) round trip: the state read back from the two-line
//! document is the state read back from the format-2 document and the full fold of
//! the log, on a workflow whose specs set every field, and on a big generated run
//! with spawns (whose extra edges the snapshot must keep) and submits.

use std::path::Path;
use std::sync::Arc;

use pitboss::cli::verify::canonical;
use pitboss::config;
use pitboss::core::checks::Finding;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{self, Journal, LogPosition, LOG_FILE};
use pitboss::io::snapshot;
use serde_json::{json, Value};

fn ok(result: Value) -> Outcome {
    Outcome::Success { result, exit_code: Some(0), duration_ms: 1, output: SmallOutput::default() }
}

/// The state read back from format 3 and from format 2, checked equal to `state`.
fn assert_round_trips(state: &RunState, at: LogPosition, what: &str) -> Vec<u8> {
    let v3 = snapshot::encode_format3(state, at);
    let v2 = snapshot::encode_format2(state, at);
    assert!(v3.contains(&b'\n') && !v2.contains(&b'\n'), "{what}: format 3 is two lines, format 2 one");
    let from_v3 = snapshot::decode(&v3).unwrap_or_else(|e| panic!("{what}: format 3 does not open: {e}"));
    let from_v2 = snapshot::decode(&v2).unwrap_or_else(|e| panic!("{what}: format 2 does not open: {e}"));
    assert_eq!(from_v3.at, at, "{what}");
    assert_eq!(*from_v3.state.workflow, *state.workflow, "{what}: the workflow differs");
    let truth = canonical(state);
    assert!(canonical(&from_v3.state) == truth, "{what}: format 3 reads back another state");
    assert!(canonical(&from_v2.state) == truth, "{what}: format 2 reads back another state");
    for i in 0..state.tasks.len() {
        assert_eq!(from_v3.state.task_index(state.task_id(i)), Some(i), "{what}: the index by id");
    }
    v3
}

/// The body line of a format-3 document, as JSON.
fn body(v3: &[u8]) -> Value {
    let text = std::str::from_utf8(v3).expect("utf-8");
    serde_json::from_str(text.split_once('\n').expect("two lines").1).expect("JSON")
}

#[test]
fn a_spec_with_every_field_set_reads_back_the_same() {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\ncapabilities = [\"gpu\"]\n\
        [[pool]]\nname = \"q\"\ncommand = [\"true\"]\n\
        [[task]]\nid = \"plain\"\n\
        [[task]]\nid = \"full\"\ntype = \"review\"\npool = \"q\"\npayload = { a = [1, 2.5, \"x\"] }\n\
        depends_on = [\"plain\"]\ntimeout = \"7s\"\n\
        retry = { max_attempts = 5, initial = \"2ms\", max = \"9ms\", never_on = [2, 64] }\n\
        fallback = { result = \"cached\" }\ngates = [{ command = [\"true\"] }]\ninput_guard = true\n\
        [[task]]\nid = \"needs\"\nrequires = [\"gpu\"]\nfallback = { pool = \"q\" }\n\
        consensus = { replicas = 3, strategy = \"majority\", key = \"/a\" }\n\
        [[task]]\nid = \"skips\"\nfallback = { skip = true }\ndepends_on = [\"full\", \"needs\"]\n";
    let workflow = config::parse(text, "every.toml", Path::new("/")).expect("the test workflow is valid");
    let full = &workflow.tasks[1];
    assert!(
        full.pool.is_some() && !full.never_on().is_empty() && !full.gates().is_empty() && full.fallback().is_some()
    );
    assert!(workflow.tasks[2].consensus.is_some() && !workflow.tasks[2].requires.is_empty());
    let mut state = RunState::new("every".into(), Arc::new(workflow));
    let at = LogPosition { seq: 1, start: 0, end: 10, crc: 7 };
    assert_round_trips(&state, at, "every field, every task blocked");
    // Every state a task can be in, and its fields away from their start values
    // (not a state a fold reaches: what is read back is checked, not the fold).
    let finding = Finding { rule: "r/x".into(), location: "payload/p:1:2".into(), excerpt: "ignore all".into() };
    let states = [
        TaskState::Queued,
        TaskState::Running {
            attempt: 2,
            pool: "q".into(),
            started_ms: 9,
            process: Some(42),
            stalled: true,
            round: None,
        },
        TaskState::Validating { attempt: 3, gate: 1 },
        TaskState::RetryWait { due_ms: 77 },
        TaskState::Completed { degraded: false },
        TaskState::Completed { degraded: true },
        TaskState::DeadLettered { reason: "spent".into() },
        TaskState::Cancelled { reason: "operator".into() },
        TaskState::Skipped { because: "full".into() },
        TaskState::AwaitingApproval { finding: finding.clone() },
    ];
    for (k, task_state) in states.into_iter().enumerate() {
        let i = k % state.tasks.len();
        let task = &mut state.tasks[i];
        task.state = task_state;
        task.attempts = 3;
        task.budget_start = 1;
        task.crashes = 1;
        task.deferrals = 2;
        task.result = Some(json!({"k": k}).into());
        task.last_error = Some(Arc::from("no"));
        task.pool = Some(Arc::from("q"));
        task.degraded = k % 2 == 0;
        task.links_mut().payload = Some(json!([k]).into());
        task.links_mut().pool_override = Some(1);
        task.links_mut().finding = Some(Box::new(finding.clone()));
        task.links_mut().approved = true;
        task.links_mut().parent = Some(0);
        task.links_mut().children = vec![1, 2];
        assert_round_trips(&state, at, &format!("every field, task state {k}"));
    }
    let v3 = assert_round_trips(&state, at, "every field");
    let head: Value = serde_json::from_slice(&v3[..v3.iter().position(|&b| b == b'\n').unwrap()]).unwrap();
    assert_eq!(head["workflow"]["tasks"][0], json!({"id": "plain", "payload": {}}));
    assert!(body(&v3)["state"].get("edges").is_none(), "edges the specs give are not written");
}

/// A run of `tasks` tasks (every tenth depending on the one before) driven by the
/// core's steps into a log in `dir`: all dispatched, most finished, one task planning
/// children, one submit. Gives the state and the last record's place.
fn big_run(dir: &Path, tasks: usize) -> (RunState, LogPosition) {
    let mut text = format!("[planner]\nmax_tasks = {}\n", tasks + 10);
    text += "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\nconcurrency = 64\n";
    text += "[[pool]]\nname = \"q\"\ncommand = [\"true\"]\nconcurrency = 64\ncapabilities = [\"gpu\"]\n";
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"t{i}\"\npayload = {{ n = {i} }}\n");
        if i % 10 == 9 {
            text += &format!("depends_on = [\"t{}\"]\n", i - 1);
        }
        if i % 100 == 7 {
            text += "requires = [\"gpu\"]\nretry = { max_attempts = 1 }\n";
        }
    }
    let workflow = config::parse(&text, "big.toml", Path::new("/")).expect("valid");
    let first = Event::RunStarted { run_id: "big".into(), workflow: Arc::new(workflow) };
    let mut state = RunState::from_first(&first).expect("first");
    let mut journal = Journal::create(dir, 1, &first).expect("create log");
    let mut now = 1_000;
    let mut batch = |state: &mut RunState, input: Input, now: u64| {
        let ctx = StepContext { now_ms: now, jitter: 0.5 };
        let mut events = step(state, input, ctx).expect("the core accepts its inputs");
        events.extend(dispatch(state, ctx).expect("dispatch"));
        journal.append(now, &events).expect("append");
    };
    batch(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, now);
    let mut planned = false;
    let mut submitted = false;
    // Each round finishes every attempt running at its start (one scan a round, not
    // one a task: the run has thousands).
    while !state.all_terminal() {
        let running: Vec<(String, u32)> = (0..state.tasks.len())
            .filter_map(|i| match state.tasks[i].state {
                TaskState::Running { attempt, .. } => Some((state.task_id(i).to_string(), attempt)),
                _ => None,
            })
            .collect();
        if running.is_empty() {
            let states: Vec<String> = (0..state.tasks.len())
                .filter(|&i| !state.tasks[i].state.name().is_terminal())
                .map(|i| format!("{} {:?}", state.task_id(i), state.tasks[i].state))
                .take(5)
                .collect();
            panic!("the run is stuck: {states:?}");
        }
        for (task, attempt) in running {
            now += 1;
            if !planned && task == "t8" {
                // t8's dependent t9 gains edges from t8's children: edges no spec lists.
                planned = true;
                let children = json!([{"id": "c1"}, {"id": "c2", "depends_on": ["c1"]}]);
                let spawn = config::tasks_from_json(&children, &state.workflow);
                batch(&mut state, Input::Planned { task, attempt, outcome: ok(json!("planned")), spawn }, now);
            } else {
                batch(&mut state, Input::Finished { task, attempt, outcome: ok(json!({"n": now})) }, now);
            }
            if !submitted && planned {
                submitted = true;
                let toml = "[[task]]\nid = \"late\"\ndepends_on = [\"t8\"]\n";
                let tasks = config::tasks_from_toml(toml, "s.toml", &state.workflow).expect("submit");
                batch(&mut state, Input::Submit { tasks, source: "test".into() }, now);
            }
        }
    }
    assert!(planned && submitted, "the run spawned and took a submit");
    (state, journal.position().expect("written"))
}

#[test]
fn a_big_run_with_spawns_reads_back_as_format_2_and_as_the_full_fold() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();
    let (state, at) = big_run(dir, 2_000);
    let (folded, _) = journal::fold_all(&dir.join(LOG_FILE)).expect("the log folds");
    assert!(canonical(&folded) == canonical(&state), "the fold is the live state");
    let v3 = assert_round_trips(&state, at, "big run");
    assert!(body(&v3)["state"].get("edges").is_some(), "a spawn's edges are written");
    // Through the file, on two threads, and as the folder opens.
    snapshot::write(dir, &state, at).expect("snapshot written");
    let opened = snapshot::open_state(dir).expect("opens");
    assert_eq!(opened.snapshot, Some(at.seq));
    assert!(canonical(&opened.state) == canonical(&folded), "the opened state is the full fold");
}

#[test]
fn a_run_without_spawns_writes_no_edges_and_reads_back_the_same() {
    let text: String = (0..50_000)
        .map(|i| match i % 10 {
            9 => format!("[[task]]\nid = \"t{i}\"\ndepends_on = [\"t{}\", \"t{}\"]\n", i - 1, i - 9),
            _ => format!("[[task]]\nid = \"t{i}\"\n"),
        })
        .collect();
    let text = format!("[[pool]]\nname = \"p\"\ncommand = [\"true\"]\n{text}");
    let workflow = config::parse(&text, "plain.toml", Path::new("/")).expect("valid");
    let state = RunState::new("plain".into(), Arc::new(workflow));
    let v3 = assert_round_trips(&state, LogPosition { seq: 1, start: 0, end: 10, crc: 7 }, "no spawns");
    assert!(body(&v3)["state"].get("edges").is_none(), "edges the specs give are not written");
}
