//! pitboss's own folders and log are private whatever the umask: `PITBOSS_HOME`,
//! `PITBOSS_HOME/logs` and `PITBOSS_HOME/runs` are created 0700 and `pitboss.log`
//! 0600, and a `pitboss.log` that is a symbolic link is refused, never followed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{sh_pool, OutputWithin, Scratch};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// `cmd` with umask 000 in the child: everything it creates without an explicit mode
/// is open to every user.
fn with_open_umask(cmd: &mut Command) -> &mut Command {
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        })
    }
}

#[test]
fn the_home_its_logs_and_runs_are_private_under_umask_000() {
    let s = Scratch::new();
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    wf += "[[task]]\nid = \"a\"\n";
    let file = s.write("workflow.toml", &wf);
    let out = with_open_umask(s.pitboss().args(["run", "--headless"]).arg(&file)).output_within("pitboss run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let home = s.path().join("home");
    assert_eq!(mode(&home), 0o700, "PITBOSS_HOME");
    assert_eq!(mode(&home.join("logs")), 0o700, "PITBOSS_HOME/logs");
    assert_eq!(mode(&home.join("logs/pitboss.log")), 0o600, "pitboss.log");
    assert_eq!(mode(&home.join("runs")), 0o700, "PITBOSS_HOME/runs");
    let run = std::fs::read_dir(home.join("runs")).unwrap().next().expect("a run folder").unwrap().path();
    assert_eq!(mode(&run), 0o700, "{}", run.display());
    assert_eq!(mode(&run.join("events.jsonl")), 0o600);
}

#[test]
fn loose_modes_left_by_an_older_pitboss_are_tightened() {
    let s = Scratch::new();
    let logs = s.path().join("home/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(logs.join("pitboss.log"), "").unwrap();
    std::fs::set_permissions(logs.join("pitboss.log"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = s.write("workflow.toml", &(sh_pool("p", "true", "") + "[[task]]\nid = \"a\"\n"));
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&logs), 0o700, "PITBOSS_HOME/logs");
    assert_eq!(mode(&logs.join("pitboss.log")), 0o600, "pitboss.log");
}

#[test]
fn a_symlinked_log_file_is_refused_and_its_target_untouched() {
    let s = Scratch::new();
    let logs = s.path().join("home/logs");
    std::fs::create_dir_all(&logs).unwrap();
    // A dangling link: following it would create a file wherever it points.
    let target = s.path().join("planted");
    std::os::unix::fs::symlink(&target, logs.join("pitboss.log")).unwrap();
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    wf += "[[task]]\nid = \"a\"\n";
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("PITBOSS_LOG", "debug")
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the run itself goes on: {err}");
    assert!(!target.exists(), "the link was followed: {} was created", target.display());
    assert!(
        err.contains("pitboss.log") && err.contains("symbolic link"),
        "stderr should say the log is a symbolic link: {err}"
    );
}
