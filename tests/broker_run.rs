//! `pitboss run --broker` as a user runs it: the real binary against a real Redis,
//! with a tiny worker loop driven from the test through the Redis `WorkerTransport`
//! (standing in for `pitboss worker`). Skipped loudly without Redis (see
//! broker_common), failed under CI.

mod broker_common;
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{finish_within, read_events, Scratch};
use pitboss::io::broker::redis::RedisWorkerTransport;
use pitboss::io::broker::url::{BrokerUrl, Password};
use pitboss::io::broker::wire::{OutcomeStatus, RemoteOutcome, WorkerState};
use pitboss::io::broker::{AttemptMsg, EntryId, Registration, Running, WorkerMsg, WorkerScope, WorkerTransport};
use serde_json::json;

const SECRET: &str = "pw-7e1d0c9a-not-for-logs";

fn workflow(pool: &str, tasks: usize) -> String {
    let mut wf = format!(
        "[defaults]\ntimeout = \"1m\"\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"{pool}\"\ncommand = [\"true\"]\nconcurrency = 4\n"
    );
    for i in 0..tasks {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    wf
}

/// A worker loop on its own thread: takes jobs of `pool`, reports each started and
/// succeeded (result `{"task": …}`), acks it. Task `hold` is answered only once
/// `release` is set (it keeps a run live). Ends when `stop` is set.
fn worker(url: &str, password: Option<&str>, pool: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    worker_holding(url, password, pool, stop, Arc::new(AtomicBool::new(true)))
}

fn worker_holding(
    url: &str,
    password: Option<&str>,
    pool: &str,
    stop: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let url = BrokerUrl::parse(url).expect("a broker url");
    let password = password.map(|p| Password::new(p.to_string()));
    let scope = WorkerScope { worker: format!("test-worker-{pool}"), pool: pool.to_string() };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let t = RedisWorkerTransport::new(&url, password.as_ref(), scope.clone()).expect("transport");
            t.connect().await.expect("worker connects");
            let reg = Registration {
                worker: scope.worker.clone(),
                pool: scope.pool.clone(),
                capabilities: vec![],
                host: "testhost".into(),
                pid: std::process::id(),
                version: "test".into(),
                concurrency: 4,
                state: WorkerState::Idle,
                ttl_ms: 15_000,
            };
            t.register(&reg).await.expect("register");
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let running: Vec<Running> = held
                    .iter()
                    .map(|(entry, msg): &(EntryId, AttemptMsg)| Running { entry: entry.clone(), key: msg.key.clone() })
                    .collect();
                let _ = t.heartbeat(&reg, running).await;
                let mut jobs: Vec<(EntryId, AttemptMsg)> = match t.next_jobs(4).await {
                    Ok(jobs) => jobs.into_iter().filter_map(|j| Some((j.entry, j.msg.ok()?))).collect(),
                    Err(_) => continue,
                };
                if release.load(Ordering::Relaxed) {
                    jobs.append(&mut held);
                }
                for (entry, msg) in jobs {
                    if msg.task == "hold" && !release.load(Ordering::Relaxed) {
                        held.push((entry, msg));
                        continue;
                    }
                    let started = WorkerMsg::Started {
                        key: msg.key.clone(),
                        dispatch: msg.dispatch.clone(),
                        worker: scope.worker.clone(),
                        host: "testhost".into(),
                        pid: 1,
                        started_ms: 0,
                    };
                    t.report(&msg.run, started).await.expect("report started");
                    let outcome = RemoteOutcome {
                        status: OutcomeStatus::Success,
                        result: Some(json!({"task": msg.task})),
                        class: None,
                        error: None,
                        exit_code: Some(0),
                        signal: None,
                        duration_ms: 1,
                        stdout: None,
                        stderr: None,
                        tail_stdout: None,
                        tail_stderr: None,
                        spawn: None,
                        controls: Vec::new(),
                    };
                    let result = WorkerMsg::Result {
                        key: msg.key.clone(),
                        dispatch: msg.dispatch,
                        worker: scope.worker.clone(),
                        outcome,
                    };
                    t.report(&msg.run, result).await.expect("report result");
                    t.ack_job(entry).await.expect("ack");
                }
            }
            let _ = t.unregister().await;
        })
    })
}

