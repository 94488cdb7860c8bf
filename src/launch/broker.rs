//! The launcher's broker side: how a run reaches its broker ([`BrokerSetup`]), the
//! preflight that checks it before a run folder is made ([`check_broker`]), and the
//! pumps that tie a broker runner to its engine (broker news in, durable batches out).

use std::path::Path;
use std::sync::Arc;

use crate::core::workflow::Workflow;
use crate::core::{Input, RunState};
use crate::engine::EngineHandle;
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::{PoolOffer, RunScope};
use crate::io::journal::{self, Record, LOG_FILE};
use crate::io::runner::remote::BrokerRunner;
use crate::io::runner::{LocalRunner, Runner};

use super::{start_err, LaunchError};

/// How a run reaches its broker: the URL (never holding a password), the password
/// read from the environment or a file, and the lease.
#[derive(Clone)]
pub struct BrokerSetup {
    /// The broker.
    pub url: BrokerUrl,
    /// Its password, if it needs one.
    pub password: Option<Password>,
    /// A delivery idle this long is taken back from its worker.
    pub lease: std::time::Duration,
}

impl BrokerSetup {
    /// The URL as recorded and shown (no password is ever in it).
    pub fn shown(&self) -> String {
        self.url.to_string()
    }

    fn transport(&self, run_id: &str, workflow: &Workflow) -> Result<Arc<dyn crate::io::broker::Transport>, String> {
        let scope = RunScope {
            run: run_id.to_string(),
            pools: workflow
                .pools
                .iter()
                .map(|p| PoolOffer { name: p.name.clone(), capabilities: p.capabilities.clone() })
                .collect(),
            manager: format!("{}:{}", host_name(), std::process::id()),
        };
        crate::io::broker::open_transport(&self.url, self.password.as_ref(), scope).map_err(|e| e.to_string())
    }

    /// Connects the run's link and starts the broker runner over it.
    pub(super) async fn start(
        &self,
        local: LocalRunner,
        state: &RunState,
    ) -> Result<(Arc<BrokerRunner>, tokio::sync::mpsc::UnboundedReceiver<Input>), String> {
        let transport = self.transport(&state.run_id, &state.workflow)?;
        let config = crate::io::broker::link::LinkConfig::new(self.lease);
        let (link, notices) =
            crate::io::broker::link::Link::connect(transport, config).await.map_err(|e| e.to_string())?;
        let (runner, inputs) =
            BrokerRunner::start(local, link, notices, state.run_id.clone(), self.shown(), self.lease);
        // Attempts the log says run were started by an earlier manager: their results
        // are kept for them until the engine re-attaches.
        let running = state.tasks.iter().enumerate().filter_map(|(i, t)| match t.state {
            crate::core::TaskState::Running { attempt, .. } => Some((state.task_id(i).to_string(), attempt)),
            _ => None,
        });
        runner.expect(running);
        Ok((runner, inputs))
    }
}

/// Checks that `broker` is reachable and accepts the login, before any run folder is
/// made: unreachable or refused is a start error in the broker's own words.
pub fn check_broker(broker: &BrokerSetup, run_id: &str, workflow: &Workflow) -> Result<(), LaunchError> {
    let transport = broker.transport(run_id, workflow).map_err(start_err)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(start_err)?;
    runtime.block_on(async {
        match tokio::time::timeout(std::time::Duration::from_secs(10), transport.connect()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(start_err(e)),
            Err(_) => Err(start_err(format!("cannot reach the broker at {} (no answer in 10s)", broker.shown()))),
        }
    })
}

/// Where a run's attempts run: here, or on a broker's workers (command gates here).
pub(super) enum Runners {
    Local(Arc<LocalRunner>),
    Broker(Arc<BrokerRunner>),
}

impl Runners {
    pub(super) fn runner(&self) -> Arc<dyn Runner> {
        match self {
            Runners::Local(r) => r.clone(),
            Runners::Broker(r) => r.clone(),
        }
    }

    /// Ends local persistent pools; ends the run on the broker (a finished run's keys
    /// are deleted, an interrupted one's kept for `resume`).
    pub(super) async fn shutdown(self, finished: bool) {
        match self {
            Runners::Local(r) => r.shutdown().await,
            Runners::Broker(r) => {
                r.shutdown_local().await;
                r.finish(finished).await;
            }
        }
    }
}

/// The tasks that tie a broker runner to its engine.
pub(super) struct BrokerPumps {
    inputs: tokio::task::JoinHandle<()>,
    records: tokio::task::JoinHandle<()>,
}

impl BrokerPumps {
    /// Lets the record pump publish the last batches (the engine has stopped, so its
    /// queue ends), then stops the input pump.
    pub(super) async fn finish(self) {
        let abort = self.records.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.records).await.is_err() {
            abort.abort();
        }
        self.inputs.abort();
    }
}

pub(super) fn broker_pumps(
    runner: Arc<BrokerRunner>,
    mut inputs: tokio::sync::mpsc::UnboundedReceiver<Input>,
    engine: &EngineHandle,
) -> BrokerPumps {
    let handle = engine.clone();
    let inputs = tokio::spawn(async move {
        while let Some(input) = inputs.recv().await {
            if !handle.send(input) {
                break;
            }
        }
    });
    let mut records = engine.subscribe();
    let records = tokio::spawn(async move {
        while let Some(batch) = records.recv().await {
            runner.committed(&batch);
        }
    });
    BrokerPumps { inputs, records }
}

/// This host's name, for the run's meta on the broker (operators read it).
fn host_name() -> String {
    crate::io::platform::host_name().unwrap_or_else(|| "localhost".to_string())
}

/// The log's first record (`run_started`), if it reads.
pub(super) fn first_record(dir: &Path) -> Option<Record> {
    use std::io::BufRead;
    let file = std::fs::File::open(dir.join(LOG_FILE)).ok()?;
    let mut line = Vec::new();
    std::io::BufReader::new(file).read_until(b'\n', &mut line).ok()?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    journal::decode(&line).ok()
}
