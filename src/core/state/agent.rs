//! What the run knows of a task's agent (DESIGN §13): its session, whether the next
//! attempt continues it, and the health flags its attempts raised. Kept with the
//! task's rare fields (`TaskLinks`): most tasks have none.

use serde::{Deserialize, Serialize};

use super::RunState;
use crate::core::event::{AttemptFlagged, SessionRecorded};

/// A task's agent session and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The latest `session_recorded` id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The attempt that printed it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub session_attempt: u32,
    /// Every attempt that printed this session, oldest first (an attempt that
    /// continues it prints it again): whose usage a session total already counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_attempts: Vec<u32>,
    /// True when that attempt was interrupted (a manager crash or stop) or an
    /// operator retried it with "continue": the next attempt of a preset that resumes
    /// sessions continues it. Cleared when an attempt spawns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// True when the pending `resume` is an operator's (`retry ID --continue`), not
    /// a crash's: front ends say why the next attempt continues the session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_asked: bool,
    /// Attempts that continued the session (`attempt_spawned` with `resumes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_by: Vec<u32>,
    /// Those of `resumed_by` that continued it because an operator asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continued_on_request: Vec<u32>,
    /// Every `attempt_flagged` of the task, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// One `attempt_flagged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// The attempt.
    pub attempt: u32,
    /// `denied_permission`, `looping`, …
    pub flag: String,
    /// The tools it is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// What was seen, in a line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunState {
    /// `session_recorded`: the task's session is this one, from its attempt. A note
    /// about a task this state does not know changes nothing (notes never fail a fold).
    pub(super) fn session_recorded(&mut self, recorded: &SessionRecorded) {
        let Some(i) = self.task_index(&recorded.task) else { return };
        let agent = self.tasks[i].links_mut().agent.get_or_insert_with(Default::default);
        if agent.session.as_deref() != Some(recorded.id.as_str()) {
            agent.session_attempts.clear();
        }
        if !agent.session_attempts.contains(&recorded.attempt) {
            agent.session_attempts.push(recorded.attempt);
        }
        agent.session = Some(recorded.id.clone());
        agent.session_attempt = recorded.attempt;
    }

    /// `attempt_flagged`: kept with the task, oldest first.
    pub(super) fn attempt_flagged(&mut self, flagged: &AttemptFlagged) {
        let Some(i) = self.task_index(&flagged.task) else { return };
        let agent = self.tasks[i].links_mut().agent.get_or_insert_with(Default::default);
        let AttemptFlagged { attempt, flag, tools, detail, .. } = flagged.clone();
        agent.flags.push(Flag { attempt, flag, tools, detail });
    }

    /// `attempt_interrupted` (a manager stop or crash): when the interrupted attempt
    /// recorded the session, the next attempt may continue it.
    pub(super) fn agent_interrupted(&mut self, task: &str, attempt: u32) {
        let Some(i) = self.task_index(task) else { return };
        if self.tasks[i].agent().is_some_and(|a| a.session.is_some() && a.session_attempt == attempt) {
            if let Some(agent) = self.tasks[i].links_mut().agent.as_mut() {
                agent.resume = true;
            }
        }
    }

    /// `task_requeued`: with `continue_session` (an operator's `retry ID --continue`)
    /// the next attempt continues the session; without it the operator asked for a
    /// plain retry, so a resume still pending from an interruption is dropped and the
    /// next attempt starts afresh.
    pub(super) fn agent_requeued(&mut self, task: &str, continue_session: bool) {
        if continue_session {
            self.agent_continue_asked(task);
            return;
        }
        let Some(i) = self.task_index(task) else { return };
        if self.tasks[i].agent().is_some_and(|a| a.resume) {
            if let Some(agent) = self.tasks[i].links_mut().agent.as_mut() {
                agent.resume = false;
                agent.continue_asked = false;
            }
        }
    }

    /// An operator asked the task's next attempt to continue its session (recorded on
    /// `task_requeued` or `retry_due`). A task without a session has nothing to
    /// continue: the command is refused before it is recorded, and such an event
    /// (a hand-edited log) changes nothing here.
    pub(super) fn agent_continue_asked(&mut self, task: &str) {
        let Some(i) = self.task_index(task) else { return };
        if self.tasks[i].agent().is_none_or(|a| a.session.is_none()) {
            return;
        }
        if let Some(agent) = self.tasks[i].links_mut().agent.as_mut() {
            agent.resume = true;
            agent.continue_asked = true;
        }
    }

    /// `attempt_spawned`: a pending resume is used up (by this attempt, when it
    /// `resumes`), so a later retry starts afresh unless interrupted again.
    pub(super) fn agent_spawned(&mut self, task: &str, attempt: u32, resumes: bool) {
        let Some(i) = self.task_index(task) else { return };
        if self.tasks[i].agent().is_none_or(|a| !a.resume && !resumes) {
            return;
        }
        if let Some(agent) = self.tasks[i].links_mut().agent.as_mut() {
            if resumes {
                agent.resumed_by.push(attempt);
                if agent.continue_asked {
                    agent.continued_on_request.push(attempt);
                }
            }
            agent.resume = false;
            agent.continue_asked = false;
        }
    }
}

