//! Format-4 snapshots (issue 14): a JSON head line, the specs and tasks as binary
//! rows, a footer, one seal. They round trip every field of every spec and task
//! state (checked against formats 3 and 2 and the state written), open as the full
//! fold of the log, and a damaged file — a byte flipped, cut short, or damaged and
//! sealed again so that the seal no longer catches it — is skipped with a note or
//! refused with an error, never a panic, and the folder still opens to the full fold.
//!
//! PITBOSS_SNAPSHOT_SEED replays a failing case of the random damage.

mod common;

use std::path::Path;
use std::sync::Arc;

use pitboss::cli::verify::canonical;
use pitboss::config;
use pitboss::core::checks::Finding;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{self, Journal, LogPosition, LOG_FILE};
use pitboss::io::snapshot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use common::reseal;

fn ok(result: Value) -> Outcome {
    Outcome::Success { result, exit_code: Some(0), duration_ms: 1, output: SmallOutput::default() }
}

/// The state read back from format 4, 3 and 2, each checked equal to `state`; gives
/// the format-4 bytes.
fn assert_round_trips(state: &RunState, at: LogPosition, what: &str) -> Vec<u8> {
    let v4 = snapshot::encode(state, at);
    assert!(v4.starts_with(b"{\"v\":4,"), "{what}: this build writes format 4");
    let truth = canonical(state);
    for (format, bytes) in
        [(4, v4.clone()), (3, snapshot::encode_format3(state, at)), (2, snapshot::encode_format2(state, at))]
    {
        let read = snapshot::decode(&bytes).unwrap_or_else(|e| panic!("{what}: format {format} does not open: {e}"));
        assert_eq!(read.at, at, "{what}: format {format}");
        assert_eq!(*read.state.workflow, *state.workflow, "{what}: format {format}: the workflow differs");
        assert!(canonical(&read.state) == truth, "{what}: format {format} reads back another state");
        for i in 0..state.tasks.len() {
            assert_eq!(read.state.task_index(state.task_id(i)), Some(i), "{what}: format {format}: index by id");
        }
    }
    v4
}

/// A workflow whose specs set every field between them.
fn every_field_workflow() -> pitboss::core::workflow::Workflow {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\ncapabilities = [\"gpu\"]\n\
        [[pool]]\nname = \"q\"\ncommand = [\"true\"]\n\
        [[task]]\nid = \"plain\"\n\
        [[task]]\nid = \"full\"\ntype = \"review\"\npool = \"q\"\npayload = { a = [1, 2.5, \"x\"] }\n\
        depends_on = [\"plain\"]\ntimeout = \"7s\"\n\
        retry = { max_attempts = 5, initial = \"2ms\", max = \"9ms\", never_on = [2, 64] }\n\
        fallback = { result = \"cached\" }\ngates = [{ command = [\"true\"] }]\ninput_guard = true\n\
        [[task]]\nid = \"needs\"\nrequires = [\"gpu\"]\nfallback = { pool = \"q\" }\nworkspace = \"temp\"\n\
        consensus = { replicas = 3, strategy = \"majority\", key = \"/a\" }\n\
        [[task]]\nid = \"skips\"\nfallback = { skip = true }\ndepends_on = [\"full\", \"needs\"]\n\
        [[task]]\nid = \"u.n-i_2\"\npayload = \"ünï a\\nb\"\n";
    config::parse(text, "every.toml", Path::new("/")).expect("the test workflow is valid")
}

/// Every state a task can be in, each with every field away from its start value
/// (not states a fold reaches: what is read back is checked, not the fold).
fn every_state(state: &mut RunState) {
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
        TaskState::DeadLettered { reason: "spent\nall".into() },
        TaskState::Cancelled { reason: "operator".into() },
        TaskState::Skipped { because: "full".into() },
        TaskState::AwaitingApproval { finding: finding.clone() },
    ];
    let n = state.tasks.len();
    for (k, task_state) in states.into_iter().enumerate() {
        let task = &mut state.tasks[k % n];
        task.state = task_state;
        task.attempts = 3 + k as u32;
        task.budget_start = 1;
        task.crashes = k as u32 % 2;
        task.deferrals = 2;
        task.result = Some(json!({"k": k, "s": "x\u{1}y"}).into());
        task.last_error = Some(Arc::from("no"));
        task.pool = Some(Arc::from(if k % 3 == 0 { "q" } else { "elsewhere" }));
        task.degraded = k % 2 == 0;
        task.links_mut().payload = Some(json!([k]).into());
        task.links_mut().pool_override = Some(1);
        task.links_mut().finding = Some(Box::new(finding.clone()));
        task.links_mut().approved = true;
        task.links_mut().parent = Some(0);
        task.links_mut().children = vec![1, 2];
    }
}

