//! `pitboss attach DIR`: a [`RunHandle`] over the control socket, so the TUI runs
//! against a run another (headless) manager process is running. The snapshot is the
//! fold of `subscribe` from 0 up to where the manager's records were when it
//! attached; the feed is the rest of that subscription. Keys become command lines
//! (`core::command::line_for`) sent over a second connection, where the manager
//! checks them like any `pitboss ctl`. `stop` detaches: the run goes on.
//!
//! Live output chunks are not sent over the socket: the output panes of an attached
//! TUI fill from the output files and the log, not from the live stream.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, watch};

use crate::core::command::line_for;
use crate::core::{Input, RunState};
use crate::io::journal::Record;
use crate::io::runner::OutputChunk;
use crate::launch::{Feed, RunHandle, CTL_SOCKET, CTL_SOCKET_POINTER};

/// How long attaching waits for a manager that has just started to commit its first
/// records.
const FIRST_RECORDS: Duration = Duration::from_secs(10);

/// The TUI's handle on a run served by another manager process.
pub struct Attached {
    snapshot: RunState,
    feed: Option<Feed>,
    commands: mpsc::UnboundedSender<String>,
    detach: watch::Sender<bool>,
    // Keeps the (empty) output channel open for the feed's receiver.
    _output: broadcast::Sender<OutputChunk>,
}

/// Whether the run stopped while attached (else the operator detached).
#[derive(Clone, Default)]
pub struct RunStopped(Arc<AtomicBool>);

