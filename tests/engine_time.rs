//! The engine on paused tokio time, with a scripted runner: every timer of a run
//! (attempt timeout, retry backoff, breaker cooldown, stall watch) is asserted at its
//! exact virtual time, with no wall-clock tolerance. The runner is a test double of
//! the worker's behaviour only; the engine, its supervisor, the core and the clock
//! under test are the real ones (one test wraps the clock to step its wall reading,
//! as a suspend does).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss::config;
use pitboss::core::decide::Outcome;
use pitboss::core::{Event, FailureClass, Input, RunState, SmallOutput};
use pitboss::engine::{Ending, Engine, EngineConfig, World};
use pitboss::io::clock::{Clock, Sleep, TokioClock};
use pitboss::io::journal::Record;
use pitboss::io::runner::{AttemptEnd, AttemptFuture, AttemptJob, Runner, Stop};
use pitboss::io::store::MemoryStore;
use serde_json::{json, Value};

/// The virtual epoch of every test: times are asserted as offsets from it.
const T0: u64 = 1_800_000_000_000;
/// A run that has not ended after this much virtual time is stuck: the test fails.
const STUCK: Duration = Duration::from_secs(3600);

/// One step of a scripted worker.
#[derive(Debug, Clone)]
enum Step {
    /// Prints a line (the engine's stall watch sees output).
    Print,
    /// Does nothing for this long.
    Wait(u64),
    /// Exits with success.
    Succeed,
    /// Exits with a worker failure.
    Fail,
}

/// A runner whose attempts follow a script per task (the same script every attempt).
#[derive(Default)]
struct Scripted {
    scripts: HashMap<String, Vec<Step>>,
    /// (task, attempt, virtual ms) of every stop request the runner saw.
    stops: Arc<Mutex<Vec<(String, u32, Stop)>>>,
}

impl Scripted {
    fn with(mut self, task: &str, steps: &[Step]) -> Scripted {
        self.scripts.insert(task.to_string(), steps.to_vec());
        self
    }
}

impl Runner for Scripted {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let steps = self.scripts.get(&job.spec.task).cloned().unwrap_or(vec![Step::Succeed]);
        let stops = self.stops.clone();
        Box::pin(async move {
            let AttemptJob { spec, mut stop, on_spawn, on_output, .. } = job;
            on_spawn(4242);
            let script = async {
                for step in steps {
                    match step {
                        Step::Print => on_output(),
                        Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        Step::Succeed => {
                            return AttemptEnd::Outcome(Outcome::Success {
                                result: json!({"ok": spec.task}),
                                exit_code: Some(0),
                                duration_ms: 0,
                                output: SmallOutput::default(),
                            })
                        }
                        Step::Fail => {
                            return AttemptEnd::failed(FailureClass::Worker, "scripted failure".into(), Duration::ZERO)
                        }
                    }
                }
                std::future::pending().await
            };
            tokio::select! {
                end = script => end,
                Ok(()) = stop.wait_for(|s| s.is_some()).map_ok_unit() => {
                    let why = stop.borrow().unwrap_or(Stop::Interrupt);
                    stops.lock().unwrap().push((spec.task.clone(), spec.attempt, why));
                    AttemptEnd::stopped(why)
                }
            }
        })
    }
}

/// `watch::Receiver::wait_for` gives a guard; the select above only needs to know it happened.
trait OkUnit {
    async fn map_ok_unit(self) -> Result<(), ()>;
}

impl<F, T, E> OkUnit for F
where
    F: std::future::Future<Output = Result<T, E>>,
{
    async fn map_ok_unit(self) -> Result<(), ()> {
        self.await.map(|_| ()).map_err(|_| ())
    }
}

/// Runs `workflow` to its end on paused time; returns the records as (ms after T0, event JSON).
async fn run(workflow: &str, runner: Scripted) -> (Vec<(u64, Value)>, RunState, Ending) {
    run_on(workflow, runner, Arc::new(TokioClock::starting_at(T0))).await
}

