//! Finding and ending a manager's workers after the manager is gone.
//!
//! Every worker is started with `PITBOSS_RUN_ID` and `PITBOSS_MANAGER_PID` in its
//! environment, and everything it starts inherits them. That marks the whole tree,
//! even processes that left the worker's process group, at no cost per spawn.
//!
//! - The **guardian** is a small `pitboss guardian` process the manager starts with a
//!   pipe on its stdin. When the pipe closes (the manager exited, however it died:
//!   SIGKILL, the OOM killer, a crash) it SIGKILLs every process carrying its
//!   manager's marks, with their process groups, and exits. It lives in its own
//!   process group so the terminal's Ctrl-C for the manager does not reach it.
//! - **resume** does the same sweep for the run id before replaying, in case the
//!   guardian itself was killed. It spares workers whose manager is still running
//!   (a copy of the run folder, resumed while the original runs, shares its run id:
//!   its workers are not leftovers).
//!
//! A parent-death signal was the other option; it reaches only the direct child and
//! needs a pre-exec hook, which turns every spawn into a full fork of the manager.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpgid, Pid};

use super::procs;
use super::runner::orphans::OwnLeader;
use super::runner::spawn::signal_group;

/// Environment variable holding the pid of the manager that started a worker.
pub const MANAGER_PID_ENV: &str = "PITBOSS_MANAGER_PID";
/// Environment variable holding the run id.
pub const RUN_ID_ENV: &str = "PITBOSS_RUN_ID";
/// The run id a `pitboss worker`'s guardian watches: every run. A worker serves
/// several runs, and its commands carry their own run's id (the task protocol's),
/// so its mark is the manager one alone: `PITBOSS_MANAGER_PID` = the worker's pid.
pub const ANY_RUN: &str = "*";

