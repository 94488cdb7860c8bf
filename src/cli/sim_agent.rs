//! `pitboss sim-agent`: a stand-in for an agent CLI, so the demo fleet runs on a fresh
//! machine with nothing else installed. It reads the task JSON on stdin and behaves
//! as its payload says:
//!
//! | payload key     | effect                                                        |
//! |-----------------|---------------------------------------------------------------|
//! | `latency_ms`    | how long it "thinks" (default 400), with progress lines       |
//! | `fail_attempts` | attempts up to this number fail (then it succeeds)            |
//! | `fail_always`   | every attempt fails                                           |
//! | `fail_on`       | every attempt fails when the agent's `--role` is this one     |
//! | `fail_rate`     | chance (0–1) that an attempt fails, fixed per task and attempt |
//! | `fail_style`    | `exit` (exit 1, default) or `envelope` (`{"status":"failed"}` on stderr, exit 0) |
//! | `exit_code`     | the exit code of a failure in `exit` style (default 1)        |
//! | `result`        | the result to print (default: a short summary with its inputs) |
//! | `answers`       | consensus replicas: replica `r` (stdin `"replica"`, default 0) prints `answers[r % len]` |
//! | `fail_replicas` | consensus replicas listed here fail (and so abstain)          |
//! | `judge_pick`    | a judge (`--role judge`, or stdin with `"candidates"`) picks `"longest"` (default: the longest JSON text, first on a tie), `"first"`, `"last"` or this index (passed on as given, even out of range) |
//! | `plan`          | a planner: `{"goal", "subtasks": N, "requires", "latency_ms"}` prints a spawn line (DESIGN §11) of N parallel `part-K` tasks and a `combine` task that depends on them all |
//! | `aggregate`     | the result combines its inputs (each input that spawned gives its children's results) |
//! | `ledger`        | a file the agent appends its task id to as it starts (tests count what ran) |
//! | `save_stdin`    | a folder the agent writes its stdin to, as `ID.json` (`/` in the id as `~`) |
//! | `cost_usd`      | what each attempt spends: a `session` line first and a `usage` line (DESIGN §4, §13; token counts made up from the sizes) before it ends, as the agent presets report them |
//! | `revisions`     | results in order: the first one until a gate fails it, then the next after each failed verdict in `feedback`, listing the critiques it `addressed` |
//!
//! As a reviewer (stdin `{"review":{"task","result","criteria"}}`, DESIGN §9) it
//! answers `{"score","critique"}`: the reviewed result's `quality` (0–10) as the score,
//! 8 when it has none, and a critique that says what to fix when the score is below 7.
//!
//! Like real agents it logs to stderr, prints `{"pitboss":"progress"}` lines, and
//! prints its result as the last JSON line on stdout.
//!
//! With `--persistent` it is a persistent worker (DESIGN §4, `mode = "persistent"`):
//! one task JSON per stdin line, one reply line per task on stdout,
//! `{"id","status":"completed","result"}` or `{"id","status":"failed","error"}`, until
//! stdin ends. It answers in order and at once (`latency_ms` defaults to 0 there), with
//! the failure keys, `result` and `ledger` as above; it prints no progress or log lines
//! and flushes only when no more input is waiting, so that a benchmark of the manager
//! (benches/throughput.sh) does not measure the worker.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

