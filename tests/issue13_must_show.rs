//! Issue 13's "Must show" with the real binary, end to end: a headless run whose
//! planner spawned more children than `max_children` waits (it is not given
//! `--exit-when-blocked`), a worker-side ledger proves none of the held children ran,
//! and `pitboss ctl DIR approve|reject` from a second process answers them; `pitboss
//! submit DIR FILE` grows a live run, and a bad file is refused at its line and column
//! with nothing recorded.

mod common;
mod ctl_common;

use common::{read_events, Scratch};
use ctl_common::{eventually, stderr, stdout, Live};
use serde_json::Value;

const SIM: &str = "command = [\"{pitboss}\", \"sim-agent\", \"--role\", \"writer\"]";

/// A planner of `parts` parts (plus `combine`) under `max_children = 3`, and `publish`
/// depending on the planner; every worker appends its id to the scratch's ledger and
/// saves its stdin.
fn held_planner(s: &Scratch, parts: u32) -> String {
    let stdin = s.path().join("stdin");
    std::fs::create_dir_all(&stdin).expect("stdin folder");
    let ledger = s.path().join("ledger");
    format!(
        "[run]\nname = \"held\"\nkill_grace = \"200ms\"\n[planner]\nmax_children = 3\n\
         [[pool]]\nname = \"planner\"\n{SIM}\ncapabilities = [\"plan\"]\n\
         [[pool]]\nname = \"writer\"\n{SIM}\ncapabilities = [\"write\"]\nconcurrency = 2\n\
         [[task]]\nid = \"plan\"\nrequires = [\"plan\"]\n\
         payload = {{ latency_ms = 20, ledger = {ledger:?}, save_stdin = {stdin:?}, plan = {{ goal = \"g\", subtasks = {parts}, requires = [\"write\"], latency_ms = 20 }} }}\n\
         [[task]]\nid = \"publish\"\nrequires = [\"write\"]\ndepends_on = [\"plan\"]\n\
         payload = {{ aggregate = true, latency_ms = 20, ledger = {ledger:?}, save_stdin = {stdin:?} }}\n",
        ledger = ledger.display().to_string(),
        stdin = stdin.display().to_string(),
    )
}

