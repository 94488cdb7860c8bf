//! What an attempt is given: argv with placeholders filled, stdin (the task JSON with
//! its dependencies' results, a template, or nothing), the environment that marks it
//! as this run's, and its time limits. Built from the run state when the attempt
//! starts, so an operator's payload edit applies to the next attempt.

use std::sync::Arc;
use std::time::Duration;

use super::supervise::Limits;
use super::Engine;
use crate::core::agents::{Call, CONTINUE_ASKED_PROMPT, CONTINUE_PROMPT};
use crate::core::event::{AttemptFlagged, Event, SessionRecorded};
use crate::core::gates::feedback;
use crate::core::protocol::{fill, task_json, FillError, TaskView};
use crate::core::workflow::{PoolMode, StdinMode};
use crate::io::guardian::MANAGER_PID_ENV;
use crate::io::runner::control_lines::ControlSink;
use crate::io::runner::persistent::WorkerSpec;
use crate::io::runner::AttemptSpec;

impl Engine {
    /// `templates` (a pool's argv, or its stdin template) with task `i`'s placeholders
    /// filled for `attempt`: the one place workers, replicas and reviewers get them.
    pub(super) fn filled(&self, i: usize, attempt: u32, templates: &[String]) -> Result<Vec<String>, FillError> {
        let spec = &self.state.workflow.tasks[i];
        let payload = &self.state.tasks[i].payload().unwrap_or(&spec.payload).value();
        let view = TaskView { id: &spec.id, kind: &spec.kind, payload, attempt, run_id: &self.state.run_id };
        self.filled_in(view, templates)
    }

    /// [`Engine::filled`] for a task whose view is at hand (its payload parsed once
    /// per attempt, not once per template).
    fn filled_in(&self, view: TaskView<'_>, templates: &[String]) -> Result<Vec<String>, FillError> {
        // Made only for a template that names them: most name neither, and this runs
        // for every attempt (benchmark P1).
        let extra = |name: &str| match name {
            "pitboss" => Some(self.config.pitboss_exe.display().to_string()),
            "state_dir" => Some(self.config.state_dir.display().to_string()),
            _ => None,
        };
        templates.iter().map(|t| fill(t, view, &extra)).collect()
    }

    /// How a persistent pool starts its processes: built once per pool and shared by
    /// its attempts (the pool's actor reads it only when it starts, so a spec built
    /// per attempt was thrown away; building it was a tenth of the manager's time at
    /// 10k tasks/s, issue 14).
    pub(super) fn worker_spec(&self, pool: &str) -> Arc<WorkerSpec> {
        let mut specs = self.worker_specs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(spec) = specs.get(pool) {
            return spec.clone();
        }
        let spec = Arc::new(self.build_worker_spec(pool));
        specs.insert(pool.to_string(), spec.clone());
        spec
    }

    fn build_worker_spec(&self, pool: &str) -> WorkerSpec {
        let wf = &self.state.workflow;
        let p = wf.pool_index(pool).unwrap_or(0);
        let spec = &wf.pools[p];
        let exe = self.config.pitboss_exe.display().to_string();
        let state_dir = self.config.state_dir.display().to_string();
        // Only run-wide placeholders make sense for a process that serves many tasks
        // (the workflow check refuses the others for persistent pools).
        let argv = spec
            .command
            .iter()
            .map(|a| {
                a.replace("{pitboss}", &exe).replace("{state_dir}", &state_dir).replace("{run_id}", &self.state.run_id)
            })
            .collect();
        let mut env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.push(("PITBOSS_RUN_ID".into(), self.state.run_id.clone()));
        env.push((MANAGER_PID_ENV.into(), manager_pid().to_string()));
        env.push(("PITBOSS_POOL".into(), pool.to_string()));
        env.push(("PITBOSS_STATE_DIR".into(), state_dir));
        WorkerSpec {
            pool: pool.to_string(),
            argv,
            env,
            cwd: spec.cwd.clone(),
            processes: spec.concurrency.div_ceil(spec.per_worker.max(1)),
            per_worker: spec.per_worker.max(1),
            recycle: spec.recycle,
            kill_grace: Duration::from_millis(wf.kill_grace_ms),
        }
    }

