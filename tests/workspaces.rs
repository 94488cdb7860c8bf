//! Task workspaces (issue 17 item 4, DESIGN §13) with real git and real processes:
//! two tasks write the same file name in their own worktrees without conflict and
//! each diff is shown with its result; a retry and a resumed manager reuse the
//! worktree; `clean` removes worktrees and refuses a live run; a bad `repo` is a
//! validate error; `temp` gives each task a fresh folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{kill_pid, read_events, task, toml_string, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

/// `git -C dir ARGS` with a fixed identity; panics with git's words on failure.
#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output_within("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository `repo` in the scratch folder with one commit (a README).
fn repo(s: &Scratch) -> PathBuf {
    let repo = s.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    repo
}

/// A pool of `sh -c SCRIPT` workers in `workspace = "git-worktree"` on `repo`.
fn worktree_pool(script: &str, extra: &str) -> String {
    format!(
        "[[pool]]\nname = \"agent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 2\nworkspace = \"git-worktree\"\nrepo = \"repo\"\n{extra}\n",
        toml_string(script)
    )
}

fn inspect_json(s: &Scratch, task: Option<&str>) -> Value {
    let mut cmd = s.pitboss();
    cmd.arg("inspect").arg(s.run_dir()).arg("--json");
    if let Some(t) = task {
        cmd.arg(t);
    }
    let out = cmd.output_within("pitboss inspect --json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn of_type<'a>(events: &'a [Value], kind: &str, task: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind && e["task"] == task).collect()
}

#[test]
fn two_worktree_tasks_write_the_same_file_without_conflict_and_each_diff_is_shown_with_its_result() {
    let s = Scratch::new();
    let repo = repo(&s);
    // Both write answer.txt (and change the README) in their cwd; a gate checks the
    // file is where the worker wrote it (gates run in the workspace too).
    let script = r#"cat >/dev/null; echo "$PITBOSS_TASK_ID" > answer.txt; echo "by $PITBOSS_TASK_ID" >> README; printf '{"dir":"%s"}\n' "$PWD""#;
    let gate = r#"gates = [{ command = ["sh", "-c", "cat >/dev/null; test -f answer.txt"] }]"#;
    let wf = format!("{}[[task]]\nid = \"a\"\n{gate}\n[[task]]\nid = \"b\"\n{gate}\n", worktree_pool(script, ""));
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{doc}\n{}", String::from_utf8_lossy(&out.stderr));

    let run = s.run_dir().canonicalize().unwrap();
    let events = s.events();
    let run_id = doc["run_id"].as_str().unwrap().to_string();
    for id in ["a", "b"] {
        let wt = run.join("worktrees").join(id);
        assert_eq!(std::fs::read_to_string(wt.join("answer.txt")).unwrap(), format!("{id}\n"));
        let result_dir = task(&doc, id)["result"]["dir"].as_str().unwrap().to_string();
        assert_eq!(Path::new(&result_dir).canonicalize().unwrap(), wt, "the worker's cwd is its worktree");
        // Its own branch, pitboss/RUN/ID.
        assert_eq!(git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), format!("pitboss/{run_id}/{id}"));
        let created = of_type(&events, "workspace_created", id);
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!(created[0]["kind"], "git-worktree");
        // The diff is recorded before the result, so the gates and the operator see it with it.
        let pos = |kind: &str| events.iter().position(|e| e["type"] == kind && e["task"] == id).unwrap();
        assert!(pos("diff_recorded") < pos("attempt_succeeded"), "diff after the result");

        // `inspect --json` (the run) and `inspect TASK --json`: the diff with the result.
        let whole = inspect_json(&s, None);
        let diff = &task(&whole, id)["workspace"]["diff"];
        assert!(task(&whole, id)["result"]["dir"].is_string());
        let patch = diff["patch"].as_str().unwrap_or_default();
        assert!(patch.contains("+++ b/answer.txt") && patch.contains(&format!("+{id}\n")), "{id}: {diff}");
        assert!(patch.contains(&format!("+by {id}")), "the README change: {patch}");
        let other = if id == "a" { "b" } else { "a" };
        assert!(!patch.contains(&format!("+{other}\n")), "{id}'s diff holds {other}'s work: {patch}");
        assert!(diff["stat"].as_str().unwrap().contains("2 files changed"), "{diff}");
        let one = inspect_json(&s, Some(id));
        assert_eq!(one["workspace"]["diff"], *diff);
        assert_eq!(one["workspace"]["branch"], format!("pitboss/{run_id}/{id}"));

        // `inspect DIR TASK`: the stat and the patch in the text.
        let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg(id).output_within("pitboss inspect TASK");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("answer.txt | 1 +") && text.contains(&format!("  | +{id}")), "{text}");
    }
    // The repository's own work tree is untouched.
    assert!(!repo.join("answer.txt").exists());
    assert_eq!(std::fs::read_to_string(repo.join("README")).unwrap(), "hello\n");
}

