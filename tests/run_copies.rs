//! A copy of a live run's folder, resumed while the original still runs, shares its
//! run id, so its workers carry the same mark. `resume` ends the leftover workers of a
//! crashed manager before it replays; it must not end the original's workers, whose
//! manager is alive. Real binary, real processes.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{alive, kill_pid, toml_string, wait_for, wait_within, KillOnPanic, Scratch};

/// Records the worker's pid in `DIR/pid.MANAGER`, then waits for `DIR/go`.
fn gated_worker(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "cat >/dev/null; echo $$ > {d}/pid.$PITBOSS_MANAGER_PID; \
         while [ ! -e {d}/go ]; do sleep 0.02; done; echo '{{\"ok\":true}}'"
    )
}

/// The pid of a worker whose manager is not `not_of`, once one recorded it.
fn worker_pid(dir: &Path, not_of: Option<u32>) -> Option<i32> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let manager: u32 = name.strip_prefix("pid.")?.parse().ok()?;
        if Some(manager) == not_of {
            return None;
        }
        std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -r {} {}", from.display(), to.display());
}

#[test]
fn resuming_a_copy_of_a_live_run_spares_the_original_runs_workers() {
    let s = Scratch::new();
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"a\"\n",
        toml_string(&gated_worker(s.path()))
    );
    let mut original = s.spawn_run(&s.write("workflow.toml", &wf));
    let _guard = KillOnPanic::new(&[original.id()]);
    assert!(
        wait_for(common::deadline(), || worker_pid(s.path(), None).is_some()),
        "the original's worker did not start"
    );
    let first = worker_pid(s.path(), None).unwrap_or_default();
    let _first_guard = KillOnPanic::new(&[first as u32]);

    let copy = s.path().join("copy");
    copy_dir(&s.run_dir(), &copy);
    let mut resumed = s
        .pitboss()
        .args(["resume", "--headless", "--json"])
        .arg(&copy)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start resume");
    let _resumed_guard = KillOnPanic::new(&[resumed.id()]);
    let copy_started = wait_for(common::deadline(), || worker_pid(s.path(), Some(original.id())).is_some());
    assert!(copy_started, "the copy's worker did not start");
    let second = worker_pid(s.path(), Some(original.id())).unwrap_or_default();
    let _second_guard = KillOnPanic::new(&[second as u32]);

    assert!(alive(first), "resuming the copy killed the original run's worker {first}");
    std::fs::write(s.path().join("go"), "").expect("write go");
    let original_status = wait_within(&mut original, "the original run");
    let resumed_status = wait_within(&mut resumed, "the resumed copy");
    assert_eq!(original_status.code(), Some(0), "the original run failed");
    assert_eq!(resumed_status.code(), Some(0), "the resumed copy failed");
    kill_pid(first);
    kill_pid(second);
}
