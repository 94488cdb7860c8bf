//! Benchmark P3: one dashboard frame (and one tasks-table frame) of a run with 10,000
//! tasks and 64 running workers, each with live output, drawn to ratatui's
//! `TestBackend` at 200×60. Target: ≤ 2 ms per frame.
//!
//!     cargo bench --bench render

use criterion::{criterion_group, criterion_main, Criterion};

mod render_frames;

fn bench(c: &mut Criterion) {
    render_frames::bench(c, 10_000, "10k");
}

criterion_group!(benches, bench);
criterion_main!(benches);
