//! One run of a hook's command: its own process group, the document on stdin then
//! EOF, its output read (bounded, never shown), and a deadline after which the whole
//! group is killed. Whatever happens, the group is gone when [`run`] returns: a hook
//! that exited is followed by a SIGKILL to its group too, so what it left running in
//! the background (its own children) does not outlive it.

use std::process::Stdio;
use std::time::Duration;

use crate::io::platform::{self, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::core::escape::escape_line;

/// Bytes kept of each output stream (its end: where the error usually is).
const KEPT: usize = 2048;
/// How long the output is awaited once the group is gone (a process that left the
/// group may still hold a pipe).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// What to run.
pub struct Hook<'a> {
    /// argv.
    pub argv: &'a [String],
    /// Extra environment (the run's marks, so a crashed manager's guardian ends it).
    pub env: &'a [(String, String)],
    /// The document for stdin.
    pub input: Vec<u8>,
    /// When it is killed.
    pub deadline: Instant,
    /// Its timeout, for the message.
    pub timeout: Duration,
}

/// Runs the hook to its end; `Err` says in one plain line why it failed.
pub async fn run(hook: Hook<'_>) -> Result<(), String> {
    let Some(program) = hook.argv.first() else { return Err("no command".to_string()) };
    // Its own group (Unix), so that a timeout ends what it started too; leading a
    // group in the manager's session also tells the orphan reaper it is ours
    // (io::runner::orphans). On Windows a Job Object holds its tree instead.
    let mut cmd =
        platform::attempt_command(hook.argv, None, hook.env).map_err(|e| format!("cannot start {program:?}: {e}"))?;
    cmd.envs(hook.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    let (mut child, contained) =
        platform::spawn_contained(&mut cmd).map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let pid = child.id().unwrap_or(0);
    if let Err(e) = contained {
        tracing::warn!("notify hook {program:?}: no Job Object for its processes: {e}");
    }
    let stdout = child.stdout.take().map(|p| tokio::spawn(tail(p)));
    let stderr = child.stderr.take().map(|p| tokio::spawn(tail(p)));
    let stdin = child.stdin.take();
    let input = hook.input;
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A hook that does not read its stdin is no failure: the write ends with EPIPE.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    };
    let ended = tokio::time::timeout_at(hook.deadline, async {
        let ((), status) = tokio::join!(feed, child.wait());
        status
    })
    .await;
    kill_group(pid);
    platform::release(pid);
    let status = match ended {
        Ok(status) => status.map_err(|e| format!("cannot wait for {program:?}: {e}")),
        Err(_) => {
            let _ = child.wait().await;
            Err(format!("timed out after {}; its process group was killed", seconds(hook.timeout)))
        }
    };
    let stderr = collect(stderr).await;
    let stdout = collect(stdout).await;
    let status = status?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "was killed by a signal".to_string(),
    };
    let said = if stderr.is_empty() { stdout } else { stderr };
    Err(if said.is_empty() { how } else { format!("{how}: {said}") })
}

fn kill_group(pid: u32) {
    if pid > 1 {
        platform::signal_group(pid, Signal::SIGKILL);
    }
}

/// The last [`KEPT`] bytes of a stream, read to its end.
async fn tail(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * KEPT {
                    kept.drain(..kept.len() - KEPT);
                }
            }
        }
    }
}

/// A stream's tail as one escaped line (never raw bytes on anyone's terminal).
async fn collect(reader: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    let Some(mut reader) = reader else { return String::new() };
    let bytes = match tokio::time::timeout(OUTPUT_GRACE, &mut reader).await {
        Ok(Ok(bytes)) => bytes,
        _ => {
            reader.abort();
            return String::new();
        }
    };
    let from = bytes.len().saturating_sub(KEPT);
    let text = String::from_utf8_lossy(&bytes[from..]);
    escape_line(text.trim()).into_owned()
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    async fn go(argv: &[String], timeout_ms: u64) -> Result<(), String> {
        let timeout = Duration::from_millis(timeout_ms);
        let hook =
            Hook { argv, env: &[], input: b"{\"on\":\"x\"}".to_vec(), deadline: Instant::now() + timeout, timeout };
        run(hook).await
    }

    #[tokio::test]
    async fn success_failure_and_a_missing_program() {
        assert_eq!(go(&sh("read line; test \"$line\" = '{\"on\":\"x\"}'"), 10_000).await, Ok(()));
        let failed = go(&sh("echo 'bad \x1b[2J' >&2; exit 3"), 10_000).await.unwrap_err();
        assert_eq!(failed, r"exited with code 3: bad \x1b[2J");
        let missing = go(&["/nonexistent/hook".to_string()], 10_000).await.unwrap_err();
        assert!(missing.starts_with("cannot start \"/nonexistent/hook\""), "{missing}");
    }

    #[tokio::test]
    async fn a_hook_past_its_deadline_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!("sleep 1000 & echo $! > {0}; echo $$ >> {0}; wait", pids.display());
        // Bounded, so that a hook that is never killed fails the test instead of hanging it.
        let failed = tokio::time::timeout(Duration::from_secs(30), go(&sh(&script), 300)).await;
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        let pids: Vec<i32> = text.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        // Gone, or at worst a zombie of an init that has not reaped it yet.
        let running = |pid: &i32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat.is_empty() && !stat.contains(") Z")
        };
        // SIGKILL is sent to the group when the hook's future returns; the kernel ends the
        // processes a moment later (on a loaded box, a scheduling slice later), so wait
        // for that, with a deadline, rather than look once.
        let gone_by = std::time::Instant::now() + Duration::from_secs(5);
        let mut left: Vec<i32> = pids.iter().copied().filter(running).collect();
        while !left.is_empty() && std::time::Instant::now() < gone_by {
            std::thread::yield_now();
            left.retain(running);
        }
        for pid in &left {
            // The test's own cleanup, by pid, when the notifier failed to end them.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
        }
        assert_eq!(pids.len(), 2, "{text}");
        assert!(left.is_empty(), "still running after the deadline: {left:?}");
        let failed = failed.expect("the hook was not ended at its deadline").unwrap_err();
        assert_eq!(failed, "timed out after 300ms; its process group was killed");
    }
}
