//! One task of the workflow, with the fields few tasks set behind one box (issue 14,
//! memory): a run holds one spec per task for its whole life, and a quarter million
//! plain specs carried ~70 bytes each of empty vectors and nones for exit codes,
//! fallbacks, gates and the input guard. Its serde shape is unchanged (the first
//! record of every log, `inspect TASK --json`'s `"spec"`): it is written and read
//! through mirrors with the fields in their old order and with their old attributes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Fallback, Gate, SharedRetry};
use crate::core::consensus::ConsensusSpec;
use crate::core::json_text::JsonText;

/// One task of the workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Unique id; letters, digits, `_`, `-`, `.` (it names files in the run folder).
    pub id: String,
    /// Free-form type passed to the worker (`"type"` in JSON).
    pub kind: String,
    /// Pinned pool, if any.
    pub pool: Option<String>,
    /// Capabilities a pool must have to run this task.
    pub requires: Vec<String>,
    /// Opaque payload passed to the worker, as its JSON text (parsed when a worker or a
    /// check needs it: a workflow of many tasks holds text, not trees).
    pub payload: JsonText,
    /// Tasks whose results this one needs.
    pub depends_on: Vec<String>,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Retry policy (shared with the specs that have the same one: 8 bytes, not 40).
    pub retry: SharedRetry,
    /// The fields most tasks leave at their default, boxed together (None when all
    /// are: read them through [`TaskSpec::never_on`] and its siblings, set them with
    /// [`TaskSpec::extras_mut`] or [`TaskExtras::boxed`]).
    pub extras: Option<Box<TaskExtras>>,
    /// Replicas whose answers are settled by a tally (DESIGN §10), if any (already a
    /// box of its own: 8 bytes inline).
    pub consensus: Option<Box<ConsensusSpec>>,
}

/// What few tasks set: see [`TaskSpec::extras`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskExtras {
    /// Exit codes that are never retried (`retry.never_on`): dead-lettered at once.
    pub never_on: Vec<i32>,
    /// What to do instead of dead-lettering, if anything.
    pub fallback: Option<Fallback>,
    /// Quality gates run in order after a successful attempt (its own, else
    /// `[defaults] gates`).
    pub gates: Vec<Gate>,
    /// The task's own `input_guard`, which overrides its pools' (None: as its pools say).
    pub input_guard: Option<bool>,
    /// The task's own `workspace` (DESIGN §13), which overrides its pool's.
    pub workspace: Option<super::Workspace>,
}

impl TaskExtras {
    /// The box a spec holds for these fields: none when every one is at its default,
    /// so that specs equal in their fields compare equal.
    pub fn boxed(
        never_on: Vec<i32>,
        fallback: Option<Fallback>,
        gates: Vec<Gate>,
        input_guard: Option<bool>,
    ) -> Option<Box<TaskExtras>> {
        let extras = TaskExtras { never_on, fallback, gates, input_guard, workspace: None };
        (extras != TaskExtras::default()).then(|| Box::new(extras))
    }
}

const NO_EXTRAS: &TaskExtras =
    &TaskExtras { never_on: Vec::new(), fallback: None, gates: Vec::new(), input_guard: None, workspace: None };

impl TaskSpec {
    fn extras(&self) -> &TaskExtras {
        self.extras.as_deref().unwrap_or(NO_EXTRAS)
    }

    /// Exit codes that are never retried (`retry.never_on`).
    pub fn never_on(&self) -> &[i32] {
        &self.extras().never_on
    }

    /// What to do instead of dead-lettering, if anything.
    pub fn fallback(&self) -> Option<&Fallback> {
        self.extras().fallback.as_ref()
    }

    /// Quality gates, in order.
    pub fn gates(&self) -> &[Gate] {
        &self.extras().gates
    }

    /// The task's own `input_guard` (None: as its pools say).
    pub fn input_guard(&self) -> Option<bool> {
        self.extras().input_guard
    }

    /// The task's own `workspace` (None: its pool's, if any).
    pub fn workspace(&self) -> Option<&super::Workspace> {
        self.extras().workspace.as_ref()
    }

    /// The rare fields, to set one (boxed on first use).
    pub fn extras_mut(&mut self) -> &mut TaskExtras {
        self.extras.get_or_insert_with(Default::default)
    }
}

/// The spec as it always was written: every field in its old place.
#[derive(Serialize)]
struct SpecOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    pool: &'a Option<String>,
    requires: &'a [String],
    payload: &'a JsonText,
    depends_on: &'a [String],
    timeout_ms: u64,
    retry: &'a SharedRetry,
    never_on: &'a [i32],
    fallback: Option<&'a Fallback>,
    #[serde(skip_serializing_if = "<[Gate]>::is_empty")]
    gates: &'a [Gate],
    #[serde(skip_serializing_if = "Option::is_none")]
    input_guard: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consensus: &'a Option<Box<ConsensusSpec>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace: Option<&'a super::Workspace>,
}

