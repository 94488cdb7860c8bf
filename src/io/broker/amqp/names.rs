//! Names on RabbitMQ (plan §8). Pool queues are shared by every run (AMQP has no
//! cross-run claim problem, and nothing to discover runs with); everything of one run
//! carries its id, so a clean finish deletes it.

/// Direct exchange of heartbeats and output, routing key = run.
pub const LIVE_EXCHANGE: &str = "pitboss.live";
/// Direct exchange of worker registrations, routing key = pool.
pub const WORKERS_EXCHANGE: &str = "pitboss.workers";
/// Direct exchange of stop requests, routing key = worker id (or [`ALL_WORKERS`]).
pub const CONTROL_EXCHANGE: &str = "pitboss.control";
/// The control key every worker also listens on: a stop for an attempt whose worker
/// the manager does not know yet (published, not yet started).
pub const ALL_WORKERS: &str = "pitboss.all";
/// Most heartbeats and output messages the manager's live queue keeps (drop-head).
pub const LIVE_MAX: i64 = 10_000;
/// Header of a registration message saying the worker left (a clean exit).
pub const GONE_HEADER: &str = "pitboss-gone";

/// The pool's attempt queue (durable, quorum).
pub fn pool_queue(pool: &str) -> String {
    format!("pitboss.pool.{pool}")
}

/// The run's results queue (durable, quorum).
pub fn results(run: &str) -> String {
    format!("pitboss.{run}.results")
}

/// The run's fanout exchange of committed records.
pub fn events(run: &str) -> String {
    format!("pitboss.{run}.events")
}

/// A worker's control queue: exclusive to its connection, so it exists exactly while
/// that connection lives (the manager asks, to tell a dead worker, whose deliveries
/// the broker hands back itself, from a silent one that still holds them).
pub fn worker_control(worker: &str) -> String {
    format!("pitboss.control.{worker}")
}

/// The connection name of a manager (`rabbitmqctl list_connections name`).
pub fn manager_connection(run: &str) -> String {
    format!("pitboss-manager {run}")
}

/// The connection name of a worker.
pub fn worker_connection(worker: &str) -> String {
    format!("pitboss-worker {worker}")
}
