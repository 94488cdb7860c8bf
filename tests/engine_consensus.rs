//! Consensus in the engine (DESIGN §10) on paused tokio time, with a scripted runner:
//! replicas run at once, each end is a `vote_cast`, the tally decides, the outstanding
//! replicas are stopped, and the task goes down the ordinary success or failure path.
//! The runner is a double of the workers only (it reads the replica index and the
//! judge's candidates from the real stdin the engine built); the engine, supervisor,
//! core and clock are the real ones.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::engine::{Ending, Engine, EngineConfig, EngineHandle, World};
use pitboss::io::clock::TokioClock;
use pitboss::io::journal::Record;
use pitboss::io::runner::{AttemptEnd, AttemptFuture, AttemptJob, Runner, Stop};
use pitboss::io::store::MemoryStore;
use serde_json::{json, Value};

const T0: u64 = 1_800_000_000_000;
const STUCK: Duration = Duration::from_secs(3600);

/// What one replica (or the judge) does: answer `Some(value)` or fail (`None`) after `ms`.
#[derive(Clone)]
struct Act {
    ms: u64,
    answer: Option<Value>,
    /// A failure is a permanent spawn error (command not found) rather than a worker's.
    cannot_start: bool,
}

fn answer(ms: u64, v: Value) -> Act {
    Act { ms, answer: Some(v), cannot_start: false }
}

fn fail(ms: u64) -> Act {
    Act { ms, answer: None, cannot_start: false }
}

fn cannot_start() -> Act {
    Act { ms: 0, answer: None, cannot_start: true }
}

/// A stop request the runner saw: the replica (`None`: the judge) and why.
type Stopped = (Option<u64>, Stop);

/// Replica `r` of every attempt follows `replicas[r]`; a stdin with `candidates` is the judge.
#[derive(Default)]
struct Scripted {
    replicas: Vec<Act>,
    judge: Option<Act>,
    /// A quality gate's check (a stdin with `result`).
    gate: Option<Act>,
    /// (replica or None for the judge, stop) of every stop request seen.
    stops: Arc<Mutex<Vec<Stopped>>>,
    /// Every stdin the runner got, as JSON.
    stdins: Arc<Mutex<Vec<Value>>>,
    /// Per pool: (processes running now, most ever at once), and the pool of every start.
    load: Arc<Mutex<Load>>,
    /// How long a plain task runs (1 ms unless set).
    plain_ms: u64,
}

#[derive(Default)]
struct Load {
    now: std::collections::HashMap<String, usize>,
    most: std::collections::HashMap<String, usize>,
    pools: Vec<String>,
}

impl Runner for Scripted {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let stdin: Value =
            job.spec.stdin.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        self.stdins.lock().unwrap().push(stdin.clone());
        let replica = stdin["replica"].as_u64();
        let act = if stdin.get("candidates").is_some() {
            self.judge.clone()
        } else if stdin.get("result").is_some() {
            self.gate.clone()
        } else {
            replica.and_then(|r| self.replicas.get(r as usize).cloned())
        }
        .unwrap_or(Act { ms: self.plain_ms.max(1), answer: Some(json!("single")), cannot_start: false });
        let stops = self.stops.clone();
        let (load, pool) = (self.load.clone(), job.spec.pool.clone());
        {
            let mut load = load.lock().unwrap();
            load.pools.push(pool.clone());
            let now = load.now.entry(pool.clone()).or_default();
            *now += 1;
            let now = *now;
            let most = load.most.entry(pool.clone()).or_default();
            *most = (*most).max(now);
        }
        Box::pin(async move {
            let AttemptJob { mut stop, on_spawn, .. } = job;
            let ended = move || *load.lock().unwrap().now.entry(pool).or_default() -= 1;
            if act.cannot_start {
                ended();
                let error = "cannot run [\"nope\"]: command not found".into();
                return AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO);
            }
            on_spawn(5000 + replica.unwrap_or(99) as u32);
            let work = async {
                tokio::time::sleep(Duration::from_millis(act.ms)).await;
                match act.answer {
                    Some(result) => AttemptEnd::Outcome(Outcome::Success {
                        result,
                        exit_code: Some(0),
                        duration_ms: act.ms,
                        output: SmallOutput::default(),
                    }),
                    None => AttemptEnd::failed(FailureClass::Worker, "scripted failure".into(), Duration::ZERO),
                }
            };
            let end = tokio::select! {
                end = work => end,
                Ok(why) = async { stop.wait_for(|s| s.is_some()).await.map(|s| s.unwrap_or(Stop::Interrupt)) } => {
                    stops.lock().unwrap().push((replica, why));
                    AttemptEnd::stopped(why)
                }
            };
            ended();
            end
        })
    }
}

