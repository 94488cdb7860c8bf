//! `pitboss clean DIR`: removes a stopped run's workspaces (DESIGN §13): its git
//! worktrees (`git worktree remove --force`, `git worktree prune`) and its temp
//! workspaces. The branches stay unless `--branches` is given: the work on them is
//! what the run produced, reviewable and mergeable after the folders are gone.
//! Refused while a manager holds the run (its attempts run in those folders); the
//! lock is held while cleaning, so no manager starts meanwhile. Idempotent.

use std::path::{Path, PathBuf};

use super::run::CmdResult;
use super::{load, usage, EXIT_OK};
use crate::core::workflow::Workspace;
use crate::io::rundir::{is_held, RunDir, RunDirError};

/// `pitboss clean DIR [--branches]`.
pub fn clean(dir: &Path, branches: bool) -> CmdResult {
    let live_manager = |path: &Path, pid: &str| {
        usage(format!(
            "{}: a live manager (pid {pid}) holds this run and its attempts run in its workspaces; stop it (or let it finish), then clean",
            path.display()
        ))
    };
    if let Some(pid) = is_held(dir) {
        return Err(live_manager(dir, &pid));
    }
    let state = load(dir)?;
    let held = RunDir::hold(dir).map_err(|e| match e {
        RunDirError::Held { path, pid } => live_manager(&path, &pid),
        other => usage(other),
    })?;
    let wf = &state.workflow;
    let mut repos: Vec<PathBuf> = Vec::new();
    let named =
        wf.pools.iter().filter_map(|p| p.workspace.as_ref()).chain(wf.tasks.iter().filter_map(|t| t.workspace()));
    for ws in named {
        if let Workspace::GitWorktree { repo } = ws {
            if !repos.contains(repo) {
                repos.push(repo.clone());
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(usage)?;
    let cleaned = runtime
        .block_on(crate::io::workspace::clean(&held.path, &state.run_id, &repos, branches))
        .map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    println!("{}: removed {} worktrees and {} temp workspaces", dir.display(), cleaned.worktrees, cleaned.temp);
    if !cleaned.branches_deleted.is_empty() {
        println!("deleted {} branches: {}", cleaned.branches_deleted.len(), cleaned.branches_deleted.join(", "));
    }
    if !cleaned.branches_kept.is_empty() {
        println!(
            "kept {} branches (`pitboss clean {} --branches` deletes them): {}",
            cleaned.branches_kept.len(),
            dir.display(),
            cleaned.branches_kept.join(", ")
        );
    }
    Ok(EXIT_OK)
}
