//! `subscribe {"from_seq": N}`: every record from N in order, then a last line when
//! the run stops. The live queue is taken *before* the log file is read, so every
//! record is in one or the other; records are de-duplicated by seq (as
//! `launch::Feed` does), so none comes twice and none is skipped.
//!
//! A subscriber never slows the engine: a pump moves the engine's batches into a
//! bounded queue without waiting; when that queue is full the live queue is dropped
//! and the subscriber is refilled from the log file once it reads again. A subscriber
//! that leaves a line unread past the stall limit is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::connection::send;
use super::transport::Transport;
use super::Shared;
use crate::engine::fanout::Records;
use crate::io::journal::Record;
use crate::io::segments;

/// Streams records from `from` to the connection until the run stops or the client goes.
pub(crate) async fn stream<T: Transport>(mut write: T, shared: Arc<Shared>, id: Value, from: u64) {
    let mut next = from;
    loop {
        let live = shared.engine.subscribe();
        let (tx, mut queue) = mpsc::channel(shared.queue_batches.max(1));
        let overflow = Arc::new(AtomicBool::new(false));
        let pump = tokio::spawn(pump(live, tx, overflow.clone()));
        let _stop_pump = AbortOnDrop(pump.abort_handle());
        if catch_up(&mut write, &shared, &mut next).await.is_err() {
            return;
        }
        let mut refill = false;
        loop {
            let batch = tokio::select! {
                batch = queue.recv() => batch,
                () = write.closed() => return,
            };
            let Some(batch) = batch else { break };
            if batch.first().is_some_and(|r| r.seq > next) {
                // Records between were never queued here: read them from the file.
                refill = true;
                break;
            }
            for record in batch.iter() {
                if record.seq < next {
                    continue;
                }
                if send(&mut write, &record_line(record), &shared).await.is_err() {
                    return;
                }
                next = record.seq + 1;
            }
        }
        if !refill && !overflow.load(Ordering::Acquire) {
            break;
        }
    }
    let last = json!({"ok": true, "id": id, "end": true, "next_seq": next, "message": "the run stopped"});
    let _ = send(&mut write, &last, &shared).await;
}

/// A record as `pitboss events --json` prints it.
fn record_line(record: &Record) -> Value {
    json!({"seq": record.seq, "ts": record.ts, "event": record.event})
}

/// Moves the engine's batches to the subscriber's bounded queue, never waiting; a
/// full queue ends the pump (and so the live queue) with `overflow` set.
async fn pump(mut live: Records, queue: mpsc::Sender<Arc<[Record]>>, overflow: Arc<AtomicBool>) {
    while let Some(batch) = live.recv().await {
        match queue.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflow.store(true, Ordering::Release);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Sends the log file's records from `next` on (read on a blocking thread, handed
/// over through a small queue so a big log is never held in memory).
async fn catch_up<T: Transport>(write: &mut T, shared: &Shared, next: &mut u64) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Record>(64);
    let dir = shared.dir.clone();
    let from = *next;
    let reading = tokio::task::spawn_blocking(move || {
        let mut reader_gone = false;
        let scanned = segments::scan(&dir, |record, _| {
            if !reader_gone && record.seq >= from {
                reader_gone = tx.blocking_send(record).is_err();
            }
            Ok(())
        });
        scanned.map(|_| ()).map_err(|e| e.to_string())
    });
    while let Some(record) = rx.recv().await {
        if record.seq < *next {
            continue;
        }
        send(write, &record_line(&record), shared).await?;
        *next = record.seq + 1;
    }
    match reading.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Ends the pump when the subscription ends, however it ends.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
