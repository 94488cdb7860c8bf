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
//! - the [`reaper`] reaps adopted orphans **by pid** (`waitid(P_PID, …)`), ten times a
//!   second (a poll: no SIGCHLD handler interrupts the manager at each exit), never with
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

/// The spawned attempts' leaders the manager is running (or has not yet looked at
/// after their end). The look for adopted children at every attempt's end skips
/// them: they are the manager's own group leaders, and with 8 attempts in flight
/// checking each cost 16 of the ~40 syscalls an attempt's end made (benchmark P1).
/// A handful of pids: a list.
static LEADERS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// A spawned attempt's leader, known to be the manager's own child (not adopted)
/// while this lives. Drop it once the attempt's leftovers are ended.
#[derive(Debug)]
pub struct OwnLeader(u32);

impl OwnLeader {
    /// Registers `pid`, a process the manager started as a group leader in its session.
    pub fn new(pid: u32) -> OwnLeader {
        if let Ok(mut leaders) = LEADERS.lock() {
            leaders.push(pid);
        }
        OwnLeader(pid)
    }
}

impl Drop for OwnLeader {
    fn drop(&mut self) {
        if let Ok(mut leaders) = LEADERS.lock() {
            if let Some(k) = leaders.iter().position(|&p| p == self.0) {
                leaders.swap_remove(k);
            }
        }
    }
}

/// Whether `pid` is a registered [`OwnLeader`] (only Linux adopts children to look at).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn own_leader(pid: u32) -> bool {
    LEADERS.lock().is_ok_and(|leaders| leaders.contains(&pid))
}

/// Ends what is left of an attempt whose leader has exited: SIGKILL to its process
/// group, then, if the group still had members or the manager has adopted a live
/// child, to every process of the attempt's tree (its marks taken from `env`, the
/// attempt's environment). Cheap when nothing is left (one signal and a look at the
/// manager's own children, no mark made), so every attempt pays it.
pub fn end_leftovers(leader: u32, env: &[(String, String)]) {
    let group_left =
        leader > 1 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(leader as i32), Signal::SIGKILL).is_ok();
    if group_left || linux::adopted_child_alive() {
        signal_each(&attempt_tree(leader, &attempt_marks(env)), Signal::SIGKILL);
    }
}

/// Reaps the manager's adopted orphans that have exited (zombies), by pid. Returns
/// how many it reaped.
pub fn reap_adopted() -> usize {
    linux::reap_adopted()
}

/// Reaps adopted orphans that have exited, every [`REAP_TICK`], for as long as the
/// runtime runs. A poll, not a SIGCHLD handler: with a handler every worker's exit
/// interrupted the manager's thread for the handler, its write to the signal pipe and
/// the driver's read of it (benchmark P1: 5–7 % of the manager's CPU), while adopted
/// orphans are rare; ten looks a second at the manager's children cost next to nothing,
/// and a zombie still waits at most a tick.
pub async fn reaper() {
    loop {
        reap_adopted();
        tokio::time::sleep(REAP_TICK).await;
    }
}

