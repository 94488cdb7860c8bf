//! The messages on a broker (plan §3), as this module's own plain types. Each is JSON
//! with `"v":1`, carried in one stream field (`m`) or one AMQP body. Everything read
//! from a broker is untrusted: sizes and numbers are checked, and bytes that are not a
//! message give a [`WireError`] that says what is wrong, never a panic.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The message format version this build writes and reads.
pub const VERSION: u64 = 1;

/// The stream entry field (Redis) that holds a message's JSON.
pub const FIELD: &str = "m";

/// Largest message read or written (a job's task JSON is the big part).
pub const MAX_MESSAGE: usize = 32 << 20;

/// Largest text of one output message.
pub const MAX_OUTPUT_TEXT: usize = 8 << 10;

/// Largest output tail carried in a result, per stream.
pub const MAX_TAIL: usize = 64 << 10;

/// Largest name (run, pool, key, worker, dispatch, host, capability).
pub const MAX_NAME: usize = 1024;

/// Most attempt keys in one heartbeat, and capabilities in one message.
pub const MAX_ITEMS: usize = 4096;

/// Longest duration or lease accepted, in ms (a year): larger numbers are garbage.
pub const MAX_MS: u64 = 366 * 24 * 3600 * 1000;

/// Why bytes from a broker are not a message this build can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Too big to be read.
    #[error("message of {bytes} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A stream entry without the message field.
    #[error("entry has no `{FIELD}` field (fields: {fields})")]
    NoField {
        /// The fields it has, comma-separated (names only, shortened).
        fields: String,
    },
    /// Not JSON, or not this message's shape.
    #[error("not a pitboss message: {0}")]
    Malformed(String),
    /// Another format version.
    #[error("message version {found} is not the {VERSION} this pitboss speaks")]
    Version {
        /// The version found (`none` when missing).
        found: String,
    },
    /// A field out of range.
    #[error("field `{field}` {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why the manager wants an attempt stopped (the value of its stop key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopWhy {
    /// An operator cancelled the task.
    Cancel,
    /// The manager is shutting down cleanly.
    Interrupt,
    /// The attempt ran past its timeout.
    Timeout,
    /// The attempt was silent past its pool's `stall_kill_after`.
    Stalled,
    /// The attempt's outcome is already recorded (a duplicate delivery).
    Superseded,
}

impl StopWhy {
    /// The word stored on the broker.
    pub fn as_str(self) -> &'static str {
        match self {
            StopWhy::Cancel => "cancel",
            StopWhy::Interrupt => "interrupt",
            StopWhy::Timeout => "timeout",
            StopWhy::Stalled => "stalled",
            StopWhy::Superseded => "superseded",
        }
    }

    /// Reads the stored word.
    pub fn parse(word: &str) -> Option<StopWhy> {
        Some(match word {
            "cancel" => StopWhy::Cancel,
            "interrupt" => StopWhy::Interrupt,
            "timeout" => StopWhy::Timeout,
            "stalled" => StopWhy::Stalled,
            "superseded" => StopWhy::Superseded,
            _ => return None,
        })
    }
}

/// An attempt for a worker to run (manager → pool queue). Carries the task's JSON,
/// never a command line: the worker runs its own command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptMsg {
    /// The run id.
    pub run: String,
    /// The pool.
    pub pool: String,
    /// The attempt key (`TASK.ATTEMPT`, `TASK.ATTEMPT.rR`, …): unique in the run.
    pub key: String,
    /// The task id.
    pub task: String,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// The replica number of a consensus attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// This publication's id (a republished attempt gets a new one).
    pub dispatch: String,
    /// The worker's stdin document (DESIGN §4).
    pub job: Value,
    /// The attempt's timeout, counted from the worker's start.
    pub timeout_ms: u64,
    /// Silence after which the attempt counts as stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_ms: Option<u64>,
    /// Silence after which a stalled attempt is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_kill_after_ms: Option<u64>,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub kill_grace_ms: u64,
    /// The manager's lease: a delivery idle this long is taken back.
    pub lease_ms: u64,
    /// When the manager published it (ms since the epoch).
    pub sent_ms: u64,
    /// Not to be started after this (ms since the epoch): stale after long outages.
    pub deadline_ms: u64,
    /// Capabilities the worker must declare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

