//! The pure core: task states, events, the fold that rebuilds run state from events,
//! and every decision the manager makes (readiness, pool choice, backoff,
//! dead-lettering). No I/O, no clock, no terminal: time and randomness arrive as
//! arguments, so the same events always fold to the same state.

pub mod agents;
pub mod backoff;
pub mod breaker;
pub mod checks;
pub mod command;
mod command_budget;
pub mod consensus;
pub mod decide;
pub mod escape;
pub mod event;
pub mod gates;
pub mod hold;
pub mod json_text;
pub mod protocol;
pub mod redact;
pub mod spawn;
pub mod state;
pub mod task;
pub mod text;
pub mod truncate;
pub mod usage;
pub mod workflow;

pub use decide::{step, Input, StepContext};
pub use event::{AfterFailure, Event, FailureClass, SmallOutput};
pub use json_text::JsonText;
pub use state::{ApplyError, RunState, Task};
pub use task::{TaskState, TaskStateName};
