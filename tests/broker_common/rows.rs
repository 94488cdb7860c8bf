//! The brokers `tests/broker_suite.rs` runs its tests on, one row each: what a test
//! needs of a broker (its URL, a restart, what differs between brokers, cleaning up).

use super::rabbit::{delete_amqp, rabbitmq_server, unacked, OwnRabbit};
use super::{OwnRedis, SHARED_AMQP};
use pitboss::io::broker::amqp::names;

/// Deletes what run `run` (when known) of pool `pool` left on a shared server.
pub type Cleaner = Box<dyn Fn(Option<&str>, &str)>;

/// A broker a test can run against and bounce.
pub trait Broker {
    /// The URL given to the manager and the workers.
    fn url(&self) -> String;
    /// Takes the broker away and brings it back.
    fn bounce(&mut self);
    /// True when a bounce empties the broker (Redis without persistence); a
    /// restarted RabbitMQ keeps its durable quorum queues.
    fn bounce_empties(&self) -> bool;
    /// True when the broker itself hands a dead worker's unacked delivery to another
    /// worker (RabbitMQ); Redis leaves it to the manager's lease.
    fn redelivers(&self) -> bool;
    /// Deliveries of pool `pool` workers hold unacked, where the broker tells
    /// (RabbitMQ, by `rabbitmqctl`); `None` where the suite does not ask (Redis).
    fn unacked(&self, _pool: &str) -> Option<usize> {
        None
    }
    /// What to delete on a shared server when the test ends.
    fn cleaner(&self) -> Cleaner {
        Box::new(|_, _| {})
    }
}

/// A private `redis-server` (the shared one is used by others and cannot restart).
pub struct Redis(OwnRedis);

impl Redis {
    pub fn start() -> Option<Redis> {
        super::redis_server().then(|| Redis(OwnRedis::start()))
    }

    /// Every Redis test has its own server already.
    pub fn start_own() -> Option<Redis> {
        Redis::start()
    }
}

impl Broker for Redis {
    fn url(&self) -> String {
        self.0.url(None)
    }

    fn bounce(&mut self) {
        self.0.restart();
    }

    fn bounce_empties(&self) -> bool {
        true
    }

    fn redelivers(&self) -> bool {
        false
    }
}

/// RabbitMQ: the shared server on :5672 (never restarted), or a private node for
/// the test that restarts the broker.
pub struct Rabbit(Option<OwnRabbit>);

impl Rabbit {
    pub fn start() -> Option<Rabbit> {
        super::amqp().then_some(Rabbit(None))
    }

    pub fn start_own() -> Option<Rabbit> {
        rabbitmq_server().then(|| Rabbit(Some(OwnRabbit::start())))
    }
}

impl Broker for Rabbit {
    fn url(&self) -> String {
        self.0.as_ref().map_or_else(|| format!("amqp://{SHARED_AMQP}"), OwnRabbit::url)
    }

    fn bounce(&mut self) {
        self.0.as_mut().expect("a private node (start_own) to restart").restart();
    }

    fn bounce_empties(&self) -> bool {
        false
    }

    fn redelivers(&self) -> bool {
        true
    }

    fn unacked(&self, pool: &str) -> Option<usize> {
        // Only the shared server's `rabbitmqctl` (its cookie) is at hand.
        self.0.is_none().then(|| unacked(&names::pool_queue(pool))).flatten()
    }

    fn cleaner(&self) -> Cleaner {
        if self.0.is_some() {
            // A private node goes with everything on it.
            return Box::new(|_, _| {});
        }
        let url = self.url();
        Box::new(move |run, pool| {
            let mut queues = vec![names::pool_queue(pool)];
            let mut exchanges = Vec::new();
            if let Some(run) = run {
                queues.push(names::results(run));
                exchanges.push(names::events(run));
            }
            delete_amqp(&url, queues, exchanges);
        })
    }
}