/// [`run`] with the engine reading `clock`.
async fn run_on(workflow: &str, runner: Scripted, clock: Arc<dyn Clock>) -> (Vec<(u64, Value)>, RunState, Ending) {
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let store =
        MemoryStore::starting_with(T0, Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(wf) });
    let world = World { clock, runner: Arc::new(runner) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    engine.handle().send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    let ran = tokio::time::timeout(STUCK, engine.run(std::future::pending())).await;
    let (state, ending) = ran.expect("the run did not end within an hour of virtual time").expect("engine failed");
    let records: Vec<Record> = store.records.lock().unwrap().clone();
    let events = records.iter().map(|r| (r.ts - T0, serde_json::to_value(&r.event).unwrap())).collect();
    (events, state, ending)
}

/// Virtual ms of each event of `kind` (for `task`, if given).
fn times(events: &[(u64, Value)], kind: &str, task: Option<&str>) -> Vec<u64> {
    events.iter().filter(|(_, e)| e["type"] == kind && task.is_none_or(|t| e["task"] == t)).map(|(t, _)| *t).collect()
}

fn the<'a>(events: &'a [(u64, Value)], kind: &str) -> &'a Value {
    &events.iter().find(|(_, e)| e["type"] == kind).unwrap_or_else(|| panic!("no {kind} in {events:#?}")).1
}

fn pool(extra: &str) -> String {
    let concurrency = if extra.contains("concurrency") { "" } else { "concurrency = 4\n" };
    format!("[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\n{concurrency}{extra}\n")
}

