//! The control lines a remote attempt's end carries back (DESIGN §4, §13): its
//! `usage`, `session` and `flag` lines, each the JSON object the worker read (a usage
//! line written again from its checked numbers), in the order they were read, so the
//! manager records them as it would a local attempt's. One list rather than one per
//! kind keeps that order (a session said before the spend it explains).
//!
//! Only their number and shape are checked here; what they say is checked by the
//! manager's readers, as for a local line (a broker is not trusted).

use serde_json::Value;

use super::{invalid, WireError};

/// The most control lines one attempt's end carries: a worker takes at most 1000
/// usage lines of an attempt (and says so in one more), and tells at most 64
/// session and flag lines.
pub const MAX_CONTROLS: usize = 1_100;

/// The kinds carried.
pub const CARRIED: [&str; 3] = ["usage", "session", "flag"];

/// True when `value` is a control line of a kind carried.
pub fn carried(value: &Value) -> bool {
    value.get("pitboss").and_then(Value::as_str).is_some_and(|kind| CARRIED.contains(&kind))
}

/// Checks the number of lines and that each is a carried control line.
pub(super) fn check(controls: &[Value]) -> Result<(), WireError> {
    if controls.len() > MAX_CONTROLS {
        return Err(invalid("controls", format!("has {} lines, over {MAX_CONTROLS}", controls.len())));
    }
    match controls.iter().position(|v| !carried(v)) {
        Some(i) => Err(invalid("controls", format!("line {} is not a usage, session or flag line", i + 1))),
        None => Ok(()),
    }
}
