//! Windows in place of `orphans.rs`: there is no subreaper and no process group to
//! escape from, because each attempt's tree is held by a Job Object
//! (`io::platform::windows`), and a process stays in its job whatever its parent
//! does. Ending the job ends the attempt's tree, so the searches of the Unix module
//! are not needed: these are its functions, reduced to what a job leaves to do.

use crate::io::platform::{self, Signal};

/// Marks are a Unix way to find escaped processes; a job needs none.
pub fn attempt_marks(_env: &[(String, String)]) -> Vec<String> {
    Vec::new()
}

/// No subreaper on Windows (jobs hold the trees instead).
pub fn become_subreaper() -> bool {
    false
}

/// Nothing escapes a job: no process outside it to name.
pub fn attempt_tree(_leader: u32, _marks: &[String]) -> Vec<u32> {
    Vec::new()
}

/// Ends each pid (Windows has only the one way).
pub fn signal_each(pids: &[u32], signal: Signal) {
    for &pid in pids {
        platform::signal_pid(pid, signal);
    }
}

/// Kept for the same calls as on Unix; nothing to register.
#[derive(Debug)]
pub struct OwnLeader;

impl OwnLeader {
    /// Nothing to do on Windows.
    pub fn new(_pid: u32) -> OwnLeader {
        OwnLeader
    }
}

/// Ends what is left of an attempt whose leader has exited: its whole job.
pub fn end_leftovers(leader: u32, _env: &[(String, String)]) {
    platform::signal_group(leader, Signal::SIGKILL);
}

/// No adopted orphans on Windows.
pub fn reap_adopted() -> usize {
    0
}

/// No adopted orphans on Windows: nothing to reap.
pub async fn reaper() {}
