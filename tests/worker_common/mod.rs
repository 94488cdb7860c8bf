//! Shared by the `pitboss worker` tests: the manager side of one test (a fresh run
//! and pool on a Redis, played through the `Transport` trait) and the worker as a
//! real process, killed by pid if a test leaves it running.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker_common::{run_id, wait_until, SHARED_REDIS};
use pitboss::io::broker::redis::{keys, RedisTransport};
use pitboss::io::broker::url::BrokerUrl;
use pitboss::io::broker::wire::{AttemptMsg, RemoteOutcome, WorkerMsg};
use pitboss::io::broker::{PoolOffer, RunScope, Transport};

/// Longest wait for anything the worker should do (a broken feature fails, never hangs).
pub const LIMIT: Duration = Duration::from_secs(20);

/// The manager side of one test: a fresh run and pool on the shared Redis.
pub struct Manager {
    pub url: String,
    pub run: String,
    pub pool: String,
    pub transport: RedisTransport,
    /// Every message read so far (a later `collect` sees earlier ones too).
    seen: std::sync::Mutex<Vec<WorkerMsg>>,
}

impl Manager {
    pub async fn start(url: &str, label: &str) -> Manager {
        let run = run_id(label);
        let pool = format!("pool-{run}");
        Manager::start_on(url, run, pool).await
    }

    /// A manager of run `run` on pool `pool`.
    pub async fn start_on(url: &str, run: String, pool: String) -> Manager {
        let scope = RunScope {
            run: run.clone(),
            pools: vec![PoolOffer { name: pool.clone(), capabilities: vec![] }],
            manager: "test:1".into(),
        };
        let transport = RedisTransport::new(&BrokerUrl::parse(url).unwrap(), None, scope).unwrap();
        transport.connect().await.unwrap();
        transport.refresh().await.unwrap();
        Manager { url: url.to_string(), run, pool, transport, seen: Default::default() }
    }

    pub fn attempt(&self, task: &str, timeout_ms: u64) -> AttemptMsg {
        AttemptMsg {
            run: self.run.clone(),
            pool: self.pool.clone(),
            key: format!("{task}.1"),
            task: task.into(),
            attempt: 1,
            replica: None,
            dispatch: format!("d-{task}"),
            job: serde_json::json!({"id": task, "type": "t", "payload": {"n": 1}, "attempt": 1, "run_id": self.run}),
            timeout_ms,
            stall_after_ms: None,
            stall_kill_after_ms: None,
            kill_grace_ms: 500,
            lease_ms: 30_000,
            sent_ms: 1,
            deadline_ms: u64::MAX / 4,
            capabilities: vec![],
        }
    }

    /// Reads results and the live feed (acking results) until `done` holds or [`LIMIT`].
    pub async fn collect(&self, done: impl Fn(&[WorkerMsg]) -> bool) -> Vec<WorkerMsg> {
        let deadline = Instant::now() + LIMIT;
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap());
        while !done(&seen) && Instant::now() < deadline {
            let (inbound, live) = tokio::join!(self.transport.read_inbound(50), self.transport.read_live(200));
            let inbound = inbound.unwrap();
            let ids = inbound.iter().map(|i| i.id.clone()).collect();
            self.transport.ack_inbound(ids).await.unwrap();
            seen.extend(inbound.into_iter().map(|i| i.msg.unwrap()));
            seen.extend(live.unwrap().into_iter().map(|m| m.unwrap()));
        }
        self.seen.lock().unwrap().clone_from(&seen);
        seen
    }

    /// Reads (acking results) until two reads in a row bring nothing (a fresh
    /// manager's first read pages its empty backlog): everything written so far.
    pub async fn read_rest(&self) -> Vec<WorkerMsg> {
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap());
        let mut empty = 0;
        while empty < 2 {
            let (inbound, live) = tokio::join!(self.transport.read_inbound(50), self.transport.read_live(200));
            let (inbound, live) = (inbound.unwrap(), live.unwrap());
            empty = if inbound.is_empty() && live.is_empty() { empty + 1 } else { 0 };
            let ids = inbound.iter().map(|i| i.id.clone()).collect();
            self.transport.ack_inbound(ids).await.unwrap();
            seen.extend(inbound.into_iter().map(|i| i.msg.unwrap()));
            seen.extend(live.into_iter().map(|m| m.unwrap()));
        }
        self.seen.lock().unwrap().clone_from(&seen);
        seen
    }

    /// Jobs the worker read but has not acked.
    pub fn pending(&self) -> usize {
        let mut conn = redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap();
        let summary: redis::Value =
            redis::cmd("XPENDING").arg(keys::queue(&self.run, &self.pool)).arg("workers").query(&mut conn).unwrap();
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as usize,
                _ => 0,
            },
            _ => 0,
        }
    }

    pub fn exists(&self, key: &str) -> bool {
        let mut conn = redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("EXISTS").arg(key).query::<i64>(&mut conn).unwrap() == 1
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) else { return };
        for pattern in [format!("pitboss:{}:*", self.run), format!("pitboss:pool:{}:*", self.pool)] {
            let found: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
            if !found.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(found).query(&mut conn);
            }
        }
    }
}

