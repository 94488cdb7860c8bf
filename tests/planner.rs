//! A planner with the real binary (DESIGN §11): its spawn line grows the run, the
//! aggregator gets every part's result, a manager killed with SIGKILL while the parts
//! run is resumed to the same DAG; parts over `max_children` are held (their workers
//! never start) and `--exit-when-blocked` stops the run with exit 3; invalid spawns
//! are refused as a whole and fail the planner, as `inspect` shows.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{descendants, finish_within, kill_pid, read_events, task, wait_for, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

const SIM: &str = "command = [\"{pitboss}\", \"sim-agent\", \"--role\", \"writer\"]";

fn planner_workflow(s: &Scratch, parts: u32, part_ms: u32, planner: &str) -> std::path::PathBuf {
    let stdin = s.path().join("stdin");
    std::fs::create_dir_all(&stdin).expect("stdin folder");
    let ledger = s.path().join("ledger");
    let wf = format!(
        "{planner}\n[[pool]]\nname = \"planner\"\n{SIM}\ncapabilities = [\"plan\"]\n\
         [[pool]]\nname = \"writer\"\n{SIM}\ncapabilities = [\"write\"]\nconcurrency = 2\n\
         [[task]]\nid = \"plan\"\nrequires = [\"plan\"]\n\
         payload = {{ latency_ms = 50, ledger = {ledger:?}, save_stdin = {stdin:?}, plan = {{ goal = \"g\", subtasks = {parts}, requires = [\"write\"], latency_ms = {part_ms} }} }}\n\
         [[task]]\nid = \"publish\"\nrequires = [\"write\"]\ndepends_on = [\"plan\"]\n\
         payload = {{ aggregate = true, latency_ms = 20, ledger = {ledger:?}, save_stdin = {stdin:?} }}\n",
        ledger = ledger.display().to_string(),
        stdin = stdin.display().to_string(),
    );
    s.write("workflow.toml", &wf)
}

fn saved_stdin(s: &Scratch, id: &str) -> Value {
    let path = s.path().join("stdin").join(format!("{}.json", id.replace('/', "~")));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("stdin is JSON")
}