async fn run(workflow: &str, runner: Scripted) -> (Vec<(u64, Value)>, RunState) {
    let (events, state, ending) = run_with(workflow, runner, |_| {}).await;
    assert_eq!(ending, Ending::Finished);
    (events, state)
}

/// [`run`], with `meanwhile` given the engine's handle before it starts (to act on
/// the run at a virtual time), and the ending returned instead of asserted.
async fn run_with(
    workflow: &str,
    runner: Scripted,
    meanwhile: impl FnOnce(EngineHandle),
) -> (Vec<(u64, Value)>, RunState, Ending) {
    run_from(workflow, runner, Vec::new(), meanwhile).await
}

/// [`run_with`], with `first` (an operator's commands) taken before the run starts.
async fn run_from(
    workflow: &str,
    runner: Scripted,
    first: Vec<Input>,
    meanwhile: impl FnOnce(EngineHandle),
) -> (Vec<(u64, Value)>, RunState, Ending) {
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let store =
        MemoryStore::starting_with(T0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: Arc::new(runner) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    for input in first {
        engine.handle().send(input);
    }
    engine.handle().send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    meanwhile(engine.handle());
    let ran = tokio::time::timeout(STUCK, engine.run(std::future::pending())).await;
    let (state, ending) = ran.expect("the run did not end within an hour of virtual time").expect("engine failed");
    let records: Vec<Record> = store.records.lock().unwrap().clone();
    let events = records.iter().map(|r| (r.ts - T0, serde_json::to_value(&r.event).unwrap())).collect();
    // The log folds to the live state (replay decides as the live engine did).
    let mut folded = RunState::from_first(&records[0].event).unwrap();
    for r in &records[1..] {
        folded.apply(&r.event, r.ts).unwrap_or_else(|e| panic!("replay: {e}"));
    }
    assert_eq!(folded.tasks, state.tasks, "replay differs from the live state");
    (events, state, ending)
}

fn of<'a>(events: &'a [(u64, Value)], kind: &str) -> Vec<&'a (u64, Value)> {
    events.iter().filter(|(_, e)| e["type"] == kind).collect()
}

fn workflow(consensus: &str) -> String {
    format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"w\"\ncommand = [\"unused\"]\nstdin = \"task\"\nconcurrency = 1\n\
         [[pool]]\nname = \"judges\"\ncommand = [\"unused\"]\nstdin = \"task\"\n\
         [[task]]\nid = \"q\"\npool = \"w\"\nconsensus = {consensus}\n"
    )
}

#[tokio::test(start_paused = true)]
async fn two_of_three_agree_the_majority_wins_and_the_third_is_stopped() {
    let runner = Scripted {
        replicas: vec![
            answer(100, json!({"a": 1, "r": 0})),
            answer(300, json!({"a": 1.0, "r": 1})),
            answer(5_000, json!({"a": 2})),
        ],
        ..Scripted::default()
    };
    let (stops, stdins) = (runner.stops.clone(), runner.stdins.clone());
    let (events, state) = run(&workflow("{ replicas = 3, strategy = \"majority\", key = \"/a\" }"), runner).await;
    // All three at once, one attempt.
    assert_eq!(of(&events, "attempt_started").len(), 1, "{events:#?}");
    let replicas: Vec<u64> = stdins.lock().unwrap().iter().map(|s| s["replica"].as_u64().unwrap()).collect();
    assert_eq!(replicas, [0, 1, 2]);
    let votes = of(&events, "vote_cast");
    assert_eq!(
        votes.iter().map(|(t, v)| (*t, v["replica"].as_u64().unwrap())).collect::<Vec<_>>(),
        [(100, 0), (300, 1)]
    );
    let reached = of(&events, "consensus_reached");
    assert_eq!(reached.len(), 1);
    let (t, reached) = reached[0];
    assert_eq!(*t, 300);
    assert_eq!(reached["winner"], 0);
    assert_eq!(reached["votes"], json!([0, 1]));
    // The third had not voted: outstanding, so stopped, and its late end never counts.
    assert_eq!(stops.lock().unwrap().as_slice(), &[(Some(2), Stop::Cancel)]);
    assert_eq!(state.tasks[0].result.as_ref().map(|r| r.value()), Some(json!({"a": 1, "r": 0})));
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
    assert_eq!(of(&events, "attempt_succeeded")[0].0, 300);
}

