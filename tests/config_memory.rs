//! Memory of workflow parsing, measured in bytes (not time): a counting global
//! allocator records the peak of live heap bytes while `config::parse` reads a
//! generated workflow of about 1 MB, and `config::tasks_from_toml` a submit of as
//! many tasks to it. What the parse holds beyond what it returns is at most 10× the
//! file (issue 14; sections read one at a time: ~2×). The bound is generous; it catches a return of the
//! second parse of the text (issue 14: a whole TOML tree is ~40 bytes of heap per byte
//! of a file of small tasks, and two trees at once pushed the peak past 100×).
//!
//! This file is its own test binary with one test, so no other thread allocates
//! while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The shape of `benches/memory.sh`'s workflow: persistent pools, small payloads,
/// every tenth task depending on the one before it.
fn workflow(tasks: usize) -> String {
    let mut text = String::from("[run]\nname = \"memory\"\nmax_parallel = 48\n\n[defaults]\ntimeout = \"1m\"\n\n");
    for p in 1..=3 {
        text += &format!(
            "[[pool]]\nname = \"p{p}\"\nmode = \"persistent\"\nconcurrency = 16\nper_worker = 8\ncommand = [\"agent\"]\n\n"
        );
    }
    for i in 1..=tasks {
        text += &format!("[[task]]\nid = \"t{i:06}\"\npayload = {{ n = {i} }}\n");
        if i % 10 == 0 {
            text += &format!("depends_on = [\"t{:06}\"]\n", i - 1);
        }
    }
    text
}

#[test]
fn parsing_a_workflow_holds_a_bounded_multiple_of_its_size() {
    let text = workflow(20_000);
    assert!(text.len() > 900_000, "about 1 MB: {}", text.len());
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let parsed = pitboss::config::parse(&text, "wf.toml", Path::new("/tmp"));
    let peak = PEAK.load(Ordering::Relaxed) - before;
    // What the parse returns (the workflow's tasks and payloads) is the caller's; what
    // it held beyond that at its peak is the parse's own.
    let kept = LIVE.load(Ordering::Relaxed) - before;
    let workflow = parsed.expect("the generated workflow is valid");
    assert_eq!(workflow.tasks.len(), 20_000);
    let size = text.len() as f64;
    let (ratio, working) = (peak as f64 / size, (peak - kept) as f64 / size);
    eprintln!(
        "parse peak: {peak} bytes for {} bytes of TOML ({ratio:.1}×), of which the workflow returned is {kept} \
         and the parse's own {working:.1}× the file",
        text.len()
    );
    assert!(working <= 10.0, "parsing held {working:.1}× the file's size beyond its result ({} bytes)", peak - kept);
    assert!(ratio < 30.0, "parsing held {ratio:.1}× the file's size at its peak ({peak} bytes)");

    // A submit of as many tasks to that run (`pitboss submit`, read in the manager):
    // the same bound, and the run's own tasks are not copied to check the new ones.
    let submit: String =
        (1..=20_000).map(|i| format!("[[task]]\nid = \"s{i:06}\"\npayload = {{ n = {i} }}\n")).collect();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let read = pitboss::config::tasks_from_toml(&submit, "more.toml", &workflow);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let kept = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(read.expect("the submitted tasks are valid").len(), 20_000);
    let working = (peak - kept) as f64 / submit.len() as f64;
    eprintln!("submit peak: {peak} bytes for {} bytes of TOML; the parse's own {working:.1}× the file", submit.len());
    assert!(working <= 10.0, "a submit held {working:.1}× the file's size beyond its result ({} bytes)", peak - kept);
}