impl RunState {
    /// Task `i`'s recorded agent session, if any (what `retry ID --continue` needs).
    pub fn agent_session(&self, i: usize) -> Option<&str> {
        self.tasks.get(i)?.agent()?.session.as_deref()
    }

    /// Why task `i`'s session cannot be continued, if it cannot: none was recorded, or
    /// the task's pool runs a preset whose CLI has no way to continue one.
    pub fn continue_refusal(&self, i: usize) -> Option<String> {
        let id = self.task_id(i);
        if self.agent_session(i).is_none() {
            return Some(format!("{id} has no agent session to continue"));
        }
        let pool = self.tasks[i].pool.as_deref()?;
        let agent = self.workflow.pool_index(pool).and_then(|p| self.workflow.pools[p].agent.as_ref())?;
        (!agent.preset.resumes_sessions()).then(|| {
            format!("{id}'s pool {pool} runs the {} preset, which cannot continue a session", agent.preset.name())
        })
    }

    /// True when task `i`'s next attempt continues its session because an operator
    /// asked (else, when it continues it, because its last attempt was interrupted):
    /// the engine words the continuation prompt by it.
    pub fn continue_asked(&self, i: usize) -> bool {
        self.tasks.get(i).and_then(|t| t.agent()).is_some_and(|a| a.resume && a.continue_asked)
    }

    /// The session task `i`'s running attempt continues: the task has one to resume
    /// and its pool runs a preset that resumes sessions or a custom command (the engine
    /// passes it to the agent or the worker; `attempt_spawned` records it).
    pub fn session_to_resume(&self, i: usize) -> Option<&str> {
        let agent = self.tasks.get(i)?.agent().filter(|a| a.resume)?;
        let pool = self.tasks[i].pool.as_deref()?;
        let spec = self.workflow.pool_index(pool).map(|p| &self.workflow.pools[p])?;
        // A custom worker reported its session with a control line: it is handed the
        // id back (`PITBOSS_RESUME_SESSION`, the task line's `resume_session`) and
        // continues it its own way. A preset that cannot continue a session starts afresh.
        if spec.agent.as_ref().is_some_and(|a| !a.preset.resumes_sessions()) {
            return None;
        }
        agent.session.as_deref()
    }
}

impl AgentState {
    /// The lines every front end shows for it (task detail, `inspect TASK`): the
    /// session, which attempts continued it, and each flag.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(session) = &self.session {
            let mut line = format!("agent session: {session} (attempt {})", self.session_attempt);
            if !self.resumed_by.is_empty() {
                let by: Vec<String> = self.resumed_by.iter().map(|a| self.why_continued(*a)).collect();
                line.push_str(&format!(", continued by attempt {}", by.join(", ")));
            }
            match (self.resume, self.continue_asked) {
                (true, true) => line.push_str(", the next attempt continues it (an operator asked)"),
                (true, false) => line.push_str(", the next attempt continues it (its last attempt was interrupted)"),
                _ => {}
            }
            lines.push(line);
        }
        for f in &self.flags {
            let what = if f.detail.is_empty() { f.tools.join(", ") } else { f.detail.clone() };
            lines.push(format!("flag: attempt {} {}: {what}", f.attempt, f.flag));
        }
        lines
    }

    /// "3 (an operator asked)" or "3 (after an interruption)".
    fn why_continued(&self, attempt: u32) -> String {
        if self.continued_on_request.contains(&attempt) {
            format!("{attempt} (an operator asked)")
        } else {
            format!("{attempt} (after an interruption)")
        }
    }
}
