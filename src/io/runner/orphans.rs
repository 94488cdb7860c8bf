//! Processes that leave an attempt's process group, and orphans the manager adopts.
//!
//! Killing an attempt's process group does not reach a descendant that called
//! `setsid` (or `setpgid`): it would outlive the attempt until the manager exits, and
//! if it holds the attempt's stdout the drain would wait for it. On Linux:
//!
//! - the manager is a **child subreaper** (`PR_SET_CHILD_SUBREAPER`), so a worker's
//!   descendant whose parent dies is re-parented to the manager, not to init;
//! - when an attempt ends, [`end_leftovers`] SIGKILLs what is left of it: its group,
//!   and, when anything looks left behind, every process of the attempt's tree (the
//!   leader's descendants by parent pid, and every process whose environment carries
//!   the attempt's marks `PITBOSS_RUN_ID`, `PITBOSS_TASK_ID`, `PITBOSS_ATTEMPT`);
//! - an early stop signals that whole tree, not only the group ([`attempt_tree`]);
//! - the [`reaper`] reaps adopted orphans **by pid** (`waitid(P_PID, …)`), never with
//!   `waitpid(-1)`, which would steal the exit statuses tokio waits for.
//!
//! Telling an adopted orphan from a process the manager started: every process the
//! manager starts (spawned workers, persistent workers, the guardian) leads its own
//! process group in the manager's session. A child of the manager that is not a group
//! leader, or is in another session, was adopted. That is the one invariant the
//! reaper relies on; a new kind of child process must keep it.
//!
//! Elsewhere (macOS) there is no subreaper and no /proc: the attempt's process group
//! is ended as before, and nothing beyond it is tracked.

use nix::sys::signal::Signal;

/// The `NAME=value` strings that mark an attempt's processes, from its environment.
/// Empty (marks nothing) unless the environment names the run, the task and the
/// attempt.
pub fn attempt_marks(env: &[(String, String)]) -> Vec<String> {
    const KEYS: [&str; 3] = ["PITBOSS_RUN_ID", "PITBOSS_TASK_ID", "PITBOSS_ATTEMPT"];
    let marks: Vec<String> =
        env.iter().filter(|(k, _)| KEYS.contains(&k.as_str())).map(|(k, v)| format!("{k}={v}")).collect();
    if marks.len() == KEYS.len() {
        marks
    } else {
        Vec::new()
    }
}

/// Makes this process a child subreaper (Linux): orphaned descendants of its workers
/// are re-parented to it, so that it can end and reap them. Returns whether it is one.
pub fn become_subreaper() -> bool {
    linux::become_subreaper()
}

/// Every process of an attempt other than its leader: the leader's descendants, the
/// members of its group, the processes carrying `marks`, and their descendants.
pub fn attempt_tree(leader: u32, marks: &[String]) -> Vec<u32> {
    linux::attempt_tree(leader, marks)
}

/// Sends `signal` to each pid (ignoring those already gone).
pub fn signal_each(pids: &[u32], signal: Signal) {
    for &pid in pids {
        if pid > 1 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
    }
}

/// Ends what is left of an attempt whose leader has exited: SIGKILL to its process
/// group, then, if the group still had members or the manager has adopted a live
/// child, to every process of the attempt's tree. Cheap when nothing is left (one
/// signal and a look at the manager's own children), so every attempt pays it.
pub fn end_leftovers(leader: u32, marks: &[String]) {
    let group_left =
        leader > 1 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(leader as i32), Signal::SIGKILL).is_ok();
    if group_left || linux::adopted_child_alive() {
        signal_each(&attempt_tree(leader, marks), Signal::SIGKILL);
    }
}

/// Reaps the manager's adopted orphans that have exited (zombies), by pid. Returns
/// how many it reaped.
pub fn reap_adopted() -> usize {
    linux::reap_adopted()
}

