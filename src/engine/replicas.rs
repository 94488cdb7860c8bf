//! A consensus attempt's processes (DESIGN §10): its replicas, started all at once
//! when the attempt starts, each on the pool the fold seated it on, and its judge,
//! started once the fold has seated it (every replica in without a quorum, and the
//! judge pool able to take it). Each is supervised like any attempt (timeout, stop requests); each end
//! comes back as a [`Msg::Part`]. A part silent past its pool's `stall_after` flags
//! the attempt stalled (one flag for all its parts, see [`Quiet`]).
//!
//! They are kept here, apart from the engine's `running` map (which holds one entry
//! per task: an attempt, or a gate once the winner succeeded), keyed by task and
//! attempt; the engine loop does not return while any is alive, so a run never
//! finishes (or a shutdown never returns) with a replica still running. Once the round is decided the outstanding replicas are stopped (their
//! process groups ended); their ends come back as `Stop::Cancel` and are dropped, so
//! they are never charged. A cancel stops them all the same way; an interrupt stops
//! them as interrupted, and the first such end hands the attempt back as for any
//! interrupted attempt.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::supervise::{supervise, Limits, Reports};
use super::{capture_note, Engine, Msg};
use crate::core::consensus::{judge_input, replica_file_base, ConsensusSpec, Decision};
use crate::core::{Event, FailureClass, Input, TaskState};
use crate::io::runner::{AttemptEnd, AttemptSpec, Stop};

/// One process of a consensus attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Part {
    /// Replica `r`.
    Replica(u32),
    /// The judge.
    Judge,
}

/// One attempt's live processes, each with the sender that stops it.
type Live = HashMap<Part, watch::Sender<Option<Stop>>>;

/// The live processes of consensus attempts, by (task, attempt).
#[derive(Default)]
pub(super) struct Book {
    sets: HashMap<(String, u32), Live>,
    /// Attempts whose judge was started (a judge runs once per round).
    judged: HashSet<(String, u32)>,
    /// Each attempt's quiet parts (see [`Quiet`]).
    quiet: HashMap<(String, u32), Quiet>,
}

/// The parts of one attempt silent past their pool's `stall_after`. The attempt has
/// one stall flag: raised when the first part goes quiet, lowered when none is
/// (a quiet part that ends counts as no longer quiet). Each report is sent while
/// the set is held, so the engine hears them in the order they happened.
type Quiet = Arc<Mutex<HashSet<Part>>>;

/// A part went quiet (`Some(ms)`), printed again or ended (`None`): the attempt's
/// stall report, when the flag changes.
fn quiet_changed(quiet: &Quiet, part: Part, now: Option<u64>, report: impl FnOnce(Option<u64>)) {
    let Ok(mut set) = quiet.lock() else { return };
    let was = !set.is_empty();
    match now {
        Some(_) => set.insert(part),
        None => set.remove(&part),
    };
    if was == set.is_empty() {
        report(now);
    }
}

impl Book {
    /// True when no replica or judge is alive.
    pub(super) fn is_idle(&self) -> bool {
        self.sets.is_empty()
    }
}

impl Engine {
    /// The consensus side of an event's effects; true when the event was handled
    /// here entirely (a consensus attempt's start), false when the usual effect runs too.
    pub(super) fn replica_effect(&mut self, event: &Event) -> bool {
        // The fold seats a waiting judge on whichever event frees its pool.
        self.start_seated_judges();
        match event {
            Event::AttemptStarted { task, attempt, pool } => match self.consensus_of(task) {
                Some(spec) => {
                    self.start_replicas(task, *attempt, pool, &spec);
                    true
                }
                None => false,
            },
            Event::ConsensusReached { task, attempt, .. } | Event::ConsensusFailed { task, attempt, .. } => {
                self.stop_parts(task, Some(*attempt), Stop::Cancel);
                self.replicas.judged.remove(&(task.clone(), *attempt));
                self.replicas.quiet.remove(&(task.clone(), *attempt));
                false
            }
            Event::TaskCancelled { task, .. } => {
                self.stop_parts(task, None, Stop::Cancel);
                self.replicas.judged.retain(|(t, _)| t != task);
                self.replicas.quiet.retain(|(t, _), _| t != task);
                false
            }
            Event::RunInterrupted { .. } => {
                for live in self.replicas.sets.values() {
                    for stop in live.values() {
                        let _ = stop.send(Some(Stop::Interrupt));
                    }
                }
                false
            }
            _ => false,
        }
    }

