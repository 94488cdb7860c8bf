//! Issue 15 items 7 and 15 (`n`/`N`) on the real binary in a pty of the test's own
//! (`common::pty`, 100×30): a running worker's stdout lines and its progress lines
//! reach the task detail as they arrive (progress as a bar, never raw JSON), and the
//! output pane's search finds a line. The worker prints in steps the test releases
//! by creating files, so each screen is checked before the next line exists.

mod common;

use std::path::Path;
use std::time::Duration;

use common::pty::Terminal;
use common::Scratch;

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// `pitboss run` on `workflow` in a 100×30 terminal, its state in `s.run_dir()`.
fn start_tui(s: &Scratch, workflow: &Path) -> Terminal {
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(workflow).env("PITBOSS_CONFIG", s.path().join("config"));
    Terminal::spawn(cmd, 100, 30)
}

/// Quits a run with one running attempt: asks, then exits 130.
fn quit_running(t: &mut Terminal) {
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("Stop 1 running attempt and quit?"));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 130);
}

/// A worker that prints on stdout only, one step per file `gate.N` the test creates:
/// a line, then a progress report, then another line.
fn gated_worker(s: &Scratch) -> std::path::PathBuf {
    let gate = s.path().join("gate");
    let script = format!(
        "cat >/dev/null; g={g}; \
         while [ ! -e $g.1 ]; do sleep 0.02; done; echo 'stdout says hello'; \
         while [ ! -e $g.2 ]; do sleep 0.02; done; echo '{{\"pitboss\":\"progress\",\"pct\":40,\"msg\":\"drafting the plan\"}}'; \
         while [ ! -e $g.3 ]; do sleep 0.02; done; echo 'needle in the output'; echo 'after the needle'; \
         exec sleep 1000",
        g = gate.display()
    );
    let wf = format!("{}[[task]]\nid = \"quiet\"\n", common::sh_pool("p", &script, ""));
    s.write("workflow.toml", &wf)
}

fn open_gate(s: &Scratch, n: u32) {
    std::fs::write(s.path().join(format!("gate.{n}")), "").unwrap();
}

#[test]
fn the_detail_streams_stdout_lines_and_progress_bars_as_they_arrive() {
    let s = Scratch::new();
    let file = gated_worker(&s);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the worker", |sc| sc.contains("Workers (1)"));
    t.send_keys(":inspect quiet");
    t.enter();
    t.wait_for(LIMIT, "the live detail", |sc| sc.contains("Output · following"));
    open_gate(&s, 1);
    t.wait_for(LIMIT, "the stdout line, live", |sc| sc.contains("stdout says hello"));
    open_gate(&s, 2);
    let screen = t.wait_for(LIMIT, "the progress line as a bar", |sc| sc.contains("40% drafting the plan"));
    assert!(screen.contains('█'), "no bar:\n{screen}");
    assert!(!screen.contains("\"pitboss\""), "raw progress JSON on screen:\n{screen}");
    open_gate(&s, 3);
    t.wait_for(LIMIT, "the lines after it", |sc| sc.contains("after the needle"));
    quit_running(&mut t);
}