#[tokio::test(start_paused = true)]
async fn an_attempt_times_out_at_exactly_its_timeout() {
    let wf =
        format!("[defaults]\ntimeout = \"2s\"\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"slow\"\n", pool(""));
    let runner = Scripted::default().with("slow", &[Step::Wait(60_000), Step::Succeed]);
    let stops = runner.stops.clone();
    let (events, _, ending) = run(&wf, runner).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(times(&events, "attempt_started", Some("slow")), vec![0]);
    assert_eq!(times(&events, "attempt_failed", Some("slow")), vec![2_000], "{events:#?}");
    let failed = the(&events, "attempt_failed");
    assert_eq!(failed["class"], "timeout");
    assert_eq!(failed["error"], "timed out after 2.0s; process group ended");
    assert_eq!(stops.lock().unwrap().as_slice(), &[("slow".to_string(), 1, Stop::Timeout)]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_ends_before_its_timeout_is_never_a_timeout() {
    let wf = format!("[defaults]\ntimeout = \"2s\"\n{}[[task]]\nid = \"quick\"\n", pool(""));
    let runner = Scripted::default().with("quick", &[Step::Wait(1_999), Step::Succeed]);
    let (events, _, _) = run(&wf, runner).await;
    assert_eq!(times(&events, "attempt_succeeded", Some("quick")), vec![1_999]);
    assert!(times(&events, "attempt_failed", None).is_empty(), "{events:#?}");
    assert_eq!(the(&events, "run_finished")["success"], true);
}

#[tokio::test(start_paused = true)]
async fn retries_wait_exactly_their_backoff() {
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 3, initial = \"1s\", max = \"1m\", multiplier = 2.0, jitter = false }}\n{}[[task]]\nid = \"flaky\"\n",
        pool("")
    );
    let runner = Scripted::default().with("flaky", &[Step::Wait(100), Step::Fail]);
    let (events, state, _) = run(&wf, runner).await;
    // attempt 1: 0→100, wait 1s; attempt 2: 1100→1200, wait 2s; attempt 3: 3200→3300.
    assert_eq!(times(&events, "attempt_started", Some("flaky")), vec![0, 1_100, 3_200]);
    assert_eq!(times(&events, "attempt_failed", Some("flaky")), vec![100, 1_200, 3_300]);
    assert_eq!(times(&events, "retry_due", Some("flaky")), vec![1_100, 3_200]);
    assert_eq!(state.tasks[0].state.name().as_str(), "dead_lettered");
    assert_eq!(the(&events, "run_finished")["success"], false);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_half_opens_exactly_after_its_cooldown() {
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\ndepends_on = [\"a\"]\nfallback = {{ skip = true }}\n[[task]]\nid = \"d\"\n",
        pool("concurrency = 1\nbreaker = { failures = 2, window = \"1m\", cooldown = \"5s\", half_open = 1 }")
    );
    let runner = Scripted::default()
        .with("a", &[Step::Wait(100), Step::Fail])
        .with("b", &[Step::Wait(100), Step::Fail])
        .with("d", &[Step::Wait(100), Step::Succeed]);
    let (events, _, _) = run(&wf, runner).await;
    // a fails at 100, b at 200: the breaker opens at 200 for 5 s.
    assert_eq!(times(&events, "breaker_opened", None), vec![200], "{events:#?}");
    assert_eq!(the(&events, "breaker_opened")["until_ms"], T0 + 5_200);
    assert_eq!(times(&events, "breaker_half_opened", None), vec![5_200]);
    // d is the probe: it starts when the breaker half-opens and closes it.
    assert_eq!(times(&events, "attempt_started", Some("d")), vec![5_200]);
    assert_eq!(times(&events, "breaker_closed", None), vec![5_300]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_attempt_is_flagged_then_ended_at_exact_times() {
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"quiet\"\n",
        pool("stall_after = \"1s\"\nstall_kill_after = \"3s\"")
    );
    let runner = Scripted::default().with("quiet", &[Step::Wait(500), Step::Print, Step::Wait(60_000), Step::Succeed]);
    let stops = runner.stops.clone();
    let (events, _, _) = run(&wf, runner).await;
    // Last output at 500: stalled at 1500 (quiet 1 s), ended at 3500 (quiet 3 s).
    assert_eq!(times(&events, "attempt_stalled", Some("quiet")), vec![1_500], "{events:#?}");
    assert_eq!(the(&events, "attempt_stalled")["quiet_ms"], 1_000);
    assert_eq!(times(&events, "attempt_failed", Some("quiet")), vec![3_500]);
    assert_eq!(the(&events, "attempt_failed")["error"], "no output for 3.0s (stall_kill_after); process group ended");
    assert_eq!(stops.lock().unwrap().as_slice(), &[("quiet".to_string(), 1, Stop::Stalled)]);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_that_prints_again_is_active_again() {
    let wf = format!("{}[[task]]\nid = \"waking\"\n", pool("stall_after = \"1s\""));
    let runner =
        Scripted::default().with("waking", &[Step::Wait(2_500), Step::Print, Step::Wait(2_000), Step::Succeed]);
    let (events, _, _) = run(&wf, runner).await;
    // Quiet from 0: flagged at 1000; output at 2500 is seen at the next look (3000),
    // and the silence after it is flagged again a second after the output (3500).
    assert_eq!(times(&events, "attempt_stalled", Some("waking")), vec![1_000, 3_500]);
    assert_eq!(times(&events, "attempt_active", Some("waking")), vec![3_000], "{events:#?}");
    assert_eq!(times(&events, "attempt_succeeded", Some("waking")), vec![4_500]);
}

/// Paused tokio time whose wall reading (`now_ms`) can jump ahead while tokio's
/// monotonic time does not: what a laptop's suspend looks like on Linux (the real-time
/// clock counts the sleep, `CLOCK_MONOTONIC` does not), or an NTP step.
struct JumpingClock {
    inner: TokioClock,
    jumped_ms: Arc<AtomicU64>,
}

impl Clock for JumpingClock {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms() + self.jumped_ms.load(Ordering::Relaxed)
    }

    fn sleep_until(&self, due_ms: u64) -> Sleep {
        self.inner.sleep_until(due_ms.saturating_sub(self.jumped_ms.load(Ordering::Relaxed)))
    }
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_like_a_suspend_is_not_silence_and_not_a_timeout() {
    let wf = format!(
        "[defaults]\ntimeout = \"10s\"\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"sleeper\"\n",
        pool("stall_after = \"2s\"\nstall_kill_after = \"10s\"")
    );
    // Prints at once, then works quietly for 3 s and succeeds; the wall clock jumps an
    // hour at 1 s (the machine slept an hour; neither manager nor worker ran). Quiet
    // for 2 s of awake time at 2 s, it is flagged stalled, and no more than that.
    let runner = Scripted::default().with("sleeper", &[Step::Print, Step::Wait(3_000), Step::Succeed]);
    let jumped_ms = Arc::new(AtomicU64::new(0));
    let clock = Arc::new(JumpingClock { inner: TokioClock::starting_at(T0), jumped_ms: jumped_ms.clone() });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        jumped_ms.store(3_600_000, Ordering::Relaxed);
    });
    let (events, _, _) = run_on(&wf, runner, clock).await;
    let kinds: Vec<&str> = events.iter().filter_map(|(_, e)| e["type"].as_str()).collect();
    assert!(!kinds.contains(&"attempt_failed"), "the hour asleep was counted: {events:#?}");
    assert_eq!(the(&events, "attempt_stalled")["quiet_ms"], 2_000, "the hour asleep was counted as silence");
    assert!(kinds.contains(&"attempt_succeeded"), "{events:#?}");
}

/// Paused tokio time with a manager stop (the TUI's Ctrl-Z) noted at a chosen moment,
/// as `io::clock::note_stopped` does for the real clock.
struct StoppingClock {
    inner: TokioClock,
    stopped_ms: Arc<AtomicU64>,
}

impl Clock for StoppingClock {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn sleep_until(&self, due_ms: u64) -> Sleep {
        self.inner.sleep_until(due_ms)
    }

    fn stopped_ms(&self) -> u64 {
        self.stopped_ms.load(Ordering::Relaxed)
    }
}

/// A run whose manager is noted stopped for `stop_ms` at virtual time `at_ms`.
async fn run_with_stop(wf: &str, runner: Scripted, at_ms: u64, stop_ms: u64) -> Vec<(u64, Value)> {
    let stopped_ms = Arc::new(AtomicU64::new(0));
    let clock = Arc::new(StoppingClock { inner: TokioClock::starting_at(T0), stopped_ms: stopped_ms.clone() });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(at_ms)).await;
        stopped_ms.store(stop_ms, Ordering::Relaxed);
    });
    run_on(wf, runner, clock).await.0
}

