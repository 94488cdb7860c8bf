//! `workspace = "temp" | "git-worktree"` and `repo = PATH` on a pool or a task
//! (DESIGN §13). `repo` is relative to the workflow file and must be a git
//! repository with a commit (its HEAD is what each worktree checks out): checked
//! here, at validate time, by asking git itself, so a typo is a `FILE:LINE:COL`
//! error and not a dead letter per task later.

use std::path::Path;
use std::process::{Command, Stdio};

use toml::Spanned;

use super::check::Checker;
use crate::core::workflow::Workspace;

impl Checker<'_> {
    /// The workspace a pool or task (`whose`, for messages) asks for, if any, after
    /// reporting what is wrong with its keys.
    pub(super) fn workspace(
        &mut self,
        kind: Option<&Spanned<String>>,
        repo: Option<&Spanned<String>>,
        whose: &str,
    ) -> Option<Workspace> {
        let Some(kind) = kind else {
            if let Some(repo) = repo {
                self.report(repo.span(), format!("{whose}: `repo` only applies with workspace = \"git-worktree\""));
            }
            return None;
        };
        match kind.get_ref().as_str() {
            "temp" => {
                if let Some(repo) = repo {
                    let message =
                        format!("{whose}: `repo` only applies with workspace = \"git-worktree\", not \"temp\"");
                    self.report(repo.span(), message);
                }
                Some(Workspace::Temp)
            }
            "git-worktree" => {
                let Some(repo) = repo else {
                    let message =
                        format!("{whose}: workspace = \"git-worktree\" needs `repo = PATH` (a git repository)");
                    self.report(kind.span(), message);
                    return None;
                };
                let path = std::path::absolute(self.base.join(repo.get_ref()))
                    .unwrap_or_else(|_| self.base.join(repo.get_ref()));
                if let Err(why) = git_repository(&path) {
                    self.report(repo.span(), format!("{whose}: repo {:?} {why}", repo.get_ref()));
                    return None;
                }
                Some(Workspace::GitWorktree { repo: path })
            }
            other => {
                let message = format!("{whose}: unknown workspace {other:?}: expected \"temp\" or \"git-worktree\"");
                self.report(kind.span(), message);
                None
            }
        }
    }

    /// A pool's `workspace` and `repo`, checked with the keys they exclude (`cwd`, and
    /// a persistent `mode`).
    pub(super) fn pool_workspace(
        &mut self,
        raw: &super::parse::RawPool,
        mode: crate::core::workflow::PoolMode,
    ) -> Option<crate::core::workflow::Workspace> {
        let whose = format!("pool {:?}", raw.name.get_ref());
        let workspace = self.workspace(raw.workspace.as_ref(), raw.repo.as_ref(), &whose);
        if let (Some(cwd), Some(_)) = (&raw.cwd, &workspace) {
            // The workspace is the worker's cwd: two answers to one question.
            self.report(cwd.span(), format!("{whose}: set `cwd` or `workspace`, not both (the workspace is the cwd)"));
        }
        if let (Some(ws), crate::core::workflow::PoolMode::Persistent) = (&raw.workspace, mode) {
            let message = format!(
                "{whose}: `workspace` only applies to mode = \"spawn\" (a persistent process serves many tasks)"
            );
            self.report(ws.span(), message);
        }
        workspace
    }
}

/// Ok when `path` is (inside) a git work tree whose HEAD is a commit; else why not,
/// in words that follow the path (`… is not a git repository (git: …)`).
pub(super) fn git_repository(path: &Path) -> Result<(), String> {
    if !path.is_dir() {
        return Err("is not a directory".into());
    }
    let run = |args: &[&str]| {
        let mut command = Command::new("git");
        command.arg("-C").arg(path).args(args);
        // No prompts and no inherited GIT_DIR: the answer is about `path` alone.
        command.env_remove("GIT_DIR").env_remove("GIT_WORK_TREE").env("GIT_TERMINAL_PROMPT", "0");
        command.stdin(Stdio::null()).output()
    };
    let inside = run(&["rev-parse", "--is-inside-work-tree"]).map_err(|e| format!("cannot be checked: git: {e}"))?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        let said = String::from_utf8_lossy(&inside.stderr).trim().to_string();
        return Err(format!("is not a git repository (git: {})", said.lines().next().unwrap_or("not a work tree")));
    }
    let head = run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).map_err(|e| format!("git: {e}"))?;
    if !head.status.success() {
        return Err("has no commit yet: a worktree checks out HEAD, so commit something first".into());
    }
    Ok(())
}