/// Success or failure of a remote attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// It succeeded.
    Success,
    /// It failed (its class says how).
    Failure,
}

/// The `{"pitboss":"spawn"}` lines a planner printed: the tasks, or why they are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnLines {
    /// The task specs, as printed.
    Tasks(Vec<Value>),
    /// Why they cannot be taken.
    Refused(String),
}

/// How a remote attempt ended, in plain fields (the runner maps them to the core's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteOutcome {
    /// Success or failure.
    pub status: OutcomeStatus,
    /// The result document of a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The failure class (`exit`, `timeout`, `spawn_enoent`, …), as the core names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code, if the process exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// How long it ran on the worker.
    pub duration_ms: u64,
    /// All of stdout when small (the core's small output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// All of stderr when small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The end of stdout when it was not small (≤ [`MAX_TAIL`], secrets redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_stdout: Option<String>,
    /// The end of stderr when it was not small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_stderr: Option<String>,
    /// Spawn lines of a planner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnLines>,
    /// The attempt's `usage`, `session` and `flag` control lines, in the order read
    /// (see [`controls`]). Absent from an older worker's result: it reads as none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Value>,
}

/// What a stopped attempt left: its end and small output, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedRemains {
    /// The exit code, if the process exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// How long it ran.
    pub duration_ms: u64,
    /// Small stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Small stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Its control lines, as in [`RemoteOutcome::controls`]: a stopped attempt spent too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Value>,
}

/// Which output stream a chunk is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Why a worker gives an attempt back unrun or unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandbackWhy {
    /// The worker is stopping (SIGTERM) and its drain time ran out.
    Drain,
    /// The attempt's deadline passed before it could start.
    Expired,
    /// The worker lacks a capability the pool requires.
    LacksCapability,
}

/// A message from a worker to a run's manager. `started`, `result`, `stopped` and
/// `handback` go to the results queue (acked after commit); `heartbeat` and `output`
/// to the lossy live feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum WorkerMsg {
    /// The attempt's process started.
    Started {
        /// The attempt key.
        key: String,
        /// The publication it answers.
        dispatch: String,
        /// The worker id.
        worker: String,
        /// The worker's host.
        host: String,
        /// The process id on that host.
        pid: u32,
        /// When it started (worker's clock, ms since the epoch).
        started_ms: u64,
    },
    /// The attempt ended with an outcome.
    Result {
        /// The attempt key.
        key: String,
        /// The publication it answers.
        dispatch: String,
        /// The worker id.
        worker: String,
        /// How it ended.
        outcome: RemoteOutcome,
    },
    /// The attempt was stopped at the manager's request (or by the worker's own
    /// timeout or stall watch).
    Stopped {
        /// The attempt key.
        key: String,
        /// The publication it answers.
        dispatch: String,
        /// The worker id.
        worker: String,
        /// Why.
        stop: StopWhy,
        /// What the process left.
        #[serde(default)]
        remains: StoppedRemains,
    },
    /// The worker gives the attempt back.
    Handback {
        /// The attempt key.
        key: String,
        /// The publication it answers.
        dispatch: String,
        /// The worker id.
        worker: String,
        /// Why.
        reason: HandbackWhy,
    },
    /// The worker is alive and runs these attempts.
    Heartbeat {
        /// The worker id.
        worker: String,
        /// The attempt keys it runs.
        keys: Vec<String>,
        /// When it was sent (worker's clock).
        sent_ms: u64,
    },
    /// A piece of an attempt's output (secrets redacted by the worker).
    Output {
        /// The attempt key.
        key: String,
        /// The worker id.
        worker: String,
        /// Which stream.
        stream: OutputStream,
        /// The text (≤ [`MAX_OUTPUT_TEXT`] bytes).
        text: String,
    },
}