fn ledger(live: &Live) -> Vec<String> {
    std::fs::read_to_string(live.scratch.path().join("ledger"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn kinds(live: &Live) -> Vec<String> {
    read_events(&live.dir).iter().map(|e| e["type"].as_str().unwrap_or("").to_string()).collect()
}

/// Starts the held planner headless and waits until the manager says on stderr that
/// it waits for an operator, with the three allowed parts done.
fn blocked_run() -> Live {
    let scratch = Scratch::new();
    let workflow = held_planner(&scratch, 4);
    let live = Live::start_in(scratch, None, &workflow, &[]);
    let err = live.scratch.path().join("manager.err");
    eventually("the manager to say it waits for an operator", || {
        std::fs::read_to_string(&err).unwrap_or_default().contains("waiting for an operator")
    });
    for held in ["plan/part-4", "plan/combine"] {
        assert_eq!(live.state_of(held), "awaiting_approval");
    }
    let ran = ledger(&live);
    for done in ["plan", "plan/part-1", "plan/part-2", "plan/part-3"] {
        assert!(ran.iter().any(|r| r == done), "{done} did not run: {ran:?}");
    }
    live
}

#[test]
fn held_children_never_run_while_the_run_waits_and_ctl_approve_lets_them_run_to_exit_0() {
    let mut live = blocked_run();
    assert!(live.child.as_mut().unwrap().try_wait().expect("try_wait").is_none(), "a blocked run waits");
    assert_eq!(live.status()["held"], 2, "{}", live.status());
    let ran = ledger(&live);
    assert!(!ran.iter().any(|r| r == "plan/part-4" || r == "plan/combine"), "a held child ran: {ran:?}");
    assert!(!ran.iter().any(|r| r == "publish"), "publish waits for all of plan's children: {ran:?}");

    let out = live.ctl(&["approve", "plan/part-4", "plan/combine"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = live.finish();
    assert_eq!(out.status.code(), Some(0), "the approved run finishes");
    let ran = ledger(&live);
    for id in ["plan/part-4", "plan/combine", "publish"] {
        assert_eq!(ran.iter().filter(|r| *r == id).count(), 1, "{id} ran once after approval: {ran:?}");
    }
    // The ledger order: the approved children ran after the allowed ones.
    let at = |id: &str| ran.iter().position(|r| r == id).unwrap();
    assert!(at("plan/part-4") > at("plan/part-3") && at("publish") > at("plan/combine"), "{ran:?}");
    assert_eq!(kinds(&live).iter().filter(|k| *k == "task_approved").count(), 2);
}

#[test]
fn ctl_reject_cancels_a_held_child_and_skips_what_depends_on_it() {
    let mut live = blocked_run();
    let out = live.ctl(&["approve", "plan/part-4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    live.wait_state("plan/part-4", "completed");
    let out = live.ctl(&["reject", "plan/combine"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = live.finish();
    assert_eq!(out.status.code(), Some(1), "a rejected task fails the run");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json document");
    assert_eq!(common::task(&doc, "plan/combine")["state"], "cancelled", "{doc}");
    assert_eq!(common::task(&doc, "publish")["state"], "skipped", "{doc}");
    let ran = ledger(&live);
    assert!(!ran.iter().any(|r| r == "plan/combine" || r == "publish"), "{ran:?}");
    assert!(kinds(&live).contains(&"task_rejected".to_string()));
}

const SUBMIT_POOLS: &str = r#"
[run]
name = "submit"
kill_grace = "200ms"

[defaults]
retry = { max_attempts = 1 }

[[pool]]
name = "slow"
command = ["sh", "-c", "cat >/dev/null; exec sleep 300"]

[[pool]]
name = "quick"
command = ["sh", "-c", "cat >/dev/null; echo '{\"base\":42}'"]
"#;

#[test]
fn submit_adds_tasks_to_a_live_run_recorded_as_tasks_submitted_with_inputs_from_a_completed_task() {
    let scratch = Scratch::new();
    let stdin = scratch.path().join("stdin");
    std::fs::create_dir_all(&stdin).unwrap();
    let workflow = format!(
        "{SUBMIT_POOLS}\n[[pool]]\nname = \"sim\"\n{SIM}\n\
         [[task]]\nid = \"long\"\npool = \"slow\"\n[[task]]\nid = \"base\"\npool = \"quick\"\n"
    );
    let mut live = Live::start_in(scratch, None, &workflow, &[]);
    live.wait_state("base", "completed");
    let file = live.scratch.write(
        "more.toml",
        &format!(
            "[[task]]\nid = \"extra\"\npool = \"sim\"\ndepends_on = [\"base\"]\npayload = {{ save_stdin = {:?} }}\n\
             [[task]]\nid = \"extra-2\"\npool = \"quick\"\ndepends_on = [\"extra\"]\n",
            stdin.display().to_string()
        ),
    );
    let out = live.scratch.pitboss().arg("submit").arg(&live.dir).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("extra"), "{}", stdout(&out));
    live.wait_state("extra-2", "completed");
    let events = read_events(&live.dir);
    let submitted: Vec<&Value> = events.iter().filter(|e| e["type"] == "tasks_submitted").collect();
    assert_eq!(submitted.len(), 1, "{events:?}");
    let text = std::fs::read_to_string(stdin.join("extra.json")).expect("extra's stdin");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["inputs"]["base"]["base"], 42, "extra gets base's result: {seen}");
    live.stop();
}

#[test]
fn a_bad_submit_file_exits_1_at_its_line_and_column_and_records_nothing() {
    let workflow = format!("{SUBMIT_POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n");
    let mut live = Live::start(&workflow);
    // The running task's own records (started, spawned) land after the socket answers:
    // count from once it runs, so only a submit could grow the log.
    eventually("the long task to be spawned", || {
        read_events(&live.dir).iter().any(|e| e["type"] == "attempt_spawned" && e["task"] == "long")
    });
    let before = read_events(&live.dir).len();
    let cases = [
        ("pool.toml", "[[task]]\nid = \"x\"\npool = \"no-such-pool\"\n", "no-such-pool"),
        ("dup.toml", "[[task]]\nid = \"long\"\npool = \"quick\"\n", "long"),
        ("dup2.toml", "[[task]]\nid = \"y\"\npool = \"quick\"\n[[task]]\nid = \"y\"\npool = \"quick\"\n", "y"),
        (
            "cycle.toml",
            "[[task]]\nid = \"a\"\npool = \"quick\"\ndepends_on = [\"b\"]\n[[task]]\nid = \"b\"\npool = \"quick\"\ndepends_on = [\"a\"]\n",
            "cycle",
        ),
    ];
    for (name, text, word) in cases {
        let file = live.scratch.write(name, text);
        let out = live.scratch.pitboss().arg("submit").arg(&live.dir).arg(&file).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let at = regex_like_file_line_col(&err, name);
        assert!(at, "{name}: no FILE:LINE:COL in {err}");
        assert!(err.contains(word), "{name}: {err}");
    }
    // Nothing recorded: the log has not grown past what the running task itself writes.
    let after = read_events(&live.dir);
    assert!(!after.iter().any(|e| e["type"] == "tasks_submitted"), "{after:?}");
    assert_eq!(after.len(), before, "a refused submit records nothing: {after:?}");
    live.stop();
}

/// Whether `text` holds `NAME:LINE:COL` (numbers after the file's name).
fn regex_like_file_line_col(text: &str, name: &str) -> bool {
    text.match_indices(&format!("{name}:")).any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        !line.is_empty()
            && line.chars().all(|c| c.is_ascii_digit())
            && col.chars().take_while(char::is_ascii_digit).count() > 0
    })
}
