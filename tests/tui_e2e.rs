//! The real binary in a real terminal: each test runs `pitboss run` in a pseudo-terminal
//! of its own (`common::pty`), sends keys as an operator would, and checks both the
//! screen and what happened (processes, the event log). Screens are only ever checked
//! by waiting for a condition: a single capture can land in the middle of a redraw.
//! Nothing outside cargo is needed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pty::{key, Terminal};
use common::{alive, read_events, wait_for, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// `pitboss run` on `workflow` in a 120×40 terminal, its state in `s.run_dir()`.
fn start_tui(s: &Scratch, workflow: &Path) -> Terminal {
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(workflow).env("PITBOSS_CONFIG", s.path().join("config"));
    Terminal::spawn(cmd, 120, 40)
}

fn pid_file(s: &Scratch) -> PathBuf {
    s.path().join("pid")
}

#[test]
fn cancelling_a_running_task_ends_its_process_group_and_records_it() {
    let s = Scratch::new();
    let script = format!("cat >/dev/null; echo $$ > {}; exec sleep 1000", pid_file(&s).display());
    let wf = format!(
        "{}[[task]]\nid = \"hang\"\n[[task]]\nid = \"after\"\ndepends_on = [\"hang\"]\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the worker pane", |sc| sc.contains("Workers (1)") && sc.contains("hang"));
    assert!(wait_for(Duration::from_secs(10), || pid_file(&s).exists()));
    let pid: i32 = std::fs::read_to_string(pid_file(&s)).unwrap().trim().parse().unwrap();
    assert!(alive(pid));

    t.send_keys(":cancel hang");
    t.enter();
    t.wait_for(LIMIT, "the confirmation", |sc| sc.contains("Cancel hang and end its process group?"));
    t.send_keys("y");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "the worker survived its cancel");
    t.wait_for(LIMIT, "the run to finish", |sc| sc.contains("finished") && sc.contains("1 cancelled"));
    let events = read_events(&s.run_dir());
    let cancel = events.iter().find(|e| e["type"] == "task_cancelled").expect("task_cancelled recorded");
    assert_eq!(cancel["task"], "hang");
    assert_eq!(cancel["reason"], "operator (tui)");
    assert!(events.iter().any(|e| e["type"] == "task_skipped" && e["task"] == "after"));

    // Finished: q leaves at once; exit code 1 (a task was cancelled).
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 1);
}

#[test]
fn replaying_a_dead_letter_with_an_edited_payload_completes_it_and_its_dependent() {
    let s = Scratch::new();
    // The agent succeeds only when its payload says so.
    let script = "if grep -q '\"fixed\":true'; then echo '{\"ok\":1}'; else echo broken >&2; exit 4; fi".to_string();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"flaky\"\n[[task]]\nid = \"next\"\ndepends_on = [\"flaky\"]\npayload = {{ fixed = true }}\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the dead letter", |sc| sc.contains("1 dead") && sc.contains("finished"));
    // Edit the payload in the palette: `e` opens it with the current JSON.
    t.send_keys("3e");
    t.wait_for(LIMIT, "the payload in the palette", |sc| sc.contains(":payload flaky {}"));
    t.send_keys(key::BACKSPACE);
    t.send_keys("\"fixed\":true}");
    t.enter();
    t.wait_for(LIMIT, "the edit acknowledged", |sc| sc.contains("payload edited"));

    t.send_keys("3");
    t.wait_for(LIMIT, "the dead letters view", |sc| sc.contains("Dead letters by cause"));
    t.send_keys("R");
    t.wait_for(LIMIT, "the replay preview", |sc| sc.contains("2 tasks in all"));
    t.send_keys("y");
    t.send_keys("2");
    t.wait_for(LIMIT, "both tasks completed", |sc| sc.contains("2 done") && sc.contains("finished"));
    let events = read_events(&s.run_dir());
    let edited =
        events.iter().position(|e| e["type"] == "payload_edited" && e["task"] == "flaky").expect("edit recorded");
    assert_eq!(events[edited]["payload"], serde_json::json!({"fixed": true}));
    let requeued = events.iter().position(|e| e["type"] == "task_requeued" && e["task"] == "flaky").unwrap();
    assert!(edited < requeued);
    assert!(events.iter().any(|e| e["type"] == "task_revived" && e["task"] == "next"));
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
}