impl WorkerMsg {
    /// True for messages of the results queue (kept until acked), false for the live feed.
    pub fn is_durable(&self) -> bool {
        !matches!(self, WorkerMsg::Heartbeat { .. } | WorkerMsg::Output { .. })
    }

    /// The attempt key it is about (none for a heartbeat).
    pub fn key(&self) -> Option<&str> {
        match self {
            WorkerMsg::Started { key, .. }
            | WorkerMsg::Result { key, .. }
            | WorkerMsg::Stopped { key, .. }
            | WorkerMsg::Handback { key, .. }
            | WorkerMsg::Output { key, .. } => Some(key),
            WorkerMsg::Heartbeat { .. } => None,
        }
    }

    /// The worker that sent it.
    pub fn worker(&self) -> &str {
        match self {
            WorkerMsg::Started { worker, .. }
            | WorkerMsg::Result { worker, .. }
            | WorkerMsg::Stopped { worker, .. }
            | WorkerMsg::Handback { worker, .. }
            | WorkerMsg::Heartbeat { worker, .. }
            | WorkerMsg::Output { worker, .. } => worker,
        }
    }
}

/// What a worker is doing, in its registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Waiting for jobs.
    Idle,
    /// Running at least one job.
    Busy,
    /// Stopping: takes no new jobs.
    Draining,
}

/// A worker's registration (stored with a TTL, refreshed by its heartbeats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The worker id (`HOST:PID:4hex`).
    pub worker: String,
    /// Its pool.
    pub pool: String,
    /// Its declared capabilities.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The pitboss version it runs.
    pub version: String,
    /// How many jobs it runs at once.
    pub concurrency: u32,
    /// What it is doing.
    pub state: WorkerState,
    /// Its registration's time to live.
    pub ttl_ms: u64,
}

/// A message type that can be checked after decoding.
pub trait Checked: Serialize + DeserializeOwned {
    /// Checks sizes and ranges of the fields.
    fn check(&self) -> Result<(), WireError>;
}

/// Encodes a message as JSON with `"v":1`.
pub fn encode<T: Checked>(msg: &T) -> Result<String, WireError> {
    msg.check()?;
    #[derive(Serialize)]
    struct Versioned<'a, T> {
        v: u64,
        #[serde(flatten)]
        body: &'a T,
    }
    let text =
        serde_json::to_string(&Versioned { v: VERSION, body: msg }).map_err(|e| WireError::Malformed(e.to_string()))?;
    if text.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge { bytes: text.len(), limit: MAX_MESSAGE });
    }
    Ok(text)
}

/// Decodes and checks a message.
pub fn decode<T: Checked>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge { bytes: bytes.len(), limit: MAX_MESSAGE });
    }
    #[derive(Deserialize)]
    struct Probe {
        v: Option<Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    match probe.v {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        other => {
            return Err(WireError::Version {
                found: other.map_or_else(|| "none".to_string(), |v| shorten(&v.to_string())),
            })
        }
    }
    let msg: T = serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    msg.check()?;
    Ok(msg)
}

