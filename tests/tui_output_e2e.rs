//! Issue 15 items 7 and 15 (`n`/`N`) on the real binary in a pty of the test's own
//! (`common::pty`, 100×30): a running worker's stdout lines and its progress lines
//! reach the task detail as they arrive (progress as a bar, never raw JSON), and the
//! output pane's search finds a line. The worker prints in steps the test releases
//! by creating files, so each screen is checked before the next line exists.

mod common;
mod ctl_common;

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
/// a line, then a progress report, then a line to find, then 60 more lines.
fn gated_worker(s: &Scratch) -> std::path::PathBuf {
    let gate = s.path().join("gate");
    let script = format!(
        "cat >/dev/null; g={g}; \
         while [ ! -e $g.1 ]; do sleep 0.02; done; echo 'stdout says hello'; \
         while [ ! -e $g.2 ]; do sleep 0.02; done; echo '{{\"pitboss\":\"progress\",\"pct\":40,\"msg\":\"drafting the plan\"}}'; \
         while [ ! -e $g.3 ]; do sleep 0.02; done; echo 'needle in the output'; echo 'after the needle'; \
         while [ ! -e $g.4 ]; do sleep 0.02; done; i=10; while [ $i -lt 70 ]; do echo more-$i; i=$((i+1)); done; \
         exec sleep 1000",
        g = gate.display()
    );
    let wf = format!("{}[[task]]\nid = \"quiet\"\n", common::sh_pool("p", &script, ""));
    s.write("workflow.toml", &wf)
}

/// The output pane title's count of lines below the pane.
fn below(screen: &str) -> Option<u32> {
    let (before, _) = screen.split_once(" below")?;
    before.rsplit(' ').next()?.parse().ok()
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

#[test]
fn a_search_in_the_output_finds_the_line_and_holds_it_while_output_arrives() {
    let s = Scratch::new();
    let file = gated_worker(&s);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the worker", |sc| sc.contains("Workers (1)"));
    t.send_keys(":inspect quiet");
    t.enter();
    t.wait_for(LIMIT, "the live detail", |sc| sc.contains("Output · following") && sc.contains("/  search"));
    for n in 1..=3 {
        open_gate(&s, n);
    }
    t.wait_for(LIMIT, "the lines", |sc| sc.contains("after the needle"));
    t.send_keys("/zzz");
    t.enter();
    t.wait_for(LIMIT, "no match, said plainly", |sc| sc.contains("no match for \"zzz\""));
    t.send_keys("/NEEDLE");
    t.enter();
    // Two lines say needle: Enter shows the newer, N the older.
    let found =
        t.wait_for(LIMIT, "the newest match", |sc| sc.contains("match 2/2 for \"NEEDLE\"") && sc.contains("/NEEDLE"));
    assert!(found.contains("scrolled (f: follow)"), "a match stops following:\n{found}");
    // 60 lines arrive; the pane still shows the matches, not the newest lines.
    open_gate(&s, 4);
    // All 64 lines in: the title counts those below the pane (64 less its 18 rows).
    let arrived = t.wait_for(LIMIT, "the lines below the pane counted", |sc| below(sc) == Some(46));
    assert!(arrived.contains("needle in the output") && !arrived.contains("more-69"), "the pane moved:\n{arrived}");
    t.send_keys("N");
    let held = t.wait_for(LIMIT, "the older match", |sc| sc.contains("match 1/2 for \"NEEDLE\""));
    assert!(held.contains("needle in the output") && !held.contains("more-69"), "the pane moved:\n{held}");
    t.send_keys("N");
    t.wait_for(LIMIT, "round to the newest", |sc| sc.contains("match 2/2 for \"NEEDLE\" (wrapped around)"));
    t.esc();
    t.wait_for(LIMIT, "the search cleared, the detail still up", |sc| {
        sc.contains("search cleared") && !sc.contains("/NEEDLE") && sc.contains("scrolled (f: follow)")
    });
    t.send_keys("G");
    t.wait_for(LIMIT, "following again, the newest lines", |sc| {
        sc.contains("Output · following") && sc.contains("more-69")
    });
    quit_running(&mut t);
}

#[test]
fn an_attached_tui_shows_what_running_workers_printed_before_it_attached_and_since() {
    let scratch = Scratch::new();
    let printed = scratch.path().join("printed");
    let more = scratch.path().join("more");
    // One line and a progress report, then quiet until the test says (after attaching).
    let script = format!(
        "cat >/dev/null; echo looking at $PITBOSS_TASK_ID; echo '{{\"pitboss\":\"progress\",\"pct\":25,\"msg\":\"crawling\"}}'; \
         touch {p}; while [ ! -e {m} ]; do sleep 0.02; done; echo found more; exec sleep 1000",
        p = printed.display(),
        m = more.display()
    );
    let wf = format!(
        "{}\n{}[[task]]\nid = \"crawl\"\npool = \"crawler\"\n",
        ctl_common::POOLS,
        common::sh_pool("crawler", &script, "")
    );
    let mut live = ctl_common::Live::start_in(scratch, None, &wf, &[]);
    assert!(common::wait_for(LIMIT, || printed.exists()), "the worker never printed");
    // `ctl task` has it too, while the attempt runs (no output file yet).
    let said = || live.request(r#"{"cmd":"task crawl"}"#)["data"]["output"]["live"].to_string();
    assert!(common::wait_for(LIMIT, || said().contains("looking at crawl")), "ctl task: {}", said());
    let mut cmd = live.scratch.pitboss();
    cmd.arg("attach").arg(&live.dir).env("PITBOSS_CONFIG", live.scratch.path().join("config"));
    let mut t = Terminal::spawn(cmd, 100, 30);
    t.wait_for(LIMIT, "the worker pane with what it printed before the attach", |sc| {
        sc.contains("Workers (1)") && sc.contains("looking at crawl") && sc.contains("25% crawling")
    });
    t.send_keys(":inspect crawl");
    t.enter();
    t.wait_for(LIMIT, "the detail with the line and the bar", |sc| {
        sc.contains("Output · following") && sc.contains("looking at crawl") && sc.contains("25% crawling")
    });
    std::fs::write(&more, "").unwrap();
    t.wait_for(LIMIT, "what it printed since, live", |sc| sc.contains("found more"));
    t.send_keys("q");
    t.wait_for(LIMIT, "the detach question", |sc| sc.contains("Detach? The run keeps going."));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 0);
    live.stop();
}