#[tokio::test(start_paused = true)]
async fn a_manager_stop_moves_the_timeout_out_by_as_long() {
    let wf =
        format!("[defaults]\ntimeout = \"10s\"\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"long\"\n", pool(""));
    // The manager is noted stopped 8 s at 5 s: the 10 s limit now falls at 18 s, so
    // the worker's success at 15 s is a success, and a worker still busy at 18 s would
    // be the timeout.
    let runner = Scripted::default().with("long", &[Step::Wait(15_000), Step::Succeed]);
    let events = run_with_stop(&wf, runner, 5_000, 8_000).await;
    assert!(times(&events, "attempt_failed", None).is_empty(), "the stop was charged: {events:#?}");
    assert_eq!(times(&events, "attempt_succeeded", Some("long")), vec![15_000]);
    let runner = Scripted::default().with("long", &[Step::Wait(60_000), Step::Succeed]);
    let events = run_with_stop(&wf, runner, 5_000, 8_000).await;
    assert_eq!(times(&events, "attempt_failed", Some("long")), vec![18_000], "{events:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_manager_stop_is_not_silence() {
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"quiet\"\n",
        pool("stall_kill_after = \"4s\"")
    );
    // Last output at 0; the manager is noted stopped 3 s at 2 s: 4 s of awake silence
    // come at 7 s, not at 4 s.
    let runner = Scripted::default().with("quiet", &[Step::Print, Step::Wait(60_000), Step::Succeed]);
    let events = run_with_stop(&wf, runner, 2_000, 3_000).await;
    assert_eq!(times(&events, "attempt_failed", Some("quiet")), vec![7_000], "{events:#?}");
}

