//! A task's `consensus = { replicas, strategy, quorum, key, pools, judge }` (DESIGN
//! §10), read from its TOML value into a checked [`ConsensusSpec`]. Its shape (known
//! keys, kinds of value) is checked first with the rest of the file (`shape.rs`);
//! what is left is reported here at the `consensus` value's line and column: the
//! strategy's name, [`ConsensusSpec::check`]'s rules, and pools the workflow does not
//! have.

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::parse::{RawTask, RawWorkflow};
use crate::core::consensus::{ConsensusSpec, Strategy, MAX_REPLICAS};
use crate::core::workflow::{PoolSpec, TaskSpec, Workflow};

/// The table as written; counts as wide integers so that a negative or huge one is
/// reported in the spec's words rather than as a type error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsensus {
    replicas: i64,
    strategy: String,
    quorum: Option<i64>,
    key: Option<String>,
    #[serde(default)]
    pools: Vec<String>,
    judge: Option<String>,
}

/// A count that does not fit `u32` becomes one that the spec's check refuses with
/// the range it needs.
fn clamp(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl Checker<'_> {
    /// The task's consensus spec, or `None` after reporting why it cannot run.
    pub(super) fn consensus(&mut self, value: &Spanned<toml::Value>) -> Option<ConsensusSpec> {
        let raw: RawConsensus = match value.get_ref().clone().try_into() {
            Ok(raw) => raw,
            Err(e) => {
                let message = e.to_string().trim().replace('\n', " ");
                self.report(value.span(), format!("consensus: {message}"));
                return None;
            }
        };
        if u32::try_from(raw.replicas).is_err() {
            let message = format!("consensus: `replicas` must be 2 to {MAX_REPLICAS}, not {}", raw.replicas);
            self.report(value.span(), message);
            return None;
        }
        let strategy = match raw.strategy.as_str() {
            "majority" => Strategy::Majority,
            "unanimous" => Strategy::Unanimous,
            "judge" => Strategy::Judge,
            other => {
                let message =
                    format!("consensus: strategy must be \"majority\", \"unanimous\" or \"judge\", not {other:?}");
                self.report(value.span(), message);
                return None;
            }
        };
        let spec = ConsensusSpec {
            replicas: clamp(raw.replicas),
            strategy,
            quorum: raw.quorum.map(clamp),
            key: raw.key,
            pools: raw.pools,
            judge: raw.judge,
        };
        if let Err(e) = spec.check() {
            self.report(value.span(), format!("consensus: {e}"));
            return None;
        }
        Some(spec)
    }

    /// The pools a consensus names (`pools`, `judge`) must be pools of the workflow.
    pub(super) fn consensus_pools(&mut self, raw: &RawWorkflow, workflow: &Workflow) {
        for (raw_task, task) in raw.task.iter().zip(&workflow.tasks) {
            self.consensus_pools_of(raw_task, task, &workflow.pools);
        }
    }

    /// [`consensus_pools`](Self::consensus_pools) for one task.
    pub(super) fn consensus_pools_of(&mut self, raw: &RawTask, task: &TaskSpec, pools: &[PoolSpec]) {
        let (Some(value), Some(spec)) = (&raw.consensus, &task.consensus) else { return };
        for name in spec.pools.iter().chain(&spec.judge) {
            if !pools.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                let message = format!("consensus: there is no pool {name:?} (the pools are {})", known.join(", "));
                self.report(value.span(), message);
            }
        }
    }
}
