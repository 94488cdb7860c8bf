//! `pitboss attach DIR`: a [`RunHandle`] over the control socket, so the TUI runs
//! against a run another (headless) manager process is running. The feed's backlog is
//! `subscribe` from 0 up to where the manager's records were when it attached (the
//! TUI folds it); the rest of that subscription follows. Keys become command lines
//! (`core::command::line_for`) sent over a second connection, where the manager
//! checks them like any `pitboss ctl`. `stop` detaches: the run goes on.
//!
//! Works the same over the socket (`attach DIR`) and over `--listen`'s WebSocket
//! (`attach ws://HOST:PORT --token-file F`). Workers' live output comes over a third
//! connection (`subscribe_output`) into the feed's output channel, so the panes show
//! a running worker's lines, starting with what it printed lately before the attach
//! (`recent.rs`); chunks missed by a client that fell behind are only in the output
//! files.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, watch};

use super::client::{Conn, Target};

use crate::core::command::line_for;
use crate::core::Input;
use crate::io::journal::Record;
use crate::io::runner::OutputChunk;
use crate::launch::{Feed, RunHandle};

/// How long attaching waits for a manager that has just started to commit its first
/// records.
const FIRST_RECORDS: Duration = Duration::from_secs(10);

/// Output chunks the attached TUI may leave unread before it misses some (as the
/// local feed: live panes only).
const OUTPUT_CHUNKS: usize = 1024;

/// The TUI's handle on a run served by another manager process.
pub struct Attached {
    feed: Option<Feed>,
    commands: mpsc::UnboundedSender<String>,
    detach: watch::Sender<bool>,
    // Keeps the output channel open for the feed's receiver.
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

    fn take_feed(&mut self) -> Option<Feed> {
        self.feed.take()
    }
}

/// Attaches to the manager at `target`.
pub async fn attach(target: &Target) -> Result<(Attached, RunStopped), String> {
    let mut control = Conn::open(target).await?;
    let end = records_end(&mut control).await?;

    // Output first: lines printed while the backlog loads still reach the panes.
    let mut output_conn = Conn::open(target).await?;
    output_conn.send_line(r#"{"cmd":"subscribe_output"}"#).await?;
    // Its first line says the subscription is live: what workers print from here on
    // reaches the panes.
    output_conn.next_line().await?.ok_or("the manager went away")?;
    let (output, output_rx) = broadcast::channel(OUTPUT_CHUNKS);

    let mut subscription = Conn::open(target).await?;
    subscription.send_line(r#"{"cmd":"subscribe","from_seq":0}"#).await?;
    let mut backlog: Vec<Record> = Vec::new();
    while backlog.last().is_none_or(|r| r.seq + 1 < end) {
        let line = subscription.next_line().await?;
        match line.as_deref().map(parse_line) {
            Some(Ok(Some(record))) => backlog.push(record),
            // The run stopped (or the manager went) before we caught up: show what there is.
            Some(Ok(None)) | None => break,
            Some(Err(e)) => return Err(e),
        }
    }
    // The TUI folds the backlog (and says what does not fold).
    if backlog.is_empty() {
        return Err("the manager sent no records".into());
    }
    let (records_tx, records_rx) = mpsc::unbounded_channel();
    let (detach, detached) = watch::channel(false);
    let stopped = RunStopped::default();
    tokio::spawn(forward(subscription, records_tx, detached.clone(), stopped.clone()));
    tokio::spawn(forward_output(output_conn, output.clone(), detached.clone()));
    let (commands, commands_rx) = mpsc::unbounded_channel();
    tokio::spawn(send_commands(control, commands_rx, detached));
    let feed = Feed::new(backlog, records_rx, output_rx);
    Ok((Attached { feed: Some(feed), commands, detach, _output: output }, stopped))
}

/// The seq after the manager's last record, from `status` (waits briefly for a
/// manager that has not committed its first batch yet).
async fn records_end(control: &mut Conn) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + FIRST_RECORDS;
    loop {
        control.send_line(r#"{"cmd":"status"}"#).await?;
        let reply = control.next_line().await?.ok_or("the manager went away")?;
        let reply: Value = serde_json::from_str(&reply).map_err(|e| e.to_string())?;
        if let Some(end) = reply["data"]["next_seq"].as_u64() {
            return Ok(end);
        }
        if let Some(error) = reply["error"].as_str() {
            return Err(format!("the manager refused: {error}"));
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
    mut subscription: Conn,
    records: mpsc::UnboundedSender<Arc<[Record]>>,
    mut detached: watch::Receiver<bool>,
    stopped: RunStopped,
) {
    loop {
        let line = tokio::select! {
            line = subscription.next_line() => line,
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

/// Hands `subscribe_output`'s chunks to the feed's output channel (a TUI that lags
/// misses chunks there, as it would locally).
async fn forward_output(mut conn: Conn, output: broadcast::Sender<OutputChunk>, mut detached: watch::Receiver<bool>) {
    loop {
        let line = tokio::select! {
            line = conn.next_line() => line,
            _ = detached.wait_for(|d| *d) => return,
        };
        let Ok(Some(line)) = line else { return };
        let Ok(value) = serde_json::from_str::<Value>(&line) else { continue };
        if let Some(chunk) = super::output::parse_chunk(&value) {
            // No receiver (the TUI is gone) is not an error here: detaching ends us.
            let _ = output.send(chunk);
        } else if value.get("end").is_some() {
            return;
        }
    }
}

/// Sends the TUI's commands, one request each; refusals are logged (the TUI checked
/// them against the same state before sending).
async fn send_commands(
    mut control: Conn,
    mut commands: mpsc::UnboundedReceiver<String>,
    mut detached: watch::Receiver<bool>,
) {
    loop {
        let line = tokio::select! {
            line = commands.recv() => line,
            _ = detached.wait_for(|d| *d) => return,
        };
        let Some(line) = line else { return };
        if control.send_line(&json!({"cmd": line}).to_string()).await.is_err() {
            return;
        }
        match control.next_line().await {
            Ok(Some(reply)) if reply.contains("\"ok\":false") => tracing::warn!("attach: {line:?} refused: {reply}"),
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}