/// A `pitboss worker` process; killed (by pid) if still running when dropped.
pub struct Worker {
    pub child: Child,
    pub stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Worker {
    pub fn start(url: &str, pool: &str, flags: &[&str], env: &[(&str, &str)], cmd: &[&str]) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_pitboss"))
            .args(["worker", "--broker", url, "--pool", pool])
            .args(flags)
            .arg("--")
            .args(cmd)
            .envs(env.iter().copied())
            .env("PITBOSS_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Worker { child, stderr, _dir: dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Its exit code, waiting at most [`LIMIT`].
    pub fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the worker did not exit within {LIMIT:?}; stderr:\n{}", self.stderr_text());
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// True while `pid` runs (a zombie has ended).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| !s[i + 1..].trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Processes a test's command started, SIGKILLed (by pid) when the test ends, so a
/// failing test leaves nothing running.
pub struct Leftovers(pub Vec<i32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// A file a test's shell command appends its pids to (as `"$1"`), in a scratch folder
/// removed with it.
pub struct PidFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    arg: String,
}

impl PidFile {
    pub fn new() -> PidFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pids");
        let arg = path.display().to_string();
        PidFile { _dir: dir, path, arg }
    }

    /// `sh -c SCRIPT _ FILE`: the script's `"$1"` is this file.
    pub fn sh<'a>(&'a self, script: &'a str) -> [&'a str; 5] {
        ["sh", "-c", script, "_", &self.arg]
    }

    /// The pids written, once there are `count` of them.
    pub fn wait(&self, count: usize) -> Vec<i32> {
        pids_in(&self.path, count)
    }
}

/// The pids a command wrote to `file` (one a line), once it wrote `count` of them.
pub fn pids_in(file: &Path, count: usize) -> Vec<i32> {
    let mut pids = Vec::new();
    let written = wait_until(LIMIT, || {
        pids =
            std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
        pids.len() >= count
    });
    assert!(written, "the command did not write {count} pid(s) to {}", file.display());
    pids
}

pub fn shared_url() -> String {
    format!("redis://{SHARED_REDIS}")
}

pub fn outcome<'a>(msgs: &'a [WorkerMsg], key: &str) -> Option<&'a RemoteOutcome> {
    msgs.iter().find_map(|m| match m {
        WorkerMsg::Result { key: k, outcome, .. } if k == key => Some(outcome),
        _ => None,
    })
}

pub fn has_result(key: &str) -> impl Fn(&[WorkerMsg]) -> bool + '_ {
    move |msgs| outcome(msgs, key).is_some()
}

pub fn started(msgs: &[WorkerMsg]) -> bool {
    msgs.iter().any(|m| matches!(m, WorkerMsg::Started { .. }))
}

/// True when `msgs` hold a `started` for attempt `key`.
pub fn started_key(msgs: &[WorkerMsg], key: &str) -> bool {
    msgs.iter().any(|m| matches!(m, WorkerMsg::Started { key: k, .. } if k == key))
}