#[test]
fn a_retry_reuses_the_worktree() {
    let s = Scratch::new();
    repo(&s);
    // The first attempt leaves a file and fails; the second finds it.
    let script =
        r#"cat >/dev/null; if [ -f first ]; then printf '{"dir":"%s"}\n' "$PWD"; else touch first; exit 1; fi"#;
    let wf = format!(
        "{}[[task]]\nid = \"t\"\nretry = {{ max_attempts = 2, initial = \"10ms\" }}\n",
        worktree_pool(script, "")
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "t")["attempts"], 2);
    let events = s.events();
    assert_eq!(of_type(&events, "workspace_created", "t").len(), 1, "a retry makes no second workspace");
    let diffs = of_type(&events, "diff_recorded", "t");
    assert_eq!(diffs.len(), 2, "one diff per attempt");
    assert!(diffs[1]["stat"].as_str().unwrap().contains("first"), "{}", diffs[1]);
}

#[test]
fn a_resumed_manager_reuses_the_worktree_after_kill_9() {
    let s = Scratch::new();
    repo(&s);
    let d = s.path().display();
    // Each attempt appends a line in its cwd; the first then hangs until killed.
    let script = format!(
        r#"cat >/dev/null; echo run >> runs.txt; echo $$ >> {d}/pids; if [ "$(wc -l < runs.txt)" -ge 2 ]; then printf '{{"runs":%s}}\n' "$(wc -l < runs.txt)"; exit 0; fi; sleep 1000 & echo $! >> {d}/pids; wait"#
    );
    let file = s.write("workflow.toml", &format!("{}[[task]]\nid = \"t\"\n", worktree_pool(&script, "")));
    let mut manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let runs = s.run_dir().join("worktrees").join("t").join("runs.txt");
    let started = wait_for(Duration::from_secs(30), || runs.exists());
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    assert!(started, "the attempt did not start in its worktree");
    let pids = || std::fs::read_to_string(s.path().join("pids")).unwrap_or_default();
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    pids().lines().filter_map(|l| l.trim().parse().ok()).for_each(kill_pid);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "t")["result"]["runs"], 2, "the resumed attempt ran in the same worktree");
    assert_eq!(of_type(&read_events(&s.run_dir()), "workspace_created", "t").len(), 1);
}

