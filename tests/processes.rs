//! Processes and capture with the real binary: what a worker leaves behind (escaped
//! sessions, adopted orphans), how a failed spawn is worded, and what happens when an
//! attempt's output cannot be written.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{alive, finish_within, kill_pid, read_events, wait_for, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

/// A pid a test's worker wrote to `path`, once it is there.
fn pid_in(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True while `/proc/PID` exists at all: a zombie still counts (it has not been reaped).
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A pool that runs `script` and a task `hold` on another pool that waits until the
/// test creates `release`, so the manager is still alive while the test looks at what
/// the first task left behind.
fn held_workflow(s: &Scratch, task_extra: &str, script: &str) -> (PathBuf, PathBuf) {
    held_workflow_on(s, "", task_extra, script)
}

/// [`held_workflow`] with `pool_extra` added to the first pool.
fn held_workflow_on(s: &Scratch, pool_extra: &str, task_extra: &str, script: &str) -> (PathBuf, PathBuf) {
    let release = s.path().join("release");
    let hold = format!("while [ ! -e {} ]; do sleep 0.02; done; echo '{{}}'", release.display());
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}{}[[task]]\nid = \"a\"\npool = \"w\"\n{task_extra}\n[[task]]\nid = \"hold\"\npool = \"hold\"\n",
        common::sh_pool("w", script, pool_extra),
        common::sh_pool("hold", &hold, ""),
    );
    (s.write("workflow.toml", &wf), release)
}

/// Waits for the log to hold an event of `kind` for task `a`.
fn wait_event(s: &Scratch, kind: &str) -> Option<Value> {
    let mut found = None;
    wait_for(common::deadline(), || {
        found = read_events(&s.run_dir()).into_iter().find(|e| e["type"] == kind && e["task"] == "a");
        found.is_some()
    });
    found
}

#[test]
fn a_timed_out_worker_takes_its_escaped_session_with_it() {
    let s = Scratch::new();
    let pidfile = s.path().join("escaped.pid");
    // The worker starts a grandchild in a new session (out of the worker's process
    // group), which keeps the attempt's stdout open, then hangs past its timeout.
    let script = format!("setsid sh -c 'echo $$ > {}; exec sleep 1000' & sleep 1000", pidfile.display());
    let (wf, release) = held_workflow(&s, "timeout = \"300ms\"", &script);
    let manager = s.spawn_run(&wf);
    let guard = KillOnPanic::new(&[manager.id()]);
    let escaped = {
        let mut pid = None;
        wait_for(common::deadline(), || {
            pid = pid_in(&pidfile);
            pid.is_some()
        });
        pid.expect("the worker's grandchild recorded its pid")
    };
    let failed = wait_event(&s, "attempt_failed").expect("the attempt was recorded as failed");
    assert_eq!(failed["class"], "timeout", "{failed}");
    // Ended with the attempt, and reaped (no zombie left in the manager), while the
    // manager still runs.
    let gone = wait_for(Duration::from_secs(5), || !exists(escaped));
    let state = std::fs::read_to_string(format!("/proc/{escaped}/stat")).unwrap_or_default();
    std::fs::write(&release, "").unwrap();
    let out = finish_within(manager, "pitboss run");
    kill_pid(escaped);
    drop(guard);
    assert!(gone, "the escaped grandchild {escaped} was still there 5 s after its attempt timed out: {state}");
    // The attempt's end did not wait 2 s for the pipe the grandchild held.
    let ms = failed["duration_ms"].as_u64().unwrap();
    assert!(ms < 1500, "the timed-out attempt took {ms} ms to end (waited for an escaped pipe?)");
    assert!(out.status.code().is_some());
}

#[test]
fn a_timed_out_persistent_worker_takes_its_escaped_session_with_it() {
    let s = Scratch::new();
    let pidfile = s.path().join("escaped.pid");
    let script = format!("setsid sh -c 'echo $$ > {}; exec sleep 1000' & sleep 1000", pidfile.display());
    let (wf, release) = held_workflow_on(&s, "mode = \"persistent\"", "timeout = \"300ms\"", &script);
    let manager = s.spawn_run(&wf);
    let guard = KillOnPanic::new(&[manager.id()]);
    let mut escaped = None;
    wait_for(common::deadline(), || {
        escaped = pid_in(&pidfile);
        escaped.is_some()
    });
    let escaped = escaped.expect("the worker's grandchild recorded its pid");
    let failed = wait_event(&s, "attempt_failed").expect("the attempt was recorded as failed");
    let gone = wait_for(Duration::from_secs(5), || !exists(escaped));
    std::fs::write(&release, "").unwrap();
    let _ = finish_within(manager, "pitboss run");
    kill_pid(escaped);
    drop(guard);
    assert_eq!(failed["class"], "timeout", "{failed}");
    assert!(gone, "the escaped grandchild {escaped} of a persistent worker outlived its timed-out task");
}