    /// Builds argv, stdin and environment for an attempt.
    pub(super) fn attempt_spec(&self, task: &str, attempt: u32, pool: &str) -> Result<(AttemptSpec, Limits), String> {
        let wf = &self.state.workflow;
        let i = self.state.task_index(task).ok_or_else(|| format!("unknown task {task:?}"))?;
        let spec = &wf.tasks[i];
        let pool_spec = wf.pool_index(pool).map(|p| &wf.pools[p]).ok_or_else(|| format!("unknown pool {pool:?}"))?;
        let payload = &self.state.tasks[i].payload().unwrap_or(&spec.payload).value();
        let view = TaskView { id: &spec.id, kind: &spec.kind, payload, attempt, run_id: &self.state.run_id };
        let state_dir = self.config.state_dir.display().to_string();
        let persistent = (pool_spec.mode == PoolMode::Persistent).then(|| self.worker_spec(pool));
        // A persistent pool's processes have their argv and environment already (its
        // worker spec): per attempt there is only the task line.
        let mut argv = if persistent.is_some() { Vec::new() } else { self.filled_in(view, &pool_spec.command)? };
        // A preset attempt after an interrupted one continues its agent session
        // (DESIGN §13): the preset's argv with the session, and a prompt that says so.
        let resume = pool_spec.agent.as_ref().zip(self.state.session_to_resume(i));
        // A custom worker that reported its session (a control line) gets the id back to
        // continue it its own way: in its task line and its environment.
        let worker_resume = if pool_spec.agent.is_none() { self.state.session_to_resume(i) } else { None };
        let mut stdin_mode = &pool_spec.stdin;
        let continue_stdin;
        // An operator's `retry --continue` follows an attempt that ended, a crash's
        // resume one that was cut off: the prompt says which.
        let prompt = if self.state.continue_asked(i) { CONTINUE_ASKED_PROMPT } else { CONTINUE_PROMPT };
        if let Some((agent, session)) = resume {
            let call = Call { prompt, model: agent.model.as_deref(), args: &agent.args, resume: Some(session) };
            argv = self.filled_in(view, &agent.preset.argv(&call))?;
            if agent.preset.prompt_on_stdin() {
                continue_stdin = StdinMode::Template(prompt.to_string());
                stdin_mode = &continue_stdin;
            }
        }
        let stdin = match stdin_mode {
            StdinMode::None => None,
            StdinMode::Template(t) => Some(self.filled_in(view, std::slice::from_ref(t))?.concat().into_bytes()),
            StdinMode::Task => {
                // Declared dependencies only; a dependency that spawned carries its
                // children's results nested (DESIGN §11).
                let inputs = crate::core::spawn::inputs(&self.state, i);
                let mut doc = task_json(view, inputs);
                // DESIGN §4: every earlier gate verdict, so the agent can fix what failed.
                let verdicts = self.state.tasks[i].verdicts();
                if let (false, Some(obj)) = (verdicts.is_empty(), doc.as_object_mut()) {
                    obj.insert("feedback".into(), feedback(verdicts));
                }
                if let (Some(session), Some(obj)) = (worker_resume, doc.as_object_mut()) {
                    obj.insert("resume_session".into(), session.into());
                    obj.insert("continuation".into(), prompt.into());
                }
                let mut bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
                bytes.push(b'\n');
                Some(bytes)
            }
        };
        let mut env: Vec<(String, String)> = Vec::new();
        if persistent.is_none() {
            env.extend(pool_spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            env.push(("PITBOSS_TASK_ID".into(), spec.id.clone()));
            env.push(("PITBOSS_ATTEMPT".into(), attempt.to_string()));
            env.push(("PITBOSS_RUN_ID".into(), self.state.run_id.clone()));
            // With the run id, this marks every descendant of the worker, so that the
            // guardian and `resume` can find them after a crash (see io/guardian.rs).
            env.push((MANAGER_PID_ENV.into(), manager_pid().to_string()));
            env.push(("PITBOSS_POOL".into(), pool.to_string()));
            env.push(("PITBOSS_STATE_DIR".into(), state_dir.clone()));
            if let Some(session) = worker_resume {
                env.push(("PITBOSS_RESUME_SESSION".into(), session.to_string()));
            }
        }
        let limits = Limits {
            timeout: Duration::from_millis(spec.timeout_ms),
            stall_after: pool_spec.stall_after_ms.map(Duration::from_millis),
            stall_kill_after: pool_spec.stall_kill_after_ms.map(Duration::from_millis),
        };
        let spec = AttemptSpec {
            pool: pool.to_string(),
            task: spec.id.clone(),
            attempt,
            argv,
            stdin,
            env,
            cwd: pool_spec.cwd.clone(),
            timeout: Duration::from_millis(spec.timeout_ms),
            kill_grace: Duration::from_millis(wf.kill_grace_ms),
            output_dir: self.config.output_dir.clone(),
            live: Some(self.output.clone()),
            persistent,
            file_base: None,
            reattach: false,
            agent: pool_spec.agent.as_ref().map(|a| a.preset),
            on_control: Some(self.control_sink(task, attempt)),
        };
        Ok((spec, limits))
    }

    /// Where an attempt's `session` and `flag` control lines go: notes recorded as
    /// they arrive (`session_recorded`, `attempt_flagged`), each said once per attempt
    /// (a worker repeating its session id records nothing new). Other control lines
    /// (`usage`) are left to their own readers.
    fn control_sink(&self, task: &str, attempt: u32) -> ControlSink {
        let (tx, task) = (self.tx.clone(), task.to_string());
        let told = std::sync::Mutex::new(Vec::<String>::new());
        ControlSink(Arc::new(move |line: serde_json::Value| {
            let text = |key: &str| line.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let event = match line.get("pitboss").and_then(|v| v.as_str()) {
                Some("session") => match text("id").filter(|id| !id.is_empty() && id.len() <= 256) {
                    Some(id) => Event::SessionRecorded(SessionRecorded { task: task.clone(), attempt, id }),
                    None => return,
                },
                Some("flag") => match text("flag").filter(|f| !f.is_empty() && f.len() <= 64) {
                    Some(flag) => {
                        let tools = (line.get("tools").and_then(|t| t.as_array()).into_iter().flatten())
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .take(32)
                            .collect();
                        let detail: String = text("detail").unwrap_or_default().chars().take(500).collect();
                        Event::AttemptFlagged(AttemptFlagged { task: task.clone(), attempt, flag, tools, detail })
                    }
                    None => return,
                },
                _ => return,
            };
            let key = match &event {
                Event::SessionRecorded(s) => format!("session {}", s.id),
                Event::AttemptFlagged(f) => format!("flag {}", f.flag),
                _ => return,
            };
            let mut told = told.lock().unwrap_or_else(|p| p.into_inner());
            if told.contains(&key) || told.len() >= 64 {
                return;
            }
            told.push(key);
            let _ = tx.send(super::Msg::Note(event));
        }))
    }
}

impl Engine {
    /// Waits again for every attempt the state says runs but no supervisor watches
    /// (a resumed broker run whose workers kept them).
    pub(super) fn reattach(&mut self) {
        let running: Vec<(String, u32, String)> = (self.state.tasks.iter().enumerate())
            .filter_map(|(i, t)| match (&t.state, &t.pool) {
                (crate::core::TaskState::Running { attempt, .. }, Some(pool)) => {
                    Some((self.state.task_id(i).to_string(), *attempt, pool.to_string()))
                }
                _ => None,
            })
            .filter(|(task, _, _)| !self.running.contains_key(task))
            .collect();
        for (task, attempt, pool) in running {
            self.start_attempt(&task, attempt, &pool, true);
        }
    }
}

/// This manager's pid, asked of the kernel once: every attempt's environment names it,
/// and `getpid` is a system call each time (benchmark P1 counts them per attempt).
fn manager_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}