#[tokio::test(start_paused = true)]
async fn a_dissenter_is_named_when_consensus_is_reached() {
    let runner = Scripted {
        replicas: vec![answer(100, json!({"a": 1})), answer(200, json!({"a": 2})), answer(300, json!({"a": 1}))],
        ..Scripted::default()
    };
    let (events, state) = run(&workflow("{ replicas = 3, strategy = \"majority\" }"), runner).await;
    let (_, reached) = of(&events, "consensus_reached")[0];
    assert_eq!(reached["votes"], json!([0, 2]));
    assert_eq!(reached["dissenters"], json!([1]));
    assert_eq!(state.tasks[0].result.as_ref().map(|r| r.value()), Some(json!({"a": 1})));
}

#[tokio::test(start_paused = true)]
async fn all_differ_and_the_judge_picks_the_winner() {
    let runner = Scripted {
        replicas: vec![answer(100, json!("x")), answer(200, json!("y")), answer(300, json!("z"))],
        judge: Some(answer(50, json!({"pick": 2, "reason": "best"}))),
        ..Scripted::default()
    };
    let stdins = runner.stdins.clone();
    let (events, state) = run(&workflow("{ replicas = 3, strategy = \"judge\", judge = \"judges\" }"), runner).await;
    let judge_in = stdins.lock().unwrap().iter().find(|s| s.get("candidates").is_some()).cloned().expect("a judge ran");
    assert_eq!(judge_in["candidates"], json!(["x", "y", "z"]));
    assert_eq!(judge_in["id"], "q");
    let (t, reached) = of(&events, "consensus_reached")[0];
    assert_eq!(*t, 350);
    assert_eq!(reached["winner"], 2);
    assert_eq!(reached["judge"], "best");
    assert_eq!(state.tasks[0].result.as_ref().map(|r| r.value()), Some(json!("z")));
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
}

#[tokio::test(start_paused = true)]
async fn all_replicas_fail_and_the_attempt_fails() {
    let runner = Scripted { replicas: vec![fail(100), fail(200), fail(300)], ..Scripted::default() };
    let (events, state) = run(&workflow("{ replicas = 3, strategy = \"majority\" }"), runner).await;
    assert_eq!(of(&events, "vote_cast").len(), 2, "the second failure already decides: {events:#?}");
    let (t, failed) = of(&events, "consensus_failed")[0];
    assert_eq!(*t, 200);
    assert!(failed["reason"].as_str().unwrap().starts_with("no consensus"), "{failed}");
    let (_, attempt) = of(&events, "attempt_failed")[0];
    assert!(attempt["error"].as_str().unwrap().starts_with("no consensus"), "{attempt}");
    assert_eq!(state.tasks[0].state.name().as_str(), "dead_lettered");
    let abstained = of(&events, "vote_cast");
    assert!(abstained.iter().all(|(_, v)| v["error"] == "scripted failure"), "{abstained:?}");
}

/// Runs `then` with the handle at virtual ms `at`.
fn at(at: u64, then: impl FnOnce(&EngineHandle) + Send + 'static) -> impl FnOnce(EngineHandle) {
    move |handle| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(at)).await;
            then(&handle);
        });
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancel_stops_every_replica() {
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(5_000, json!(2)), answer(5_000, json!(3))],
        ..Scripted::default()
    };
    let stops = runner.stops.clone();
    let cancel = at(200, |h| {
        h.send(Input::Cancel { task: "q".into(), reason: "operator".into() });
    });
    let (events, state, ending) =
        run_with(&workflow("{ replicas = 3, strategy = \"majority\" }"), runner, cancel).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(state.tasks[0].state.name().as_str(), "cancelled");
    let mut stopped = stops.lock().unwrap().clone();
    stopped.sort_by_key(|(r, _)| *r);
    assert_eq!(stopped, [(Some(1), Stop::Cancel), (Some(2), Stop::Cancel)]);
    assert!(of(&events, "consensus_reached").is_empty() && of(&events, "attempt_failed").is_empty(), "{events:#?}");
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_stops_every_replica_and_hands_the_attempt_back() {
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(5_000, json!(2)), answer(5_000, json!(3))],
        ..Scripted::default()
    };
    let stops = runner.stops.clone();
    let stop = at(200, |h| h.stop("test"));
    let (events, state, ending) = run_with(&workflow("{ replicas = 3, strategy = \"majority\" }"), runner, stop).await;
    assert_eq!(ending, Ending::Interrupted);
    let mut stopped = stops.lock().unwrap().clone();
    stopped.sort_by_key(|(r, _)| *r);
    assert_eq!(stopped, [(Some(1), Stop::Interrupt), (Some(2), Stop::Interrupt)]);
    assert_eq!(of(&events, "attempt_interrupted").len(), 1, "{events:#?}");
    assert_eq!(state.tasks[0].state.name().as_str(), "queued");
    assert_eq!(state.tasks[0].attempts, 0, "an interrupted attempt is not spent");
}

