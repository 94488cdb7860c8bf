//! Where a task's attempts run (DESIGN §13): a fresh directory (`temp`) or a git
//! worktree on a branch of its own (`git-worktree`), under the run folder. The
//! names made from a task id use one reversible encoding (DESIGN §3), so that
//! `plan` and `plan/collect` never collide as folders or git refs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A pool's or a task's `workspace = …` (a task's wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Workspace {
    /// A fresh, empty directory per task: `RUN/workspaces/ID`.
    Temp,
    /// `git worktree add` of `repo`'s HEAD on branch `pitboss/RUN/ID`, at
    /// `RUN/worktrees/ID`.
    GitWorktree {
        /// The repository (absolute; checked to be a git repository at validate time).
        repo: PathBuf,
    },
}

/// The folder of the run's worktrees, inside the run folder.
pub const WORKTREES: &str = "worktrees";
/// The folder of the run's temp workspaces, inside the run folder.
pub const TEMP_WORKSPACES: &str = "workspaces";

impl Workspace {
    /// `temp` or `git-worktree`, as written in a workflow.
    pub fn label(&self) -> &'static str {
        match self {
            Workspace::Temp => "temp",
            Workspace::GitWorktree { .. } => "git-worktree",
        }
    }

    /// The directory a task's (or a consensus replica's) workspace is in: fixed by the
    /// run folder and the ids, so a retry and a resumed manager find the same one.
    pub fn dir(&self, state_dir: &Path, task: &str, replica: Option<u32>) -> PathBuf {
        let folder = match self {
            Workspace::Temp => TEMP_WORKSPACES,
            Workspace::GitWorktree { .. } => WORKTREES,
        };
        state_dir.join(folder).join(leaf(task, replica))
    }
}

/// The file and ref name of a task's workspace: the encoded id, and `+rR` for a
/// consensus replica (`+` never appears in an encoded id, so `a` replica 1 and a task
/// named `a.r1` stay apart).
pub fn leaf(task: &str, replica: Option<u32>) -> String {
    match replica {
        Some(r) => format!("{}+r{r}", encode_id(task)),
        None => encode_id(task),
    }
}

/// The branch of a task's worktree: `pitboss/RUN/ID` (DESIGN §13).
pub fn branch_name(run_id: &str, task: &str, replica: Option<u32>) -> String {
    format!("pitboss/{}/{}", encode_id(run_id), leaf(task, replica))
}

/// The documented, reversible encoding of an id as one file or ref name component:
/// bytes outside `[A-Za-z0-9_.-]` become `%XX`, and so does a `.` that git refuses in
/// a ref (`..`, a leading or trailing `.`, a `.lock` ending). [`decode_id`] undoes it.
pub fn encode_id(id: &str) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(id.len());
    for (k, &b) in bytes.iter().enumerate() {
        let dot_refused = b == b'.'
            && (k == 0
                || k + 1 == bytes.len()
                || bytes.get(k + 1) == Some(&b'.')
                || (k > 0 && bytes[k - 1] == b'.')
                || id[k..].eq_ignore_ascii_case(".lock"));
        if (b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) && !dot_refused {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The id [`encode_id`] encoded (None for text it cannot have written).
pub fn decode_id(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k] == b'%' {
            let hex = name.get(k + 1..k + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            k += 3;
        } else {
            out.push(bytes[k]);
            k += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_encode_reversibly_and_never_collide() {
        for id in ["plan", "plan/collect", "a.r1", "x..y", "end.", "file.lock", "é/ü", "a%2Fb"] {
            let enc = encode_id(id);
            assert_eq!(decode_id(&enc).as_deref(), Some(id), "{enc}");
            assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-%".contains(&b)), "{enc}");
        }
        assert_ne!(encode_id("plan/collect"), encode_id("plan~collect"));
        assert_eq!(encode_id("plan/collect"), "plan%2Fcollect");
        assert_ne!(leaf("a", Some(1)), leaf("a.r1", None));
    }

    #[test]
    fn branch_names_are_valid_git_refs() {
        // git check-ref-format's rules that an encoded id could break.
        for id in ["x..y", "end.", "file.lock", "a b", "a@{1}", "a~1^2:3?*[\\"] {
            let branch = branch_name("0123abcd", id, None);
            let last = branch.rsplit('/').next().unwrap();
            assert!(!branch.contains("..") && !branch.contains("@{") && !last.starts_with('.'), "{branch}");
            assert!(!branch.ends_with('.') && !branch.ends_with(".lock"), "{branch}");
            assert!(!branch.chars().any(|c| " ~^:?*[\\".contains(c)), "{branch}");
        }
        assert_eq!(branch_name("r1", "plan/collect", Some(2)), "pitboss/r1/plan%2Fcollect+r2");
    }
}