/// The time between two passes of the reaper.
const REAP_TICK: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;

    /// What `/proc/PID/stat` says about a process.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Stat {
        pub pid: u32,
        pub ppid: u32,
        pub pgid: u32,
        pub zombie: bool,
    }

    pub(super) fn stat(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold anything: fields start
        // after the last ')'.
        let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
        let state = fields.next()?;
        let mut num = || fields.next()?.parse::<u32>().ok();
        let (ppid, pgid) = (num()?, num()?);
        Some(Stat { pid, ppid, pgid, zombie: state == "Z" })
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

    /// Pids of the manager's main thread's children: its workers (spawned from the
    /// runtime on that thread) and every orphan it adopted (the kernel re-parents to
    /// the subreaper's first live thread, the main one). One small file, read at
    /// every attempt's end; a ppid scan of /proc where the kernel lacks the file.
    fn my_children() -> Vec<u32> {
        match read_children() {
            Some(text) => text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()).collect(),
            None => {
                let me = std::process::id();
                table().into_iter().filter(|s| s.ppid == me).map(|s| s.pid).collect()
            }
        }
    }

    /// The main thread's `children` file, opened once: the kernel writes it afresh
    /// for every read from offset 0, so each attempt's end costs one `pread` instead
    /// of open, reads and close (benchmark P1).
    static CHILDREN: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();

    fn read_children() -> Option<String> {
        let file = CHILDREN
            .get_or_init(|| {
                let me = std::process::id();
                std::fs::File::open(format!("/proc/{me}/task/{me}/children")).ok()
            })
            .as_ref()?;
        read_from_start(file)
    }

    /// A /proc file's text as of now, through a descriptor kept open.
    pub(super) fn read_from_start(file: &std::fs::File) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let mut text = Vec::with_capacity(256);
        let mut chunk = [0u8; 4096];
        loop {
            match file.read_at(&mut chunk, text.len() as u64) {
                Ok(0) => break,
                // A /proc listing fills a read as far as its buffer allows: a short one
                // is the whole of it (no second read to see the end, at every attempt).
                Ok(n) if n < chunk.len() => {
                    text.extend_from_slice(&chunk[..n]);
                    break;
                }
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        String::from_utf8(text).ok()
    }

    /// This process's session, asked once (the manager never changes it).
    fn my_session() -> Option<nix::unistd::Pid> {
        static SESSION: std::sync::OnceLock<Option<nix::unistd::Pid>> = std::sync::OnceLock::new();
        *SESSION.get_or_init(|| nix::unistd::getsid(None).ok())
    }

    /// The manager's children it did not start: every process it starts leads its
    /// own process group in the manager's session, so a child that is not a group
    /// leader, or is in another session, was adopted. Two syscalls per child, no
    /// file: this runs at every attempt's end.
    fn adopted_children() -> Vec<u32> {
        adopted_among(my_children())
    }

    /// Those of `children` (of the manager) that it did not start. Registered
    /// leaders are its own without a look.
    pub(super) fn adopted_among(children: Vec<u32>) -> Vec<u32> {
        use nix::unistd::{getpgid, getsid, Pid};
        let Some(my_sid) = my_session() else { return Vec::new() };
        children
            .into_iter()
            .filter(|&pid| !super::own_leader(pid))
            .filter(|&pid| {
                let p = Pid::from_raw(pid as i32);
                match (getpgid(Some(p)), getsid(Some(p))) {
                    (Ok(pgid), Ok(sid)) => pgid != p || sid != my_sid,
                    _ => false, // gone meanwhile
                }
            })
            .collect()
    }

    pub(super) fn adopted_child_alive() -> bool {
        adopted_children().into_iter().any(|pid| stat(pid).is_some_and(|s| !s.zombie))
    }

    pub(super) fn reap_adopted() -> usize {
        let mut reaped = 0;
        for pid in adopted_children() {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // By pid, and only this adopted one: tokio's own children keep their
            // statuses. WNOHANG: a live one is left (si_pid stays 0).
            // SAFETY: plain syscall with a valid out-parameter.
            let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) };
            // SAFETY: si_pid is set by waitid when it returns 0 (0 if nothing exited).
            if rc == 0 && unsafe { info.si_pid() } != 0 {
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
    fn a_registered_leader_is_not_taken_for_an_adopted_child() {
        // A child that does not lead its own group looks adopted...
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let before = linux::adopted_among(vec![pid]);
        // ...unless the spawner registered it as its own leader.
        let leader = OwnLeader::new(pid);
        let registered = linux::adopted_among(vec![pid]);
        drop(leader);
        let after = linux::adopted_among(vec![pid]);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!((before, registered, after), (vec![pid], vec![], vec![pid]));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_children_file_kept_open_tells_the_children_of_now_at_every_read() {
        // This test's thread is the parent of what it spawns: its own children file.
        let tid = nix::unistd::gettid();
        let file = std::fs::File::open(format!("/proc/self/task/{tid}/children")).unwrap();
        let listed = |pid: u32| linux::read_from_start(&file).unwrap().split_whitespace().any(|p| p == pid.to_string());
        let mut first = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut second = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let both = (listed(first.id()), listed(second.id()));
        let _ = first.kill();
        let _ = first.wait();
        let after = (listed(first.id()), listed(second.id()));
        let _ = second.kill();
        let _ = second.wait();
        assert_eq!((both, after, listed(second.id())), ((true, true), (false, true), false));
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