#[tokio::test(start_paused = true)]
async fn a_failed_replica_counts_on_its_own_pools_breaker() {
    let wf = "[defaults]\nretry = { max_attempts = 1 }\n\
         [[pool]]\nname = \"a\"\ncommand = [\"unused\"]\nbreaker = { failures = 1, window = \"1m\", cooldown = \"1h\" }\n\
         [[pool]]\nname = \"b\"\ncommand = [\"unused\"]\nbreaker = { failures = 1, window = \"1m\", cooldown = \"1h\" }\n\
         [[task]]\nid = \"q\"\npool = \"a\"\nconsensus = { replicas = 3, strategy = \"majority\", pools = [\"a\", \"b\"] }\n";
    // Replica 1 (on b) fails; 0 and 2 (on a) agree.
    let runner =
        Scripted { replicas: vec![answer(100, json!(1)), fail(50), answer(200, json!(1))], ..Scripted::default() };
    let (events, state) = run(wf, runner).await;
    let opened: Vec<&Value> = of(&events, "breaker_opened").into_iter().map(|(_, e)| e).collect();
    assert_eq!(opened.len(), 1, "{events:#?}");
    assert_eq!(opened[0]["pool"], "b");
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
    let (_, reached) = of(&events, "consensus_reached")[0];
    assert_eq!(reached["abstained"], json!([1]));
}

/// A manager that died mid-round: the next one hands the attempt back (not spent),
/// and the attempt run again starts with no votes, so every replica votes afresh.
#[test]
fn a_resumed_round_starts_again_with_no_votes() {
    let wf = config::parse(&workflow("{ replicas = 3, strategy = \"majority\" }"), "test.toml", Path::new("."))
        .unwrap_or_else(|e| panic!("workflow: {e}"));
    let mut state = RunState::new("run-1".into(), Arc::new(wf));
    let ctx = StepContext { now_ms: T0, jitter: 0.0 };
    step(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx).unwrap();
    dispatch(&mut state, ctx).unwrap();
    let vote = |replica| Input::ReplicaFinished {
        task: "q".into(),
        attempt: 1,
        replica,
        pool: "w".into(),
        outcome: Outcome::Success {
            result: json!(1),
            exit_code: Some(0),
            duration_ms: 1,
            output: SmallOutput::default(),
        },
    };
    let cast = step(&mut state, vote(0), ctx).unwrap();
    assert!(matches!(cast.as_slice(), [Event::VoteCast { replica: 0, .. }]), "{cast:?}");
    // The manager dies; the next one takes over.
    let resumed = step(&mut state, Input::Start { pid: 2, version: "t".into(), resumed: true }, ctx).unwrap();
    assert!(resumed.iter().any(|e| matches!(e, Event::AttemptInterrupted { attempt: 1, .. })), "{resumed:?}");
    assert_eq!(state.tasks[0].attempts, 0, "not spent");
    let started = dispatch(&mut state, ctx).unwrap();
    assert!(matches!(started.as_slice(), [Event::AttemptStarted { attempt: 1, .. }]), "{started:?}");
    // Replica 0 votes again in the attempt run again: accepted, and alone it decides nothing.
    let again = step(&mut state, vote(0), ctx).unwrap();
    assert!(matches!(again.as_slice(), [Event::VoteCast { replica: 0, .. }]), "{again:?}");
    let reached = step(&mut state, vote(1), ctx).unwrap();
    let kinds: Vec<&str> = reached.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["vote_cast", "consensus_reached", "attempt_succeeded"]);
    // A late word from the stopped replica changes nothing.
    assert_eq!(step(&mut state, vote(2), ctx).unwrap(), Vec::new());
}

