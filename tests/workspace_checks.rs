//! What `pitboss validate` says about workspaces that cannot work (issue 17): a `git`
//! that hangs while `repo` is checked is killed at the check's time limit and named
//! in a plain error (validate returns, no git is left behind); a workspace in a broker
//! run is refused at its key, saying why.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{kill_pid, OutputWithin, Scratch};

/// A workflow with pool `agent` on `workspace = "git-worktree"`, `repo = "repo"`, and
/// `run` keys before it.
fn workflow(run: &str) -> String {
    format!(
        "{run}[[pool]]\nname = \"agent\"\ncommand = [\"true\"]\nworkspace = \"git-worktree\"\nrepo = \"repo\"\n\
         [[task]]\nid = \"t\"\n"
    )
}

/// True while `pid` names a process.
fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

#[cfg(unix)]
#[test]
fn a_hung_git_is_killed_at_the_time_limit_and_validate_says_which_repo() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    std::fs::create_dir(s.path().join("repo")).unwrap();
    // The stand-in git writes its pid, then hangs as that same process.
    let bin = s.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let pid_file = s.path().join("git.pid");
    let script = format!("#!/bin/sh\necho $$ > '{}'\nexec sleep 1000\n", pid_file.display());
    std::fs::write(bin.join("git"), script).unwrap();
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let file = s.write("wf.toml", &workflow(""));

    let (out, took) = (0..3)
        .map(|_| {
            let started = Instant::now();
            let out = s
                .pitboss()
                .arg("validate")
                .arg(&file)
                .env("PATH", &path)
                .env("PITBOSS_GIT_CHECK_TIMEOUT_MS", "400")
                .output_within("pitboss validate with a hung git");
            (out, started.elapsed())
        })
        // A script just written can be "busy" while another test thread forks.
        .find(|(out, _)| !String::from_utf8_lossy(&out.stderr).contains("Text file busy"))
        .expect("git could be started");
    let pid: Option<i32> = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok());
    let left = pid.filter(|&p| alive(p));
    if let Some(p) = left {
        kill_pid(p);
    }
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(took < Duration::from_secs(20), "validate took {took:?}");
    assert!(
        said.contains("wf.toml:5:8: pool \"agent\": repo \"repo\" cannot be checked: git rev-parse"),
        "the error names the repo: {said}"
    );
    assert!(said.contains("did not answer within 400ms (killed)"), "the error names the limit: {said}");
    assert!(pid.is_some(), "the stand-in git ran");
    assert_eq!(left, None, "the hung git was left running");
}

#[test]
fn a_workspace_in_a_broker_run_is_refused_at_its_key_saying_why() {
    let s = Scratch::new();
    let repo = s.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output_within("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "--quiet"]);
    git(&["commit", "--quiet", "--allow-empty", "-m", "first"]);
    let wf = workflow("[run]\nbroker = \"redis://127.0.0.1:6379\"\n")
        .replace("[[task]]\nid = \"t\"\n", "[[task]]\nid = \"t\"\n[[task]]\nid = \"u\"\nworkspace = \"temp\"\n");
    let file = s.write("wf.toml", &wf);
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let why = "is not available in a broker run: its workers run on other machines, which cannot use a worktree \
               or folder on the manager's";
    assert!(said.contains(&format!("wf.toml:6:13: pool \"agent\": workspace {why}")), "{said}");
    assert!(said.contains(&format!("wf.toml:12:13: task \"u\": workspace {why}")), "{said}");
    assert!(Path::new(&file).exists());
}
