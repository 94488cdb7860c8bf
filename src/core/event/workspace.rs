//! What the workspace events carry (DESIGN §13, §16): a task's workspace was made,
//! and what an attempt changed in it. Each is the payload of one [`super::Event`]
//! variant of the same name, its fields written beside the `type` tag. Neither
//! changes a task's state: they are notes read back by `inspect` and the TUI.

use serde::{Deserialize, Serialize};

/// `workspace_created`: the directory a task's attempts run in exists now (made
/// before its first attempt; retries and a resumed manager reuse it, so it is
/// recorded once per task, or per consensus replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCreated {
    /// Task id.
    pub task: String,
    /// The attempt it was made for.
    pub attempt: u32,
    /// A consensus replica's own workspace (none for a plain task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// `temp` or `git-worktree`.
    pub kind: String,
    /// Its directory (absolute).
    pub path: String,
    /// Its git branch (`pitboss/RUN/ID`) for a worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit it started from (the diff's base) for a worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// `diff_recorded`: what the task's workspace holds after an attempt, against the
/// commit it started from (untracked files included), recorded just before the
/// attempt's end so gates and the operator see it with the result. Bounded: a long
/// patch is cut and says by how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRecorded {
    /// Task id.
    pub task: String,
    /// The attempt that ended.
    pub attempt: u32,
    /// A consensus replica's workspace (none for a plain task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// `git diff --stat` (for a temp workspace: the files in it, with their sizes).
    pub stat: String,
    /// The patch (empty for a temp workspace), cut at [`DIFF_PATCH_MAX`] bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub patch: String,
    /// Bytes of patch cut off (0 when whole; not written then).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut_bytes: u64,
}

/// Bytes of a patch kept in the log (the rest is counted in `cut_bytes`).
pub const DIFF_PATCH_MAX: usize = 64 * 1024;
/// Bytes of a stat kept in the log.
pub const DIFF_STAT_MAX: usize = 8 * 1024;

fn is_zero(n: &u64) -> bool {
    *n == 0
}