    /// A part of a consensus attempt ended: forgotten.
    pub(super) fn part_ended(&mut self, task: &str, attempt: u32, part: Part) {
        let key = (task.to_string(), attempt);
        let Some(live) = self.replicas.sets.get_mut(&key) else { return };
        live.remove(&part);
        if live.is_empty() {
            self.replicas.sets.remove(&key);
        }
    }

    pub(super) fn consensus_of(&self, task: &str) -> Option<ConsensusSpec> {
        let i = self.state.task_index(task)?;
        self.state.workflow.tasks[i].consensus.as_deref().cloned()
    }

    /// Starts every replica of `attempt`: replica `r` on the pool the fold seated it
    /// on (the spec's pool for it when that pool could take it, else the attempt's); `"replica": r` in its stdin JSON, `PITBOSS_REPLICA` in its
    /// environment, its output in `TASK.ATTEMPT.rR.*`.
    fn start_replicas(&mut self, task: &str, attempt: u32, pool: &str, spec: &ConsensusSpec) {
        let mut live = HashMap::new();
        let quiet = Quiet::default();
        for r in 0..spec.replicas {
            // Where the fold seated it (a paused, broken or full pool is not used).
            let seated = self.state.task_index(task).and_then(|i| self.state.replica_pool(i, r));
            let on = seated.or(spec.replica_pool(r)).unwrap_or(pool).to_string();
            let prepared = self.attempt_spec(task, attempt, &on).map(|(mut s, limits)| {
                s.stdin = with_fields(s.stdin.take(), json!({ "replica": r }));
                s.env.push(("PITBOSS_REPLICA".into(), r.to_string()));
                s.file_base = Some(replica_file_base(&crate::core::spawn::file_stem(&s.task), attempt, r));
                (s, limits)
            });
            let plan = self.workspace_plan(task, attempt, &on, Some(r));
            let part = Part::Replica(r);
            live.insert(part, self.launch(task, attempt, part, on, (prepared, plan), quiet.clone()));
        }
        self.replicas.sets.insert((task.to_string(), attempt), live);
        self.replicas.quiet.insert((task.to_string(), attempt), quiet);
    }

    /// Starts every judge the fold has seated and that is not started yet.
    pub(super) fn start_seated_judges(&mut self) {
        let seated: Vec<usize> = self.state.seats.iter().filter(|(_, s)| s.judge.is_some()).map(|(i, _)| *i).collect();
        for i in seated {
            let TaskState::Running { attempt, .. } = self.state.tasks[i].state else { continue };
            let task = self.state.task_id(i).to_string();
            if !self.replicas.judged.contains(&(task.clone(), attempt)) {
                self.start_judge(&task, attempt);
            }
        }
    }

    /// Starts the judge of `attempt`, seated on its pool by the fold, with the task's
    /// JSON and `"candidates"`.
    fn start_judge(&mut self, task: &str, attempt: u32) {
        let Some(i) = self.state.task_index(task) else { return };
        let TaskState::Running { round: Some(round), .. } = &self.state.tasks[i].state else { return };
        let Decision::NeedJudge { candidates, .. } = round.decision() else { return };
        let Some(judge_pool) = self.state.judge_pool(i).map(str::to_string) else { return };
        let key = (task.to_string(), attempt);
        self.replicas.judged.insert(key.clone());
        let prepared = self.attempt_spec(task, attempt, &judge_pool).map(|(mut s, limits)| {
            s.stdin = with_fields(s.stdin.take(), judge_input(&candidates));
            s.env.push(("PITBOSS_JUDGE".into(), "1".into()));
            s.file_base = Some(format!("{}.{attempt}.judge", crate::core::spawn::file_stem(&s.task)));
            (s, limits)
        });
        let quiet = self.replicas.quiet.get(&key).cloned().unwrap_or_default();
        let stop = self.launch(task, attempt, Part::Judge, judge_pool, (prepared, None), quiet);
        // The last replica's end emptied the attempt's set: the judge is its process now.
        self.replicas.sets.entry(key).or_default().insert(Part::Judge, stop);
    }

    /// Asks every live part of `task`'s attempt (`None`: of any attempt) to stop.
    fn stop_parts(&self, task: &str, attempt: Option<u32>, why: Stop) {
        let chosen = self.replicas.sets.iter().filter(|((t, a), _)| t == task && attempt.is_none_or(|x| x == *a));
        for (_, live) in chosen {
            for stop in live.values() {
                let _ = stop.send(Some(why));
            }
        }
    }

