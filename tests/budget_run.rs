//! Costs and budgets with the real binary (DESIGN §13, issue 17 item 2): script
//! workers print `{"pitboss":"usage"}` lines; a run budget of N dollars stops dispatch
//! at N (to within the attempts in flight) and a live raise over `ctl` resumes it; a
//! task budget dead-letters with `budget spent`; bad usage lines are refused with a
//! note in the attempt's output; an attempt killed at its timeout keeps what it spent;
//! bad budget numbers in a workflow are errors at their line and column.

mod common;
mod ctl_common;

use common::{read_events, toml_string, OutputWithin, Scratch};
use ctl_common::{eventually, stderr, stdout, Live};
use serde_json::Value;

/// A worker that reports one dollar (and tokens), then succeeds.
const DOLLAR: &str = r#"cat >/dev/null; echo '{"pitboss":"usage","cost_usd":1.0,"input_tokens":1000,"output_tokens":50}'; echo '{"ok":true}'"#;

fn of_kind(events: &[Value], kind: &str) -> Vec<Value> {
    events.iter().filter(|e| e["type"] == kind).cloned().collect()
}

#[test]
fn a_run_budget_stops_dispatch_at_n_dollars_and_a_live_raise_over_ctl_resumes_it() {
    let tasks: String = (1..=6).map(|i| format!("[[task]]\nid = \"t{i}\"\n")).collect();
    let workflow = format!(
        "[budget]\nmax_cost_usd = 3\n[[pool]]\nname = \"agent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 2\n{tasks}",
        toml_string(DOLLAR)
    );
    let mut live = Live::start(&workflow);
    eventually("budget_exhausted", || !of_kind(&read_events(&live.dir), "budget_exhausted").is_empty());
    // The attempts in flight at that moment finish; then nothing runs and nothing starts.
    eventually("no attempt running", || live.status()["counts"]["running"] == 0);
    let events = read_events(&live.dir);
    let started = of_kind(&events, "attempt_started").len();
    // $3 is reached by the third attempt's line; at most one more was in flight then
    // (two slots).
    assert!((3..=4).contains(&started), "{started} attempts started under a $3 budget");
    let exhausted = &of_kind(&events, "budget_exhausted")[0];
    assert_eq!(exhausted["max_cost_usd"], 3.0);
    assert!(exhausted["spent_usd"].as_f64().unwrap() >= 3.0, "{exhausted}");
    assert!(of_kind(&events, "run_finished").is_empty(), "the run must not end while tasks wait");
    let status = live.status();
    assert!(status["counts"]["queued"].as_u64().unwrap() >= 2, "{status}");

    // A raise that would stop it again is refused with the reason; a real one resumes.
    let out = live.ctl(&["budget", "--max-cost-usd", "2"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("a max_cost_usd of $2.00 would stop it again"), "{}", stderr(&out));
    let out = live.ctl(&["budget", "--max-cost-usd", "-4"]);
    assert!(stderr(&out).contains("negative"), "{}", stderr(&out));
    let out = live.ctl(&["budget", "--max-cost-usd", "8"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("budget raised"), "{}", stdout(&out));
    let out = live.finish();
    assert_eq!(out.status.code(), Some(0), "every task completes after the raise");

    let events = read_events(&live.dir);
    let raised = of_kind(&events, "budget_raised");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["max_cost_usd"], 8.0);
    assert_eq!(raised[0]["source"], "operator (ctl)");
    assert_eq!(of_kind(&events, "attempt_succeeded").len(), 6);
    assert_eq!(of_kind(&events, "usage_recorded").len(), 6);
    // Each usage line is recorded before its attempt's end.
    let at = |kind: &str, task: &str| events.iter().position(|e| e["type"] == kind && e["task"] == task);
    let (usage, end) = (at("usage_recorded", "t1"), at("attempt_succeeded", "t1"));
    assert!(usage.is_some() && usage < end, "usage at {usage:?}, end at {end:?}");

    // `inspect --json` shows the run's and each task's spend.
    let out = live.scratch.pitboss().args(["inspect", "--json"]).arg(&live.dir).output_within("inspect");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("inspect --json");
    assert_eq!(doc["spend"]["run"]["cost_usd"], 6.0, "{}", doc["spend"]);
    assert_eq!(doc["spend"]["run"]["input_tokens"], 6000);
    assert_eq!(doc["spend"]["max_cost_usd"], 8.0);
    assert_eq!(doc["spend"]["pools"]["agent"]["cost_usd"], 6.0);
    assert_eq!(doc["tasks"][0]["spend"]["total"]["cost_usd"], 1.0, "{}", doc["tasks"][0]);
    assert_eq!(doc["tasks"][0]["spend"]["attempts"]["1"]["output_tokens"], 50);
    // `inspect TASK` says it per attempt.
    let out = live.scratch.pitboss().arg("inspect").arg(&live.dir).arg("t1").output_within("inspect t1");
    let text = stdout(&out);
    assert!(text.contains("spent: $1.00 · 1.0k in / 50 out"), "{text}");
    assert!(text.contains("attempt 1: $1.00"), "{text}");
}

#[test]
fn a_task_that_spent_its_budget_is_dead_lettered_budget_spent() {
    let script = r#"cat >/dev/null; echo '{"pitboss":"usage","cost_usd":1.0}'; exit 1"#;
    let workflow = format!(
        "[budget]\ntask_cost_usd = 1.5\n[[pool]]\nname = \"agent\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"t\"\nretry = {{ max_attempts = 5, initial = \"10ms\" }}\n",
        toml_string(script)
    );
    let scratch = Scratch::new();
    let (code, doc, out) = scratch.run_json(&workflow);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let task = &doc["tasks"][0];
    assert_eq!(task["state"], "dead_lettered", "{task}");
    assert_eq!(task["attempts"], 2, "retried once under the budget, then not: {task}");
    assert!(task["error"].as_str().unwrap().contains("budget spent ($2.00 of the task's $1.50)"), "{task}");
}

#[test]
fn bad_usage_lines_are_refused_with_a_note_and_a_timed_out_attempt_keeps_its_usage() {
    let good = r#"{"pitboss":"usage","cost_usd":0.25,"input_tokens":10,"output_tokens":1}"#;
    let noisy = format!(
        "cat >/dev/null; echo '{{\"pitboss\":\"usage\",\"cost_usd\":-5}}'; echo '{{\"pitboss\":\"usage\",\"input_tokens\":\"many\"}}'; \
         echo '{{\"pitboss\":\"usage\",\"cost_usd\":1e300}}'; echo '{good}'; echo '{good}'; echo '{{\"ok\":1}}'"
    );
    let slow = format!("cat >/dev/null; echo '{good}'; exec sleep 300");
    let workflow = format!(
        "[run]\nkill_grace = \"100ms\"\n[[pool]]\nname = \"noisy\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[pool]]\nname = \"slow\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"n\"\npool = \"noisy\"\n[[task]]\nid = \"s\"\npool = \"slow\"\ntimeout = \"1s\"\nretry = {{ max_attempts = 1 }}\n",
        toml_string(&noisy),
        toml_string(&slow)
    );
    let scratch = Scratch::new();
    let (code, doc, out) = scratch.run_json(&workflow);
    assert_eq!(code, 1, "the slow task times out: {}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&scratch.run_dir());
    let usage: Vec<Value> = of_kind(&events, "usage_recorded");
    assert_eq!(usage.iter().filter(|u| u["task"] == "n").count(), 2, "only the good lines count: {usage:?}");
    let ok = of_kind(&events, "attempt_succeeded");
    let stderr_text = ok[0]["output"]["stderr"].as_str().unwrap_or_default();
    for said in ["cost_usd -5 is negative", "input_tokens must be a whole number", "cost_usd 1e300 is over the limit"] {
        assert!(stderr_text.contains(&format!("pitboss: ignored a usage line: {said}")), "{stderr_text}");
    }
    // The attempt ended at its timeout keeps the usage it reported.
    assert_eq!(usage.iter().filter(|u| u["task"] == "s").count(), 1, "{usage:?}");
    let s = doc["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "s").unwrap();
    assert_eq!(s["state"], "dead_lettered");
    assert_eq!(s["spend"]["total"]["cost_usd"], 0.25, "{s}");
    assert_eq!(doc["spend"]["run"]["cost_usd"], 0.75, "{}", doc["spend"]);
}

#[test]
fn a_run_without_usage_lines_has_no_spend_in_its_document() {
    let workflow =
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo 1\"]\n[[task]]\nid = \"t\"\n";
    let scratch = Scratch::new();
    let (code, doc, _) = scratch.run_json(workflow);
    assert_eq!(code, 0);
    assert!(doc.get("spend").is_none() && doc["tasks"][0].get("spend").is_none(), "{doc}");
}

#[test]
fn bad_budget_numbers_are_errors_at_their_line_and_column() {
    let scratch = Scratch::new();
    let validate = |name: &str, text: &str| {
        let file = scratch.write(name, text);
        let out = scratch.pitboss().arg("validate").arg(&file).output_within("validate");
        assert_eq!(out.status.code(), Some(2), "{name}");
        stderr(&out)
    };
    let pool = "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\n";
    let text =
        validate("w.toml", &format!("[budget]\nmax_cost_usd = -1\ntask_cost_usd = 0\n{pool}task_cost_usd = nan\n"));
    assert!(text.contains("w.toml:2:16: budget.max_cost_usd must be more than 0 dollars, got -1"), "{text}");
    assert!(text.contains("w.toml:3:17: budget.task_cost_usd must be more than 0 dollars, got 0"), "{text}");
    assert!(text.contains("w.toml:7:17: task_cost_usd must be more than 0 dollars, got NaN"), "{text}");
    let text = validate("big.toml", &format!("[budget]\nmax_cost_usd = 1e12\n{pool}"));
    assert!(text.contains("big.toml:2:16: budget.max_cost_usd must be at most"), "{text}");
    let text = validate("kind.toml", &format!("[budget]\ntask_cost_usd = \"two\"\ncolour = 1\n{pool}"));
    assert!(text.contains("kind.toml:2:17: budget.task_cost_usd must be a number, not \"two\""), "{text}");
    assert!(text.contains("kind.toml:3:1: unknown key `colour` in [budget]"), "{text}");
}

#[test]
fn a_headless_run_blocked_by_its_budget_exits_3_with_exit_when_blocked() {
    let workflow = format!(
        "[budget]\nmax_cost_usd = 1\n[[pool]]\nname = \"agent\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n",
        toml_string(DOLLAR)
    );
    let scratch = Scratch::new();
    let file = scratch.write("workflow.toml", &workflow);
    let out = scratch
        .pitboss()
        .args(["run", "--headless", "--json", "--exit-when-blocked", "--state-dir"])
        .arg(scratch.run_dir())
        .arg(&file)
        .output_within("run --exit-when-blocked");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("budget spent: $1.00 of $1.00"), "{}", stderr(&out));
    assert!(stderr(&out).contains("budget --max-cost-usd N"), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json document");
    assert_eq!(doc["blocked"], "budget spent: $1.00 of $1.00");
    assert_eq!(doc["spend"]["exhausted"], true);
}