#[test]
fn clean_refuses_a_live_run_then_removes_the_worktrees_and_keeps_the_branches_unless_asked() {
    let s = Scratch::new();
    let repo = repo(&s);
    let go = s.path().join("go");
    let script = format!(
        r#"cat >/dev/null; echo x > made.txt; while [ ! -e {} ]; do sleep 0.05; done; echo '{{"ok":true}}'"#,
        go.display()
    );
    let file = s.write("workflow.toml", &format!("{}[[task]]\nid = \"t\"\n", worktree_pool(&script, "")));
    let mut manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let wt = s.run_dir().join("worktrees").join("t");
    assert!(wait_for(Duration::from_secs(30), || wt.join("made.txt").exists()), "the attempt did not start");

    let live = s.pitboss().arg("clean").arg(s.run_dir()).output_within("pitboss clean (live)");
    let said = String::from_utf8_lossy(&live.stderr);
    assert_eq!(live.status.code(), Some(2), "{said}");
    assert!(said.contains("a live manager (pid"), "{said}");
    assert!(wt.join("made.txt").exists(), "a refused clean removed the worktree");

    std::fs::write(&go, "").unwrap();
    assert!(wait_within(&mut manager, "the run").success());
    let branch = git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim().to_string();

    let out = s.pitboss().arg("clean").arg(s.run_dir()).output_within("pitboss clean");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1 worktrees"));
    assert!(!s.run_dir().join("worktrees").exists());
    let listed = git(&repo, &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 1, "git still lists the worktree: {listed}");
    assert!(git(&repo, &["branch", "--list", &branch]).contains(&branch), "the branch is kept by default");

    let again = s.pitboss().args(["clean", "--branches"]).arg(s.run_dir()).output_within("pitboss clean --branches");
    assert!(again.status.success(), "clean is idempotent: {}", String::from_utf8_lossy(&again.stderr));
    assert!(git(&repo, &["branch", "--list", &branch]).trim().is_empty(), "--branches deletes it");
    assert!(s.run_dir().join("events.jsonl").exists(), "clean keeps the run's record");
}

#[test]
fn a_bad_repo_or_workspace_is_a_validate_error_at_its_value() {
    let s = Scratch::new();
    std::fs::create_dir(s.path().join("plain")).unwrap();
    let cases = [
        (
            "workspace = \"git-worktree\"\nrepo = \"plain\"",
            "6:8: pool \"agent\": repo \"plain\" is not a git repository",
        ),
        (
            "workspace = \"git-worktree\"\nrepo = \"missing\"",
            "6:8: pool \"agent\": repo \"missing\" is not a directory",
        ),
        ("workspace = \"git-worktree\"", "5:13: pool \"agent\": workspace = \"git-worktree\" needs `repo = PATH`"),
        ("workspace = \"tmp\"", "5:13: pool \"agent\": unknown workspace \"tmp\""),
        ("workspace = \"temp\"\ncwd = \"/tmp\"", "6:7: pool \"agent\": set `cwd` or `workspace`, not both"),
        ("repo = \"plain\"", "5:8: pool \"agent\": `repo` only applies with workspace = \"git-worktree\""),
    ];
    for (keys, expected) in cases {
        let wf = format!(
            "[[pool]]\nname = \"agent\"\ncommand = [\"true\"]\nconcurrency = 1\n{keys}\n[[task]]\nid = \"t\"\n"
        );
        let file = s.write("wf.toml", &wf);
        let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{keys}: {said}");
        assert!(said.contains(&format!("wf.toml:{expected}")), "{keys}: expected {expected:?} in {said}");
    }
}

#[test]
fn temp_gives_each_task_a_fresh_folder() {
    let s = Scratch::new();
    // Each counts what it finds in its cwd, then leaves a file there.
    let script = r#"cat >/dev/null; n=$(ls -A | wc -l); echo "$PITBOSS_TASK_ID" > mine.txt; printf '{"dir":"%s","found":%s}\n' "$PWD" "$n""#;
    let wf = format!(
        "[[pool]]\nname = \"agent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 2\nworkspace = \"temp\"\n[[task]]\nid = \"a\"\n[[task]]\nid = \"plan.x\"\nworkspace = \"temp\"\n",
        toml_string(script)
    );
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    let run = s.run_dir().canonicalize().unwrap();
    let events = s.events();
    for id in ["a", "plan.x"] {
        let dir = Path::new(task(&doc, id)["result"]["dir"].as_str().unwrap()).canonicalize().unwrap();
        assert_eq!(dir, run.join("workspaces").join(id));
        assert_eq!(task(&doc, id)["result"]["found"], 0, "{id}'s folder was not fresh");
        assert_eq!(std::fs::read_to_string(dir.join("mine.txt")).unwrap(), format!("{id}\n"));
        let diff = of_type(&events, "diff_recorded", id);
        assert!(diff[0]["stat"].as_str().unwrap().contains("mine.txt"), "{:?}", diff);
    }
}
