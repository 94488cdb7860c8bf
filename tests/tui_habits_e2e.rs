//! Issue 15 items 15 and 19 on the real binary in a 100×30 pty (`common::pty`): the
//! tasks table sorted by duration and reversed, Ctrl-D moving half a page, the `n/N`
//! position in the title, and a mouse click (SGR sequences, as terminals send them)
//! selecting a dead letter. Screens are only checked by waiting for a condition.

mod common;

use std::time::Duration;

use common::pty::Terminal;
use common::Scratch;

const LIMIT: Duration = Duration::from_secs(20);

/// The screen line right under the one containing `marker`.
fn line_after(screen: &str, marker: &str) -> Option<String> {
    let mut lines = screen.lines();
    lines.by_ref().find(|l| l.contains(marker))?;
    lines.next().map(str::to_string)
}

/// The last table row on the screen: the line above the table's bottom border.
fn last_row(screen: &str) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let bottom = lines.iter().rposition(|l| l.starts_with('└'))?;
    lines.get(bottom.checked_sub(1)?).map(|l| l.to_string())
}

#[test]
fn sort_by_duration_reversed_half_pages_positions_and_a_click_on_a_dead_letter() {
    let s = Scratch::new();
    // 30 quick tasks, one slow one, and two that fail for good with different causes.
    let script = "cat >/dev/null; case $PITBOSS_TASK_ID in \
        slow) sleep 0.6; echo '{}';; \
        x1) echo disk full >&2; exit 4;; \
        x2) echo no route >&2; exit 5;; \
        *) echo '{}';; esac";
    let mut wf = format!("[defaults]\nretry = {{ max_attempts = 1 }}\n{}", common::sh_pool("p", script, ""));
    for n in 0..30 {
        wf += &format!("[[task]]\nid = \"q{n:02}\"\n");
    }
    wf += "[[task]]\nid = \"slow\"\n[[task]]\nid = \"x1\"\n[[task]]\nid = \"x2\"\n";
    let file = s.write("workflow.toml", &wf);
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(&file).env("PITBOSS_CONFIG", s.path().join("config"));
    let mut t = Terminal::spawn(cmd, 100, 30);
    t.wait_for(LIMIT, "the run finished with two dead letters", |sc| sc.contains("2 dead") && sc.contains("finished"));

    // Tasks by duration: longest first, the column marked.
    t.send_keys("2");
    t.wait_for(LIMIT, "the tasks table", |sc| sc.contains("Tasks 1/33 "));
    t.send_keys("sssss");
    let screen = t.wait_for(LIMIT, "sorted by duration", |sc| sc.contains("sort: duration ▼") && sc.contains("TIME▼"));
    let first = line_after(&screen, "TIME▼").unwrap_or_default();
    assert!(first.contains("slow"), "the longest attempt is not first: {first}\n{screen}");
    // Reversed: shortest first, so the slow task is the last row.
    t.send_keys("S");
    t.wait_for(LIMIT, "reversed", |sc| sc.contains("sort: duration ▲") && sc.contains("TIME▲"));
    t.send_keys("G");
    let screen = t.wait_for(LIMIT, "the last row", |sc| sc.contains("Tasks 33/33 "));
    let last = last_row(&screen).unwrap_or_default();
    assert!(last.contains("slow"), "the longest attempt is not last reversed: {last}\n{screen}");

    // Ctrl-D: half of the 24 rows shown.
    t.send_keys("g");
    t.wait_for(LIMIT, "the first row", |sc| sc.contains("Tasks 1/33 "));
    t.send(b"\x04");
    t.wait_for(LIMIT, "half a page down", |sc| sc.contains("Tasks 13/33 "));
    t.send(b"\x15");
    t.wait_for(LIMIT, "half a page up", |sc| sc.contains("Tasks 1/33 "));

    // A click on the second dead-letter group (screen row 5, 1-based) selects it.
    t.send_keys("3");
    let screen = t.wait_for(LIMIT, "the dead letters", |sc| sc.contains("Dead letters by cause 1/2 "));
    let second = screen.lines().nth(4).unwrap_or_default().to_string();
    let id = if second.contains("x1") { "x1" } else { "x2" };
    assert!(second.contains(id), "no dead letter on the second row: {second}\n{screen}");
    t.send_keys("\x1b[<0;10;5M\x1b[<0;10;5m");
    t.wait_for(LIMIT, "the clicked group selected", |sc| sc.contains("Dead letters by cause 2/2 "));
    t.enter();
    t.wait_for(LIMIT, "the clicked group's member", |sc| {
        sc.contains("Dead letters · 1/1 with cause") && sc.lines().any(|l| l.starts_with(&format!("│{id} ")))
    });
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 1);
}