/// The winner goes down the ordinary success path: the task's gates check it. The
/// losers' late ends must not take the gate's place in the engine: an interrupt
/// while the gate runs still stops the gate.
#[tokio::test(start_paused = true)]
async fn the_winner_is_checked_by_the_tasks_gates_and_the_gate_is_stopped_on_interrupt() {
    let wf = "[defaults]\nretry = { max_attempts = 1 }\n\
         [[pool]]\nname = \"w\"\ncommand = [\"unused\"]\n\
         [[task]]\nid = \"q\"\nconsensus = { replicas = 3, strategy = \"majority\" }\n\
         gates = [{ command = [\"check\"], timeout = \"1h\" }]\n";
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(200, json!(1)), answer(5_000, json!(2))],
        gate: Some(answer(10_000, json!({}))),
        ..Scripted::default()
    };
    let (stops, stdins) = (runner.stops.clone(), runner.stdins.clone());
    let (events, state, ending) = run_with(wf, runner, at(1_000, |h| h.stop("test"))).await;
    assert_eq!(ending, Ending::Interrupted);
    let gate_in = stdins.lock().unwrap().iter().find(|s| s.get("result").is_some()).cloned().expect("the gate ran");
    assert_eq!(gate_in["result"], json!(1), "the gate checks the winner's result");
    let stopped = stops.lock().unwrap().clone();
    assert!(stopped.contains(&(Some(2), Stop::Cancel)), "the loser is stopped: {stopped:?}");
    assert!(stopped.contains(&(None, Stop::Interrupt)), "the running gate is stopped: {stopped:?}");
    assert_eq!(state.tasks[0].state.name().as_str(), "validating", "{events:#?}");
}

/// Pools `a` (the task's), `b` (concurrency 1) and `c`, each with its own command.
const THREE_POOLS: &str = "[defaults]\nretry = { max_attempts = 3 }\n\
     [[pool]]\nname = \"a\"\ncommand = [\"on-a\"]\nstdin = \"task\"\n\
     [[pool]]\nname = \"b\"\ncommand = [\"on-b\"]\nstdin = \"task\"\nconcurrency = 1\n\
     [[pool]]\nname = \"c\"\ncommand = [\"on-c\"]\nstdin = \"task\"\n\
     breaker = { failures = 1, window = \"1m\", cooldown = \"1h\" }\n\
     [[task]]\nid = \"q\"\npool = \"a\"\nconsensus = { replicas = 3, strategy = \"majority\", pools = [\"a\", \"b\", \"c\"] }\n";

/// An operator paused `b` and tripped `c`'s breaker: the replicas meant for them
/// run on the task's own pool instead, and the round is decided as usual.
#[tokio::test(start_paused = true)]
async fn a_replica_meant_for_a_paused_or_open_pool_runs_on_the_tasks_own_pool() {
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(200, json!(1)), answer(300, json!(1))],
        ..Scripted::default()
    };
    let load = runner.load.clone();
    let first = vec![Input::PausePool { pool: "b".into() }, Input::BreakerTrip { pool: "c".into() }];
    let (events, state, ending) = run_from(THREE_POOLS, runner, first, |_| {}).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(load.lock().unwrap().pools, ["a", "a", "a"], "{events:#?}");
    let workers: Vec<&Value> = of(&events, "vote_cast").iter().map(|(_, v)| &v["worker"]).collect();
    assert_eq!(workers, ["a", "a"]);
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
}

/// A replica on `b` counts as running on `b`: a plain task for `b` (concurrency 1)
/// waits for it, so `b` never runs two things at once.
#[tokio::test(start_paused = true)]
async fn a_replica_takes_a_slot_of_the_pool_it_runs_on() {
    let wf = format!("{THREE_POOLS}[[task]]\nid = \"plain\"\npool = \"b\"\n");
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(500, json!(1)), answer(300, json!(1))],
        ..Scripted::default()
    };
    let load = runner.load.clone();
    let (events, state) = run(&wf, runner).await;
    let load = load.lock().unwrap();
    assert_eq!(load.most.get("b"), Some(&1), "b ran {:?} at once: {events:#?}", load.most.get("b"));
    assert_eq!(load.pools.iter().filter(|p| *p == "b").count(), 2, "replica 1 and the plain task");
    assert!(state.tasks.iter().all(|t| t.state.name().as_str() == "completed"), "{events:#?}");
}

