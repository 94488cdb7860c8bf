//! `Task`'s serde shape, as its derive wrote it before the rare fields were boxed
//! (`TaskLinks`): format 1 and 2 snapshots hold it, and both are still read. Every
//! field in its old place with its old attributes; the mirrors destructure `Task`
//! without `..`, so a field added to it does not compile until it is written here.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::task_record::{Links, Task, TaskLinks, Ticket};
use crate::core::checks::Finding;
use crate::core::event::OutputStream;
use crate::core::gates::Verdict;
use crate::core::json_text::JsonText;
use crate::core::task::TaskState;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct TaskOut<'a> {
    state: &'a TaskState,
    #[serde(skip_serializing_if = "is_zero")]
    attempts: u32,
    #[serde(skip_serializing_if = "is_zero")]
    budget_start: u32,
    #[serde(skip_serializing_if = "is_zero")]
    crashes: u32,
    #[serde(skip_serializing_if = "is_zero")]
    deferrals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: &'a Option<JsonText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: &'a Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: &'a Option<Arc<str>>,
    #[serde(skip_serializing_if = "is_false")]
    degraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: &'a Option<JsonText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool_override: Option<usize>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    capture_failures: &'a [(u32, OutputStream)],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    verdicts: &'a [Verdict],
    #[serde(skip_serializing_if = "Option::is_none")]
    finding: &'a Option<Box<Finding>>,
    #[serde(skip_serializing_if = "is_false")]
    approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: &'a Option<Box<super::agent::AgentState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<usize>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    children: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_ticket: Option<u64>,
}

#[derive(Deserialize)]
struct TaskIn {
    state: TaskState,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    budget_start: u32,
    #[serde(default)]
    crashes: u32,
    #[serde(default)]
    deferrals: u32,
    #[serde(default)]
    result: Option<JsonText>,
    #[serde(default)]
    last_error: Option<Arc<str>>,
    #[serde(default)]
    pool: Option<Arc<str>>,
    #[serde(default)]
    degraded: bool,
    #[serde(default)]
    payload: Option<JsonText>,
    #[serde(default)]
    pool_override: Option<usize>,
    #[serde(default)]
    capture_failures: Vec<(u32, OutputStream)>,
    #[serde(default)]
    verdicts: Vec<Verdict>,
    #[serde(default)]
    finding: Option<Box<Finding>>,
    #[serde(default)]
    approved: bool,
    #[serde(default)]
    agent: Option<Box<super::agent::AgentState>>,
    #[serde(default)]
    winner: Option<u32>,
    #[serde(default)]
    parent: Option<usize>,
    #[serde(default)]
    children: Vec<usize>,
    #[serde(default)]
    queue_ticket: Option<u64>,
}

impl Serialize for Task {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Task {
            state,
            attempts,
            budget_start,
            crashes,
            deferrals,
            result,
            last_error,
            pool,
            degraded,
            links,
            queue_ticket,
        } = self;
        let TaskLinks {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        } = links.get();
        TaskOut {
            state,
            attempts: *attempts,
            budget_start: *budget_start,
            crashes: *crashes,
            deferrals: *deferrals,
            result,
            last_error,
            pool,
            degraded: *degraded,
            payload,
            pool_override: *pool_override,
            capture_failures,
            verdicts,
            finding,
            approved: *approved,
            agent,
            winner: *winner,
            parent: *parent,
            children,
            queue_ticket: queue_ticket.get(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Task, D::Error> {
        let TaskIn {
            state,
            attempts,
            budget_start,
            crashes,
            deferrals,
            result,
            last_error,
            pool,
            degraded,
            payload,
            pool_override,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
            parent,
            children,
            queue_ticket,
        } = TaskIn::deserialize(d)?;
        Ok(Task {
            state,
            attempts,
            budget_start,
            crashes,
            deferrals,
            result,
            last_error,
            pool,
            degraded,
            links: Links::new(TaskLinks {
                pool_override,
                parent,
                children,
                payload,
                capture_failures,
                verdicts,
                finding,
                approved,
                agent,
                winner,
            }),
            queue_ticket: Ticket::new(queue_ticket),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::task_record::{Links, Task, TaskLinks, Ticket};
    use crate::core::event::OutputStream;
    use crate::core::task::TaskState;

    /// Written in the order and shape `Task`'s derive gave (format 1 and 2 snapshots).
    const EVERY_FIELD: &str = concat!(
        r#"{"state":{"state":"completed","degraded":true},"attempts":3,"budget_start":1,"crashes":2,"deferrals":4,"#,
        r#""result":{"ok":1},"last_error":"boom","pool":"p","degraded":true,"payload":[7],"pool_override":2,"#,
        r#""capture_failures":[[1,"stderr"]],"approved":true,"parent":0,"children":[5,6],"queue_ticket":9}"#
    );

    fn every_field() -> Task {
        let mut task = Task::blocked();
        task.state = TaskState::Completed { degraded: true };
        (task.attempts, task.budget_start, task.crashes, task.deferrals) = (3, 1, 2, 4);
        task.result = Some(json!({"ok": 1}).into());
        task.last_error = Some(Arc::from("boom"));
        task.pool = Some(Arc::from("p"));
        task.degraded = true;
        *task.links_mut() = TaskLinks {
            pool_override: Some(2),
            parent: Some(0),
            children: vec![5, 6],
            payload: Some(json!([7]).into()),
            capture_failures: vec![(1, OutputStream::Stderr)],
            approved: true,
            ..TaskLinks::default()
        };
        task.queue_ticket = Ticket::new(Some(9));
        task
    }

    #[test]
    fn a_task_is_written_as_its_derive_wrote_it() {
        let task = every_field();
        assert_eq!(serde_json::to_string(&task).unwrap(), EVERY_FIELD);
        let back: Task = serde_json::from_str(EVERY_FIELD).unwrap();
        assert_eq!(back, task);
        let plain: Task = serde_json::from_str(r#"{"state":{"state":"blocked"}}"#).unwrap();
        assert_eq!(plain, Task::blocked());
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"state":{"state":"blocked"}}"#);
        // Each link alone, and links set back to their defaults: equal to a plain task.
        for links in [
            TaskLinks { pool_override: Some(1), ..TaskLinks::default() },
            TaskLinks { parent: Some(1), ..TaskLinks::default() },
            TaskLinks { children: vec![1], ..TaskLinks::default() },
            TaskLinks { payload: Some(json!(1).into()), ..TaskLinks::default() },
            TaskLinks { capture_failures: vec![(1, OutputStream::Stdout)], ..TaskLinks::default() },
            TaskLinks { approved: true, ..TaskLinks::default() },
            TaskLinks { winner: Some(1), ..TaskLinks::default() },
        ] {
            let mut task = Task::blocked();
            task.links = Links::new(links);
            let text = serde_json::to_string(&task).unwrap();
            assert_eq!(serde_json::from_str::<Task>(&text).unwrap(), task, "{text}");
        }
        let mut reset = Task::blocked();
        reset.links_mut().pool_override = Some(1);
        reset.links_mut().pool_override = None;
        assert_eq!(reset, Task::blocked(), "a box of defaults equals no box");
    }

    #[test]
    fn the_rare_links_cost_one_pointer() {
        // Every task of a run is held for its life, and copied (by chunk) into
        // time-travel checkpoints: 288 bytes before the links were boxed, 240 before
        // the payload, verdicts, finding, approval and capture failures joined them.
        assert_eq!(std::mem::size_of::<Links>(), 8);
        assert!(std::mem::size_of::<Task>() <= 160, "Task is {} bytes", std::mem::size_of::<Task>());
    }
}
