//! The manager's open-file budget. Every attempt holds descriptors (its three pipes,
//! a pidfd, and output files when its output is large), and pitboss itself needs a
//! few dozen (the journal, the lock, tokio's poller and signal pipe, the guardian's
//! pipe, its own log). Under a low `ulimit -n` a manager used to panic inside tokio or
//! fail with a bare "os error 24"; now it checks its headroom before it starts and
//! says which limit it needs.
//!
//! When the soft limit is short, pitboss raises it as far as the hard limit allows,
//! but only to what the run needs (twice the estimate, at least [`RAISE_FLOOR`]),
//! never blindly to the hard limit: workers inherit the limit (a spawn cannot reset it
//! without a pre-exec hook, which costs a fork per attempt), and some programs slow
//! down or misbehave under a huge one (loops closing every possible descriptor,
//! `select()`).

use std::fmt;

use crate::core::workflow::{PoolMode, Workflow};

/// Descriptors pitboss needs for itself, with no attempt running: stdio, its log,
/// the run's journal and lock, tokio's poller, waker and signal pipe, the guardian's
/// pipe, and room for one spawn's pipes in flight. About 16 are open in a steady run;
/// the rest is margin.
pub const BASE: u64 = 32;

/// Descriptors one running attempt may hold: stdin, stdout and stderr pipes, a pidfd,
/// and two output files when its output is too large for the log.
pub const PER_ATTEMPT: u64 = 6;

/// The least a short soft limit is raised to (when the hard limit allows).
pub const RAISE_FLOOR: u64 = 4096;

/// The descriptors a run of `workflow` needs at most: pitboss's own, and those of
/// every attempt that may run at once (spawned attempts are capped by `max_parallel`;
/// persistent pools keep their processes alive however many tasks run).
pub fn needed(workflow: &Workflow) -> u64 {
    let (mut spawned, mut persistent) = (0u64, 0u64);
    for pool in &workflow.pools {
        let n = pool.concurrency as u64;
        match pool.mode {
            PoolMode::Persistent => persistent = persistent.saturating_add(n),
            _ => spawned = spawned.saturating_add(n),
        }
    }
    needed_for(workflow.max_parallel as u64, spawned, persistent)
}

/// [`needed`] from the numbers: `spawned` and `persistent` are the pools' summed
/// concurrency by mode.
fn needed_for(max_parallel: u64, spawned: u64, persistent: u64) -> u64 {
    let at_once = spawned.min(max_parallel).saturating_add(persistent);
    BASE.saturating_add(at_once.saturating_mul(PER_ATTEMPT))
}

/// The process's open-file limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The soft limit: what is enforced.
    pub soft: u64,
    /// The hard limit: how far an unprivileged process may raise the soft one.
    pub hard: u64,
}

/// The current limits, or `None` where they cannot be read (Windows has no such
/// limit on handles: always `None` there, so [`ensure`] never refuses).
pub fn current() -> Option<Limits> {
    super::platform::open_file_limits().map(|(soft, hard)| Limits { soft, hard })
}

fn set_soft(soft: u64, hard: u64) -> bool {
    super::platform::set_open_file_limit(soft, hard)
}

/// Too few open files for what pitboss is about to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Shortage {
    /// Descriptors needed.
    pub need: u64,
    /// The limit in force (after trying to raise it).
    pub limits: Limits,
    /// What needs them ("pitboss", or a run's size).
    pub what: String,
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Shortage { need, limits, what } = self;
        write!(
            f,
            "pitboss needs at least {need} open files {what} (ulimit -n is {}); raise it with `ulimit -n {need}`",
            limits.soft
        )?;
        if limits.hard < *need {
            write!(f, " (the hard limit is {}: only an administrator can raise it", limits.hard)?;
            if what != FOR_ITSELF {
                write!(f, "; or run fewer attempts at once: run.max_parallel, pool concurrency")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// The `what` of a [`Shortage`] for pitboss's own needs.
pub const FOR_ITSELF: &str = "to start";

/// Makes sure `need` descriptors can be open, raising the soft limit if it is short
/// and the hard limit allows. `Ok(Some(old))` when it was raised from `old`.
pub fn ensure(need: u64, what: &str) -> Result<Option<u64>, Shortage> {
    let Some(limits) = current() else { return Ok(None) };
    if limits.soft >= need {
        return Ok(None);
    }
    let target = need.saturating_mul(2).max(RAISE_FLOOR).min(limits.hard);
    // Some systems cap the soft limit below the hard one (macOS: OPEN_MAX); then
    // asking for exactly the need may still work.
    if target >= need && (set_soft(target, limits.hard) || set_soft(need, limits.hard)) {
        return Ok(Some(limits.soft));
    }
    let limits = current().unwrap_or(limits);
    Err(Shortage { need, limits, what: what.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_attempts_are_capped_by_max_parallel_and_persistent_processes_are_not() {
        assert_eq!(needed_for(8, 4, 0), BASE + 4 * PER_ATTEMPT);
        assert_eq!(needed_for(8, 43, 0), BASE + 8 * PER_ATTEMPT);
        assert_eq!(needed_for(2, 4, 5), BASE + 7 * PER_ATTEMPT);
        // Absurd sizes saturate instead of overflowing.
        assert_eq!(needed_for(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_message_names_the_need_the_limit_and_the_hard_ceiling() {
        let short = Shortage { need: 80, limits: Limits { soft: 64, hard: 64 }, what: "for this run".into() };
        assert_eq!(
            short.to_string(),
            "pitboss needs at least 80 open files for this run (ulimit -n is 64); raise it with `ulimit -n 80` \
             (the hard limit is 64: only an administrator can raise it; or run fewer attempts at once: \
             run.max_parallel, pool concurrency)"
        );
        let short = Shortage { need: 32, limits: Limits { soft: 10, hard: 4096 }, what: FOR_ITSELF.into() };
        assert_eq!(
            short.to_string(),
            "pitboss needs at least 32 open files to start (ulimit -n is 10); raise it with `ulimit -n 32`"
        );
    }
}
