//! Issue 15 bugs 1, 2 and 4 on the real binary in a pty of the test's own
//! (`common::pty`): the selection follows the task in a filtered table while rows
//! above it leave, the dead letters show the filter they act on and Esc clears it,
//! and a scrolled output pane stays put while a worker keeps writing. Screens are
//! only checked by waiting for a condition (a capture can land mid-redraw).

mod common;

use std::path::Path;
use std::time::Duration;

use common::pty::Terminal;
use common::{wait_for, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);
const PAGE_UP: &str = "\x1b[5~";

/// `pitboss run` on `workflow` in a 120×40 terminal, its state in `s.run_dir()`.
fn start_tui(s: &Scratch, workflow: &Path) -> Terminal {
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(workflow).env("PITBOSS_CONFIG", s.path().join("config"));
    Terminal::spawn(cmd, 120, 40)
}

/// Quits a run with `running` attempts still going: asks, then exits 130.
fn quit_running(t: &mut Terminal, running: &str) {
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains(&format!("Stop {running} and quit?")));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 130);
}

#[test]
fn in_a_filtered_table_cancel_acts_on_the_selected_task_after_a_row_above_left() {
    let s = Scratch::new();
    let go = s.path().join("go");
    // a1 ends when the test says so; the others run until cancelled.
    let script = format!(
        "cat >/dev/null; if [ \"$PITBOSS_TASK_ID\" = a1 ]; then while [ ! -e {} ]; do sleep 0.02; done; echo '{{}}'; exit 0; fi; exec sleep 1000",
        go.display()
    );
    let wf = format!(
        "{}[[task]]\nid = \"a1\"\n[[task]]\nid = \"a2\"\n[[task]]\nid = \"a3\"\n[[task]]\nid = \"a4\"\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "four workers", |sc| sc.contains("Workers (4)"));
    t.send_keys("2/state:running");
    t.enter();
    t.wait_for(LIMIT, "the filtered table", |sc| sc.contains("Tasks 1/4 of 4") && sc.contains("filter: state:running"));
    t.send_keys("jj"); // a3
    std::fs::write(&go, "").unwrap();
    t.wait_for(LIMIT, "a1 gone from the filtered table", |sc| sc.contains("Tasks 2/3 of 4"));
    t.send_keys("c");
    t.wait_for(LIMIT, "the cancel question for a3, not its new neighbour", |sc| {
        sc.contains("Cancel a3 and end its process group?")
    });
    t.send_keys("n");
    t.wait_for(LIMIT, "the answer said", |sc| sc.contains("nothing done"));
    quit_running(&mut t, "3 running attempts");
}

#[test]
fn the_dead_letters_show_the_filter_replay_all_uses_and_esc_clears_it() {
    let s = Scratch::new();
    let script =
        "cat >/dev/null; case $PITBOSS_TASK_ID in x*) echo disk full >&2; exit 4;; *) echo no route >&2; exit 5;; esac";
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"x1\"\n[[task]]\nid = \"x2\"\n[[task]]\nid = \"y1\"\n",
        common::sh_pool("p", script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "three dead letters", |sc| sc.contains("3 dead") && sc.contains("finished"));
    // "disk" matches the error text of x1 and x2 only.
    t.send_keys("3/disk");
    t.enter();
    t.wait_for(LIMIT, "the dead letters filtered, the filter in the title", |sc| {
        sc.contains("Dead letters by cause 1/1 of 2 · filter: disk") && sc.contains("x1, x2") && !sc.contains("y1")
    });
    t.send_keys("A");
    t.wait_for(LIMIT, "replay all of what is shown", |sc| {
        sc.contains("Replay dead letters matching \"disk\"?") && sc.contains("2 tasks in all")
    });
    t.send_keys("n");
    t.wait_for(LIMIT, "the answer said", |sc| sc.contains("nothing done"));
    t.esc();
    t.wait_for(LIMIT, "the filter cleared", |sc| {
        sc.contains("filter cleared") && sc.contains("y1") && !sc.contains("filter: disk")
    });
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 1);
}

/// The highest `line-NNNN` on the screen (the output pane is the only place with them).
fn last_line(screen: &str) -> Option<u32> {
    screen.split("line-").skip(1).filter_map(|rest| rest.get(..4)?.parse().ok()).max()
}

#[test]
fn a_scrolled_output_pane_stays_put_while_lines_arrive_until_g_follows_again() {
    let s = Scratch::new();
    let count = s.path().join("count");
    // A line on stderr (which streams live) every 20 ms, and how many so far in a file.
    let script = format!(
        "cat >/dev/null; i=0; while true; do printf 'line-%04d\\n' $i >&2; echo $i > {c}.tmp; mv {c}.tmp {c}; i=$((i+1)); sleep 0.02; done",
        c = count.display()
    );
    let wf = format!("{}[[task]]\nid = \"chatty\"\n", common::sh_pool("p", &script, ""));
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the worker", |sc| sc.contains("Workers (1)"));
    t.send_keys(":inspect chatty");
    t.enter();
    t.wait_for(LIMIT, "the live output", |sc| sc.contains("Output · following") && last_line(sc) > Some(40));
    // One key, so the screen that shows its effect is final.
    t.send_keys(PAGE_UP);
    let scrolled = t.wait_for(LIMIT, "the pane scrolled", |sc| sc.contains("scrolled (f: follow)"));
    let shown = last_line(&scrolled).expect("output lines on screen");
    let written = |at_least: u32| {
        wait_for(LIMIT, || {
            std::fs::read_to_string(&count).ok().and_then(|n| n.trim().parse::<u32>().ok()) >= Some(at_least)
        })
    };
    // 50 more lines written (a second at 20 ms each, many frames): still the same lines.
    assert!(written(shown + 60), "the worker stopped writing");
    let now = t.screen();
    assert!(now.contains("scrolled (f: follow)"), "{now}");
    assert_eq!(last_line(&now), Some(shown), "the scrolled pane moved while lines arrived:\n{now}");
    t.send_keys("G");
    t.wait_for(LIMIT, "following again, the newest lines", |sc| {
        sc.contains("Output · following") && last_line(sc) >= Some(shown + 60)
    });
    t.esc();
    t.wait_for(LIMIT, "the dashboard", |sc| sc.contains("Workers (1)"));
    quit_running(&mut t, "1 running attempt");
}
