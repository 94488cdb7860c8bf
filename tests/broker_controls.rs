//! Control lines of remote attempts (issue 17, branch h17f) with the real binaries: a
//! `pitboss worker` whose command prints `usage`, `session` and `flag` lines, serving a
//! `pitboss run --broker` through a private `redis-server`. The task's spend and
//! session are in `inspect --json` as for a local attempt, recorded before its end;
//! and a run budget is reached by remote spend. Skipped loudly without
//! `redis-server` (failed under `CI=true`). Every process is killed by pid at the end.

mod broker_common;
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use broker_common::{wait_until, OwnRedis};
use common::{deadline, read_events, OutputWithin, Scratch};
use serde_json::Value;

/// Per task: its session (twice: recorded once), a dollar's half, a flag, then its result.
const SCRIPT: &str = r#"cat >/dev/null
echo "{\"pitboss\":\"session\",\"id\":\"S-$1\"}"
echo "{\"pitboss\":\"session\",\"id\":\"S-$1\"}"
echo '{"pitboss":"usage","cost_usd":0.5,"input_tokens":100,"output_tokens":7}'
echo '{"pitboss":"flag","flag":"looping","detail":"the same call"}'
echo '{"ok":true}'"#;

/// The processes of a test, SIGKILLed and reaped by pid on drop (also on panic).
#[derive(Default)]
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Setup {
    s: Scratch,
    redis: OwnRedis,
    pool: String,
    procs: Procs,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !broker_common::redis_server() {
            return None;
        }
        let pool = format!("p-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Some(Setup { s: Scratch::new(), redis: OwnRedis::start(), pool, procs: Procs::default() })
    }

    fn workflow(&self, extra: &str, tasks: usize) -> std::path::PathBuf {
        let mut wf = format!(
            "{extra}[defaults]\ntimeout = \"2m\"\nretry = {{ max_attempts = 1 }}\n\
             [[pool]]\nname = \"{}\"\nconcurrency = 1\n",
            self.pool
        );
        for i in 0..tasks {
            wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
        }
        self.s.write("wf.toml", &wf)
    }

    fn pitboss(&self) -> Command {
        let mut cmd = self.s.pitboss();
        cmd.env_remove("PITBOSS_BROKER_PASSWORD").stdout(Stdio::null());
        cmd
    }

    fn err_file(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.s.path().join(format!("{name}.err"))).unwrap()
    }

    /// `pitboss worker` running [`SCRIPT`] with the task id.
    fn worker(&mut self) {
        let mut cmd = self.pitboss();
        cmd.args(["worker", "--broker", &self.redis.url(None), "--pool", &self.pool, "--"])
            .args(["sh", "-c", SCRIPT, "_", "{id}"])
            .stderr(self.err_file("worker"));
        self.procs.0.push(cmd.spawn().expect("pitboss worker starts"));
    }

    /// `pitboss run --headless --broker URL`; its index in `procs`.
    fn manager(&mut self, wf: &Path) -> usize {
        let mut cmd = self.pitboss();
        cmd.args(["run", "--headless", "--broker", &self.redis.url(None), "--state-dir"])
            .arg(self.s.run_dir())
            .arg(wf)
            .stderr(self.err_file("manager"));
        self.procs.0.push(cmd.spawn().expect("pitboss run starts"));
        self.procs.0.len() - 1
    }

    fn events(&self) -> Vec<Value> {
        read_events(&self.s.run_dir())
    }

    fn stderrs(&self) -> String {
        ["manager", "worker"]
            .iter()
            .map(|n| std::fs::read_to_string(self.s.path().join(format!("{n}.err"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    fn inspect_json(&self) -> Value {
        let out = self.s.pitboss().args(["inspect", "--json"]).arg(self.s.run_dir()).output_within("inspect --json");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("inspect: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn a_remote_attempts_usage_session_and_flag_lines_are_recorded_before_its_end() {
    let Some(mut t) = Setup::new() else { return };
    let wf = t.workflow("", 2);
    t.worker();
    let m = t.manager(&wf);
    let manager = &mut t.procs.0[m];
    let ended = wait_until(deadline(), || manager.try_wait().ok().flatten().is_some());
    assert!(ended, "the run did not end: {}", t.stderrs());
    assert_eq!(t.procs.0[m].try_wait().unwrap().and_then(|s| s.code()), Some(0), "{}", t.stderrs());

    let events = t.events();
    for task in ["t0", "t1"] {
        let at = |kind: &str| events.iter().position(|e| e["type"] == kind && e["task"] == task);
        let end = at("attempt_succeeded").unwrap_or_else(|| panic!("{task} succeeded: {events:?}"));
        // Recorded as a local attempt's are, all before its end (a usage line read in
        // the same read as a flag comes after it, locally too).
        assert!(at("session_recorded") < at("usage_recorded"), "{events:?}");
        for kind in ["session_recorded", "usage_recorded", "attempt_flagged"] {
            assert!(at(kind).is_some_and(|i| i < end), "{task}'s {kind} before its end: {events:?}");
        }
    }
    let sessions = of_kind(&events, "session_recorded");
    assert_eq!(sessions.len(), 2, "each said once: {sessions:?}");
    let usage = of_kind(&events, "usage_recorded");
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(usage.iter().all(|u| u["pool"] == t.pool.as_str() && u["input_tokens"] == 100), "{usage:?}");
    assert_eq!(of_kind(&events, "attempt_flagged")[0]["detail"], "the same call");

    let doc = t.inspect_json();
    assert_eq!(doc["spend"]["run"]["cost_usd"], 1.0, "{}", doc["spend"]);
    for (i, task) in ["t0", "t1"].iter().enumerate() {
        let row = &doc["tasks"][i];
        assert_eq!(row["id"], *task, "{row}");
        assert_eq!(row["session"], format!("S-{task}"), "{row}");
        assert_eq!(row["spend"]["total"]["cost_usd"], 0.5, "{row}");
    }
}

#[test]
fn a_run_budget_is_reached_by_remote_spend() {
    let Some(mut t) = Setup::new() else { return };
    // $0.50 per task, one at a time: the second attempt's spend reaches $1.
    let wf = t.workflow("[budget]\nmax_cost_usd = 1\n", 5);
    t.worker();
    t.manager(&wf);
    let exhausted = wait_until(deadline(), || !of_kind(&t.events(), "budget_exhausted").is_empty());
    assert!(exhausted, "no budget_exhausted: {:?}\n{}", t.events(), t.stderrs());
    let quiet = wait_until(deadline(), || {
        let events = t.events();
        of_kind(&events, "attempt_started").len() == of_kind(&events, "attempt_succeeded").len()
    });
    assert!(quiet, "an attempt still runs: {:?}", t.events());
    let events = t.events();
    let started = of_kind(&events, "attempt_started").len();
    assert!((2..=3).contains(&started), "{started} attempts started under a $1 budget: {events:?}");
    assert!(of_kind(&events, "run_finished").is_empty(), "the run must wait, not end: {events:?}");
    let spent = of_kind(&events, "budget_exhausted")[0]["spent_usd"].as_f64().unwrap_or(0.0);
    assert!(spent >= 1.0, "{events:?}");
}
