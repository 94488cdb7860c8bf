//! `pitboss fork DIR --at SEQ [--to NEWDIR]`: a new run from the run's state at
//! record SEQ (DESIGN §6; the operation is [`crate::launch::fork`], which the TUI's
//! time travel calls too). Prints the new folder and the command that continues it.

use std::path::Path;

use super::run::CmdResult;
use super::{usage, EXIT_OK};
use crate::launch;

/// `pitboss fork DIR --at SEQ [--to NEWDIR] [--edit TASK=JSON]…`.
pub fn fork(dir: &Path, seq: u64, to: Option<&Path>, edits: &[String]) -> CmdResult {
    let edits = edits.iter().map(|e| parse_edit(e)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
    let forked = launch::fork(dir, seq, to, edits).map_err(usage)?;
    let shown = forked.dir.display();
    println!("forked run {} at record {seq} into {shown} (run {})", forked.from_run, forked.run_id);
    if !forked.handed_back.is_empty() {
        println!(
            "{} attempt(s) running at record {seq} are handed back and run again: {}",
            forked.handed_back.len(),
            forked.handed_back.join(", ")
        );
    }
    if !forked.edited.is_empty() {
        println!("new payload for: {}", forked.edited.join(", "));
    }
    if forked.outputs > 0 {
        println!("copied {} output file(s) of attempts ended by then", forked.outputs);
    }
    println!("continue it with: pitboss resume {}", shell_word(&shown.to_string()));
    Ok(EXIT_OK)
}

/// `TASK=JSON`: the task id (up to the first `=`) and its new payload, which must be
/// JSON.
fn parse_edit(edit: &str) -> Result<(String, serde_json::Value), String> {
    let Some((task, json)) = edit.split_once('=').filter(|(t, _)| !t.is_empty()) else {
        return Err(format!("--edit {edit:?}: expected TASK=JSON, e.g. --edit 'b={{\"topic\":\"x\"}}'"));
    };
    let payload = serde_json::from_str(json).map_err(|e| format!("--edit {task}: the payload is not JSON ({e})"))?;
    Ok((task.to_string(), payload))
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b)) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_edit_is_a_task_and_json() {
        assert_eq!(super::parse_edit(r#"b={"k":1}"#).unwrap(), ("b".into(), serde_json::json!({"k":1})));
        assert_eq!(super::parse_edit("a/b=2").unwrap(), ("a/b".into(), serde_json::json!(2)));
        assert!(super::parse_edit("b").unwrap_err().contains("TASK=JSON"));
        assert!(super::parse_edit("=1").unwrap_err().contains("TASK=JSON"));
        assert!(super::parse_edit("b={x").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_folder_with_spaces_or_quotes_is_quoted() {
        assert_eq!(super::shell_word("/tmp/run-fork-3"), "/tmp/run-fork-3");
        assert_eq!(super::shell_word("/tmp/my run"), "'/tmp/my run'");
        assert_eq!(super::shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
