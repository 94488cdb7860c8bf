//! Helpers for integration tests: they run the real `pitboss` binary on real files
//! and real processes, each test in its own temporary folder.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod pty;

/// A temporary folder holding a workflow, its run folder and the pitboss home.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// The run folder tests use.
    pub fn run_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    /// `pitboss ARGS` with PITBOSS_HOME inside the scratch folder.
    pub fn pitboss(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitboss"));
        cmd.env("PITBOSS_HOME", self.path().join("home")).stdin(Stdio::null());
        cmd
    }

    /// Runs a workflow headless with --json into `run_dir()`; returns (exit code, document, output).
    pub fn run_json(&self, workflow: &str) -> (i32, Value, Output) {
        let file = self.write("workflow.toml", workflow);
        let out = self
            .pitboss()
            .args(["run", "--headless", "--json", "--state-dir"])
            .arg(self.run_dir())
            .arg(&file)
            .output()
            .expect("run pitboss");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), doc, out)
    }

    /// Starts `pitboss run --headless --json` on `workflow` in the background (stdout
    /// piped for the JSON document, stderr discarded).
    pub fn spawn_run(&self, workflow: &Path) -> std::process::Child {
        self.pitboss()
            .args(["run", "--headless", "--json", "--state-dir"])
            .arg(self.run_dir())
            .arg(workflow)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pitboss")
    }

    /// Every event of the run's log, in order.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.run_dir())
    }
}

/// Parses `DIR/events.jsonl` into the `event` objects.
pub fn read_events(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).map(|v| v["event"].clone()).collect()
}

/// The task entry of a `--json` document.
pub fn task<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no task {id} in {doc}"))
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True while a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next().map(String::from));
            state.as_deref() != Some("Z")
        }
    }
}

/// Kills whatever is left by pid (test cleanup; never by name).
pub fn kill_pid(pid: i32) {
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A pool of `sh -c SCRIPT` workers; `extra` adds TOML lines to the pool.
pub fn sh_pool(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[[pool]]\nname = \"{name}\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 4\n{extra}\n",
        toml_string(script)
    )
}

/// A TOML basic string literal.
pub fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}