#[test]
fn every_spec_field_and_task_state_reads_back_the_same() {
    let mut state = RunState::new("every".into(), Arc::new(every_field_workflow()));
    let at = LogPosition { seq: 1, start: 0, end: 10, crc: 7 };
    assert_round_trips(&state, at, "every field, every task blocked");
    every_state(&mut state);
    let v4 = assert_round_trips(&state, at, "every field, every state");
    // The head is JSON and holds no spec; the rows follow it.
    let newline = v4.iter().position(|&b| b == b'\n').expect("a head line");
    let head: Value = serde_json::from_slice(&v4[..newline]).expect("the head is JSON");
    assert_eq!(head["workflow"]["tasks"], json!([]));
    assert_eq!(head["n"], json!(5));
}

/// A run of `tasks` tasks driven by the core's steps into a log in `dir`, every
/// tenth depending on the one before, one planning children (edges no spec lists).
fn big_run(dir: &Path, tasks: usize) -> (RunState, LogPosition) {
    let mut text = format!("[planner]\nmax_tasks = {}\n", tasks + 10);
    text += "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\nconcurrency = 64\n";
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"t{i}\"\npayload = {{ n = {i} }}\n");
        if i % 10 == 9 {
            text += &format!("depends_on = [\"t{}\"]\n", i - 1);
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
    while !state.all_terminal() {
        let running: Vec<(String, u32)> = (0..state.tasks.len())
            .filter_map(|i| match state.tasks[i].state {
                TaskState::Running { attempt, .. } => Some((state.task_id(i).to_string(), attempt)),
                _ => None,
            })
            .collect();
        assert!(!running.is_empty(), "the run is stuck");
        for (task, attempt) in running {
            now += 1;
            if !planned && task == "t8" {
                planned = true;
                let children = json!([{"id": "c1"}, {"id": "c2", "depends_on": ["c1"]}]);
                let spawn = config::tasks_from_json(&children, &state.workflow);
                batch(&mut state, Input::Planned { task, attempt, outcome: ok(json!("planned")), spawn }, now);
            } else {
                batch(&mut state, Input::Finished { task, attempt, outcome: ok(json!({"n": now})) }, now);
            }
        }
    }
    (state, journal.position().expect("written"))
}

#[test]
fn a_big_run_with_spawns_opens_from_format_4_as_the_full_fold() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();
    let (state, at) = big_run(dir, 3_000);
    let (folded, _) = journal::fold_all(&dir.join(LOG_FILE)).expect("the log folds");
    assert!(canonical(&folded) == canonical(&state), "the fold is the live state");
    assert_round_trips(&state, at, "big run");
    // Through the file: the two sections on two threads, as the folder opens.
    let path = snapshot::write(dir, &state, at).expect("snapshot written");
    let opened = snapshot::open_state(dir).expect("opens");
    assert_eq!(opened.snapshot, Some(at.seq), "the format-4 snapshot is used: {:?}", opened.notes);
    assert!(canonical(&opened.state) == canonical(&folded), "the opened state is the full fold");
    assert!(snapshot::read(&path).is_ok());
}

