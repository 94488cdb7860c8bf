//! A worker printing 200 MB must not grow the manager's memory past the capture cap.
//! This file holds one test so that the RUSAGE_CHILDREN high-water mark measures only
//! this test's processes.

mod common;

use common::{sh_pool, task, Scratch};

#[test]
fn a_200_mb_flood_stays_within_the_capture_cap() {
    let s = Scratch::new();
    let script =
        "cat >/dev/null; yes 'flooding the manager with output' | head -c 200000000; echo; echo '{\"done\":true}'";
    let wf = format!("[defaults]\ntimeout = \"2m\"\n{}[[task]]\nid = \"flood\"\n", sh_pool("p", script, ""));
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "flood")["result"]["done"], true, "the result after the flood is still read");

    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    let peak_mb = usage.ru_maxrss / 1024; // ru_maxrss is in KiB on Linux
                                          // Tails of 1 MiB + 64 KiB (twice that at most before trimming) over a baseline of
                                          // a few MiB: 64 MiB would mean output is being accumulated.
    assert!(peak_mb < 64, "manager peaked at {peak_mb} MiB while capturing 200 MB");

    let file = s.run_dir().join("output/flood.1.stdout");
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= (16 << 20) + 200, "capture file is {size} bytes");
    let text = std::fs::read(&file).unwrap();
    assert!(String::from_utf8_lossy(&text[text.len() - 200..]).contains("more bytes dropped"));
}
