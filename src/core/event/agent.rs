//! Events of agent presets (DESIGN §13, §16): an attempt's agent session, recorded as
//! soon as the attempt prints it (so a manager crash does not lose it), and the health
//! flags an attempt raised.

use serde::{Deserialize, Serialize};

/// `session_recorded`: the attempt's agent session id, from a
/// `{"pitboss":"session","id":…}` control line (a preset derives it from the agent's
/// own output). A note: the task stays where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecorded {
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// The agent's session id.
    pub id: String,
}

/// `attempt_flagged`: something about a running attempt an operator should see
/// (`denied_permission`, `looping`), from a `{"pitboss":"flag",…}` control line. A
/// note: the attempt runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFlagged {
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// The flag's name.
    pub flag: String,
    /// The tools it is about (a denied permission's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// What was seen, in a line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}
