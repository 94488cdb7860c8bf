//! Issue 15 item 16 on the real binary in a 140×40 pty of the test's own
//! (`common::pty`): the dashboard lays the running workers out as a grid of panes
//! and shows the timeline of attempts, and `5` opens the timeline full screen.
//! Screens are only checked by waiting for a condition (a capture can land
//! mid-redraw).

mod common;

use std::time::Duration;

use common::pty::Terminal;
use common::{toml_string, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn the_dashboard_shows_a_grid_of_worker_panes_and_the_timeline() {
    let s = Scratch::new();
    let hang = toml_string("cat >/dev/null; echo working; exec sleep 1000");
    let quick = toml_string("cat >/dev/null; echo done");
    let mut wf = format!(
        "[[pool]]\nname = \"hang\"\ncommand = [\"sh\", \"-c\", {hang}]\nconcurrency = 6\n\
         [[pool]]\nname = \"quick\"\ncommand = [\"sh\", \"-c\", {quick}]\nconcurrency = 2\n"
    );
    for k in 1..=6 {
        wf.push_str(&format!("[[task]]\nid = \"h{k}\"\npool = \"hang\"\n"));
    }
    for k in 1..=3 {
        wf.push_str(&format!("[[task]]\nid = \"q{k}\"\npool = \"quick\"\n"));
    }
    let file = s.write("workflow.toml", &wf);
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(&file).env("PITBOSS_CONFIG", s.path().join("config"));
    let mut t = Terminal::spawn(cmd, 140, 40);

    let panes = |sc: &str| (1..=6).filter(|k| sc.contains(&format!("┌ h{k} #1 hang"))).count();
    let screen = t.wait_for(LIMIT, "a grid of at least 4 panes and the timeline", |sc| {
        sc.contains("Workers (6)") && panes(sc) >= 4 && sc.contains("┌ Timeline") && sc.contains("━")
    });
    // The quick pool's attempts end well: its lane shows them.
    t.wait_for(LIMIT, "the quick pool's attempts on the timeline", |sc| {
        sc.lines().any(|l| l.contains("quick") && l.contains('█'))
    });
    assert!(screen.contains("5: full screen"), "{screen}");

    t.send_keys("5");
    t.wait_for(LIMIT, "the timeline full screen", |sc| {
        sc.contains("┌ Timeline") && sc.contains("1: dashboard") && !sc.contains("┌ Workers")
    });
    t.send_keys("1");
    t.wait_for(LIMIT, "the dashboard again", |sc| panes(sc) >= 4);

    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("Stop 6") && sc.contains("quit?"));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 130);
}