#[test]
fn orphans_a_worker_leaves_after_a_normal_exit_are_ended_and_reaped() {
    let s = Scratch::new();
    let pidfile = s.path().join("orphan.pid");
    let escaped = s.path().join("escaped.pid");
    // One background grandchild in the worker's group, one in a new session with
    // its output elsewhere; the worker answers and exits at once.
    let script = format!(
        "sh -c 'echo $$ > {}; exec sleep 1000' >/dev/null 2>&1 & \
         setsid sh -c 'echo $$ > {}; exec sleep 1000' >/dev/null 2>&1 </dev/null & \
         while [ ! -s {} ] || [ ! -s {} ]; do sleep 0.01; done; echo '{{\"ok\":true}}'",
        pidfile.display(),
        escaped.display(),
        pidfile.display(),
        escaped.display()
    );
    let (wf, release) = held_workflow(&s, "", &script);
    let manager = s.spawn_run(&wf);
    let guard = KillOnPanic::new(&[manager.id()]);
    let done = wait_event(&s, "attempt_succeeded");
    let pids = [pid_in(&pidfile), pid_in(&escaped)];
    let gone = |pid: Option<i32>| pid.is_some_and(|p| wait_for(Duration::from_secs(5), || !exists(p)));
    let ended = [gone(pids[0]), gone(pids[1])];
    let alive_now: Vec<_> = pids.iter().flatten().map(|p| (*p, alive(*p))).collect();
    std::fs::write(&release, "").unwrap();
    let _ = finish_within(manager, "pitboss run");
    pids.iter().flatten().for_each(|p| kill_pid(*p));
    drop(guard);
    assert!(done.is_some(), "task a never succeeded");
    assert_eq!(ended, [true, true], "grandchildren {pids:?} left behind (alive: {alive_now:?})");
}

#[test]
fn a_script_whose_interpreter_is_missing_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let script = s.write("agent.sh", "#!/nonexistent/interp -x\necho '{}'\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n[[pool]]\nname = \"p\"\ncommand = [{}]\n[[task]]\nid = \"a\"\n",
        common::toml_string(&script.display().to_string())
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_ne!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let failed = read_events(&s.run_dir()).into_iter().find(|e| e["type"] == "attempt_failed").expect("a failure");
    let error = failed["error"].as_str().unwrap();
    assert_eq!(failed["class"], "spawn_permanent", "{failed}");
    assert!(
        error.contains("interpreter \"/nonexistent/interp\"") && error.contains("first line"),
        "the error does not name the missing interpreter: {error}"
    );
    assert!(!error.contains("not found (not on PATH"), "{error}");
    assert!(doc.is_object());
}

#[test]
fn output_that_cannot_be_saved_is_an_event_and_a_visible_warning() {
    let s = Scratch::new();
    let go = s.path().join("go");
    // Past the 4 KiB kept in the log, output goes to output/a.1.stdout: the test puts
    // a folder in the way before the worker prints, so the file cannot be created.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; head -c 20000 /dev/zero | tr '\\0' x; echo; echo '{{\"ok\":true}}'",
        go.display()
    );
    let wf = s.write("workflow.toml", &format!("{}[[task]]\nid = \"a\"\n", common::sh_pool("w", &script, "")));
    let manager = s
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(&wf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnPanic::new(&[manager.id()]);
    let output = s.run_dir().join("output");
    assert!(wait_for(common::deadline(), || output.is_dir()), "no output folder");
    std::fs::create_dir(output.join("a.1.stdout")).unwrap();
    std::fs::write(&go, "").unwrap();
    let out = finish_within(manager, "pitboss run --headless");
    drop(guard);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{progress}");
    let events = read_events(&s.run_dir());
    let failed = events.iter().find(|e| e["type"] == "output_capture_failed");
    let failed = failed.unwrap_or_else(|| panic!("no output_capture_failed event; the log: {events:?}"));
    assert_eq!((&failed["task"], &failed["attempt"], &failed["stream"]), (&"a".into(), &1.into(), &"stdout".into()));
    assert!(failed["error"].as_str().unwrap().contains("a.1.stdout"), "{failed}");
    // Visible: the headless progress lines and `inspect TASK` say so.
    assert!(progress.contains("a: warning: attempt 1's stdout is not being saved"), "{progress}");
    let inspect = s.pitboss().arg("inspect").arg(s.run_dir()).arg("a").output_within("pitboss inspect");
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("output_capture_failed") && text.contains("stdout is not being saved"), "{text}");
}
