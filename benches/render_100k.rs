//! Benchmark P3 at 100,000 tasks (issue 14): one dashboard frame and one tasks-table
//! frame of a run with 100,000 tasks and 64 running workers, each with live output,
//! drawn to ratatui's `TestBackend` at 200×60. Goal: ≤ 2 ms per frame.
//!
//!     cargo bench --bench render_100k

use criterion::{criterion_group, criterion_main, Criterion};

mod render_frames;

fn bench(c: &mut Criterion) {
    render_frames::bench(c, 100_000, "100k");
}

criterion_group!(benches, bench);
criterion_main!(benches);
