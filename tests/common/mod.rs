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
    #[track_caller]
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.run_dir())
    }
}

/// Parses `DIR/events.jsonl` into the `event` objects. Tests poll live runs and kill
/// managers on purpose, so a log not created yet reads as empty, and a last line
/// without its newline (a batch being written, or the torn tail of a killed manager)
/// is left out. Any other line that is not a record fails the test, naming the file,
/// the line and its text: a silently dropped record would make a test lie.
#[track_caller]
pub fn read_events(dir: &Path) -> Vec<Value> {
    let path = dir.join("events.jsonl");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
    let complete = &bytes[..end];
    let mut events = Vec::new();
    // A loop, not a closure, so that #[track_caller] names the test that read the log.
    for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
        let record: Option<Value> = serde_json::from_slice::<Value>(line).ok().filter(|r| r["event"].is_object());
        match record {
            Some(mut record) => events.push(record["event"].take()),
            None => panic!("{}:{}: not a log record: {}", path.display(), i + 1, String::from_utf8_lossy(line)),
        }
    }
    events
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
