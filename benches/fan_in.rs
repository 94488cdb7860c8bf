//! Benchmark P4: readiness on a wide graph. The time from a manager's start to its
//! first dispatch for one task depending on N others (fan-in) and N tasks depending
//! on one (fan-out), N = 10,000 by default (`PITBOSS_BENCH_FAN=50000` for the
//! issue's size). Linear readiness keeps both in milliseconds; a rescan of every
//! dependency at each transition made the fan-in quadratic.
//!
//!     cargo bench --bench fan_in
//!     PITBOSS_BENCH_FAN=50000 cargo bench --bench fan_in

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pitboss::config;
use pitboss::core::decide::dispatch;
use pitboss::core::{step, Event, Input, RunState, StepContext};

fn width() -> usize {
    std::env::var("PITBOSS_BENCH_FAN").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

const HEADER: &str = "[run]\nmax_parallel = 64\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 64\n";

fn state(text: &str) -> RunState {
    let workflow = config::parse(text, "p4.toml", Path::new(".")).expect("bench workflow");
    RunState::from_first(&Event::RunStarted { run_id: "bench".into(), workflow: std::sync::Arc::new(workflow) })
        .expect("state")
}

fn fan_in(n: usize) -> RunState {
    let mut text = HEADER.to_string();
    let deps: Vec<String> = (0..n).map(|i| format!("\"leaf-{i}\"")).collect();
    for i in 0..n {
        text += &format!("[[task]]\nid = \"leaf-{i}\"\n");
    }
    text += &format!("[[task]]\nid = \"sink\"\ndepends_on = [{}]\n", deps.join(", "));
    state(&text)
}

fn fan_out(n: usize) -> RunState {
    let mut text = HEADER.to_string() + "[[task]]\nid = \"root\"\n";
    for i in 0..n {
        text += &format!("[[task]]\nid = \"leaf-{i}\"\ndepends_on = [\"root\"]\n");
    }
    state(&text)
}

/// What a manager does before its first attempt starts: its start (every task
/// settled) and the first dispatch.
fn start_and_dispatch(mut state: RunState) -> usize {
    let ctx = StepContext { now_ms: 1_790_000_000_000, jitter: 0.5 };
    let mut events = step(&mut state, Input::Start { pid: 1, version: "bench".into(), resumed: false }, ctx).unwrap();
    events.extend(dispatch(&mut state, ctx).unwrap());
    events.len()
}

fn readiness(c: &mut Criterion) {
    let n = width();
    let mut group = c.benchmark_group("readiness");
    group.sample_size(10);
    let wide_in = fan_in(n);
    group.bench_function(format!("fan_in_{n}_start_to_first_dispatch"), |b| {
        b.iter_batched(|| wide_in.clone(), start_and_dispatch, BatchSize::LargeInput)
    });
    let wide_out = fan_out(n);
    group.bench_function(format!("fan_out_{n}_start_to_first_dispatch"), |b| {
        b.iter_batched(|| wide_out.clone(), start_and_dispatch, BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, readiness);
criterion_main!(benches);
