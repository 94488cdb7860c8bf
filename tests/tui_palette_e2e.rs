//! The palette in a real 80×24 terminal (issue 15 item 5): a line longer than the
//! terminal scrolls so what is typed stays in view, and a refused line stays open with
//! its reason, for correction. The real binary in a pty of the test's own
//! (`common::pty`); screens are checked by waiting for a condition.

mod common;

use std::time::Duration;

use common::pty::Terminal;
use common::{read_events, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_long_palette_line_scrolls_at_80_columns_and_a_refused_one_is_kept() {
    let s = Scratch::new();
    let wf = format!("{}[[task]]\nid = \"done\"\n", common::sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", ""));
    let file = s.write("workflow.toml", &wf);
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(&file).env("PITBOSS_CONFIG", s.path().join("config"));
    let mut t = Terminal::spawn(cmd, 80, 24);
    t.wait_for(LIMIT, "the run to finish", |sc| sc.contains("1 done") && sc.contains("finished"));

    // 100+ characters: the end being typed must be on screen.
    let long = format!(r#":payload done {{"prompt": "{}THE-END"}}"#, "lorem ipsum ".repeat(8));
    t.send_keys(&long);
    t.wait_for(LIMIT, "the end of the long line in view", |sc| {
        sc.lines().any(|l| l.starts_with(':') && l.contains("THE-END\"}"))
    });
    // A completed task's payload: refused, the line kept, the reason under it.
    t.enter();
    t.wait_for(LIMIT, "the refusal under the kept line", |sc| {
        sc.lines().any(|l| l.starts_with(':') && l.contains("THE-END\"}")) && sc.contains("done is completed")
    });
    // Ctrl-U clears it for another line.
    t.send(b"\x15");
    t.wait_for(LIMIT, "an empty palette", |sc| sc.lines().any(|l| l.trim_end() == ":"));
    t.send(b"\x1b");
    t.wait_for(LIMIT, "the palette closed", |sc| !sc.lines().any(|l| l.trim_end() == ":"));
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
    assert!(!read_events(&s.run_dir()).iter().any(|e| e["type"] == "payload_edited"), "nothing recorded");
}