/// A reader that takes its time over every batch still receives every record in
/// order: its fold of 100k+ events equals the engine's own state.
#[tokio::test(start_paused = true)]
async fn a_slow_reader_misses_nothing_over_100k_events() {
    let tasks = 25_000;
    let mut wf = String::from("[run]\nmax_parallel = 64\n");
    wf.push_str(&pool("concurrency = 64"));
    for i in 0..tasks {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    let parsed = config::parse(&wf, "test.toml", Path::new(".")).expect("workflow");
    let first = RunState::new("run-1".into(), Arc::new(parsed.clone()));
    let store = MemoryStore::starting_with(
        T0,
        Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(parsed) },
    );
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: Arc::new(Scripted::default()) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(first.clone(), Box::new(store.clone()), config, world);
    let handle = engine.handle();
    let mut feed = handle.subscribe();
    let reader = tokio::spawn(async move {
        let (mut folded, mut seen, mut next_seq) = (first, 0usize, 2u64);
        while let Some(batch) = feed.recv().await {
            for record in batch.iter() {
                assert_eq!(record.seq, next_seq, "records out of order or missing");
                next_seq += 1;
                folded.apply(&record.event, record.ts).expect("the fold accepts every record");
                seen += 1;
            }
            // Slow on purpose: the engine runs far ahead of this reader.
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        }
        (folded, seen)
    });
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    drop(handle);
    let (state, _) = tokio::time::timeout(STUCK, engine.run(std::future::pending()))
        .await
        .expect("the run did not end")
        .expect("engine failed");
    let (folded, seen) = tokio::time::timeout(STUCK, reader).await.expect("the reader did not end").expect("reader");
    let written = store.records.lock().unwrap().len() - 1;
    assert!(seen >= 100_000, "only {seen} events: the test must cover 100k");
    assert_eq!(seen, written, "the reader saw {seen} of {written} records");
    assert_eq!(folded.tasks, state.tasks, "the slow reader's fold differs from the engine's state");
    assert_eq!(folded.queue().collect::<Vec<_>>(), state.queue().collect::<Vec<_>>());
    assert_eq!((folded.finished, folded.interrupted), (state.finished, state.interrupted));
    assert_eq!(folded.pools, state.pools);
    assert_eq!(state.count(pitboss::core::TaskStateName::Completed), tasks);
}

/// A reader of the engine's state (the control socket, the headless reporter: no fold
/// of their own) sees the run exactly as the records handed out so far fold: the
/// state read with its next seq equals a subscriber's fold up to that seq.
#[tokio::test(start_paused = true)]
async fn a_read_of_the_engine_state_matches_the_records_published_so_far() {
    let mut wf = String::from("[run]\nmax_parallel = 16\n");
    wf.push_str(&pool("concurrency = 16"));
    for i in 0..2_000 {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    let parsed = config::parse(&wf, "test.toml", Path::new(".")).expect("workflow");
    let first = RunState::new("run-1".into(), Arc::new(parsed.clone()));
    let store = MemoryStore::starting_with(
        T0,
        Event::RunStarted { run_id: "run-1".into(), workflow: std::sync::Arc::new(parsed) },
    );
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: Arc::new(Scripted::default()) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(first.clone(), Box::new(store.clone()), config, world);
    let handle = engine.handle();
    let mut feed = handle.subscribe();
    let reader_handle = handle.clone();
    let reader = tokio::spawn(async move {
        let (mut folded, mut next_seq, mut compared) = (first, 2u64, 0usize);
        let mut pending: std::collections::VecDeque<Record> = Default::default();
        loop {
            let Some((tasks, counts, read_next)) = reader_handle
                .read(|state, next| {
                    let counts: Vec<usize> =
                        pitboss::core::TaskStateName::ALL.iter().map(|n| state.count(*n)).collect();
                    (state.tasks.clone(), counts, next)
                })
                .await
            else {
                break;
            };
            let Some(read_next) = read_next else { continue };
            // Fold the published records up to the seq the read was taken at.
            while next_seq < read_next {
                if pending.is_empty() {
                    let batch = feed.recv().await.expect("the records end after the read's seq");
                    pending.extend(batch.iter().cloned());
                }
                let record = pending.pop_front().expect("a record");
                assert_eq!(record.seq, next_seq, "records out of order or missing");
                folded.apply(&record.event, record.ts).expect("the fold accepts every record");
                next_seq += 1;
            }
            assert_eq!(
                folded.tasks, tasks,
                "the state read at seq {read_next} is not the fold of the records before it"
            );
            let folded_counts: Vec<usize> =
                pitboss::core::TaskStateName::ALL.iter().map(|n| folded.count(*n)).collect();
            assert_eq!(folded_counts, counts);
            compared += 1;
        }
        compared
    });
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    drop(handle);
    let (state, _) = tokio::time::timeout(STUCK, engine.run(std::future::pending()))
        .await
        .expect("the run did not end")
        .expect("engine failed");
    let compared = tokio::time::timeout(STUCK, reader).await.expect("the reader did not end").expect("reader");
    assert_eq!(state.count(pitboss::core::TaskStateName::Completed), 2_000);
    assert!(compared >= 10, "only {compared} reads were compared");
}
