//! The real binary in a real terminal: each test runs `pitboss run` inside its own
//! tmux server (a private socket, killed at the end), sends keys as an operator
//! would, and checks both the screen and what happened (processes, the event log).
//! tmux is required; without it these tests fail with a message saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{alive, read_events, wait_for, Scratch};

/// A tmux server of our own with one 120×40 window running a command.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(scratch: &Scratch, command: &str) -> Tmux {
        let available = Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
        assert!(available, "tmux is required for the end-to-end TUI tests (apt install tmux)");
        let socket =
            format!("pitboss-test-{}-{}", std::process::id(), scratch.path().file_name().unwrap().to_string_lossy());
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", command])
            .env("PITBOSS_HOME", scratch.path().join("home"))
            .env("PITBOSS_CONFIG", scratch.path().join("config"))
            .env_remove("TMUX")
            .status()
            .expect("start tmux");
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p"]).output().expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys (tmux key names: "Enter", "Escape", "Left", or literal text).
    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = Command::new("tmux").args(["-L", &self.socket, "send-keys", key]).status().expect("send-keys");
            assert!(status.success());
        }
    }

    fn text(&self, text: &str) {
        let status = Command::new("tmux").args(["-L", &self.socket, "send-keys", "-l", text]).status().unwrap();
        assert!(status.success());
    }

    fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = wait_for(Duration::from_secs(20), || {
            last = self.screen();
            cond(&last)
        });
        assert!(ok, "timed out waiting for {what}; screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

/// `pitboss run` in the TUI; the exit code lands in `exit` when it ends.
fn tui_command(s: &Scratch, workflow: &Path) -> String {
    format!(
        "{} run --state-dir {} {}; echo $? > {}; sleep 600",
        env!("CARGO_BIN_EXE_pitboss"),
        s.run_dir().display(),
        workflow.display(),
        s.path().join("exit").display()
    )
}

fn exit_code(s: &Scratch) -> Option<i32> {
    std::fs::read_to_string(s.path().join("exit")).ok().and_then(|t| t.trim().parse().ok())
}

fn wait_exit(s: &Scratch) -> i32 {
    assert!(wait_for(Duration::from_secs(20), || exit_code(s).is_some()), "pitboss did not exit");
    exit_code(s).unwrap()
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
    let tmux = Tmux::start(&s, &tui_command(&s, &file));
    tmux.wait_screen("the worker pane", |sc| sc.contains("Workers (1)") && sc.contains("hang"));
    assert!(wait_for(Duration::from_secs(10), || pid_file(&s).exists()));
    let pid: i32 = std::fs::read_to_string(pid_file(&s)).unwrap().trim().parse().unwrap();
    assert!(alive(pid));

    tmux.keys(&[":"]);
    tmux.text("cancel hang");
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the confirmation", |sc| sc.contains("Cancel hang and end its process group?"));
    tmux.keys(&["y"]);
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "the worker survived its cancel");
    tmux.wait_screen("the run to finish", |sc| sc.contains("finished") && sc.contains("1 cancelled"));
    let events = read_events(&s.run_dir());
    let cancel = events.iter().find(|e| e["type"] == "task_cancelled").expect("task_cancelled recorded");
    assert_eq!(cancel["task"], "hang");
    assert_eq!(cancel["reason"], "operator (tui)");
    assert!(events.iter().any(|e| e["type"] == "task_skipped" && e["task"] == "after"));

    // Finished: q leaves at once; exit code 1 (a task was cancelled).
    tmux.keys(&["q"]);
    assert_eq!(wait_exit(&s), 1);
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
    let tmux = Tmux::start(&s, &tui_command(&s, &file));
    tmux.wait_screen("the dead letter", |sc| sc.contains("1 dead") && sc.contains("finished"));
    // Edit the payload in the palette: `e` opens it with the current JSON.
    tmux.keys(&["3", "e"]);
    tmux.wait_screen("the payload in the palette", |sc| sc.contains(":payload flaky {}"));
    tmux.keys(&["BSpace"]);
    tmux.text("\"fixed\":true}");
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the edit acknowledged", |sc| sc.contains("payload edited"));

    tmux.keys(&["3"]);
    tmux.wait_screen("the dead letters view", |sc| sc.contains("Dead letters by cause"));
    tmux.keys(&["R"]);
    tmux.wait_screen("the replay preview", |sc| sc.contains("2 tasks in all"));
    tmux.keys(&["y"]);
    tmux.keys(&["2"]);
    tmux.wait_screen("both tasks completed", |sc| sc.contains("2 done") && sc.contains("finished"));
    let events = read_events(&s.run_dir());
    let edited =
        events.iter().position(|e| e["type"] == "payload_edited" && e["task"] == "flaky").expect("edit recorded");
    assert_eq!(events[edited]["payload"], serde_json::json!({"fixed": true}));
    let requeued = events.iter().position(|e| e["type"] == "task_requeued" && e["task"] == "flaky").unwrap();
    assert!(edited < requeued);
    assert!(events.iter().any(|e| e["type"] == "task_revived" && e["task"] == "next"));
    tmux.keys(&["q"]);
    assert_eq!(wait_exit(&s), 0);
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
    let tmux = Tmux::start(&s, &tui_command(&s, &file));
    tmux.wait_screen("the run to finish", |sc| sc.contains("1 done") && sc.contains("finished"));
    tmux.keys(&[":"]);
    tmux.text("inspect wobbly");
    tmux.keys(&["Enter"]);
    // Conditions, not single captures: a capture can land in the middle of a redraw.
    tmux.wait_screen("the detail with its history", |sc| {
        sc.contains("wobbly completed") && sc.contains("History") && sc.contains("attempt 1 failed")
    });
    // Back to just after the first failure: the task was waiting to retry then.
    tmux.keys(&["Left", "Left", "Left"]);
    tmux.wait_screen("the task as it was after its first failure", |sc| {
        sc.contains("as of step") && sc.contains("wobbly retry_wait") && sc.contains("first-try-broke")
    });
    tmux.keys(&["Escape", "q"]);
    assert_eq!(wait_exit(&s), 0);
}

#[test]
fn quitting_with_work_running_asks_and_leaves_a_resumable_run() {
    let s = Scratch::new();
    let script = format!("cat >/dev/null; echo $$ > {}; exec sleep 1000", pid_file(&s).display());
    let wf = format!("{}[[task]]\nid = \"long\"\n", common::sh_pool("p", &script, ""));
    let file = s.write("workflow.toml", &wf);
    let tmux = Tmux::start(&s, &tui_command(&s, &file));
    tmux.wait_screen("the worker", |sc| sc.contains("Workers (1)"));
    assert!(wait_for(Duration::from_secs(10), || pid_file(&s).exists()));
    let pid: i32 = std::fs::read_to_string(pid_file(&s)).unwrap().trim().parse().unwrap();
    tmux.keys(&["q"]);
    tmux.wait_screen("the question", |sc| sc.contains("Stop 1 running attempt and quit?"));
    tmux.keys(&["n"]);
    assert!(alive(pid), "No must keep the run going");
    tmux.keys(&["q"]);
    tmux.wait_screen("the question again", |sc| sc.contains("Stop 1 running attempt and quit?"));
    tmux.keys(&["y"]);
    assert_eq!(wait_exit(&s), 130);
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "the worker outlived the quit");
    let events = read_events(&s.run_dir());
    assert!(events.iter().any(|e| e["type"] == "run_interrupted" && e["reason"] == "operator quit"));
    // The terminal is back to normal: the shell's output is visible.
    tmux.wait_screen("the shell's output", |sc| sc.contains("continue it with: pitboss resume"));
}