/// Guardian failures.
#[derive(Debug, thiserror::Error)]
pub enum GuardianError {
    /// The guardian process could not be started (workers would then outlive a
    /// crash of the manager; the caller warns and carries on).
    #[error("{exe}: {source}")]
    Spawn {
        /// The binary that was to run `guardian`.
        exe: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process table (`/proc`, libproc on macOS) could not be listed, so marked
    /// processes cannot be found: a sweep that silently found nothing would let an
    /// attempt run twice.
    #[error("cannot list processes: {0}")]
    Proc(#[source] std::io::Error),
}

/// The manager's handle on its guardian. Dropping it lets the guardian exit.
pub struct Guardian {
    pipe: Option<ChildStdin>,
    child: Child,
    /// The guardian is the manager's own child, not an adopted orphan: the look for
    /// adopted children at every attempt's end skips it (two syscalls an attempt).
    _own: OwnLeader,
}

impl Guardian {
    /// Starts `exe guardian` for this manager's workers of `run_id`.
    pub fn start(exe: &Path, run_id: &str) -> Result<Guardian, GuardianError> {
        let mut child = Command::new(exe)
            .args(["guardian", "--run-id", run_id, "--manager-pid", &std::process::id().to_string()])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| GuardianError::Spawn { exe: exe.to_path_buf(), source })?;
        let pipe = child.stdin.take();
        // Its own group in the manager's session, as every process the manager starts.
        let own = OwnLeader::new(child.id());
        Ok(Guardian { pipe, child, _own: own })
    }

    /// Starts `exe guardian` for a `pitboss worker` (this process): when it dies, every
    /// process marked with its pid is ended, whatever run it was working for.
    pub fn start_worker(exe: &Path) -> Result<Guardian, GuardianError> {
        Guardian::start(exe, ANY_RUN)
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        self.pipe.take();
        // It sweeps (finding nothing after a clean stop) and exits; reap it.
        let _ = self.child.wait();
    }
}

/// The guardian process: wait for the manager's end, then sweep its workers.
pub fn main(run_id: &str, manager_pid: u32) -> u8 {
    let mut sink = [0u8; 64];
    // Nothing is sent; read returns 0 (EOF) when the manager's end of the pipe closes.
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    match sweep(run_id, Some(manager_pid)) {
        Ok(0) => 0,
        Ok(ended) => {
            eprintln!("pitboss guardian: manager {manager_pid} is gone; ended {ended} leftover worker process(es)");
            0
        }
        Err(e) => {
            eprintln!("pitboss guardian: manager {manager_pid} is gone, but its workers cannot be found: {e}");
            1
        }
    }
}

/// SIGKILLs every process marked with `run_id` (and `manager_pid`, when given; without
/// it, only those whose manager is gone), with its process group. Repeats until none is left (a dying tree may still fork) or
/// five passes. Returns how many processes it found.
pub fn sweep(run_id: &str, manager_pid: Option<u32>) -> Result<usize, GuardianError> {
    let mut found = 0;
    for _ in 0..5 {
        let marked = marked_processes(run_id, manager_pid)?;
        if marked.is_empty() {
            break;
        }
        found += marked.len();
        for pid in marked {
            if let Ok(pgid) = getpgid(Some(Pid::from_raw(pid as i32))) {
                signal_group(pgid.as_raw() as u32, Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    Ok(found)
}

/// Live processes (not zombies) whose environment carries the marks. A process
/// whose environment cannot be read (it exited meanwhile, or is another user's) is
/// not one of ours.
fn marked_processes(run_id: &str, manager_pid: Option<u32>) -> Result<Vec<u32>, GuardianError> {
    // Any run only with a manager's pid: a sweep of every run's orphans would end
    // the workers of runs whose manager merely restarted.
    let any_run = run_id == ANY_RUN;
    if any_run && manager_pid.is_none() {
        return Ok(Vec::new());
    }
    let run_mark = format!("{RUN_ID_ENV}={run_id}");
    let manager_mark = manager_pid.map(|p| format!("{MANAGER_PID_ENV}={p}"));
    let me = std::process::id();
    let marked = procs::pids()
        .map_err(GuardianError::Proc)?
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let Some(environ) = procs::environ(pid) else { return false };
            let has = |mark: &str| environ.split(|&b| b == 0).any(|var| var == mark.as_bytes());
            if !any_run && !has(&run_mark) {
                return false;
            }
            match manager_mark.as_deref() {
                Some(mark) => has(mark),
                None => !manager_of(&environ).is_some_and(is_live_manager),
            }
        })
        // Only the marked few are looked at again: a sweep reads each process's
        // environment once, not its status too (the sweep is what a clean stop waits
        // for last; a zombie's environment reads empty anyway).
        .filter(|&pid| !procs::is_zombie(pid))
        .collect();
    Ok(marked)
}

/// The manager pid a worker's environment names.
fn manager_of(environ: &[u8]) -> Option<u32> {
    let prefix = format!("{MANAGER_PID_ENV}=");
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .and_then(|pid| std::str::from_utf8(pid).ok()?.parse().ok())
}

/// True if `pid` is a running pitboss: alive, and the same program as this one. A pid
/// since reused by another program does not count, so its orphans are still ended.
fn is_live_manager(pid: u32) -> bool {
    pid != std::process::id() && !procs::is_zombie(pid) && procs::runs_this_program(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guardian_that_cannot_start_names_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("no-such-pitboss");
        match Guardian::start(&exe, "run") {
            Err(e @ GuardianError::Spawn { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&exe.display().to_string()), "{text}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("started a binary that does not exist"),
        }
    }

    #[test]
    fn a_sweep_of_any_run_needs_a_manager_pid() {
        assert_eq!(sweep(ANY_RUN, None).unwrap(), 0);
    }

    #[test]
    fn a_sweep_for_an_unknown_run_finds_nothing() {
        assert_eq!(sweep("no-such-run-id", None).unwrap(), 0);
    }
}
