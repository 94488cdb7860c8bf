//! A pure core driven by hand, shared by the scripted-history tests of its decisions
//! (`core_decisions.rs`, `core_breakers.rs`, `core_budget.rs`, `core_continue.rs`): every input at a known
//! time, `dispatch` only when asked, usage notes applied as the engine applies them.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;

use pitboss::config;
use pitboss::core::breaker::Circuit;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::event::UsageRecorded;
use pitboss::core::usage::{Usage, Usd};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState};

/// A core driven by hand: every input at a known time, `dispatch` only when asked.
pub struct Core {
    pub state: RunState,
    pub now: u64,
    /// Every event so far, from `run_started`: what the log would hold.
    pub log: Vec<Event>,
}

impl Core {
    /// The state after `run_started` and the first manager's start, before any dispatch.
    pub fn new(toml: &str) -> Core {
        let workflow = config::parse(toml, "decisions.toml", Path::new(".")).expect("test workflow is valid");
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).expect("run_started starts a state");
        let mut core = Core { state, now: 1_000_000, log: vec![first] };
        core.input(Input::Start { pid: 1, version: "t".into(), resumed: false });
        core
    }

    pub fn ctx(&self) -> StepContext {
        StepContext { now_ms: self.now, jitter: 0.0 }
    }

    /// One input, without dispatching.
    pub fn input(&mut self, input: Input) -> Vec<Event> {
        let ctx = self.ctx();
        let events = step(&mut self.state, input, ctx).expect("the core accepts its own events");
        self.log.extend(events.iter().cloned());
        events
    }

    pub fn dispatch(&mut self) -> Vec<Event> {
        let ctx = self.ctx();
        let events = dispatch(&mut self.state, ctx).expect("dispatch accepts its own events");
        self.log.extend(events.iter().cloned());
        events
    }

    /// A note the engine records as it arrives (`session_recorded`, `usage_recorded`):
    /// folded into the state and logged, no decision taken.
    pub fn note(&mut self, event: Event) {
        self.state.apply(&event, self.now).expect("the note folds");
        self.log.push(event);
    }

    /// The state folded from the log so far, as `resume` and `inspect` build it.
    pub fn folded(&self) -> RunState {
        let mut state = RunState::from_first(&self.log[0]).expect("first event");
        for e in &self.log[1..] {
            state.apply(e, self.now).expect("the log replays");
        }
        state
    }

    /// One input, then a dispatch, as the engine does for every batch.
    pub fn batch(&mut self, input: Input) -> Vec<Event> {
        let mut events = self.input(input);
        events.extend(self.dispatch());
        events
    }

    /// A usage line of `task`'s `attempt` on `pool` (100 input and 10 output tokens
    /// costing `dollars`), applied as the engine applies its notes, then a dispatch as
    /// after every batch.
    pub fn spend(&mut self, task: &str, attempt: u32, pool: &str, dollars: f64) -> Vec<Event> {
        let usage = Usage {
            cost: Usd::from_dollars(dollars, 1e6).unwrap(),
            input_tokens: 100,
            output_tokens: 10,
            ..Usage::default()
        };
        let event = Event::UsageRecorded(UsageRecorded::new(task.into(), attempt, pool.into(), &usage));
        self.note(event);
        self.dispatch()
    }

    pub fn task(&self, id: &str) -> &pitboss::core::Task {
        &self.state.tasks[self.state.task_index(id).expect("task exists")]
    }

    pub fn state_of(&self, id: &str) -> &TaskState {
        &self.task(id).state
    }

    pub fn circuit(&self, pool: &str) -> Circuit {
        self.state.pools[self.state.workflow.pool_index(pool).expect("pool exists")].breaker.circuit.clone()
    }

    /// The attempt number `id` is running, or a panic naming its state.
    pub fn running(&self, id: &str) -> u32 {
        match &self.task(id).state {
            TaskState::Running { attempt, .. } => *attempt,
            other => panic!("{id} is not running but {other:?}"),
        }
    }

    /// The ids of the running tasks, in workflow order.
    pub fn all_running(&self) -> Vec<String> {
        (0..self.state.tasks.len())
            .filter(|&i| matches!(self.state.tasks[i].state, TaskState::Running { .. }))
            .map(|i| self.state.task_id(i).to_string())
            .collect()
    }
}

pub fn finished(task: &str, attempt: u32, outcome: Outcome) -> Input {
    Input::Finished { task: task.into(), attempt, outcome }
}

pub fn success() -> Outcome {
    Outcome::Success {
        result: serde_json::json!({"ok": 1}),
        exit_code: Some(0),
        duration_ms: 3,
        output: SmallOutput::default(),
    }
}

pub fn failure(class: FailureClass) -> Outcome {
    Outcome::Failure {
        class,
        error: "boom".into(),
        exit_code: Some(1),
        signal: None,
        duration_ms: 3,
        output: SmallOutput::default(),
    }
}

pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

pub fn run_finished(events: &[Event]) -> Option<bool> {
    events.iter().find_map(|e| match e {
        Event::RunFinished { success } => Some(*success),
        _ => None,
    })
}

/// Pool `p` with a breaker (one failure opens it for 100 ms, one probe), two slots.
pub const BREAKER_POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 2\n\
    breaker = { failures = 1, window = \"1m\", cooldown = \"100ms\", half_open = 1 }\n";

/// Three attempts a task, 10 ms apart, without jitter.
pub const RETRY: &str = "[defaults]\nretry = { max_attempts = 3, initial = \"10ms\", jitter = false }\n";

/// `a` and `b` on the breaker pool, both started.
pub fn two_on_a_breaker_pool() -> Core {
    let mut core = Core::new(&format!("{RETRY}{BREAKER_POOL}[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n"));
    assert_eq!(kinds(&core.dispatch()), ["attempt_started", "attempt_started"]);
    core
}