#[test]
fn stepping_through_a_task_history_shows_it_as_it_was() {
    let s = Scratch::new();
    let d = s.path().display();
    // Fails on its first attempt, succeeds on the second.
    let script = format!(
        "cat >/dev/null; if [ \"$PITBOSS_ATTEMPT\" = 1 ]; then echo first-try-broke >&2; exit 3; fi; echo '{{\"fine\":true}}' # {d}"
    );
    let wf = format!(
        "[defaults]\nretry = {{ initial = \"10ms\" }}\n{}[[task]]\nid = \"wobbly\"\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the run to finish", |sc| sc.contains("1 done") && sc.contains("finished"));
    // The TUI takes its size from the terminal and follows it (SIGWINCH).
    t.resize(160, 45);
    t.wait_for(LIMIT, "a redraw 160 columns wide", |sc| sc.lines().any(|l| l.chars().count() > 120));
    t.send_keys(":inspect wobbly");
    t.enter();
    // Conditions, not single captures: a capture can land in the middle of a redraw.
    t.wait_for(LIMIT, "the detail with its history", |sc| {
        sc.contains("wobbly completed") && sc.contains("History") && sc.contains("attempt 1 failed")
    });
    // Back to just after the first failure: the task was waiting to retry then.
    t.send_keys(&key::LEFT.repeat(3));
    t.wait_for(LIMIT, "the task as it was after its first failure", |sc| {
        sc.contains("as of step") && sc.contains("wobbly retry_wait") && sc.contains("first-try-broke")
    });
    // Esc alone, and its effect seen, before q: ESC and q read together are Alt+q.
    t.esc();
    t.wait_for(LIMIT, "the dashboard again", |sc| sc.contains("Workers (") && !sc.contains("History"));
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
}

/// A finished run resumed in the TUI opens from its snapshot, holding no record: the
/// task's history is read from the log on disk, and a step's task (folded from a
/// time-travel checkpoint) once the owner loop has indexed the log.
#[test]
fn a_resumed_run_steps_through_a_history_read_from_disk() {
    let s = Scratch::new();
    let d = s.path().display();
    let script = format!(
        "cat >/dev/null; if [ \"$PITBOSS_ATTEMPT\" = 1 ]; then echo first-try-broke >&2; exit 3; fi; echo '{{\"fine\":true}}' # {d}"
    );
    let wf = format!(
        "[defaults]\nretry = {{ initial = \"10ms\" }}\n{}[[task]]\nid = \"wobbly\"\n",
        common::sh_pool("p", &script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let headless = s.pitboss().args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file).output().unwrap();
    assert!(headless.status.success(), "{}", String::from_utf8_lossy(&headless.stderr));
    assert!(
        std::fs::read_dir(s.run_dir()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("snapshot-")),
        "a clean stop leaves a snapshot"
    );
    let mut cmd = s.pitboss();
    cmd.arg("resume").arg(s.run_dir()).env("PITBOSS_CONFIG", s.path().join("config"));
    let mut t = Terminal::spawn(cmd, 160, 45);
    t.wait_for(LIMIT, "the finished run", |sc| sc.contains("1 done"));
    t.send_keys(":inspect wobbly");
    t.enter();
    t.wait_for(LIMIT, "the detail with its history from disk", |sc| {
        sc.contains("wobbly completed") && sc.contains("History") && sc.contains("attempt 1 failed")
    });
    t.send_keys(&key::LEFT.repeat(3));
    t.wait_for(LIMIT, "the task as it was after its first failure", |sc| {
        sc.contains("as of step") && sc.contains("wobbly retry_wait") && sc.contains("first-try-broke")
    });
    t.esc();
    t.wait_for(LIMIT, "the dashboard again", |sc| sc.contains("Workers (") && !sc.contains("History"));
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
}

#[test]
fn quitting_with_work_running_asks_and_leaves_a_resumable_run() {
    let s = Scratch::new();
    let script = format!("cat >/dev/null; echo $$ > {}; exec sleep 1000", pid_file(&s).display());
    let wf = format!("{}[[task]]\nid = \"long\"\n", common::sh_pool("p", &script, ""));
    let file = s.write("workflow.toml", &wf);
    let mut t = start_tui(&s, &file);
    t.wait_for(LIMIT, "the worker", |sc| sc.contains("Workers (1)"));
    assert!(wait_for(Duration::from_secs(10), || pid_file(&s).exists()));
    let pid: i32 = std::fs::read_to_string(pid_file(&s)).unwrap().trim().parse().unwrap();
    t.send_keys("q");
    t.wait_for(LIMIT, "the question", |sc| sc.contains("Stop 1 running attempt and quit?"));
    t.send_keys("n");
    t.wait_for(LIMIT, "the question gone", |sc| !sc.contains("running attempt and quit?"));
    assert!(alive(pid), "No must keep the run going");
    t.send_keys("q");
    t.wait_for(LIMIT, "the question again", |sc| sc.contains("Stop 1 running attempt and quit?"));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 130);
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "the worker outlived the quit");
    let events = read_events(&s.run_dir());
    assert!(events.iter().any(|e| e["type"] == "run_interrupted" && e["reason"] == "operator quit"));
    // The terminal is back to normal: what pitboss printed on leaving is on the main screen.
    t.wait_for(LIMIT, "the resume hint", |sc| sc.contains("continue it with: pitboss resume"));
}