/// The first 40 characters of a value shown in an error.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn name(field: &'static str, value: &str) -> Result<(), WireError> {
    if value.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if value.len() > MAX_NAME {
        return Err(invalid(field, format!("is {} bytes, over {MAX_NAME}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "holds control characters"));
    }
    Ok(())
}

fn text(field: &'static str, value: Option<&str>, limit: usize) -> Result<(), WireError> {
    match value {
        Some(v) if v.len() > limit => Err(invalid(field, format!("is {} bytes, over {limit}", v.len()))),
        _ => Ok(()),
    }
}

fn millis(field: &'static str, value: u64) -> Result<(), WireError> {
    if value > MAX_MS {
        return Err(invalid(field, format!("is {value} ms, over a year")));
    }
    Ok(())
}

fn items(field: &'static str, values: &[String]) -> Result<(), WireError> {
    if values.len() > MAX_ITEMS {
        return Err(invalid(field, format!("has {} items, over {MAX_ITEMS}", values.len())));
    }
    values.iter().try_for_each(|v| name(field, v))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> WireError {
    WireError::Invalid { field, reason: reason.into() }
}

impl Checked for AttemptMsg {
    fn check(&self) -> Result<(), WireError> {
        name("run", &self.run)?;
        name("pool", &self.pool)?;
        name("key", &self.key)?;
        name("task", &self.task)?;
        name("dispatch", &self.dispatch)?;
        if self.attempt == 0 {
            return Err(invalid("attempt", "is 0 (attempts count from 1)"));
        }
        millis("timeout_ms", self.timeout_ms)?;
        millis("kill_grace_ms", self.kill_grace_ms)?;
        millis("lease_ms", self.lease_ms)?;
        if self.lease_ms == 0 {
            return Err(invalid("lease_ms", "is 0"));
        }
        self.stall_after_ms.map_or(Ok(()), |v| millis("stall_after_ms", v))?;
        self.stall_kill_after_ms.map_or(Ok(()), |v| millis("stall_kill_after_ms", v))?;
        items("capabilities", &self.capabilities)
    }
}

impl Checked for WorkerMsg {
    fn check(&self) -> Result<(), WireError> {
        name("worker", self.worker())?;
        if let Some(key) = self.key() {
            name("key", key)?;
        }
        match self {
            WorkerMsg::Started { dispatch, host, pid, .. } => {
                name("dispatch", dispatch)?;
                name("host", host)?;
                if *pid == 0 {
                    return Err(invalid("pid", "is 0"));
                }
                Ok(())
            }
            WorkerMsg::Result { dispatch, outcome, .. } => {
                name("dispatch", dispatch)?;
                millis("duration_ms", outcome.duration_ms)?;
                text("error", outcome.error.as_deref(), MAX_TAIL)?;
                text("tail_stdout", outcome.tail_stdout.as_deref(), MAX_TAIL)?;
                text("tail_stderr", outcome.tail_stderr.as_deref(), MAX_TAIL)?;
                controls::check(&outcome.controls)?;
                if outcome.status == OutcomeStatus::Failure && outcome.class.is_none() {
                    return Err(invalid("class", "is missing on a failure"));
                }
                outcome.class.as_deref().map_or(Ok(()), |c| name("class", c))
            }
            WorkerMsg::Stopped { dispatch, remains, .. } => {
                name("dispatch", dispatch)?;
                controls::check(&remains.controls)?;
                millis("duration_ms", remains.duration_ms)
            }
            WorkerMsg::Handback { dispatch, .. } => name("dispatch", dispatch),
            WorkerMsg::Heartbeat { keys, .. } => items("keys", keys),
            WorkerMsg::Output { text: t, .. } => text("text", Some(t), MAX_OUTPUT_TEXT),
        }
    }
}

impl Checked for Registration {
    fn check(&self) -> Result<(), WireError> {
        name("worker", &self.worker)?;
        name("pool", &self.pool)?;
        name("host", &self.host)?;
        name("version", &self.version)?;
        items("capabilities", &self.capabilities)?;
        if self.pid == 0 {
            return Err(invalid("pid", "is 0"));
        }
        if self.concurrency == 0 || self.concurrency as usize > MAX_ITEMS {
            return Err(invalid("concurrency", format!("is {}, not 1..={MAX_ITEMS}", self.concurrency)));
        }
        if self.ttl_ms == 0 {
            return Err(invalid("ttl_ms", "is 0"));
        }
        millis("ttl_ms", self.ttl_ms)
    }
}

pub mod controls;
#[cfg(test)]
mod tests;
