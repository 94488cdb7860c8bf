//! Issue 15 item 9: folders and state dirs that are wrong are said plainly (the path,
//! what is wrong, what to do), exit 2, and leave everything as it was: nothing
//! created, no permission changed.
//!
//! Modes mean nothing to root, which these tests usually run as in CI containers: then
//! the binary runs as `nobody` on a scratch folder `nobody` owns, so the modes apply.
//! When that cannot work the test says why on stderr and skips.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::pty::Terminal;
use common::*;

const NOBODY: u32 = 65534;

const WORKFLOW: &str = "[run]\nname = \"t\"\n[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo '{}'\"]\n[[task]]\nid = \"a\"\n";

/// Who the binary runs as: this user, or `nobody` when this user is root.
struct User {
    drop_to: Option<u32>,
}

impl User {
    /// A user whom modes apply to, or `None` (said on stderr) when there is none.
    fn unprivileged(s: &Scratch, test: &str) -> Option<User> {
        if !nix::unistd::geteuid().is_root() {
            return Some(User { drop_to: None });
        }
        let user = User { drop_to: Some(NOBODY) };
        user.own(s.path());
        let probe = user.pitboss(s).arg("--version").output();
        if probe.is_ok_and(|o| o.status.success()) {
            eprintln!("{test}: running as root, which ignores modes: the binary runs as uid {NOBODY} (nobody)");
            Some(user)
        } else {
            eprintln!("SKIPPED {test}: running as root, which ignores modes, and the binary cannot run as uid {NOBODY} (nobody)");
            None
        }
    }

    fn pitboss(&self, s: &Scratch) -> Command {
        let mut cmd = s.pitboss();
        if let Some(id) = self.drop_to {
            cmd.uid(id).gid(id);
        }
        cmd
    }

    /// Gives `path` to the user the binary runs as.
    fn own(&self, path: &Path) {
        if let Some(id) = self.drop_to {
            std::os::unix::fs::chown(path, Some(id), Some(id)).expect("chown to nobody");
        }
    }

    /// A finished run in `s.run_dir()`, owned by this user.
    fn finished_run(&self, s: &Scratch) {
        let file = s.write("workflow.toml", WORKFLOW);
        self.own(&file);
        let out =
            self.pitboss(s).args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file).output_within("run");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Exit 2 with a message naming `path` and `what`, and no raw OS error.
#[track_caller]
fn refused(out: &Output, path: &Path, what: &str) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains(&path.display().to_string()), "the message does not name {}: {said}", path.display());
    assert!(said.contains(what), "the message does not say {what:?}: {said}");
    assert!(!said.contains("os error"), "a raw OS error: {said}");
}

#[test]
fn resume_of_an_unreadable_folder_says_permission_denied_not_no_log() {
    let s = Scratch::new();
    let Some(user) = User::unprivileged(&s, "resume_of_an_unreadable_folder") else { return };
    user.finished_run(&s);
    let dir = s.run_dir();
    set_mode(&dir, 0o000);
    let out = user.pitboss(&s).args(["resume", "--headless"]).arg(&dir).output_within("resume");
    let mode_after = mode(&dir);
    set_mode(&dir, 0o700);
    refused(&out, &dir, "permission denied");
    assert!(!text(&out).contains("no event log"), "{}", text(&out));
    assert!(text(&out).contains("chmod u+rwx"), "says what to do: {}", text(&out));
    assert_eq!(mode_after, 0o000, "the folder's mode was changed");
}

