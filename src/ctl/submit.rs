//! `submit`: a file of tasks checked against the live run, as the engine has it. The
//! run's own task index answers whether an id is taken or a dependency exists, so a
//! submit costs what it submits: nothing is built or copied per task of the run (a
//! list of all its ids was, 23 ms for one task into a run of 100,000; issue 14).

use crate::core::workflow::TaskSpec;
use crate::core::RunState;

/// The tasks of `toml` (named `file` in messages), resolved against the run's pools and
/// defaults and checked against its tasks; the error is the file's problems, each at
/// its line and column. Runs on the engine's thread between two batches (it reads the
/// state in place): the text is parsed there, which costs what is submitted.
pub(crate) fn tasks_for(state: &RunState, toml: &str, file: &str) -> Result<Vec<TaskSpec>, String> {
    let known = |id: &str| state.task_index(id).is_some();
    crate::config::tasks_for_run(toml, file, &state.workflow, &known).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
