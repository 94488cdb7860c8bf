//! Committed records handed to every subscriber, in order, none lost. Each subscriber
//! has its own unbounded queue of shared batches (`Arc<[Record]>`): the engine never
//! waits for a reader and a slow reader never lags out of the stream; it costs memory
//! only for the batches it has not read yet, and the batches are shared by all.
//! (A broadcast channel drops records for a slow reader; a front end that folded such
//! a stream would show a state the run never had.)

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::io::journal::Record;

/// One subscriber's queue: batches of records in commit order; `None` once the engine
/// has stopped and every batch was read.
pub type Records = mpsc::UnboundedReceiver<Arc<[Record]>>;

/// The sending ends of the subscribers' queues; `None` once the engine stopped.
type Senders = Option<Vec<mpsc::UnboundedSender<Arc<[Record]>>>>;

/// The engine's subscribers. Shared by the engine and its handles.
#[derive(Debug, Default)]
pub struct Fanout {
    /// `None` once the engine stopped: later subscribers get a closed queue.
    subscribers: Mutex<Senders>,
}

impl Fanout {
    /// An open fan-out with no subscriber.
    pub fn new() -> Fanout {
        Fanout { subscribers: Mutex::new(Some(Vec::new())) }
    }

    /// A queue of every batch committed from now on.
    pub fn subscribe(&self) -> Records {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(subscribers) = self.lock().as_mut() {
            subscribers.push(tx);
        }
        rx
    }

    /// Hands a committed batch to every subscriber; forgets those that went away.
    pub fn publish(&self, batch: Arc<[Record]>) {
        if let Some(subscribers) = self.lock().as_mut() {
            subscribers.retain(|tx| tx.send(batch.clone()).is_ok());
        }
    }

    /// Ends every queue (after the batches already in it).
    pub fn close(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Senders> {
        // A panic while holding this lock cannot leave the vector half-changed.
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
