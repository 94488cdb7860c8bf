//! The `perf` gate's measurement (`io::perf`) on real processes: wall time, peak
//! memory of a child and its waited-for descendants, a missing program, and a
//! timeout or a cancel that ends the whole process group, grandchildren included.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pitboss::io::perf::{measure, PerfError, PerfRun};

fn sh(script: &str, runs: u32, timeout: Duration) -> PerfRun {
    PerfRun {
        command: vec!["sh".into(), "-c".into(), script.into()],
        cwd: None,
        env: Vec::new(),
        clear_env: false,
        runs,
        timeout,
    }
}

/// Kills the pids a test's processes wrote down, if the test ends early.
struct KillPids(PathBuf);

impl Drop for KillPids {
    fn drop(&mut self) {
        for pid in read_pids(&self.0) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path).unwrap_or_default().split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// True once `pid` is no process any more (gone, or a zombie waiting for its reaper).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[track_caller]
fn assert_gone_within(pids: &[i32], deadline: Duration) {
    let until = Instant::now() + deadline;
    while !pids.iter().all(|&p| gone(p)) {
        assert!(Instant::now() < until, "processes still alive after {deadline:?}: {pids:?}");
        std::thread::sleep(Duration::from_millis(10)); // polling interval, bounded by the deadline
    }
}

#[tokio::test]
async fn wall_time_is_the_median_of_the_runs() {
    let sample = measure(sh("sleep 0.2", 3, Duration::from_secs(30))).await.expect("measured");
    assert_eq!(sample.runs, 3);
    assert!(sample.median_ms >= 200, "{sample:?}");
    assert!(sample.median_ms < 10_000, "{sample:?}");
}

#[tokio::test]
async fn peak_memory_covers_a_descendant_the_shell_waited_for() {
    // `; true` keeps sh from exec'ing the last command: the allocation happens in a
    // grandchild of ours, which sh waits for.
    let python = std::process::Command::new("python3").args(["-c", "pass"]).output().is_ok_and(|o| o.status.success());
    let script = if python {
        r#"python3 -c "b = b'x' * (100 << 20); print(len(b))"; true"#
    } else {
        // 100 MB held in a shell variable (without python3).
        r#"sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" x); echo ${#x}'; true"#
    };
    let sample = measure(sh(script, 1, Duration::from_secs(60))).await.expect("measured");
    let peak = sample.peak_rss_kb.expect("Linux reads a peak");
    assert!(peak >= 90 * 1024, "peak {peak} KiB for 100 MB: {sample:?}");
    let small = measure(sh("true", 1, Duration::from_secs(30))).await.expect("measured");
    assert!(small.peak_rss_kb.is_some_and(|kb| kb < 50 * 1024), "{small:?}");
}

#[tokio::test]
async fn a_missing_program_is_not_found() {
    let spec = PerfRun {
        command: vec!["pitboss-no-such-program-xyz".into()],
        cwd: None,
        env: Vec::new(),
        clear_env: false,
        runs: 3,
        timeout: Duration::from_secs(5),
    };
    let err = measure(spec).await.expect_err("no such program");
    assert!(matches!(&err, PerfError::NotFound { program } if program == "pitboss-no-such-program-xyz"), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn a_failing_run_reports_its_exit_code_and_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = sh("echo \"in $(pwd) with $PERF_X\" >&2; exit 3", 2, Duration::from_secs(30));
    spec.cwd = Some(dir.path().to_path_buf());
    spec.env = vec![("PERF_X".into(), "value".into())];
    let err = measure(spec).await.expect_err("exit 3");
    match &err {
        PerfError::Failed { exit_code: Some(3), run: 1, tail, .. } => {
            assert!(tail.contains("with value") && tail.contains(&*dir.path().to_string_lossy()), "{tail}")
        }
        other => panic!("expected a failure with exit code 3, got {other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    let _cleanup = KillPids(pids.clone());
    let script = format!("echo $$ > {p}; sleep 30 & echo $! >> {p}; wait", p = pids.display());
    let started = Instant::now();
    let err = measure(sh(&script, 2, Duration::from_millis(500))).await.expect_err("timed out");
    assert!(matches!(err, PerfError::TimedOut { run: 1, .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let found = read_pids(&pids);
    assert_eq!(found.len(), 2, "the shell and its background sleep wrote their pids: {found:?}");
    assert_gone_within(&found, Duration::from_secs(5));
}

#[tokio::test]
async fn a_dropped_measurement_kills_its_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    let _cleanup = KillPids(pids.clone());
    let script = format!("sleep 30 & echo $! > {p}.tmp; mv {p}.tmp {p}; wait", p = pids.display());
    let measuring = tokio::spawn(measure(sh(&script, 5, Duration::from_secs(60))));
    let until = Instant::now() + Duration::from_secs(10);
    while read_pids(&pids).is_empty() {
        assert!(Instant::now() < until, "the command never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    measuring.abort();
    let _ = measuring.await;
    assert_gone_within(&read_pids(&pids), Duration::from_secs(5));
}
