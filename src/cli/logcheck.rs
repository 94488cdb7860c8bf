//! Why a run folder's log cannot be read, said in the operator's words. The journal
//! reports a log without a single valid record as "no log"; the read-only commands
//! look closer, so that an empty file, a log whose line endings were converted to
//! CRLF (by `git` or an editor) and a file that is not a pitboss log are each named
//! for what they are, with what to do about it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::io::journal::{decode, JournalError, TornTail};

/// What is wrong with the log at `path`, which exists but holds no valid first
/// record. Reads at most its first line.
pub fn unusable(path: &Path) -> String {
    let shown = path.display();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return format!("{shown}: {e}"),
    };
    let mut first = Vec::new();
    // The first record holds the whole workflow; 64 MiB is far beyond any real one.
    if let Err(e) = BufReader::new(file).take(64 << 20).read_until(b'\n', &mut first) {
        return format!("{shown}: {e}");
    }
    if first.is_empty() {
        return format!(
            "{shown}: the event log is empty (a run writes its first record when it starts); there is nothing to show"
        );
    }
    if first.ends_with(b"\r\n") && decode(&first[..first.len() - 2]).is_ok() {
        return format!(
            "{shown}: the event log has CRLF (Windows) line endings, so no record's checksum matches; \
             pitboss writes LF only. Convert it back, e.g. `sed -i 's/\\r$//' {shown}`, and try again"
        );
    }
    let body = first.strip_suffix(b"\n").unwrap_or(&first);
    match decode(body) {
        Err(e) => format!(
            "{shown}:1: not a pitboss record ({e}): this is not a pitboss event log, or its first record is damaged"
        ),
        Ok(_) => format!("{shown}: the event log has no usable first record"),
    }
}

/// The journal's error, with "no log" made precise when the file does exist.
pub fn explain(error: JournalError) -> String {
    match &error {
        JournalError::Missing(path) if path.exists() => unusable(path),
        // The journal names a log without one valid record; its first line says why.
        JournalError::NoRecord { path, line: 1, .. } => unusable(path),
        _ => error.to_string(),
    }
}

/// The note printed when a log ends in a damaged record (only `resume` cuts it).
pub fn torn_note(torn: &TornTail) -> String {
    format!(
        "pitboss: note: the log ends in a damaged record at line {} ({}); `pitboss resume` will cut it",
        torn.line, torn.reason
    )
}
