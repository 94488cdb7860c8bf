//! The link's actor (outbox, reconnects, timers, worker diffs) and the two pumps
//! that read the results queue and the live feed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Control, Gone, LinkConfig, LinkState, Notice, Op, Published};
use crate::io::broker::{BrokerError, BrokerErrorKind, BrokerResult, Transport, WorkerInfo};

pub(super) struct Actor {
    pub(super) transport: Arc<dyn Transport>,
    pub(super) config: LinkConfig,
    pub(super) state: watch::Sender<LinkState>,
    pub(super) notices: mpsc::UnboundedSender<Notice>,
    pub(super) outbox: VecDeque<Op>,
    pub(super) events_queued: usize,
    pub(super) events_dropped: u64,
    pub(super) workers: HashMap<String, WorkerInfo>,
    /// Set by a reconnect that found the run's data lost: the workers listed before
    /// it and missing from the next list went with the data, they did not leave.
    pub(super) workers_lost: bool,
}

/// What made the actor leave its up loop.
enum Leave {
    Down(String),
    Finish(bool, oneshot::Sender<BrokerResult<()>>),
    Closed,
}

impl Actor {
    pub(super) async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut pump_err: mpsc::UnboundedReceiver<(u64, BrokerError)>,
    ) {
        let mut epoch = 1;
        loop {
            match self.up(epoch, &mut control, &mut pump_err).await {
                Leave::Closed => return,
                Leave::Finish(clean, reply) => {
                    let _ = reply.send(self.transport.finish(clean).await);
                    return;
                }
                Leave::Down(reason) => {
                    let since = Instant::now();
                    let _ = self.notices.send(Notice::Down { reason: reason.clone() });
                    self.state.send_replace(LinkState::Down { reason });
                    match self.reconnect(&mut control).await {
                        Reconnected::Closed => return,
                        Reconnected::Finish(reply) => {
                            let _ = reply.send(Err(BrokerError::Unreachable {
                                broker: self.transport.describe().to_string(),
                                reason: "down when the run ended".to_string(),
                            }));
                            return;
                        }
                        Reconnected::Up(data_lost) => {
                            self.workers_lost |= data_lost;
                            epoch += 1;
                            self.state.send_replace(LinkState::Up { epoch });
                            let _ = self.notices.send(Notice::Up { down_for: since.elapsed(), data_lost });
                        }
                    }
                }
            }
        }
    }

    /// Works while up: flushes the outbox, runs the timers, takes new operations.
    async fn up(
        &mut self,
        epoch: u64,
        control: &mut mpsc::UnboundedReceiver<Control>,
        pump_err: &mut mpsc::UnboundedReceiver<(u64, BrokerError)>,
    ) -> Leave {
        let now = Instant::now();
        let mut next_reclaim = now + self.config.lease;
        let mut next_refresh = now + self.config.refresh_every;
        let mut next_workers = now;
        loop {
            if let Err(reason) = self.flush().await {
                return Leave::Down(reason);
            }
            // One `select!`: new operations first (so they are never starved by timers),
            // then a pump's failure, then the timers in the order they fall due.
            tokio::select! {
                biased;
                ctl = control.recv() => match ctl {
                    None => return Leave::Closed,
                    Some(Control::Op(op)) => self.queue(op),
                    Some(Control::Finish(clean, reply)) => {
                        if let Err(reason) = self.flush().await {
                            return Leave::Down(reason);
                        }
                        return Leave::Finish(clean, reply);
                    }
                },
                Some((pump_epoch, e)) = pump_err.recv() => {
                    // A failure seen by a pump before the last reconnect is old news.
                    if pump_epoch == epoch {
                        return Leave::Down(e.to_string());
                    }
                }
                () = tokio::time::sleep_until(next_reclaim) => {
                    next_reclaim = Instant::now() + (self.config.lease / 3).max(Duration::from_millis(10));
                    match self.transport.reclaim(self.config.lease).await {
                        Ok(r) if r.is_empty() => {}
                        Ok(r) => { let _ = self.notices.send(Notice::Reclaimed(r)); }
                        Err(e) => if let Some(reason) = self.trouble("reclaim", e) { return Leave::Down(reason) },
                    }
                }
                () = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + self.config.refresh_every;
                    if let Err(e) = self.transport.refresh().await {
                        if let Some(reason) = self.trouble("refresh", e) { return Leave::Down(reason) }
                    }
                }
                () = tokio::time::sleep_until(next_workers) => {
                    next_workers = Instant::now() + self.config.workers_every;
                    match self.transport.workers().await {
                        Ok(list) => self.diff_workers(list),
                        Err(e) => if let Some(reason) = self.trouble("workers", e) { return Leave::Down(reason) },
                    }
                }
            }
        }
    }

    /// Tries to reconnect with backoff, still taking operations into the outbox.
    async fn reconnect(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) -> Reconnected {
        let mut wait = self.config.backoff_min;
        loop {
            let deadline = Instant::now() + wait;
            loop {
                tokio::select! {
                    biased;
                    ctl = control.recv() => match ctl {
                        None => return Reconnected::Closed,
                        Some(Control::Op(op)) => self.queue(op),
                        Some(Control::Finish(_, reply)) => return Reconnected::Finish(reply),
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            let attempt = async {
                self.transport.connect().await?;
                self.transport.data_lost().await
            };
            match attempt.await {
                Ok(lost) => return Reconnected::Up(lost),
                Err(e) => {
                    self.state.send_replace(LinkState::Down { reason: e.to_string() });
                    wait = (wait * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    fn queue(&mut self, op: Op) {
        if let Op::Event(_) = op {
            if self.events_queued >= self.config.event_buffer {
                self.events_dropped += 1;
                return;
            }
            self.events_queued += 1;
        }
        self.outbox.push_back(op);
    }

    /// Sends the outbox in order; an outage stops it with the failed operation kept.
    async fn flush(&mut self) -> Result<(), String> {
        if self.events_dropped > 0 {
            let _ = self.notices.send(Notice::EventsDropped(std::mem::take(&mut self.events_dropped)));
        }
        while let Some(op) = self.outbox.front() {
            let what = op.name();
            let result = match op {
                Op::Publish(jobs) => self.transport.publish(jobs.clone()).await.map(|ids| {
                    let published = jobs
                        .iter()
                        .zip(ids)
                        .map(|(j, entry)| Published { key: j.key.clone(), dispatch: j.dispatch.clone(), entry })
                        .collect();
                    let _ = self.notices.send(Notice::Published(published));
                }),
                Op::Withdraw(entries) => self.transport.withdraw(entries.clone()).await,
                Op::Ack(ids) => self.transport.ack_inbound(ids.clone()).await,
                Op::Stop(key, why) => self.transport.stop(key.clone(), *why).await,
                Op::Event(line) => self.transport.publish_event(Arc::clone(line)).await,
                Op::Ended => self.transport.ended().await,
            };
            match result {
                Ok(()) => {}
                Err(e) => {
                    if let Some(reason) = self.trouble(what, e) {
                        return Err(reason);
                    }
                }
            }
            if let Some(Op::Event(_)) = self.outbox.pop_front() {
                self.events_queued -= 1;
            }
        }
        Ok(())
    }

    /// An outage (returns the reason, the operation stays queued), or a refusal
    /// (reported, and the operation is dropped by the caller).
    fn trouble(&self, what: &'static str, error: BrokerError) -> Option<String> {
        match error.kind() {
            BrokerErrorKind::Unreachable | BrokerErrorKind::DataLost => Some(error.to_string()),
            _ => {
                let _ = self.notices.send(Notice::Failed { what, error });
                None
            }
        }
    }

    fn diff_workers(&mut self, list: Vec<WorkerInfo>) {
        let mut listed = HashMap::with_capacity(list.len());
        for info in list {
            let id = info.registration.worker.clone();
            let was_alive = self.workers.get(&id).is_some_and(|w| w.alive);
            if info.alive && !was_alive {
                let _ = self.notices.send(Notice::WorkerSeen(info.clone()));
            } else if !info.alive && was_alive {
                let last = self.workers.get(&id).cloned().unwrap_or_else(|| info.clone());
                let _ = self.notices.send(Notice::WorkerGone { info: last, why: Gone::Expired });
            }
            listed.insert(id, info);
        }
        // Absent from the list: it unregistered, unless the broker lost its data
        // since the last list (its registration went with the rest).
        let why = if std::mem::take(&mut self.workers_lost) { Gone::DataLost } else { Gone::Left };
        for (id, info) in &self.workers {
            if info.alive && !listed.contains_key(id) {
                let _ = self.notices.send(Notice::WorkerGone { info: info.clone(), why });
            }
        }
        self.workers = listed;
    }
}

enum Reconnected {
    Up(bool),
    Finish(oneshot::Sender<BrokerResult<()>>),
    Closed,
}

#[derive(Clone, Copy)]
pub(super) enum PumpKind {
    Inbound,
    Live,
}

/// Reads one feed while the link is up; on failure tells the actor (with the epoch it
/// read in) and waits for the next epoch.
pub(super) async fn pump(
    transport: Arc<dyn Transport>,
    mut state: watch::Receiver<LinkState>,
    notices: mpsc::UnboundedSender<Notice>,
    failed: mpsc::UnboundedSender<(u64, BrokerError)>,
    batch: usize,
    kind: PumpKind,
) {
    let mut after = 0;
    loop {
        let Ok(current) =
            state.wait_for(|s| matches!(s, LinkState::Up { epoch } if *epoch > after)).await.map(|s| s.clone())
        else {
            return;
        };
        let LinkState::Up { epoch } = current else {
            continue;
        };
        loop {
            let read = match kind {
                PumpKind::Inbound => {
                    transport.read_inbound(batch).await.map(|v| (!v.is_empty()).then_some(Notice::Inbound(v)))
                }
                PumpKind::Live => transport.read_live(batch).await.map(|v| (!v.is_empty()).then_some(Notice::Live(v))),
            };
            match read {
                Ok(None) => {}
                Ok(Some(notice)) => {
                    if notices.send(notice).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if failed.send((epoch, e)).is_err() {
                        return;
                    }
                    after = epoch;
                    break;
                }
            }
            // A newer epoch means a reconnect happened under us: start over on it.
            if !matches!(&*state.borrow(), LinkState::Up { epoch: e } if *e == epoch) {
                after = epoch;
                break;
            }
        }
    }
}
