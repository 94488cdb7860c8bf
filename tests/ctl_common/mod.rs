//! A live headless manager for the control-socket tests, and clients of its socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{deadline, finish_within, wait_for, KillOnPanic, OutputWithin, Scratch};

/// A slow pool (workers that sleep until ended), a quick one, and a short kill grace
/// so that cancels and stops are quick.
pub const POOLS: &str = r#"
[run]
name = "ctl"
kill_grace = "200ms"

[defaults]
retry = { max_attempts = 1 }

[[pool]]
name = "slow"
command = ["sh", "-c", "cat >/dev/null; exec sleep 300"]
concurrency = 4

[[pool]]
name = "quick"
command = ["sh", "-c", "cat >/dev/null; echo '{\"done\":true}'"]
concurrency = 4
"#;

/// A manager running headless in the background.
pub struct Live {
    pub scratch: Scratch,
    pub dir: PathBuf,
    pub child: Option<Child>,
    _guard: KillOnPanic,
}

impl Live {
    /// Starts `workflow` headless and waits for its socket to answer.
    pub fn start(workflow: &str) -> Live {
        Live::start_in(Scratch::new(), None, workflow, &[])
    }

    /// Starts `workflow` in `scratch` (the run folder `dir`, default the scratch's),
    /// with extra environment.
    pub fn start_in(scratch: Scratch, dir: Option<PathBuf>, workflow: &str, env: &[(&str, &str)]) -> Live {
        let dir = dir.unwrap_or_else(|| scratch.run_dir());
        let file = scratch.write("workflow.toml", workflow);
        let mut cmd = scratch.pitboss();
        cmd.args(["run", "--headless", "--json", "--state-dir"]).arg(&dir).arg(&file);
        // stderr to a file: a pipe nobody reads would block a chatty manager.
        let err = std::fs::File::create(scratch.path().join("manager.err")).expect("stderr file");
        cmd.stdout(Stdio::piped()).stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start pitboss");
        let guard = KillOnPanic::new(&[child.id()]);
        let live = Live { scratch, dir, child: Some(child), _guard: guard };
        let up = wait_for(deadline(), || live.ctl(&["status"]).status.code() == Some(0));
        assert!(up, "the manager's socket never answered");
        live
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// `pitboss ctl DIR ARGS…`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl(&self.scratch, &self.dir, args)
    }

    /// One request over a raw connection; its reply.
    pub fn request(&self, request: &str) -> Value {
        let mut stream = connect(&self.dir);
        stream.write_all(request.as_bytes()).expect("write");
        stream.write_all(b"\n").expect("write");
        read_json_line(&mut BufReader::new(stream))
    }

    /// `status`'s data.
    pub fn status(&self) -> Value {
        let reply = self.request(r#"{"cmd":"status"}"#);
        assert_eq!(reply["ok"], true, "{reply}");
        reply["data"].clone()
    }

    /// A task's state as the manager sees it.
    pub fn state_of(&self, task: &str) -> String {
        let reply = self.request(&serde_json::json!({"cmd": format!("task {task}")}).to_string());
        reply["data"]["state"].as_str().unwrap_or("?").to_string()
    }

    /// Waits until `task` is in `state` (per the manager).
    pub fn wait_state(&self, task: &str, state: &str) {
        let reached = wait_for(deadline(), || self.state_of(task) == state);
        assert!(reached, "{task} never became {state} (it is {})", self.state_of(task));
    }

    /// Stops the manager (SIGTERM: interrupted, resumable) and waits for it.
    pub fn stop(&mut self) -> Output {
        let child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        finish_within(child, "the manager after SIGTERM")
    }

    /// Waits for the manager to end by itself.
    pub fn finish(&mut self) -> Output {
        finish_within(self.child.take().expect("running"), "the manager")
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL);
            }
            let _ = finish_within(child, "the manager (SIGKILL)");
        }
    }
}

/// `pitboss ctl DIR ARGS…` in `scratch`.
pub fn ctl(scratch: &Scratch, dir: &Path, args: &[&str]) -> Output {
    scratch.pitboss().arg("ctl").arg(dir).args(args).output_within("pitboss ctl")
}

/// A connection to the run folder's socket (direct or through the pointer file).
pub fn connect(dir: &Path) -> UnixStream {
    let direct = dir.join("ctl.sock");
    let path = if direct.exists() {
        direct
    } else {
        PathBuf::from(std::fs::read_to_string(dir.join("ctl.sock.path")).expect("pointer file").trim_end())
    };
    let stream = UnixStream::connect(&path).expect("connect");
    stream.set_read_timeout(Some(deadline())).expect("timeout");
    stream
}

/// One JSON line.
pub fn read_json_line(reader: &mut impl BufRead) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

/// Open descriptors of process `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A short pause-free wait for a condition, with a label.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_for(Duration::from_secs(60), cond), "timed out waiting for {what}");
}
