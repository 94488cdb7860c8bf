//! Low open-file limits. A manager started under a limit too low for pitboss or for
//! the run says which limit it needs and exits 2 before it creates anything (no panic,
//! no bare "os error 24"); one whose soft limit is low but whose hard limit allows
//! more raises its own and runs. A manager that runs out of descriptors mid-run says
//! so on each deferred start and gives up after a bound, exit 2, with nothing charged.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{finish_within, sh_pool, task, wait_for, KillOnPanic, OutputWithin, Scratch};

/// `cmd` with RLIMIT_NOFILE set to (`soft`, `hard`) in the child before it starts.
fn with_fd_limit(cmd: &mut Command, soft: u64, hard: u64) -> &mut Command {
    // SAFETY: setrlimit is async-signal-safe and changes only the child's limits.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn small_workflow() -> String {
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    for t in ["a", "b", "c", "d"] {
        wf += &format!("[[task]]\nid = \"{t}\"\n");
    }
    wf
}

#[test]
fn too_few_files_for_pitboss_itself_is_said_with_the_limit_needed() {
    for limit in [10, 12] {
        let s = Scratch::new();
        let file = s.write("workflow.toml", &small_workflow());
        let mut cmd = s.pitboss();
        cmd.args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file);
        let out = with_fd_limit(&mut cmd, limit, limit).output_within("pitboss run under a low limit");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "ulimit -n {limit}: {err}");
        assert!(!err.contains("panicked") && !err.contains("os error 24"), "ulimit -n {limit}: {err}");
        assert!(
            err.contains("pitboss needs at least") && err.contains(&format!("ulimit -n is {limit}")),
            "ulimit -n {limit}: the message should name both limits: {err}"
        );
        assert!(!s.run_dir().join("events.jsonl").exists(), "nothing should be started");
    }
}

#[test]
fn a_run_wider_than_the_limit_is_refused_before_it_starts() {
    let s = Scratch::new();
    // 40 workers at once need far more than 64 descriptors.
    let mut wf = "[run]\nmax_parallel = 40\n".to_string();
    wf += &sh_pool("p", "cat >/dev/null; echo '{}'", "").replace("concurrency = 4", "concurrency = 40");
    wf += "[[task]]\nid = \"a\"\n";
    let file = s.write("workflow.toml", &wf);
    let mut cmd = s.pitboss();
    cmd.args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file);
    let out = with_fd_limit(&mut cmd, 64, 64).output_within("pitboss run, 40 wide, under ulimit -n 64");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ulimit -n is 64") && err.contains("raise it with `ulimit -n "), "{err}");
    assert!(!s.run_dir().join("events.jsonl").exists(), "nothing should be started");
}

#[test]
fn a_low_soft_limit_under_a_higher_hard_limit_is_raised() {
    let s = Scratch::new();
    let file = s.write("workflow.toml", &small_workflow());
    let mut cmd = s.pitboss();
    cmd.args(["run", "--headless", "--json", "--state-dir"]).arg(s.run_dir()).arg(&file);
    let out = with_fd_limit(&mut cmd, 10, 4096).output_within("pitboss run under soft 10, hard 4096");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every open descriptor number of `pid`.
fn open_fds(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_string_lossy().parse().ok()).collect())
        .unwrap_or_default()
}

#[test]
fn running_out_of_files_mid_run_is_shown_and_given_up_after_a_bound() {
    let s = Scratch::new();
    let d = s.path().display();
    // `a` holds the run until the test has lowered the manager's limit; `b` and `c`
    // then cannot start. Deferrals retry fast here, so the bound is reached quickly.
    let script =
        format!("cat >/dev/null; touch {d}/started; while [ ! -e {d}/go ]; do sleep 0.02; done; echo '{{\"ok\":1}}'");
    let mut wf = "[defaults]\nretry = { max_attempts = 1, initial = \"10ms\", max = \"40ms\" }\n".to_string();
    wf += &sh_pool("p", &script, "");
    wf += "[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\ndepends_on = [\"a\"]\n";
    let file = s.write("workflow.toml", &wf);
    let manager = s
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pitboss");
    let pid = manager.id();
    let _guard = KillOnPanic::new(&[pid]);
    assert!(wait_for(common::deadline(), || s.path().join("started").exists()), "task a did not start");
    // Every descriptor number below the first free one is taken: with the limit
    // there, the manager cannot open one more (the ones it has keep working).
    let open = open_fds(pid);
    let first_free = (0..).find(|n| !open.contains(n)).unwrap();
    let limit = libc::rlimit { rlim_cur: first_free as u64, rlim_max: first_free as u64 };
    // SAFETY: prlimit on our own child, with a valid struct and no old-limit out pointer.
    let set = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    std::fs::write(s.path().join("go"), "").unwrap();

    let out = finish_within(manager, "a manager out of descriptors");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("could not start attempt") && err.contains("too many open files"), "no deferral line: {err}");
    assert!(err.contains("gave up") && err.contains("ulimit -n"), "no give-up message naming the limit: {err}");

    // Nothing was charged: a resume under the normal limit finishes the run.
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for id in ["b", "c"] {
        assert_eq!(task(&doc, id)["attempts"], 1, "a deferred start is not an attempt: {doc}");
    }
}