/// Runs the simulated agent; returns its exit code.
pub fn main(role: &str) -> u8 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("sim-agent: cannot read stdin: {e}");
        return 2;
    }
    let task: Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sim-agent: stdin is not a task JSON ({e}); run it from a pitboss pool with stdin = \"task\"");
            return 2;
        }
    };
    if let Some(review) = task.get("review") {
        return answer_review(role, review);
    }
    let id = task["id"].as_str().unwrap_or("?").to_string();
    let attempt = task["attempt"].as_u64().unwrap_or(1);
    let payload = &task["payload"];
    let latency = payload["latency_ms"].as_u64().unwrap_or(400);
    let fails = attempt_fails(role, &task, &id, attempt);

    keep_record(&id, payload, &input);
    eprintln!("[{role}] {id}: attempt {attempt}, thinking for {latency}ms");
    let steps = 4u64;
    let mut out = std::io::stdout().lock();
    let cost = payload["cost_usd"].as_f64().filter(|c| c.is_finite() && *c >= 0.0);
    if cost.is_some() {
        // An agent's session is known from its first line (claude's `init`).
        // Control lines are read only when they start with `{"pitboss"` (json! would
        // sort the keys), so they are written out by hand.
        let _ = writeln!(out, r#"{{"pitboss":"session","id":{}}}"#, json!(format!("sim-session-{id}")));
    }
    for k in 1..=steps {
        std::thread::sleep(Duration::from_millis(latency / steps));
        let pct = k * 100 / steps;
        let _ =
            writeln!(out, "{}", json!({"pitboss": "progress", "pct": pct, "msg": format!("{role} step {k}/{steps}")}));
        let _ = out.flush();
    }
    if let Some(cost) = cost {
        // Spent whether the attempt then succeeds or fails, as with a real agent.
        let (input_tokens, output_tokens) = (input.len() / 4, latency / 2);
        let _ = writeln!(
            out,
            r#"{{"pitboss":"usage","cost_usd":{cost},"input_tokens":{input_tokens},"output_tokens":{output_tokens}}}"#
        );
        let _ = out.flush();
    }
    if fails {
        let error = match task["replica"].as_u64() {
            Some(r) => format!("{role} agent: simulated failure on attempt {attempt}, replica {r}"),
            None => format!("{role} agent: simulated failure on attempt {attempt}"),
        };
        if payload["fail_style"].as_str() == Some("envelope") {
            eprintln!("{}", json!({"status": "failed", "error": error}));
            return 0;
        }
        eprintln!("{error}");
        return payload["exit_code"].as_u64().map(|c| c.clamp(1, 255) as u8).unwrap_or(1);
    }
    if let Some(plan) = payload.get("plan") {
        let _ = writeln!(out, "{}", spawn_line(plan, payload));
    }
    let feedback: Vec<&Value> = task["feedback"].as_array().map(|f| f.iter().collect()).unwrap_or_default();
    // One more answer for every verdict that failed (or could not run): an agent that
    // improves on what the gates said.
    let failed = feedback.iter().filter(|f| f["verdict"] != "passed").count();
    let revision = payload["revisions"].as_array().and_then(|a| a.get(failed.min(a.len().saturating_sub(1))));
    let result = match (consensus_answer(role, &task), revision, payload.get("result")) {
        (Some(Ok(answer)), _, _) => answer,
        (Some(Err(e)), _, _) => {
            eprintln!("sim-agent: {e}");
            return 2;
        }
        (None, Some(a), _) => addressed(a.clone(), &feedback),
        (None, None, Some(r)) => addressed(r.clone(), &feedback),
        (None, None, None) if payload["aggregate"].as_bool() == Some(true) => combined(role, &id, &task["inputs"]),
        (None, None, None) => {
            let inputs: Vec<&String> = task["inputs"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
            let summary =
                json!({"by": role, "task": id, "summary": format!("{role} finished {id}"), "used_inputs": inputs});
            addressed(summary, &feedback)
        }
    };
    let _ = writeln!(out, "{result}");
    0
}

/// Whether this attempt fails, by the payload's failure keys.
fn attempt_fails(role: &str, task: &Value, id: &str, attempt: u64) -> bool {
    let payload = &task["payload"];
    let fail_rate = payload["fail_rate"].as_f64().unwrap_or(0.0);
    payload["fail_always"].as_bool().unwrap_or(false)
        || payload["fail_on"].as_str() == Some(role)
        || attempt <= payload["fail_attempts"].as_u64().unwrap_or(0)
        || (fail_rate > 0.0 && unit_hash(id, attempt) < fail_rate)
        || replica_fails(task)
}

/// `--persistent`: answers one task per stdin line until stdin ends; returns the exit
/// code (0 at the end of input, 2 when stdin or stdout fail).
pub fn persistent(role: &str) -> u8 {
    use std::io::BufRead;
    let mut input = std::io::BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut line = String::new();
    loop {
        // Replies go out when the manager has nothing more queued for us: one write
        // for a whole burst of tasks, and never a reply held back while we wait.
        // (`buffer` is what was read already: looking at it never blocks.)
        if !input.buffer().contains(&b'\n') && out.flush().is_err() {
            return 2;
        }
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => return if out.flush().is_ok() { 0 } else { 2 },
            Ok(_) => {}
            Err(e) => {
                eprintln!("sim-agent: cannot read stdin: {e}");
                return 2;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(task) => persistent_reply(role, &task, &line),
            Err(e) => json!({"status": "failed", "error": format!("sim-agent: a stdin line is not a task JSON ({e})")}),
        };
        if writeln!(out, "{reply}").is_err() {
            return 2;
        }
    }
}

/// The reply line to one task of a persistent worker.
fn persistent_reply(role: &str, task: &Value, line: &str) -> Value {
    let id = task["id"].as_str().unwrap_or("?");
    let attempt = task["attempt"].as_u64().unwrap_or(1);
    let payload = &task["payload"];
    keep_record(id, payload, line);
    if let Some(ms) = payload["latency_ms"].as_u64().filter(|ms| *ms > 0) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if attempt_fails(role, task, id, attempt) {
        let error = format!("{role} agent: simulated failure on attempt {attempt}");
        return json!({"id": id, "status": "failed", "error": error});
    }
    let result = payload.get("result").cloned().unwrap_or_else(|| json!({"by": role, "task": id}));
    json!({"id": id, "status": "completed", "result": result})
}

/// Whether this run is a consensus replica the payload's `fail_replicas` lists.
fn replica_fails(task: &Value) -> bool {
    let Some(r) = task["replica"].as_u64() else { return false };
    task["payload"]["fail_replicas"].as_array().is_some_and(|list| list.iter().any(|x| x.as_u64() == Some(r)))
}

/// The answer of a judge or of a consensus replica, when this run is one (`None`:
/// neither, answer as usual). A judge is `--role judge` or a stdin with
/// `"candidates"`; a replica is a payload with `answers`.
fn consensus_answer(role: &str, task: &Value) -> Option<Result<Value, String>> {
    if role == "judge" || task.get("candidates").is_some() {
        return Some(judge(task));
    }
    let answers = task["payload"]["answers"].as_array().filter(|a| !a.is_empty())?;
    let r = task["replica"].as_u64().unwrap_or(0);
    let index = usize::try_from(r).unwrap_or(0) % answers.len();
    Some(Ok(answers[index].clone()))
}

/// `{"pick": i, "reason": …}` over the stdin's `candidates`, by the payload's `judge_pick`.
fn judge(task: &Value) -> Result<Value, String> {
    let Some(candidates) = task["candidates"].as_array().filter(|c| !c.is_empty()) else {
        return Err("the judge got no \"candidates\" on stdin (expected {\"candidates\": [answer, …]})".into());
    };
    let last = candidates.len() - 1;
    let rule = &task["payload"]["judge_pick"];
    let (pick, reason) = match rule {
        Value::Number(n) => (n.as_u64().unwrap_or(0), "the payload says so".to_string()),
        Value::String(s) if s == "first" => (0, "the first answer".to_string()),
        Value::String(s) if s == "last" => (last as u64, "the last answer".to_string()),
        _ => {
            // The longest answer, as a stand-in for "the most thorough"; the first on a tie.
            let lengths = candidates.iter().map(|c| c.to_string().chars().count());
            let (i, len) = lengths.enumerate().fold((0, 0), |best, (i, n)| if n > best.1 { (i, n) } else { best });
            (i as u64, format!("the most thorough answer ({len} characters)"))
        }
    };
    Ok(json!({"pick": pick, "reason": reason}))
}

/// `result` with the critiques of the failed gates it fixed (an object only).
fn addressed(mut result: Value, feedback: &[&Value]) -> Value {
    let fixed: Vec<Value> =
        feedback.iter().filter(|f| f["verdict"] != "passed").map(|f| f["critique"].clone()).collect();
    if let (false, Some(obj)) = (fixed.is_empty(), result.as_object_mut()) {
        obj.insert("addressed".into(), Value::Array(fixed));
    }
    result
}

/// A reviewer's answer to `{"review":{…}}`: the result's `quality` as the score.
fn answer_review(role: &str, review: &Value) -> u8 {
    let id = review["task"]["id"].as_str().unwrap_or("?");
    let score = review["result"]["quality"].as_u64().unwrap_or(8).min(10);
    let critique = if score >= 7 {
        "Clear and complete.".to_string()
    } else {
        "Too vague: name each changed module and say why it changed.".to_string()
    };
    eprintln!("[{role}] reviewing {id}: score {score}");
    println!("{}", json!({"score": score, "critique": critique}));
    0
}

/// A fixed pseudo-random number in [0, 1) for (task, attempt): FNV-1a.
fn unit_hash(id: &str, attempt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Appends the task id to the payload's `ledger` file and writes stdin into its
/// `save_stdin` folder: what tests look at to see which tasks ran, with what.
fn keep_record(id: &str, payload: &Value, stdin: &str) {
    if let Some(path) = payload["ledger"].as_str() {
        let line = format!("{id}\n");
        let appended = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Err(e) = appended.and_then(|mut f| f.write_all(line.as_bytes())) {
            eprintln!("sim-agent: cannot append to the ledger {path}: {e}");
        }
    }
    if let Some(dir) = payload["save_stdin"].as_str() {
        let file = std::path::Path::new(dir).join(format!("{}.json", id.replace('/', "~")));
        if let Err(e) = std::fs::write(&file, stdin) {
            eprintln!("sim-agent: cannot save stdin to {}: {e}", file.display());
        }
    }
}

/// A planner's spawn line: `subtasks` parallel parts of the goal, then `combine`,
/// which depends on them all. The parts pass on the planner's `ledger` and
/// `save_stdin`, so that tests see them run.
fn spawn_line(plan: &Value, payload: &Value) -> Value {
    let goal = plan["goal"].as_str().unwrap_or("the goal");
    let n = plan["subtasks"].as_u64().unwrap_or(3).min(10_000);
    let latency = plan["latency_ms"].as_u64().unwrap_or(300);
    let requires = plan.get("requires").cloned().unwrap_or_else(|| json!([]));
    let passed_on = |mut p: Value| {
        for key in ["ledger", "save_stdin"] {
            if let Some(v) = payload.get(key) {
                p[key] = v.clone();
            }
        }
        p
    };
    let mut tasks: Vec<Value> = (1..=n)
        .map(|k| {
            let part = passed_on(json!({"goal": format!("{goal}: part {k} of {n}"), "latency_ms": latency}));
            json!({"id": format!("part-{k}"), "type": "WRITE", "requires": requires, "payload": part})
        })
        .collect();
    let parts: Vec<String> = (1..=n).map(|k| format!("part-{k}")).collect();
    let combine = passed_on(json!({"aggregate": true, "latency_ms": latency}));
    tasks
        .push(json!({"id": "combine", "type": "WRITE", "requires": requires, "payload": combine, "depends_on": parts}));
    json!({"pitboss": "spawn", "tasks": tasks})
}

/// An aggregator's result: every input's result, a planner's replaced by its
/// children's (by child id), in order.
fn combined(role: &str, id: &str, inputs: &Value) -> Value {
    let mut parts = serde_json::Map::new();
    for (name, input) in inputs.as_object().into_iter().flatten() {
        match input.get("children").and_then(Value::as_object) {
            Some(children) => {
                for (child, result) in children {
                    parts.insert(format!("{name}/{child}"), result.clone());
                }
            }
            None => {
                parts.insert(name.clone(), input.clone());
            }
        }
    }
    json!({"by": role, "task": id, "summary": format!("{role} combined {} results", parts.len()), "combined": parts})
}
