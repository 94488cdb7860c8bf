//! Helpers for integration tests: they run the real `pitboss` binary on real files
//! and real processes, each test in its own temporary folder.
#![allow(dead_code)] // each test file uses a different subset

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod pty;

/// Three tasks on one spawned pool (`b` after `a`), each answering `{"ok":true}`:
/// the smallest run that has a dependency, for tests of what is written around it.
pub const THREE_TASKS: &str =
    "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo '{\\\"ok\\\":true}'\"]\n\
    concurrency = 4\n\
    [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\n";

/// A finished command's stdout then stderr, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

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
    #[track_caller]
    pub fn run_json(&self, workflow: &str) -> (i32, Value, Output) {
        let file = self.write("workflow.toml", workflow);
        let out = self
            .pitboss()
            .args(["run", "--headless", "--json", "--state-dir"])
            .arg(self.run_dir())
            .arg(&file)
            .output_within("pitboss run --headless --json");
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
///
/// A compacted log (DESIGN §6) is read over its files: the archived segments
/// `archive/NNN.jsonl` in order, then the live log. The live log is read first and
/// a segment that is that same file (a roll under way) is left out, so a manager
/// rolling its log meanwhile never makes a record appear twice.
#[track_caller]
pub fn read_events(dir: &Path) -> Vec<Value> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let path = dir.join("events.jsonl");
    let mut live = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let live_ino = live.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut bytes = Vec::new();
    live.read_to_end(&mut bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("archive"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .filter(|(_, p): &(u64, PathBuf)| std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0) != live_ino)
        .collect();
    segments.sort();
    let mut events = Vec::new();
    for (_, segment) in segments {
        let text = std::fs::read(&segment).unwrap_or_else(|e| panic!("{}: {e}", segment.display()));
        events.extend(records_of(&segment, &text));
    }
    events.extend(records_of(&path, &bytes));
    events
}

/// The `event` objects of one log file's complete lines (see [`read_events`]).
#[track_caller]
fn records_of(path: &Path, bytes: &[u8]) -> Vec<Value> {
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

// Deadlines. No test waits for a process without one: a manager that never finishes
// (a bug, or a mutant from `scripts/mutants.sh`) fails the test with what it was
// waiting for, and its process tree is killed by pid, instead of hanging the suite.

/// How long a test waits for one pitboss process: 120 s (the slowest manager in the
/// suite needs about 20 s on a loaded 2-core machine), or PITBOSS_TEST_DEADLINE_SECS.
pub fn deadline() -> Duration {
    let secs = std::env::var("PITBOSS_TEST_DEADLINE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    Duration::from_secs(secs)
}

/// `Command::output` with a deadline.
pub trait OutputWithin {
    /// Runs the command with stdout and stderr captured and waits for it, at most
    /// [`deadline`]; past it, kills the process and its descendants and panics naming
    /// `what`.
    fn output_within(&mut self, what: &str) -> Output;
}

impl OutputWithin for Command {
    #[track_caller]
    fn output_within(&mut self, what: &str) -> Output {
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        finish_within(child, what)
    }
}

/// Waits for a spawned child to exit and collects whatever of its stdout and stderr
/// is piped, at most [`deadline`]; past it, kills the child and its descendants by pid
/// and panics naming `what`.
#[track_caller]
pub fn finish_within(mut child: Child, what: &str) -> Output {
    let limit = deadline();
    let start = Instant::now();
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = wait_until(&mut child, start + limit, what, stderr.as_ref());
    // The pipes close when the child and everything that inherited them are gone.
    let until = start + limit;
    let stdout = collect(stdout, until, what, "stdout", status);
    let stderr = collect(stderr, until, what, "stderr", status);
    Output { status, stdout, stderr }
}

#[track_caller]
fn collect(pipe: Option<Receiver<Vec<u8>>>, until: Instant, what: &str, name: &str, status: ExitStatus) -> Vec<u8> {
    match pipe {
        None => Vec::new(),
        Some(rx) => rx.recv_timeout(until.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
            panic!("{what}: exited ({status}) but its {name} stayed open past the deadline (a descendant holds it)")
        }),
    }
}

/// `Child::wait` with a deadline (stdout and stderr are left to the caller).
#[track_caller]
pub fn wait_within(child: &mut Child, what: &str) -> ExitStatus {
    wait_until(child, Instant::now() + deadline(), what, None)
}

#[track_caller]
fn wait_until(child: &mut Child, until: Instant, what: &str, stderr: Option<&Receiver<Vec<u8>>>) -> ExitStatus {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => panic!("{what}: cannot wait for pid {}: {e}", child.id()),
        }
        if Instant::now() >= until {
            let pid = child.id() as i32;
            // The tree first: once the child dies its descendants are re-parented.
            let tree = descendants(pid);
            kill_pid(pid);
            tree.iter().for_each(|p| kill_pid(*p));
            let _ = child.wait();
            let said = stderr
                .and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let tail: String = said.chars().rev().take(2_000).collect::<Vec<_>>().into_iter().rev().collect();
            let said = if tail.is_empty() { String::new() } else { format!("\nits stderr ends:\n{tail}") };
            panic!("{what}: still running after {:?}; killed pid {pid} and its descendants {tree:?}{said}", deadline());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pipe to its end on a thread; the bytes arrive on the channel.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Every live descendant of `pid` (children first), from /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command name (which may hold spaces): state, ppid, …
        let ppid = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut k = 0;
    while k < found.len() {
        let parent = found[k];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        k += 1;
    }
    found.remove(0);
    found
}

/// A child's stdout, line by line, each line awaited with a deadline.
pub struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    /// Reads `pipe` on a thread.
    pub fn new(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, or None at the end of the stream; panics naming `what` if none
    /// comes within [`deadline`].
    #[track_caller]
    pub fn next_within(&self, what: &str) -> Option<String> {
        match self.rx.recv_timeout(deadline()) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("{what}: no line and no end within {:?}", deadline()),
        }
    }
}

/// `success` of the log's `run_finished`, or a panic if the run did not record one.
#[track_caller]
pub fn run_finished_success(events: &[Value]) -> bool {
    let finished = events.iter().filter(|e| e["type"] == "run_finished").collect::<Vec<_>>();
    match finished.last() {
        Some(e) => e["success"].as_bool().unwrap_or_else(|| panic!("run_finished without success: {e}")),
        None => panic!("no run_finished in {} events", events.len()),
    }
}

/// Kills processes and their descendants by pid when the test panics before this is
/// dropped, so that a failed assertion leaves no manager or worker running.
pub struct KillOnPanic(Vec<i32>);

impl KillOnPanic {
    /// Guards `pids` (children of this test, such as a manager started in the background).
    pub fn new(pids: &[u32]) -> KillOnPanic {
        KillOnPanic(pids.iter().map(|p| *p as i32).collect())
    }
}

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for &pid in &self.0 {
                let tree = descendants(pid);
                kill_pid(pid);
                tree.iter().for_each(|p| kill_pid(*p));
            }
        }
    }
}

/// `body` (a record or snapshot without its checksum part, the closing `}` dropped)
/// sealed as pitboss seals one: `,"crc":N}` where N is the CRC-32 of `body` + `}`.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(body);
    hasher.update(b"}");
    let mut sealed = body.to_vec();
    sealed.extend_from_slice(format!(",\"crc\":{}}}", hasher.finalize()).as_bytes());
    sealed
}

/// Sealed `bytes` (changed since) with their last checksum made valid again.
pub fn reseal(bytes: &[u8]) -> Vec<u8> {
    let mark = b",\"crc\":";
    let pos = bytes.windows(mark.len()).rposition(|w| w == mark).expect("sealed");
    seal(&bytes[..pos])
}