#[test]
fn a_read_only_run_folder_is_refused_and_not_chmodded() {
    let s = Scratch::new();
    let Some(user) = User::unprivileged(&s, "a_read_only_run_folder") else { return };
    // A new run into an existing 0555 folder.
    let ro = s.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    user.own(&ro);
    set_mode(&ro, 0o555);
    let file = s.write("workflow.toml", WORKFLOW);
    let out = user.pitboss(&s).args(["run", "--headless", "--state-dir"]).arg(&ro).arg(&file).output_within("run");
    refused(&out, &ro, "permission denied");
    assert_eq!(mode(&ro), 0o555, "the folder was chmod-ed");
    // A run folder below it: nothing is made on the way.
    let deeper = ro.join("sub").join("run");
    let out = user.pitboss(&s).args(["run", "--headless", "--state-dir"]).arg(&deeper).arg(&file).output_within("run");
    refused(&out, &ro, "permission denied");
    assert_eq!(std::fs::read_dir(&ro).expect("list").count(), 0, "something was created in {}", ro.display());

    // Resume of a run folder made read-only after the run.
    user.finished_run(&s);
    let dir = s.run_dir();
    let log = std::fs::read(dir.join("events.jsonl")).expect("log");
    set_mode(&dir, 0o555);
    let out = user.pitboss(&s).args(["resume", "--headless"]).arg(&dir).output_within("resume");
    let mode_after = mode(&dir);
    set_mode(&dir, 0o700);
    refused(&out, &dir, "permission denied");
    assert_eq!(mode_after, 0o555, "the run folder was chmod-ed");
    assert_eq!(std::fs::read(dir.join("events.jsonl")).expect("log"), log, "the log changed");
}

#[test]
fn a_state_dir_that_is_a_file_is_said_plainly_and_left_alone() {
    let s = Scratch::new();
    let file = s.write("workflow.toml", WORKFLOW);
    let taken = s.write("taken", "not a folder");
    for state_dir in [taken.clone(), taken.join("run")] {
        let out =
            s.pitboss().args(["run", "--headless", "--state-dir"]).arg(&state_dir).arg(&file).output_within("run");
        refused(&out, &taken, "is a file");
        assert_eq!(std::fs::read_to_string(&taken).expect("read"), "not a folder");
    }
    let out = s.pitboss().args(["resume", "--headless"]).arg(&taken).output_within("resume");
    refused(&out, &taken, "is a file");
}

#[test]
fn a_pitboss_home_that_is_a_file_or_read_only_is_said_plainly() {
    let s = Scratch::new();
    let file = s.write("workflow.toml", WORKFLOW);
    let home = s.write("home-file", "x");
    let out = s.pitboss().env("PITBOSS_HOME", &home).args(["run", "--headless"]).arg(&file).output_within("run");
    refused(&out, &home, "is a file");
    assert_eq!(std::fs::read_to_string(&home).expect("read"), "x");
    let Some(user) = User::unprivileged(&s, "a_pitboss_home_that_is_read_only") else { return };
    let home = s.path().join("ro-home");
    std::fs::create_dir(&home).expect("mkdir");
    user.own(&home);
    set_mode(&home, 0o555);
    let out = user.pitboss(&s).env("PITBOSS_HOME", &home).args(["run", "--headless"]).arg(&file).output_within("run");
    refused(&out, &home, "permission denied");
    assert_eq!(mode(&home), 0o555);
    assert_eq!(std::fs::read_dir(&home).expect("list").count(), 0, "something was created in {}", home.display());
}

#[test]
fn a_bad_keys_toml_leaves_no_run_folder_behind() {
    let s = Scratch::new();
    let config = s.path().join("config");
    std::fs::create_dir(&config).expect("mkdir");
    std::fs::write(config.join("keys.toml"), "quit = = =\n").expect("write keys");
    let file = s.write("workflow.toml", WORKFLOW);
    // The TUI reads keys.toml: it needs a terminal.
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(&file).env("PITBOSS_CONFIG", &config);
    let term = Terminal::spawn(cmd, 100, 30);
    let code = term.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 2, "{}", term.screen());
    assert!(term.screen().contains("keys.toml"), "{}", term.screen());
    assert!(!s.run_dir().exists(), "a stub run folder was left behind");
    // Without --state-dir: no folder under the home's runs either.
    let mut cmd = s.pitboss();
    cmd.arg("run").arg(&file).env("PITBOSS_CONFIG", &config);
    let term = Terminal::spawn(cmd, 100, 30);
    assert_eq!(term.wait_exit(Duration::from_secs(20)), 2, "{}", term.screen());
    let runs = s.path().join("home").join("runs");
    let left = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a stub run folder was left in {}", runs.display());
}