/// Reaps adopted orphans whenever a child of the manager exits (SIGCHLD), for as long
/// as the runtime runs. Without it, a subreaper collects zombies.
pub async fn reaper() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        tracing::warn!("cannot watch SIGCHLD; adopted orphans are reaped only when the manager exits");
        return;
    };
    reap_adopted();
    while sigchld.recv().await.is_some() {
        reap_adopted();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;

    /// What `/proc/PID/stat` says about a process.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Stat {
        pub pid: u32,
        pub ppid: u32,
        pub pgid: u32,
        pub sid: u32,
        pub zombie: bool,
    }

    pub(super) fn stat(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold anything: fields start
        // after the last ')'.
        let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
        let state = fields.next()?;
        let mut num = || fields.next()?.parse::<u32>().ok();
        let (ppid, pgid, sid) = (num()?, num()?, num()?);
        Some(Stat { pid, ppid, pgid, sid, zombie: state == "Z" })
    }

    pub(super) fn become_subreaper() -> bool {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and changes
        // only this process's flag.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) == 0 }
    }

    /// Every process in /proc (those that vanish while reading are left out).
    fn table() -> Vec<Stat> {
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).filter_map(stat).collect()
    }

    /// The manager's children, from the per-thread `children` files (an orphan is
    /// re-parented to one of its threads); a ppid scan where those files are missing.
    fn my_children() -> Vec<Stat> {
        let me = std::process::id();
        let mut pids = Vec::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
        for task in tasks.flatten() {
            match std::fs::read_to_string(task.path().join("children")) {
                Ok(text) => pids.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok())),
                // A thread that just ended has no file any more.
                Err(e) if task.path().exists() && e.kind() == std::io::ErrorKind::NotFound => {
                    return table().into_iter().filter(|s| s.ppid == me).collect();
                }
                Err(_) => {}
            }
        }
        pids.into_iter().filter_map(stat).filter(|s| s.ppid == me).collect()
    }

    /// True when `child` (a child of the manager) cannot be one the manager started:
    /// those lead their own process group in the manager's session.
    fn adopted(child: &Stat, my_sid: u32) -> bool {
        child.pgid != child.pid || child.sid != my_sid
    }

    fn my_sid() -> u32 {
        nix::unistd::getsid(None).map(|p| p.as_raw() as u32).unwrap_or(0)
    }

    pub(super) fn adopted_child_alive() -> bool {
        let sid = my_sid();
        my_children().iter().any(|c| !c.zombie && adopted(c, sid))
    }

    pub(super) fn reap_adopted() -> usize {
        let sid = my_sid();
        let mut reaped = 0;
        for child in my_children().into_iter().filter(|c| c.zombie && adopted(c, sid)) {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // By pid, and only this adopted one: tokio's own children keep their status.
            // SAFETY: plain syscall on a pid that is our child.
            let rc =
                unsafe { libc::waitid(libc::P_PID, child.pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) };
            if rc == 0 {
                reaped += 1;
            }
        }
        reaped
    }

    fn carries(pid: u32, marks: &[String]) -> bool {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
        marks.iter().all(|mark| environ.split(|&b| b == 0).any(|var| var == mark.as_bytes()))
    }

    pub(super) fn attempt_tree(leader: u32, marks: &[String]) -> Vec<u32> {
        let me = std::process::id();
        let all = table();
        let mut found: Vec<u32> = all
            .iter()
            .filter(|s| s.pid != leader && s.pid != me && !s.zombie)
            .filter(|s| s.pgid == leader || (!marks.is_empty() && carries(s.pid, marks)))
            .map(|s| s.pid)
            .collect();
        found.push(leader);
        // Descendants of everything found (a process that cleared its environment is
        // still reached through its parent).
        let mut seen: HashSet<u32> = found.iter().copied().collect();
        let mut k = 0;
        while k < found.len() {
            let parent = found[k];
            for s in all.iter().filter(|s| s.ppid == parent && !s.zombie) {
                if s.pid != me && seen.insert(s.pid) {
                    found.push(s.pid);
                }
            }
            k += 1;
        }
        found.retain(|&p| p != leader && p > 1);
        found
    }
}

#[cfg(not(target_os = "linux"))]
mod linux {
    //! No subreaper and no /proc: nothing beyond the process group is tracked.
    pub(super) fn become_subreaper() -> bool {
        false
    }
    pub(super) fn attempt_tree(_leader: u32, _marks: &[String]) -> Vec<u32> {
        Vec::new()
    }
    pub(super) fn adopted_child_alive() -> bool {
        false
    }
    pub(super) fn reap_adopted() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn marks_need_the_run_the_task_and_the_attempt() {
        let full = env(&[("PITBOSS_RUN_ID", "r"), ("X", "y"), ("PITBOSS_TASK_ID", "t"), ("PITBOSS_ATTEMPT", "2")]);
        assert_eq!(attempt_marks(&full), ["PITBOSS_RUN_ID=r", "PITBOSS_TASK_ID=t", "PITBOSS_ATTEMPT=2"]);
        // Without one of them, marks would match other attempts' processes: none.
        assert!(attempt_marks(&env(&[("PITBOSS_RUN_ID", "r"), ("PITBOSS_TASK_ID", "t")])).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_tree_of_a_live_process_holds_its_escaped_grandchild() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let escaped: u32 = line.trim().parse().unwrap();
        let tree = attempt_tree(child.id(), &[]);
        signal_each(&tree, Signal::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&escaped), "{escaped} not in {tree:?}");
    }
}
