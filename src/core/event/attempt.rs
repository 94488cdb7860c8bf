//! What an attempt's events carry: why it failed ([`FailureClass`]) and what follows
//! ([`AfterFailure`]), and its output when it is small enough for the log itself.

use serde::{Deserialize, Serialize};

/// Why an attempt failed; decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The worker ran and reported failure (exit code, envelope, is_error).
    Worker,
    /// The attempt outlived its timeout and its process group was ended.
    Timeout,
    /// The command cannot be started and retrying will not help (ENOENT, EACCES, E2BIG…).
    SpawnPermanent,
    /// The machine is short of a resource (EMFILE, EAGAIN…): back off without spending an attempt.
    SpawnResource,
    /// The manager died while the attempt ran.
    ManagerCrashed,
    /// The remote worker running it was lost (its lease expired, it vanished): like
    /// a manager crash, never charged, and counted toward the poison pill.
    WorkerLost,
    /// A consensus attempt's replicas did not agree (each replica's own failure was
    /// counted on its pool already).
    NoConsensus,
}

impl FailureClass {
    /// True for failures that say something about the pool's agent (its breaker
    /// counts them); a resource shortage or a manager crash does not.
    pub fn counts_against_pool(self) -> bool {
        matches!(self, FailureClass::Worker | FailureClass::Timeout | FailureClass::SpawnPermanent)
    }
}

/// An attempt's output when it is small enough to keep in the log itself (at most
/// [`SMALL_OUTPUT`] bytes per stream). Larger output goes to capped files in the
/// run folder instead, so that cheap attempts cost no file at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmallOutput {
    /// All of stdout, unless it is exactly the result (then it is not repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// All of stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// Bytes per stream up to which output is kept in the log rather than in a file.
pub const SMALL_OUTPUT: usize = 4096;

impl SmallOutput {
    /// True when there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }
}

/// One of an attempt's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// The worker's stdout.
    Stdout,
    /// The worker's stderr.
    Stderr,
}

impl OutputStream {
    /// "stdout" or "stderr", as in file names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// What follows a failed attempt; decided when the failure is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "then", rename_all = "snake_case")]
pub enum AfterFailure {
    /// Wait, then queue the next attempt.
    Retry {
        /// Chosen backoff delay.
        delay_ms: u64,
        /// When the task is due again (ms since the epoch).
        due_ms: u64,
    },
    /// Wait, then try the same attempt again: the attempt is not spent.
    Defer {
        /// Chosen backoff delay.
        delay_ms: u64,
        /// When the task is due again.
        due_ms: u64,
    },
    /// Give up until an operator acts.
    DeadLetter {
        /// Why, in plain words.
        reason: String,
    },
    /// Attempts are spent (or never to be retried), and the task has a `fallback`:
    /// it takes the fallback (degraded) instead of being dead-lettered.
    Fallback {
        /// Why the fallback was needed.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_empty_only_without_both_streams() {
        let text = || Some("x".to_string());
        assert!(SmallOutput::default().is_empty());
        assert!(!SmallOutput { stdout: text(), stderr: None }.is_empty());
        assert!(!SmallOutput { stdout: None, stderr: text() }.is_empty());
    }
}
