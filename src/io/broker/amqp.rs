//! RabbitMQ behind [`Transport`](super::Transport) and
//! [`WorkerTransport`](super::WorkerTransport) (plan §8): one durable quorum queue per
//! pool shared by every run, a quorum results queue per run (acked after commit), a
//! fanout exchange of committed records per run, a direct `pitboss.live` exchange for
//! heartbeats and output, `pitboss.workers` for registrations (expiring messages) and
//! `pitboss.control` for stops addressed to a worker.
//!
//! Redelivery is the broker's: a delivery stays unacked until its result is confirmed,
//! so a dead channel or connection hands it to another consumer. The server's
//! `consumer_timeout` (RabbitMQ 3.10: 30 min, global) closes a channel that holds a
//! delivery longer; jobs that may run that long are acked as soon as `started` is
//! confirmed and then live on the manager's heartbeat lease alone (see `worker.rs`).

mod conn;
mod manager;
pub mod names;
mod worker;

pub use manager::AmqpTransport;
pub use worker::AmqpWorkerTransport;

use lapin::types::{AMQPValue, FieldTable};

use crate::io::broker::wire::{self, Checked};
use crate::io::broker::BrokerError;

/// How long the server lets a channel hold one delivery (RabbitMQ's default
/// `consumer_timeout`, 30 min in 3.10).
pub const CONSUMER_TIMEOUT_MS: u64 = 30 * 60 * 1000;
/// Jobs whose timeout is longer than this are acked once started (slack below the
/// server's consumer timeout, for queueing and clock differences).
pub const EARLY_ACK_OVER_MS: u64 = CONSUMER_TIMEOUT_MS - 2 * 60 * 1000;

/// Milliseconds since the epoch by the system clock.
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

/// Arguments of a durable quorum queue (pool and results queues): replicated, and
/// counting deliveries in `x-delivery-count`.
fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

/// How many times a delivery was delivered (1 the first time): quorum queues count
/// earlier deliveries in `x-delivery-count`; other queues only say "redelivered".
fn deliveries(delivery: &lapin::message::Delivery) -> u64 {
    let counted = delivery.properties.headers().as_ref().and_then(|h| {
        h.inner().iter().find(|(k, _)| k.as_str() == "x-delivery-count").and_then(|(_, v)| match v {
            AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(u64::from(*n)),
            AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
            AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
            _ => None,
        })
    });
    match counted {
        Some(n) => n.saturating_add(1),
        None if delivery.redelivered => 2,
        None => 1,
    }
}

/// The id a message is known by on both sides: its `message_id` when the sender set
/// one (ours always do), else one made of the channel generation and delivery tag.
fn message_key(delivery: &lapin::message::Delivery, generation: u64) -> String {
    match delivery.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_string(),
        _ => format!("tag:{generation}:{}", delivery.delivery_tag),
    }
}
