//! Task workspaces on disk (DESIGN §13): made before a task's first attempt, found
//! again by its retries and by a resumed manager (their place is fixed by the run
//! folder and the task id, see [`Workspace::dir`]), diffed after each attempt, and
//! removed by `pitboss clean`.
//!
//! git runs with a clean environment (PATH, HOME and the locale only: no GIT_DIR
//! from the operator's shell, no prompt), stdin closed, a time limit, and bounded
//! output. `git worktree add` calls of one manager are serialised: concurrent ones
//! on one repository race for its lock files.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::core::event::{DIFF_PATCH_MAX, DIFF_STAT_MAX};
use crate::core::workflow::{branch_name, leaf, Workspace, WORKTREES};

mod clean;

pub use clean::{clean, Cleaned};

/// How long one git command may take before it is ended (a worktree of a large
/// repository checks out many files).
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// One manager's `git worktree add`s, one at a time.
static ADDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A workspace ready for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Its directory: the attempt's cwd.
    pub path: PathBuf,
    /// Set when this call made it (else it existed: a retry, a resumed manager).
    pub created: Option<Created>,
}

/// What a new workspace was made from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Created {
    /// The worktree's branch.
    pub branch: Option<String>,
    /// The commit it started from.
    pub base: Option<String>,
}

/// What an attempt left in its workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// `git diff --stat`, or the files of a temp workspace.
    pub stat: String,
    /// The patch (none for a temp workspace), at most [`DIFF_PATCH_MAX`] bytes.
    pub patch: String,
    /// Patch bytes cut.
    pub cut_bytes: u64,
}

