//! Task workspaces in the engine (DESIGN §13): which attempts get one, and the two
//! moments it matters. Before the process starts, the workspace is made (or found
//! again: a retry or a resumed manager reuses it, so an agent's per-cwd session goes
//! on) inside the attempt's own future, never in the engine loop, since git may take
//! a while; it becomes the attempt's cwd. After the attempt ends, its diff is
//! recorded as a note sent ahead of the attempt's end, so `diff_recorded` precedes
//! `attempt_succeeded` in the log and the gates (which run in the same workspace)
//! and the operator see it with the result.
//!
//! A workspace that cannot be made fails the attempt as `spawn_permanent` (charged
//! like a command that cannot start): git missing or a broken repository does not
//! heal by retrying, and a dead letter with git's message says what to fix before a
//! `dlq replay`. Consensus replicas run at once, so each has its own (`ID+rR`).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Engine, Msg};
use crate::core::event::{DiffRecorded, WorkspaceCreated};
use crate::core::redact::Redactor;
use crate::core::workflow::{PoolMode, Workspace};
use crate::core::Event;
use crate::io::runner::{AttemptEnd, AttemptSpec};
use crate::io::workspace;

/// One attempt's workspace: where, and what to tell the engine.
pub(super) struct Plan {
    ws: Workspace,
    state_dir: PathBuf,
    run_id: String,
    task: String,
    attempt: u32,
    replica: Option<u32>,
    /// Why the attempt cannot have its workspace here (a persistent pool, a broker run).
    refused: Option<String>,
    redactor: Arc<Redactor>,
}

impl Engine {
    /// The workspace task `i` runs in on `pool`: the task's own, else the pool's.
    pub(super) fn workspace_of(&self, i: usize, pool: Option<&str>) -> Option<Workspace> {
        let wf = &self.state.workflow;
        let own = wf.tasks.get(i).and_then(|t| t.workspace()).cloned();
        own.or_else(|| pool.and_then(|p| wf.pool_index(p)).and_then(|p| wf.pools[p].workspace.clone()))
    }

    /// The plan of `task`'s attempt on `pool` (`replica` of a consensus task), if its
    /// task or pool asks for a workspace.
    pub(super) fn workspace_plan(&self, task: &str, attempt: u32, pool: &str, replica: Option<u32>) -> Option<Plan> {
        let i = self.state.task_index(task)?;
        let ws = self.workspace_of(i, Some(pool))?;
        let wf = &self.state.workflow;
        let persistent = wf.pool_index(pool).is_some_and(|p| wf.pools[p].mode == PoolMode::Persistent);
        let refused = if wf.broker.is_some() {
            Some("a workspace is not supported in a broker run (the worker's host has no such folder)".to_string())
        } else if persistent {
            Some(format!("a workspace needs a spawn-mode pool; pool {pool:?} is persistent"))
        } else {
            None
        };
        let secrets = self.world.runner.secret_values();
        Some(Plan {
            ws,
            state_dir: self.config.state_dir.clone(),
            run_id: self.state.run_id.clone(),
            task: task.to_string(),
            attempt,
            replica,
            refused,
            redactor: Arc::new(Redactor::new(secrets).0),
        })
    }

    /// Where task `i`'s gates run: its workspace (the winning replica's for a
    /// consensus task), when it has one.
    pub(super) fn gate_workspace(&self, i: usize) -> Option<PathBuf> {
        let ws = self.workspace_of(i, self.state.tasks[i].pool.as_deref())?;
        let task = self.state.task_id(i);
        // The winner as the log says it (`consensus_reached`, kept in the state): a
        // resumed manager never saw the event live, and replica 0's workspace holds
        // another replica's work.
        let winner = self.state.consensus_winner(i).unwrap_or(0);
        let replica = self.state.workflow.tasks[i].consensus.as_ref().map(|_| winner);
        Some(ws.dir(&self.config.state_dir, task, replica))
    }
}

impl Plan {
    /// Makes (or finds) the workspace, notes a new one, and makes it the attempt's
    /// cwd; Err is the attempt's failure.
    pub(super) async fn enter(&self, spec: &mut AttemptSpec, tx: &mpsc::UnboundedSender<Msg>) -> Result<(), String> {
        if let Some(why) = &self.refused {
            return Err(why.clone());
        }
        let ready = workspace::prepare(&self.ws, &self.state_dir, &self.run_id, &self.task, self.replica)
            .await
            .map_err(|e| format!("workspace for {:?}: {e}", self.task))?;
        if let Some(created) = ready.created {
            let _ = tx.send(Msg::Note(Event::WorkspaceCreated(WorkspaceCreated {
                task: self.task.clone(),
                attempt: self.attempt,
                replica: self.replica,
                kind: self.ws.label().to_string(),
                path: ready.path.display().to_string(),
                branch: created.branch,
                base: created.base,
            })));
        }
        spec.cwd = Some(ready.path);
        Ok(())
    }

    /// Records what the attempt left in its workspace, when it ran to an outcome (an
    /// interrupted attempt runs again and is diffed then).
    pub(super) async fn record_diff(&self, end: &AttemptEnd, tx: &mpsc::UnboundedSender<Msg>) {
        if self.refused.is_some() || !matches!(end, AttemptEnd::Outcome(_) | AttemptEnd::Planned(..)) {
            return;
        }
        let diff = match workspace::diff(&self.ws, &self.state_dir, &self.task, self.replica).await {
            Ok(diff) => diff,
            Err(e) => workspace::Diff { stat: format!("no diff: {e}\n"), ..Default::default() },
        };
        let _ = tx.send(Msg::Note(Event::DiffRecorded(DiffRecorded {
            task: self.task.clone(),
            attempt: self.attempt,
            replica: self.replica,
            stat: self.redactor.text(&diff.stat).into_owned(),
            patch: self.redactor.text(&diff.patch).into_owned(),
            cut_bytes: diff.cut_bytes,
        })));
    }
}
