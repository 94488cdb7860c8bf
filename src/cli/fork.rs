//! `pitboss fork DIR --at SEQ [--to NEWDIR]`: a new run from the run's state at
//! record SEQ (DESIGN §6; the operation is [`crate::launch::fork`], which the TUI's
//! time travel calls too). Prints the new folder and the command that continues it.

use std::path::Path;

use super::run::CmdResult;
use super::{usage, EXIT_OK};
use crate::launch;

/// `pitboss fork DIR --at SEQ [--to NEWDIR]`.
pub fn fork(dir: &Path, seq: u64, to: Option<&Path>) -> CmdResult {
    let forked = launch::fork(dir, seq, to).map_err(usage)?;
    let shown = forked.dir.display();
    println!("forked run {} at record {seq} into {shown} (run {})", forked.from_run, forked.run_id);
    if !forked.handed_back.is_empty() {
        println!(
            "{} attempt(s) running at record {seq} are handed back and run again: {}",
            forked.handed_back.len(),
            forked.handed_back.join(", ")
        );
    }
    if forked.outputs > 0 {
        println!("copied {} output file(s) of attempts ended by then", forked.outputs);
    }
    println!("continue it with: pitboss resume {}", shell_word(&shown.to_string()));
    Ok(EXIT_OK)
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
    fn a_folder_with_spaces_or_quotes_is_quoted() {
        assert_eq!(super::shell_word("/tmp/run-fork-3"), "/tmp/run-fork-3");
        assert_eq!(super::shell_word("/tmp/my run"), "'/tmp/my run'");
        assert_eq!(super::shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