fn seed() -> u64 {
    std::env::var("PITBOSS_SNAPSHOT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

#[test]
fn damaged_format_4_snapshots_are_skipped_and_the_folder_opens_to_the_full_fold() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();
    let (state, at) = big_run(dir, 400);
    let (folded, _) = journal::fold_all(&dir.join(LOG_FILE)).expect("the log folds");
    let truth = canonical(&folded);
    let good = snapshot::encode(&state, at);
    let newline = good.iter().position(|&b| b == b'\n').expect("head line");
    let path = dir.join(snapshot::file_name(at.seq));
    for round in 0..60 {
        let mut bad = good.clone();
        let what = match round % 3 {
            0 => {
                // A byte of the binary part flipped: the seal catches it.
                let i = rng.random_range(newline + 1..bad.len());
                bad[i] ^= 1 << rng.random_range(0..8);
                format!("byte {i} flipped")
            }
            1 => {
                let cut = rng.random_range(0..bad.len());
                bad.truncate(cut);
                format!("cut at {cut}")
            }
            _ => {
                // Damaged and sealed again: only the body's own checks stand.
                let i = rng.random_range(newline + 1..bad.len() - 20);
                bad[i] = rng.random();
                bad = reseal(&bad);
                format!("byte {i} set and sealed again")
            }
        };
        // In memory: a clear error or a state, never a panic.
        let decoded = std::panic::catch_unwind(|| snapshot::decode(&bad).map(|_| ()));
        assert!(decoded.is_ok(), "seed {seed}: {what}: decoding panicked");
        // As the folder opens: the full fold whatever the file says, if its state is
        // not the fold's the records after it do not fold or it is refused.
        std::fs::write(&path, &bad).expect("write the damaged snapshot");
        let opened = std::panic::catch_unwind(|| snapshot::open_state(dir).expect("the log opens"));
        let opened = opened.unwrap_or_else(|_| panic!("seed {seed}: {what}: opening panicked"));
        if opened.snapshot.is_none() {
            assert!(!opened.notes.is_empty(), "seed {seed}: {what}: skipped without a note");
            assert!(canonical(&opened.state) == truth, "seed {seed}: {what}: not the full fold");
        }
    }
    // Sealed-again damage at every byte of a small run's rows: never a panic.
    let small = RunState::new("every".into(), Arc::new(every_field_workflow()));
    let mut small = small;
    every_state(&mut small);
    let good = snapshot::encode(&small, at);
    let newline = good.iter().position(|&b| b == b'\n').expect("head line");
    for i in newline + 1..good.len() - 18 {
        for value in [0u8, 0xff, good[i] ^ 0x80, good[i].wrapping_add(1)] {
            let mut bad = good.clone();
            bad[i] = value;
            let bad = reseal(&bad);
            let decoded = std::panic::catch_unwind(|| snapshot::decode(&bad).map(|_| ()));
            assert!(decoded.is_ok(), "byte {i} set to {value} and sealed again: decoding panicked");
        }
    }
}

#[test]
fn a_format_3_snapshot_left_by_an_older_build_still_opens() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();
    let (state, at) = big_run(dir, 500);
    std::fs::write(dir.join(snapshot::file_name(at.seq)), snapshot::encode_format3(&state, at)).expect("write");
    let opened = snapshot::open_state(dir).expect("opens");
    assert_eq!(opened.snapshot, Some(at.seq), "the format-3 snapshot is used: {:?}", opened.notes);
    assert!(canonical(&opened.state) == canonical(&state));
}

/// Spend and budgets (issue 17) read back from formats 4, 3 and 2: the workflow's
/// `[budget]` and a pool's `task_cost_usd`, and the folded spend with its per-attempt
/// sums, an operator's raise and the exhausted flag.
#[test]
fn spend_and_budgets_read_back_the_same() {
    use pitboss::core::event::{BudgetExhausted, BudgetRaised, UsageRecorded};
    use pitboss::core::usage::{Usage, Usd};
    let text = "[budget]\nmax_cost_usd = 5\ntask_cost_usd = 1.25\n\
        [[pool]]\nname = \"p\"\ncommand = [\"true\"]\ntask_cost_usd = 0.5\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
    let workflow = config::parse(text, "budget.toml", Path::new("/")).expect("valid");
    let mut state = RunState::new("spend".into(), Arc::new(workflow));
    let usage =
        Usage { cost: Usd(1_234_567), input_tokens: 9, output_tokens: 3, cache_read_tokens: 2, ..Usage::default() };
    for (task, attempt) in [("a", 1), ("a", 2), ("b", 1)] {
        let event = Event::UsageRecorded(UsageRecorded::new(task.into(), attempt, "p".into(), &usage));
        state.apply(&event, 5).expect("usage folds");
    }
    let raised = BudgetRaised { max_cost_usd: Some(Usd(9_000_000)), task_cost_usd: None, source: "op".into() };
    state.apply(&Event::BudgetRaised(raised), 6).expect("raise folds");
    let exhausted = BudgetExhausted { spent_usd: Usd(3_703_701), max_cost_usd: Usd(9_000_000) };
    state.apply(&Event::BudgetExhausted(exhausted), 7).expect("exhausted folds");
    let at = LogPosition { seq: 9, start: 0, end: 10, crc: 7 };
    assert_round_trips(&state, at, "spend and budgets");
    for format in [snapshot::encode(&state, at), snapshot::encode_format3(&state, at)] {
        let read = snapshot::decode(&format).expect("opens");
        assert_eq!(read.state.spend, state.spend);
        assert_eq!(read.state.spend.tasks[&0].attempts[&2].cost_usd, Usd(1_234_567));
        assert_eq!(read.state.max_cost_usd(), Some(Usd(9_000_000)));
    }
}