fn ledger(s: &Scratch) -> Vec<String> {
    std::fs::read_to_string(s.path().join("ledger")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn ids(doc: &Value) -> BTreeSet<String> {
    doc["tasks"].as_array().expect("tasks").iter().map(|t| t["id"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn a_planner_spawns_five_parts_and_an_aggregator_and_resume_after_sigkill_finishes_the_same_dag() {
    let s = Scratch::new();
    let file = planner_workflow(&s, 5, 1_500, "");
    let mut manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let parts_running = wait_for(common::deadline(), || {
        let events = read_events(&s.run_dir());
        events.iter().any(|e| e["type"] == "tasks_spawned")
            && events.iter().any(|e| e["type"] == "attempt_spawned" && e["task"] == "plan/part-1")
    });
    assert!(parts_running, "the parts never started: {:?}", read_events(&s.run_dir()));
    let tree = descendants(manager.id() as i32);
    kill_pid(manager.id() as i32);
    common::wait_within(&mut manager, "the killed manager");
    // Its workers go too (the guardian ends them; by pid here as well, so none is left).
    tree.iter().for_each(|&p| kill_pid(p));
    let before = read_events(&s.run_dir());
    assert!(!before.iter().any(|e| e["type"] == "run_finished"), "the run finished before the kill");

    let out = s
        .pitboss()
        .args(["resume", "--headless", "--json"])
        .arg(s.run_dir())
        .output_within("pitboss resume after SIGKILL");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json document");
    let mut expected: BTreeSet<String> = ["plan", "publish", "plan/combine"].iter().map(|s| s.to_string()).collect();
    expected.extend((1..=5).map(|k| format!("plan/part-{k}")));
    assert_eq!(ids(&doc), expected, "the same DAG after resume");
    for id in &expected {
        assert_eq!(task(&doc, id)["state"], "completed", "{id}: {doc}");
    }
    let events = read_events(&s.run_dir());
    assert_eq!(events.iter().filter(|e| e["type"] == "tasks_spawned").count(), 1, "spawned once");
    // The aggregator's stdin holds every part's result; publish gets them nested.
    let combine = saved_stdin(&s, "plan/combine");
    let inputs = combine["inputs"].as_object().expect("inputs");
    assert_eq!(inputs.len(), 5, "{combine}");
    for k in 1..=5 {
        assert_eq!(inputs[&format!("plan/part-{k}")]["task"], format!("plan/part-{k}"), "{combine}");
    }
    let publish = saved_stdin(&s, "publish");
    let children = publish["inputs"]["plan"]["children"].as_object().expect("children");
    let names: BTreeSet<&str> = children.keys().map(String::as_str).collect();
    assert_eq!(names, ["combine", "part-1", "part-2", "part-3", "part-4", "part-5"].into_iter().collect());
    assert_eq!(children["combine"]["combined"].as_object().map(|m| m.len()), Some(5), "{publish}");
    assert_eq!(publish["inputs"]["plan"]["result"]["task"], "plan");
    // The parts' capture files are named without a folder.
    assert!(ids(&doc).iter().all(|id| !Path::new(&s.run_dir()).join(id).exists()));
}

#[test]
fn children_over_max_children_are_held_none_of_them_runs_and_exit_when_blocked_exits_3() {
    let s = Scratch::new();
    let file = planner_workflow(&s, 4, 20, "[planner]\nmax_children = 3\n");
    let out = s
        .pitboss()
        .args(["run", "--headless", "--exit-when-blocked", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run with held children");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("2 tasks held for approval"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json document");
    assert_eq!(doc["resumable"], true);
    for held in ["plan/part-4", "plan/combine"] {
        assert_eq!(task(&doc, held)["state"], "awaiting_approval", "{doc}");
        assert_eq!(task(&doc, held)["finding"]["rule"], "planner/max-children", "{doc}");
    }
    assert_eq!(task(&doc, "publish")["state"], "blocked");
    let ran = ledger(&s);
    assert_eq!(
        ran.iter().filter(|t| t.as_str() == "plan/part-4" || t.as_str() == "plan/combine").count(),
        0,
        "{ran:?}"
    );
    assert!(
        ["plan", "plan/part-1", "plan/part-2", "plan/part-3"].iter().all(|t| ran.iter().any(|r| r == t)),
        "{ran:?}"
    );
    let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg("plan/part-4").output_within("inspect a held child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("planner/max-children at spawned by plan: child 4 of 5; max_children = 3"), "{text}");
}

#[test]
fn a_blocked_headless_run_without_the_flag_waits_and_says_why() {
    let s = Scratch::new();
    let file = planner_workflow(&s, 1, 20, "[planner]\napprove = \"always\"\n");
    let mut manager = s
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pitboss");
    let _guard = KillOnPanic::new(&[manager.id()]);
    let lines = common::Lines::new(manager.stderr.take().expect("stderr"));
    let mut said = String::new();
    while let Some(line) = lines.next_within("the waiting line") {
        if line.contains("waiting for an operator") {
            said = line;
            break;
        }
    }
    // The command to paste names this run's folder.
    let approve = format!("pitboss ctl {} approve", s.run_dir().display());
    assert!(said.contains("2 tasks held for approval") && said.contains(&approve), "{said}");
    assert!(manager.try_wait().expect("try_wait").is_none(), "the blocked run did not wait");
    // SIGINT stops it as an interruption, held tasks kept.
    unsafe {
        libc::kill(manager.id() as i32, libc::SIGINT);
    }
    let status = common::wait_within(&mut manager, "the interrupted manager");
    assert_eq!(status.code(), Some(3), "a run stopped while blocked exits 3");
    let _ = finish_within;
    let _ = Duration::ZERO;
}

#[test]
fn invalid_spawns_are_refused_whole_and_fail_the_planner_as_inspect_shows() {
    let s = Scratch::new();
    let script = "cat >/dev/null; echo \"$1\"; echo '{\"ok\":1}'";
    let pool = format!(
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {}, \"sh\", \"{{payload.spawn}}\"]\nconcurrency = 4\n",
        common::toml_string(script)
    );
    let cases = [
        ("dup", r#"[{"id":"a","pool":"q"},{"id":"a","pool":"q"}]"#, "duplicate task id"),
        ("cycle", r#"[{"id":"a","pool":"q","depends_on":["b"]},{"id":"b","pool":"q","depends_on":["a"]}]"#, "cycle"),
        ("pool", r#"[{"id":"a","pool":"nope"}]"#, "nope"),
        ("sibling", r#"[{"id":"a","pool":"q","depends_on":["ghost"]}]"#, "ghost"),
        ("over", r#"[{"id":"a","pool":"q"},{"id":"b","pool":"q"},{"id":"c","pool":"q"}]"#, "approve = \"never\""),
    ];
    let mut wf = format!(
        "[planner]\nmax_children = 2\napprove = \"never\"\n{pool}{}",
        common::sh_pool("q", "cat >/dev/null; echo 1", "")
    );
    for (id, tasks, _) in &cases {
        let line = format!("{{\"pitboss\":\"spawn\",\"tasks\":{tasks}}}");
        wf.push_str(&format!(
            "[[task]]\nid = \"{id}\"\npool = \"p\"\nretry = {{ max_attempts = 1 }}\npayload = {{ spawn = {} }}\n",
            common::toml_string(&line)
        ));
    }
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(doc["tasks"].as_array().map(Vec::len), Some(cases.len()), "nothing of a refused spawn is added: {doc}");
    let events = read_events(&s.run_dir());
    for (id, _, why) in cases {
        let t = task(&doc, id);
        assert_eq!(t["state"], "dead_lettered", "{t}");
        assert!(t["error"].as_str().unwrap_or("").contains("spawn refused"), "{t}");
        let refused = events.iter().find(|e| e["type"] == "spawn_refused" && e["task"] == id).expect("spawn_refused");
        assert!(refused["reason"].as_str().unwrap_or("").contains(why), "{id}: {refused}");
        let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg(id).output_within("inspect a refused planner");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("spawn refused"), "{id}: {text}");
    }
}