#[derive(Deserialize)]
struct SpecIn {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    pool: Option<String>,
    requires: Vec<String>,
    payload: JsonText,
    depends_on: Vec<String>,
    timeout_ms: u64,
    retry: SharedRetry,
    #[serde(default)]
    never_on: Vec<i32>,
    #[serde(default)]
    fallback: Option<Fallback>,
    #[serde(default)]
    gates: Vec<Gate>,
    #[serde(default)]
    input_guard: Option<bool>,
    #[serde(default)]
    consensus: Option<Box<ConsensusSpec>>,
    #[serde(default)]
    workspace: Option<super::Workspace>,
}

impl Serialize for TaskSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let TaskSpec { id, kind, pool, requires, payload, depends_on, timeout_ms, retry, extras: _, consensus } = self;
        SpecOut {
            id,
            kind,
            pool,
            requires,
            payload,
            depends_on,
            timeout_ms: *timeout_ms,
            retry,
            never_on: self.never_on(),
            fallback: self.fallback(),
            gates: self.gates(),
            input_guard: self.input_guard(),
            consensus,
            workspace: self.workspace(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TaskSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TaskSpec, D::Error> {
        let SpecIn {
            id,
            kind,
            pool,
            requires,
            payload,
            depends_on,
            timeout_ms,
            retry,
            never_on,
            fallback,
            gates,
            input_guard,
            consensus,
            workspace,
        } = SpecIn::deserialize(d)?;
        let mut spec = TaskSpec {
            id,
            kind,
            pool,
            requires,
            payload,
            depends_on,
            timeout_ms,
            retry,
            extras: TaskExtras::boxed(never_on, fallback, gates, input_guard),
            consensus,
        };
        if workspace.is_some() {
            spec.extras_mut().workspace = workspace;
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every field set, rare ones included, in the JSON the derived serde of the old
    /// inline struct wrote (field order and all).
    const FULL: &str = concat!(
        r#"{"id":"a","type":"k","pool":"p","requires":["gpu"],"payload":{"n":1},"depends_on":["b"],"#,
        r#""timeout_ms":60000,"retry":{"max_attempts":2,"initial_ms":10,"max_ms":100,"multiplier":2.0,"jitter":false},"#,
        r#""never_on":[3,4],"fallback":{"pool":"q"},"gates":[{"kind":"command","command":["true"],"timeout_ms":5}],"input_guard":true}"#
    );
    const PLAIN: &str = concat!(
        r#"{"id":"a","type":"","pool":null,"requires":[],"payload":{},"depends_on":[],"#,
        r#""timeout_ms":300000,"retry":{"max_attempts":3,"initial_ms":1000,"max_ms":60000,"multiplier":2.0,"jitter":true},"#,
        r#""never_on":[],"fallback":null}"#
    );

    #[test]
    fn a_spec_is_written_byte_for_byte_as_before() {
        for text in [FULL, PLAIN] {
            let spec: TaskSpec = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&spec).unwrap(), text);
            // Through a `Value` too (the log's events buffer their fields).
            let again: TaskSpec = serde_json::from_value(serde_json::from_str(text).unwrap()).unwrap();
            assert_eq!(again, spec);
        }
        let full: TaskSpec = serde_json::from_str(FULL).unwrap();
        assert_eq!(full.never_on(), [3, 4]);
        assert_eq!(full.fallback(), Some(&Fallback::Pool("q".into())));
        assert_eq!(full.gates().len(), 1);
        assert_eq!(full.input_guard(), Some(true));
        let plain: TaskSpec = serde_json::from_str(PLAIN).unwrap();
        assert!(plain.extras.is_none(), "a plain spec allocates no box");
        assert_eq!(plain.payload.value(), json!({}));
    }

    #[test]
    fn a_spec_with_each_rare_field_alone_round_trips() {
        let plain: TaskSpec = serde_json::from_str(PLAIN).unwrap();
        let edits: [fn(&mut TaskExtras); 6] = [
            |e| e.workspace = Some(super::super::Workspace::GitWorktree { repo: "/r".into() }),
            |e| e.never_on = vec![1],
            |e| e.fallback = Some(Fallback::Skip),
            |e| e.fallback = Some(Fallback::Result(json!({"x": [1]}))),
            |e| e.gates = vec![Gate::Command { command: vec!["x".into()], timeout_ms: 1 }],
            |e| e.input_guard = Some(false),
        ];
        for edit in edits {
            let mut spec = plain.clone();
            edit(spec.extras_mut());
            let text = serde_json::to_string(&spec).unwrap();
            let back: TaskSpec = serde_json::from_str(&text).unwrap();
            assert_eq!(back, spec, "{text}");
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }

    #[test]
    fn the_rare_fields_cost_one_pointer() {
        // A run holds a spec per task for its life (250k tasks: every 8 bytes here is
        // 2 MB at the readers' peak). 168 = the ten inline fields; the rare ones are
        // one pointer (`extras`), as is a consensus, and so is the shared retry policy.
        assert_eq!(std::mem::size_of::<Option<Box<TaskExtras>>>(), 8);
        assert!(std::mem::size_of::<TaskSpec>() <= 168, "TaskSpec is {} bytes", std::mem::size_of::<TaskSpec>());
    }
}
