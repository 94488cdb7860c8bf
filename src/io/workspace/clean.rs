//! `pitboss clean DIR`'s work on disk: every worktree of the run removed from its
//! repository (`git worktree remove --force`, then `git worktree prune`), the temp
//! workspaces and pitboss's side files deleted, and the run's branches deleted only
//! when asked (by default they stay, so the work stays reviewable and mergeable).
//! Idempotent: what is gone already is skipped. The caller holds the run's lock.

use std::path::{Path, PathBuf};

use super::git;
use crate::core::workflow::{TEMP_WORKSPACES, WORKTREES};

/// What a clean removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Worktrees removed.
    pub worktrees: usize,
    /// Temp workspaces removed.
    pub temp: usize,
    /// Branches deleted (with `--branches`).
    pub branches_deleted: Vec<String>,
    /// The run's branches left in place.
    pub branches_kept: Vec<String>,
}

/// Cleans the run in `state_dir` (run id `run_id`) whose worktrees belong to `repos`.
pub async fn clean(state_dir: &Path, run_id: &str, repos: &[PathBuf], branches: bool) -> Result<Cleaned, String> {
    let mut cleaned = Cleaned::default();
    let worktrees = state_dir.join(WORKTREES);
    for path in entries(&worktrees) {
        let path_arg = path.display().to_string();
        let mut removed = false;
        for repo in repos {
            if git(repo, &["worktree", "remove", "--force", "--force", &path_arg], &[], 16 * 1024).await.is_ok() {
                removed = true;
                break;
            }
        }
        // Not a worktree of any of the run's repositories (half made, or its
        // repository gone): only a folder now.
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
        if removed || !path.exists() {
            cleaned.worktrees += 1;
        }
    }
    let prefix = format!("refs/heads/pitboss/{}/", crate::core::workflow::encode_id(run_id));
    for repo in repos {
        if !repo.is_dir() {
            continue;
        }
        git(repo, &["worktree", "prune"], &[], 16 * 1024).await?;
        let listed = git(repo, &["for-each-ref", "--format=%(refname:short)", &prefix], &[], 1 << 20).await?;
        for branch in String::from_utf8_lossy(&listed.out).lines().map(str::trim).filter(|b| !b.is_empty()) {
            if branches {
                git(repo, &["branch", "-D", "--quiet", branch], &[], 16 * 1024).await?;
                cleaned.branches_deleted.push(branch.to_string());
            } else {
                cleaned.branches_kept.push(branch.to_string());
            }
        }
    }
    remove_tree(&worktrees)?;
    let temp = state_dir.join(TEMP_WORKSPACES);
    cleaned.temp = entries(&temp).len();
    remove_tree(&temp)?;
    Ok(cleaned)
}

/// The workspaces in a folder (pitboss's side files, whose names start with a dot,
/// left out).
fn entries(folder: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut found: Vec<PathBuf> =
        read.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).map(|e| e.path()).collect();
    found.sort();
    found
}

fn remove_tree(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}
