//! `workspace = "temp" | "git-worktree"` and `repo = PATH` on a pool or a task
//! (DESIGN §13). `repo` is relative to the workflow file and must be a git
//! repository with a commit (its HEAD is what each worktree checks out): checked
//! here, at validate time, by asking git itself, so a typo is a `FILE:LINE:COL`
//! error and not a dead letter per task later.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

    /// A broker run (DESIGN §7) refuses every `workspace`, at the key: its attempts run
    /// on workers on other machines, which cannot use a folder on the manager's.
    pub(super) fn no_workspaces_in_broker_run(&mut self, raw: &super::parse::RawWorkflow) {
        let pools = raw.pool.iter().map(|p| (p.workspace.as_ref(), format!("pool {:?}", p.name.get_ref())));
        let tasks = raw.task.iter().map(|t| (t.workspace.as_ref(), format!("task {:?}", t.id.get_ref())));
        for (workspace, whose) in pools.chain(tasks) {
            if let Some(ws) = workspace {
                let message = format!(
                    "{whose}: workspace is not available in a broker run: its workers run on other machines, \
                     which cannot use a worktree or folder on the manager's (drop `workspace`, or run without a broker)"
                );
                self.report(ws.span(), message);
            }
        }
    }
}

/// How long validation waits for one `git` command before it gives up on it: a
/// repository on a hung network mount (or a `git` wrapper waiting for something)
/// must not hang `pitboss validate`. Both commands are answered from local files in
/// milliseconds when git is well.
pub const GIT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces [`GIT_CHECK_TIMEOUT`] (milliseconds), so that tests of a hung `git` do not
/// wait ten seconds.
pub const GIT_CHECK_TIMEOUT_ENV: &str = "PITBOSS_GIT_CHECK_TIMEOUT_MS";

/// How often a running `git` is looked at: well under the timeout, rare enough to cost
/// nothing next to git's own start.
const GIT_POLL: Duration = Duration::from_millis(5);

/// The wait for each `git` command: [`GIT_CHECK_TIMEOUT_ENV`] when set to a number of
/// milliseconds, else [`GIT_CHECK_TIMEOUT`].
fn git_check_timeout() -> Duration {
    std::env::var(GIT_CHECK_TIMEOUT_ENV)
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(GIT_CHECK_TIMEOUT, Duration::from_millis)
}

/// Ok when `path` is (inside) a git work tree whose HEAD is a commit; else why not,
/// in words that follow the path (`… is not a git repository (git: …)`).
pub(super) fn git_repository(path: &Path) -> Result<(), String> {
    git_repository_with(path, Path::new("git"), git_check_timeout())
}

/// [`git_repository`] with the program run as git and the wait for each command.
fn git_repository_with(path: &Path, git: &Path, timeout: Duration) -> Result<(), String> {
    if !path.is_dir() {
        return Err("is not a directory".into());
    }
    let run = |args: &[&str]| {
        let mut command = Command::new(git);
        command.arg("-C").arg(path).args(args);
        // No prompts and no inherited GIT_DIR: the answer is about `path` alone.
        command.env_remove("GIT_DIR").env_remove("GIT_WORK_TREE").env("GIT_TERMINAL_PROMPT", "0");
        command.stdin(Stdio::null());
        output_within(command, timeout)
    };
    let inside = run(&["rev-parse", "--is-inside-work-tree"]).map_err(|e| format!("cannot be checked: {e}"))?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        let said = String::from_utf8_lossy(&inside.stderr).trim().to_string();
        return Err(format!("is not a git repository (git: {})", said.lines().next().unwrap_or("not a work tree")));
    }
    let head =
        run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).map_err(|e| format!("cannot be checked: {e}"))?;
    if !head.status.success() {
        return Err("has no commit yet: a worktree checks out HEAD, so commit something first".into());
    }
    Ok(())
}

/// Runs `command` to its end, or kills it (by its pid, the child this call started)
/// once `timeout` has passed: Err says which.
fn output_within(mut command: Command, timeout: Duration) -> Result<Output, String> {
    let args: Vec<String> = command.get_args().skip(2).map(|a| a.to_string_lossy().into_owned()).collect();
    let shown = format!("git {}", args.join(" "));
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| format!("{shown}: {e}"))?;
    // The pipes are read beside the wait, so a chatty git never blocks on a full pipe.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(GIT_POLL),
            Ok(None) => {
                // Killed and reaped: no git is left behind. The reader threads end
                // with the pipes (or with the process, should a child of git keep them).
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not answer within {timeout:?} (killed)"));
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(Output { status, stdout, stderr })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in for git that hangs: it writes its pid to `pid` and becomes `sleep`.
    fn hung_git(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (git, pid) = (dir.join("git"), dir.join("git.pid"));
        std::fs::write(&git, format!("#!/bin/sh\necho $$ > '{}'\nexec sleep 1000\n", pid.display())).unwrap();
        std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
        (git, pid)
    }

    #[test]
    fn a_hung_git_is_killed_at_the_timeout_and_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (git, pid_file) = hung_git(dir.path());
        let mut tries = 0;
        let (err, took) = loop {
            let started = Instant::now();
            let err = git_repository_with(dir.path(), &git, Duration::from_millis(300)).expect_err("a hung git fails");
            // A script just written can be "busy" while another test thread forks.
            tries += 1;
            if !err.contains("Text file busy") || tries == 5 {
                break (err, started.elapsed());
            }
        };
        assert!(took < Duration::from_secs(5), "returned after {took:?}");
        assert!(err.contains("cannot be checked: git rev-parse --is-inside-work-tree"), "{err}");
        assert!(err.contains("did not answer within 300ms"), "{err}");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // The hung process was killed and reaped: its pid names no process any more.
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if alive {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        assert!(!alive, "the hung git (pid {pid}) was left running");
    }

    #[test]
    fn a_quick_git_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join("git");
        std::fs::write(&git, "#!/bin/sh\necho nope >&2\nexit 128\n").unwrap();
        std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = git_repository_with(dir.path(), &git, Duration::from_secs(10)).expect_err("git said no");
        assert_eq!(err, "is not a git repository (git: nope)");
    }
}