/// Makes (or finds again) the workspace of `task` (`replica` of a consensus task).
pub async fn prepare(
    ws: &Workspace,
    state_dir: &Path,
    run_id: &str,
    task: &str,
    replica: Option<u32>,
) -> Result<Ready, String> {
    let path = ws.dir(state_dir, task, replica);
    match ws {
        Workspace::Temp => {
            if path.is_dir() {
                return Ok(Ready { path, created: None });
            }
            private_dirs(&path).map_err(|e| format!("cannot make the workspace {}: {e}", path.display()))?;
            Ok(Ready { path, created: Some(Created::default()) })
        }
        Workspace::GitWorktree { repo } => {
            let _one_at_a_time = ADDING.lock().await;
            if is_worktree_root(&path).await {
                return Ok(Ready { path, created: None });
            }
            let branch = branch_name(run_id, task, replica);
            let base = base_commit(repo, state_dir, task, replica).await?;
            if path.exists() {
                // Half made by a manager that died in `git worktree add`: made again.
                std::fs::remove_dir_all(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            }
            git(repo, &["worktree", "prune"], &[], 4096).await?;
            if let Some(parent) = path.parent() {
                private_dirs(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
            }
            let path_arg = path.display().to_string();
            // The branch may be there already (a worktree removed by hand, a manager
            // that died after git made it): check it out again rather than fail.
            let exists = git(repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")], &[], 4096)
                .await
                .is_ok();
            let args: Vec<&str> = if exists {
                vec!["worktree", "add", "--quiet", &path_arg, &branch]
            } else {
                vec!["worktree", "add", "--quiet", "-b", &branch, &path_arg, &base]
            };
            git(repo, &args, &[], 16 * 1024).await.map_err(|e| format!("git worktree add failed: {e}"))?;
            Ok(Ready { path, created: Some(Created { branch: Some(branch), base: Some(base) }) })
        }
    }
}

/// What the workspace holds now against where it started: for a worktree, every
/// change (commits, edits, new files not ignored) against its base commit, read
/// through a copy of its index so the agent's own staging is left as it was.
pub async fn diff(ws: &Workspace, state_dir: &Path, task: &str, replica: Option<u32>) -> Result<Diff, String> {
    let path = ws.dir(state_dir, task, replica);
    match ws {
        Workspace::Temp => Ok(Diff { stat: list_files(&path), ..Diff::default() }),
        Workspace::GitWorktree { repo } => {
            let base = base_commit(repo, state_dir, task, replica).await?;
            let side = side_dir(state_dir, "index").join(leaf(task, replica));
            private_dirs(side.parent().unwrap_or(state_dir)).map_err(|e| e.to_string())?;
            let own = git(&path, &["rev-parse", "--path-format=absolute", "--git-path", "index"], &[], 4096).await?;
            let own = PathBuf::from(String::from_utf8_lossy(&own.out).trim());
            let _ = std::fs::remove_file(&side);
            if own.is_file() {
                std::fs::copy(&own, &side).map_err(|e| format!("cannot copy the worktree's index: {e}"))?;
            }
            let index = side.display().to_string();
            let env = [("GIT_INDEX_FILE", index.as_str())];
            let result = async {
                git(&path, &["add", "--all", "."], &env, 16 * 1024).await?;
                let stat = git(&path, &["diff", "--cached", "--stat=120", &base], &env, DIFF_STAT_MAX).await?;
                let patch = git(&path, &["diff", "--cached", "--no-color", &base], &env, DIFF_PATCH_MAX).await?;
                Ok::<_, String>(Diff {
                    stat: String::from_utf8_lossy(&stat.out).into_owned(),
                    patch: String::from_utf8_lossy(&patch.out).into_owned(),
                    cut_bytes: patch.cut,
                })
            }
            .await;
            let _ = std::fs::remove_file(&side);
            result
        }
    }
}

/// The commit a task's worktree starts from: the repository's HEAD when it was
/// first asked for, kept in the run folder (written before the worktree exists, so
/// a resumed manager diffs against the same commit).
async fn base_commit(repo: &Path, state_dir: &Path, task: &str, replica: Option<u32>) -> Result<String, String> {
    let file = side_dir(state_dir, "base").join(leaf(task, replica));
    if let Ok(text) = std::fs::read_to_string(&file) {
        if !text.trim().is_empty() {
            return Ok(text.trim().to_string());
        }
    }
    let head = git(repo, &["rev-parse", "--verify", "HEAD^{commit}"], &[], 4096).await?;
    let head = String::from_utf8_lossy(&head.out).trim().to_string();
    private_dirs(file.parent().unwrap_or(state_dir)).map_err(|e| e.to_string())?;
    write_durable(&file, head.as_bytes()).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(head)
}

/// `RUN/worktrees/.NAME`: files pitboss keeps beside the worktrees (a leading dot,
/// which no encoded id has, so it is never a task's worktree).
fn side_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(WORKTREES).join(format!(".{name}"))
}

async fn is_worktree_root(path: &Path) -> bool {
    if !path.join(".git").exists() {
        return false;
    }
    match git(path, &["rev-parse", "--show-toplevel"], &[], 4096).await {
        Ok(out) => {
            let top = PathBuf::from(String::from_utf8_lossy(&out.out).trim());
            same_file(&top, path)
        }
        Err(_) => false,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The files of a temp workspace, one per line with its size, sorted; bounded.
fn list_files(root: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(root).map(Path::to_path_buf).unwrap_or_default();
                files.push((rel.display().to_string(), meta.len()));
            }
        }
    }
    files.sort();
    let mut out = String::new();
    let count = files.len();
    for (name, size) in files {
        let line = format!(" {name} ({size} bytes)\n");
        if out.len() + line.len() > DIFF_STAT_MAX.saturating_sub(64) {
            out.push_str(" …\n");
            break;
        }
        out.push_str(&line);
    }
    let plural = if count == 1 { "" } else { "s" };
    out.push_str(&format!(" {count} file{plural} in the workspace\n"));
    out
}

/// Folders made 0700 (the run folder's rule, DESIGN §14).
fn private_dirs(path: &Path) -> std::io::Result<()> {
    crate::io::fsutil::create_private_dir(path)
}

/// A small private file, written and synced.
fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::io::fsutil::private_file().write(true).create(true).truncate(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A git command's stdout (at most `cap` bytes kept; `cut` counts the rest).
pub(crate) struct GitOut {
    pub(crate) out: Vec<u8>,
    pub(crate) cut: u64,
}

/// Runs `git -C dir ARGS` (see the module's notes); Err carries git's own message.
pub(crate) async fn git(dir: &Path, args: &[&str], env: &[(&str, &str)], cap: usize) -> Result<GitOut, String> {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir).args(args).env_clear();
    for name in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.env("GIT_TERMINAL_PROMPT", "0").env("GIT_OPTIONAL_LOCKS", "0");
    command.envs(env.iter().copied());
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // Its own process group, as every child of the manager: the orphan reaper takes a
    // child outside one for an adopted orphan and reaps it, stealing the exit status
    // this waits for (`io/runner/orphans.rs`).
    #[cfg(unix)]
    command.process_group(0);
    let shown = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    let mut child = command.spawn().map_err(|e| format!("cannot run git ({e})"))?;
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let read_out = async {
            let mut kept = Vec::new();
            let mut cut = 0u64;
            if let Some(out) = stdout.as_mut() {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match out.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = cap.saturating_sub(kept.len()).min(n);
                            kept.extend_from_slice(&buf[..room]);
                            cut += (n - room) as u64;
                        }
                    }
                }
            }
            (kept, cut)
        };
        let read_err = async {
            let mut text = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.take(16 * 1024).read_to_end(&mut text).await;
            }
            text
        };
        let ((out, cut), err) = tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (out, cut, err, status)
    };
    let (out, cut, err, status) =
        tokio::time::timeout(GIT_TIMEOUT, run).await.map_err(|_| format!("git {shown} took over {GIT_TIMEOUT:?}"))?;
    let status = status.map_err(|e| format!("git {shown}: {e}"))?;
    if !status.success() {
        let said = String::from_utf8_lossy(&err);
        let said = said.trim();
        return Err(format!("git {shown}: {}", if said.is_empty() { "failed" } else { said }));
    }
    Ok(GitOut { out, cut })
}
