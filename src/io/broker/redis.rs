//! Redis Streams behind [`Transport`](super::Transport) and
//! [`WorkerTransport`](super::WorkerTransport) (plan §2): per-run pool queues with a
//! `workers` consumer group, a results stream read by the `manager` group, a capped
//! live stream, stop keys, a meta hash, and discovery zsets, all under `pitboss:`.

mod conn;
pub mod keys;
mod manager;
mod reply;
mod worker;

pub use manager::RedisTransport;
pub use worker::RedisWorkerTransport;

use crate::io::broker::wire::{self, Checked};
use crate::io::broker::BrokerError;

/// Milliseconds since the epoch by the system clock (scores of discovery zsets).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Encodes a message we are about to send; failing is a bug in our own message, named.
fn encode<T: Checked>(broker: &str, msg: &T) -> Result<String, BrokerError> {
    wire::encode(msg)
        .map_err(|e| BrokerError::Protocol { broker: broker.to_string(), detail: format!("message not sent: {e}") })
}