impl RunStopped {
    /// True when the manager said the run stopped.
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl RunHandle for Attached {
    fn send(&self, input: Input) -> bool {
        match line_for(&input) {
            Some(line) => self.commands.send(line).is_ok(),
            None => false,
        }
    }

    fn stop(&self, _reason: &str) {
        // Detach, never stop the run: the feed ends and so does the TUI.
        let _ = self.detach.send(true);
    }

    fn snapshot(&self) -> &RunState {
        &self.snapshot
    }

    fn take_feed(&mut self) -> Option<Feed> {
        self.feed.take()
    }
}

/// Attaches to the manager running `dir`.
pub async fn attach(dir: &Path) -> Result<(Attached, RunStopped), String> {
    let no_manager =
        || format!("no manager is running {} (start it with pitboss resume {})", dir.display(), dir.display());
    let path = socket_path(dir).ok_or_else(no_manager)?;
    let control = UnixStream::connect(&path).await.map_err(|_| no_manager())?;
    let (control_read, mut control_write) = control.into_split();
    let mut replies = BufReader::new(control_read).lines();
    let end = records_end(&mut control_write, &mut replies).await?;

    let subscription = UnixStream::connect(&path).await.map_err(|_| no_manager())?;
    let (sub_read, mut sub_write) = subscription.into_split();
    sub_write.write_all(b"{\"cmd\":\"subscribe\",\"from_seq\":0}\n").await.map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(sub_read).lines();
    let mut backlog: Vec<Record> = Vec::new();
    while backlog.last().is_none_or(|r| r.seq + 1 < end) {
        let line = lines.next_line().await.map_err(|e| e.to_string())?;
        match line.as_deref().map(parse_line) {
            Some(Ok(Some(record))) => backlog.push(record),
            // The run stopped (or the manager went) before we caught up: show what there is.
            Some(Ok(None)) | None => break,
            Some(Err(e)) => return Err(e),
        }
    }
    let first = backlog.first().ok_or("the manager sent no records")?;
    let mut snapshot = RunState::from_first(&first.event).map_err(|e| e.to_string())?;
    for record in &backlog[1..] {
        snapshot.apply(&record.event, record.ts).map_err(|e| e.to_string())?;
    }
    let (records_tx, records_rx) = mpsc::unbounded_channel();
    let (detach, detached) = watch::channel(false);
    let stopped = RunStopped::default();
    tokio::spawn(forward(lines, sub_write, records_tx, detached.clone(), stopped.clone()));
    let (commands, commands_rx) = mpsc::unbounded_channel();
    tokio::spawn(send_commands(control_write, replies, commands_rx, detached));
    let (output, output_rx) = broadcast::channel(1);
    let feed = Feed::new(backlog, records_rx, output_rx);
    Ok((Attached { snapshot, feed: Some(feed), commands, detach, _output: output }, stopped))
}

/// The seq after the manager's last record, from `status` (waits briefly for a
/// manager that has not committed its first batch yet).
async fn records_end(write: &mut OwnedWriteHalf, replies: &mut Lines<BufReader<OwnedReadHalf>>) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + FIRST_RECORDS;
    loop {
        write.write_all(b"{\"cmd\":\"status\"}\n").await.map_err(|e| e.to_string())?;
        let reply = replies.next_line().await.map_err(|e| e.to_string())?.ok_or("the manager went away")?;
        let reply: Value = serde_json::from_str(&reply).map_err(|e| e.to_string())?;
        if let Some(end) = reply["data"]["next_seq"].as_u64() {
            return Ok(end);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("the manager has recorded nothing yet".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record line, `None` for the last line (the run stopped), or what is wrong.
fn parse_line(line: &str) -> Result<Option<Record>, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("control socket: {e}"))?;
    if value.get("seq").is_none() {
        return match value["error"].as_str() {
            Some(error) => Err(error.to_string()),
            None => Ok(None),
        };
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("control socket: a record this build cannot read ({e})"))
}

/// Hands the subscription's records to the feed until the run stops, the manager goes
/// or the operator detaches.
async fn forward(
    mut lines: Lines<BufReader<OwnedReadHalf>>,
    _write: OwnedWriteHalf,
    records: mpsc::UnboundedSender<Arc<[Record]>>,
    mut detached: watch::Receiver<bool>,
    stopped: RunStopped,
) {
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = detached.wait_for(|d| *d) => return,
        };
        match line.as_ref().map(|l| l.as_deref().map(parse_line)) {
            Ok(Some(Ok(Some(record)))) => {
                if records.send(Arc::from(vec![record])).is_err() {
                    return;
                }
            }
            Ok(Some(Ok(None))) => {
                stopped.0.store(true, Ordering::Release);
                return;
            }
            Ok(Some(Err(e))) => {
                tracing::warn!("attach: {e}");
                return;
            }
            Ok(None) | Err(_) => {
                // The manager went away without a last line (killed): the run stopped.
                stopped.0.store(true, Ordering::Release);
                return;
            }
        }
    }
}

/// Sends the TUI's commands, one request each; refusals are logged (the TUI checked
/// them against the same state before sending).
async fn send_commands(
    mut write: OwnedWriteHalf,
    mut replies: Lines<BufReader<OwnedReadHalf>>,
    mut commands: mpsc::UnboundedReceiver<String>,
    mut detached: watch::Receiver<bool>,
) {
    loop {
        let line = tokio::select! {
            line = commands.recv() => line,
            _ = detached.wait_for(|d| *d) => return,
        };
        let Some(line) = line else { return };
        let mut request = json!({"cmd": line}).to_string().into_bytes();
        request.push(b'\n');
        if write.write_all(&request).await.is_err() {
            return;
        }
        match replies.next_line().await {
            Ok(Some(reply)) if reply.contains("\"ok\":false") => tracing::warn!("attach: {line:?} refused: {reply}"),
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}

/// `DIR/ctl.sock`, or the path its pointer file names.
fn socket_path(dir: &Path) -> Option<PathBuf> {
    let direct = dir.join(CTL_SOCKET);
    if direct.exists() {
        return Some(direct);
    }
    let pointer = std::fs::read_to_string(dir.join(CTL_SOCKET_POINTER)).ok()?;
    Some(PathBuf::from(pointer.trim_end()))
}