fn pitboss(s: &Scratch) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitboss"));
    cmd.env("PITBOSS_HOME", s.path()).env_remove("PITBOSS_BROKER_PASSWORD").stdin(Stdio::null());
    cmd
}

fn succeeded_per_task(dir: &Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for e in read_events(dir) {
        if e["type"] == "attempt_succeeded" {
            *n.entry(e["task"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
    }
    n
}

#[test]
fn every_task_succeeds_once_through_redis() {
    if !broker_common::redis() {
        return;
    }
    let s = Scratch::new();
    let pool = broker_common::run_id("pool");
    let wf = s.write("wf.toml", &workflow(&pool, 12));
    let stop = Arc::new(AtomicBool::new(false));
    let w = worker("redis://127.0.0.1:6379", None, &pool, stop.clone());
    let dir = s.path().join("run");
    let events = Subscriber::start();
    let child = pitboss(&s)
        .args(["run", "--headless", "--broker", "redis://127.0.0.1:6379", "--state-dir"])
        .arg(&dir)
        .arg(&wf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, "pitboss run --broker");
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let done = succeeded_per_task(&dir);
    assert_eq!(done.len(), 12, "{done:?}\n{stderr}");
    assert!(done.values().all(|n| *n == 1), "a task succeeded twice: {done:?}");
    // The redacted URL is recorded with the workflow.
    let first = &read_events(&dir)[0];
    assert_eq!(first["workflow"]["broker"]["url"], "redis://127.0.0.1:6379", "{first}");
    // Spawn notes name the remote worker.
    let spawned = read_events(&dir).into_iter().filter(|e| e["type"] == "attempt_spawned").collect::<Vec<_>>();
    assert!(spawned.iter().all(|e| e["worker"] == format!("test-worker-{pool}")), "{spawned:?}");
    // Every committed record was published on `pitboss:RUN:events`, in order.
    let log: Vec<String> =
        std::fs::read_to_string(dir.join("events.jsonl")).unwrap().lines().map(str::to_string).collect();
    let channel = format!("pitboss:{}:events", first["run_id"].as_str().unwrap());
    let got = events.until(&channel, log.len());
    assert_eq!(got, log, "published records differ from the log");
}

/// `redis-cli PSUBSCRIBE pitboss:*:events`, read on a thread; killed by pid on drop.
struct Subscriber {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Subscriber {
    /// Starts and waits for the subscription to be confirmed.
    fn start() -> Subscriber {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "psubscribe", "pitboss:*:events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-cli runs");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = Subscriber { child, lines };
        // psubscribe / pattern / 1: subscribed.
        for _ in 0..3 {
            sub.lines.recv_timeout(common::deadline()).expect("redis-cli subscribed");
        }
        sub
    }

    /// The first `n` messages on `channel` (raw output: pmessage, pattern, channel, message).
    fn until(&self, channel: &str, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        let mut window: Vec<String> = Vec::new();
        while got.len() < n {
            let Ok(line) = self.lines.recv_timeout(common::deadline()) else { break };
            window.push(line);
            if window.len() == 4 {
                if window[0] == "pmessage" && window[2] == channel {
                    got.push(window[3].clone());
                }
                window.clear();
            }
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        common::kill_pid(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

#[test]
fn an_unreachable_broker_is_exit_2_and_leaves_no_run_folder() {
    let s = Scratch::new();
    let wf = s.write("wf.toml", &workflow("p", 1));
    let dir = s.path().join("run");
    // Port 1 on loopback: nothing listens there.
    let out = pitboss(&s)
        .args(["run", "--headless", "--broker", "redis://127.0.0.1:1", "--state-dir"])
        .arg(&dir)
        .arg(&wf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach the broker at redis://127.0.0.1:1 ("), "{stderr}");
    assert!(!dir.exists(), "a run folder was made");
    assert!(!s.path().join("runs").exists(), "a run folder was made under the home");
}

#[test]
fn the_password_stays_out_of_argv_the_log_and_ctl_status() {
    if !broker_common::redis_server() {
        return;
    }
    let redis = broker_common::OwnRedis::start_with(&["--requirepass", SECRET]);
    let url = redis.url(None);
    let s = Scratch::new();
    let pool = broker_common::run_id("pwpool");
    let wf = s.write("wf.toml", &workflow(&pool, 3));
    let dir = s.path().join("run");

    // A wrong password: exit 2 with the broker's words, no folder.
    let out = pitboss(&s)
        .env("PITBOSS_BROKER_PASSWORD", "wrong")
        .args(["run", "--headless", "--broker", &url, "--state-dir"])
        .arg(&dir)
        .arg(&wf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused") || stderr.contains("WRONGPASS"), "{stderr}");
    assert!(!dir.exists());

    // The right one, from the environment. Task `hold` keeps the run live while
    // argv and `ctl status` are looked at.
    let held = format!("{}[[task]]\nid = \"hold\"\n", workflow(&pool, 3));
    let wf = s.write("held.toml", &held);
    let (stop, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let w = worker_holding(&url, Some(SECRET), &pool, stop.clone(), release.clone());
    let child = pitboss(&s)
        .env("PITBOSS_BROKER_PASSWORD", SECRET)
        .args(["run", "--headless", "--broker", &url, "--state-dir"])
        .arg(&dir)
        .arg(&wf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&cmdline).contains(SECRET));
    // `ctl status` while the run is live (the control socket appears once it serves).
    let mut status = String::new();
    let live = common::wait_for(common::deadline(), || {
        let out = pitboss(&s).arg("ctl").arg(&dir).arg("status").output().unwrap();
        status = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        out.status.success() && status.contains("worker(s)")
    });
    release.store(true, Ordering::Relaxed);
    let out = finish_within(child, "pitboss run --broker with a password");
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(live, "ctl status never named the broker: {status}\n{stderr}");
    assert!(status.contains(&url), "{status}");
    assert!(!stderr.contains(SECRET));
    assert!(!status.contains(SECRET), "{status}");
    let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(!log.contains(SECRET));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(succeeded_per_task(&dir).len(), 4, "{stderr}");
}

/// `run --broker URL` on a workflow whose pool has no `command` (the workers' command
/// runs): checked as a broker run, recorded with the flag's broker, run to the end;
/// `resume --broker` of it reconnects (to the URL written another way).
#[test]
fn run_broker_accepts_pools_without_command() {
    if !broker_common::redis() {
        return;
    }
    let s = Scratch::new();
    let pool = broker_common::run_id("nocmd");
    let wf = s.write("wf.toml", &format!("[[pool]]\nname = \"{pool}\"\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let w = worker("redis://127.0.0.1:6379", None, &pool, stop.clone());
    let dir = s.path().join("run");
    let child = pitboss(&s)
        .args(["run", "--headless", "--broker", "redis://127.0.0.1:6379", "--state-dir"])
        .arg(&dir)
        .arg(&wf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, "pitboss run --broker (no command)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("has no `command`"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(succeeded_per_task(&dir).len(), 2, "{stderr}");
    let first = &read_events(&dir)[0];
    assert_eq!(first["workflow"]["broker"]["url"], "redis://127.0.0.1:6379", "{first}");
    // Resuming the finished run with --broker connects and ends at once.
    let child = pitboss(&s)
        .args(["resume", "--headless", "--broker", "redis://localhost"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, "pitboss resume --broker (no command)");
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(succeeded_per_task(&dir).len(), 2, "{stderr}");
}