    /// Runs one part under a supervisor; returns its stop sender.
    fn launch(
        &self,
        task: &str,
        attempt: u32,
        part: Part,
        pool: String,
        (prepared, plan): (Result<(AttemptSpec, Limits), String>, Option<super::workspace::Plan>),
        quiet: Quiet,
    ) -> watch::Sender<Option<Stop>> {
        let (stop_tx, stop_rx) = watch::channel(None);
        let tx = self.tx.clone();
        let (runner, clock) = (self.world.runner.clone(), self.world.clock.clone());
        let task = task.to_string();
        // Boxed workspace steps keep the task small (see `Engine::start_attempt`).
        tokio::spawn(async move {
            let prepared = match (prepared, &plan) {
                (Ok((mut spec, limits)), Some(plan)) => {
                    Box::pin(plan.enter(&mut spec, &tx)).await.map(|()| (spec, limits))
                }
                (prepared, _) => prepared,
            };
            let end = match prepared {
                Ok((spec, limits)) => {
                    let (spawned_tx, spawned_task) = (tx.clone(), task.clone());
                    let (stall_tx, stall_task, stall_quiet) = (tx.clone(), task.clone(), quiet.clone());
                    let reports = Reports {
                        on_spawn: Box::new(move |pid, _worker| {
                            let _ = spawned_tx.send(Msg::Input(Input::Spawned {
                                task: spawned_task,
                                attempt,
                                pid,
                                worker: None,
                            }));
                        }),
                        // Several parts share one running attempt and its one stall flag.
                        on_stall: Box::new(move |now| {
                            quiet_changed(&stall_quiet, part, now, |quiet_ms| {
                                let (task, input_tx) = (stall_task.clone(), &stall_tx);
                                let _ = input_tx.send(Msg::Input(Input::Stall { task, attempt, quiet_ms }));
                            })
                        }),
                        on_capture_failed: capture_note(&tx, &task, attempt),
                        on_usage: super::usage::usage_note(&tx, &task, attempt, &pool, None),
                    };
                    let end = supervise(runner, clock, spec, limits, stop_rx, reports).await;
                    if let Some(plan) = &plan {
                        Box::pin(plan.record_diff(&end, &tx)).await;
                    }
                    end
                }
                Err(error) => AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO),
            };
            // A quiet part that ended is quiet no more.
            quiet_changed(&quiet, part, None, |quiet_ms| {
                let _ = tx.send(Msg::Input(Input::Stall { task: task.clone(), attempt, quiet_ms }));
            });
            let input = match end {
                // Replicas and judges cannot plan: their spawn lines are ignored.
                // A replica or judge whose worker was lost fails (class worker_lost):
                // the round's own rules decide what that costs.
                AttemptEnd::Lost { worker, reason, .. } => {
                    let outcome = AttemptEnd::lost_as_failure(&worker, &reason);
                    Some(match part {
                        Part::Replica(replica) => {
                            Input::ReplicaFinished { task: task.clone(), attempt, replica, pool, outcome }
                        }
                        Part::Judge => Input::JudgeFinished { task: task.clone(), attempt, outcome },
                    })
                }
                AttemptEnd::Outcome(outcome) | AttemptEnd::Planned(outcome, _) => Some(match part {
                    Part::Replica(replica) => {
                        Input::ReplicaFinished { task: task.clone(), attempt, replica, pool, outcome }
                    }
                    Part::Judge => Input::JudgeFinished { task: task.clone(), attempt, outcome },
                }),
                // Stopped because the round was decided, or the task cancelled (recorded
                // already): nothing to report.
                AttemptEnd::Stopped(Stop::Cancel, _) => None,
                AttemptEnd::Stopped(_, _) => {
                    Some(Input::AttemptStopped { task: task.clone(), attempt, reason: "run interrupted".into() })
                }
            };
            let _ = tx.send(Msg::Part { task, attempt, part, input });
        });
        stop_tx
    }
}

/// `stdin` with `fields`' members added, when it is a JSON object (a pool with
/// `stdin = "task"`); any other stdin is passed on as it is.
fn with_fields(stdin: Option<Vec<u8>>, fields: Value) -> Option<Vec<u8>> {
    let bytes = stdin?;
    let Ok(Value::Object(mut task)) = serde_json::from_slice::<Value>(&bytes) else { return Some(bytes) };
    if let Value::Object(extra) = fields {
        task.extend(extra);
    }
    match serde_json::to_vec(&Value::Object(task)) {
        Ok(mut out) => {
            out.push(b'\n');
            Some(out)
        }
        Err(_) => Some(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_join_a_json_stdin_and_leave_others_alone() {
        let got = with_fields(Some(b"{\"id\":\"q\"}\n".to_vec()), json!({"replica": 2})).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), json!({"id": "q", "replica": 2}));
        assert_eq!(with_fields(Some(b"plain".to_vec()), json!({"replica": 2})), Some(b"plain".to_vec()));
        assert_eq!(with_fields(None, json!({"replica": 2})), None);
    }
}