/// Every replica cannot start (command not found): the task is dead-lettered at
/// once naming the spawn error, as a plain attempt would be, not retried.
#[tokio::test(start_paused = true)]
async fn replicas_that_cannot_start_dead_letter_the_task_at_once() {
    let runner = Scripted { replicas: vec![cannot_start(), cannot_start(), cannot_start()], ..Scripted::default() };
    let wf = "[defaults]\nretry = { max_attempts = 3 }\n\
         [[pool]]\nname = \"w\"\ncommand = [\"nope\"]\nstdin = \"task\"\n\
         [[task]]\nid = \"q\"\nconsensus = { replicas = 3, strategy = \"majority\" }\n";
    let (events, state) = run(wf, runner).await;
    assert_eq!(of(&events, "attempt_started").len(), 1, "not retried: {events:#?}");
    let (_, failed) = of(&events, "attempt_failed")[0];
    assert_eq!(failed["class"], "spawn_permanent", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("command not found"), "{failed}");
    assert_eq!(failed["then"], "dead_letter", "{failed}");
    assert!(failed["reason"].as_str().unwrap().contains("command not found"), "{failed}");
    assert_eq!(state.tasks[0].state.name().as_str(), "dead_lettered");
}

/// The judge pool is paused: the round waits (judging) like a queued attempt, and
/// the judge starts when an operator resumes the pool.
#[tokio::test(start_paused = true)]
async fn the_judge_waits_for_a_paused_judge_pool() {
    let runner = Scripted {
        replicas: vec![answer(100, json!("x")), answer(200, json!("y")), answer(300, json!("z"))],
        judge: Some(answer(50, json!({"pick": 1}))),
        ..Scripted::default()
    };
    let first = vec![Input::PausePool { pool: "judges".into() }];
    let resume = at(1_000, |h| {
        h.send(Input::ResumePool { pool: "judges".into() });
    });
    let wf = workflow("{ replicas = 3, strategy = \"judge\", judge = \"judges\" }");
    let (events, state, ending) = run_from(&wf, runner, first, resume).await;
    assert_eq!(ending, Ending::Finished);
    let (t, reached) = of(&events, "consensus_reached")[0];
    assert_eq!(*t, 1_050, "the judge ran only after the resume: {events:#?}");
    assert_eq!(reached["winner"], 1);
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
}

/// The judge counts as running on the judge pool: with `concurrency = 1` there and
/// a plain task running on it, the judge waits for the task to end.
#[tokio::test(start_paused = true)]
async fn the_judge_takes_a_slot_of_the_judge_pool() {
    let wf = format!(
        "{}[[task]]\nid = \"busy\"\npool = \"judges\"\n",
        workflow("{ replicas = 3, strategy = \"judge\", judge = \"judges\" }").replace(
            "name = \"judges\"\ncommand = [\"unused\"]\nstdin = \"task\"\n",
            "name = \"judges\"\ncommand = [\"unused\"]\nstdin = \"task\"\nconcurrency = 1\n"
        )
    );
    let runner = Scripted {
        replicas: vec![answer(100, json!("x")), answer(200, json!("y")), answer(300, json!("z"))],
        judge: Some(answer(50, json!({"pick": 0}))),
        // The plain task ("single") runs 2 s on the judge pool.
        ..Scripted::default()
    };
    let load = runner.load.clone();
    let runner = Scripted { plain_ms: 2_000, ..runner };
    let (events, state) = run(&wf, runner).await;
    assert_eq!(load.lock().unwrap().most.get("judges"), Some(&1), "{events:#?}");
    let (t, _) = of(&events, "consensus_reached")[0];
    assert_eq!(*t, 2_050, "the judge waited for the busy task: {events:#?}");
    assert!(state.tasks.iter().all(|t| t.state.name().as_str() == "completed"), "{events:#?}");
}

/// A replica silent past its pool's `stall_after` flags the attempt stalled (one
/// flag for the attempt: raised by the first quiet part); the round goes on.
#[tokio::test(start_paused = true)]
async fn a_quiet_replica_flags_the_attempt_stalled() {
    let wf = workflow("{ replicas = 3, strategy = \"majority\" }")
        .replace("concurrency = 1\n", "concurrency = 1\nstall_after = \"1s\"\n");
    let runner = Scripted {
        replicas: vec![answer(100, json!(1)), answer(5_000, json!(1)), answer(6_000, json!(2))],
        ..Scripted::default()
    };
    let (events, state) = run(&wf, runner).await;
    let stalled = of(&events, "attempt_stalled");
    assert_eq!(stalled.len(), 1, "{events:#?}");
    let (t, flag) = stalled[0];
    assert!((1_000..5_000).contains(t), "flagged at {t}");
    assert_eq!(flag["task"], "q");
    assert_eq!(state.tasks[0].state.name().as_str(), "completed");
}
