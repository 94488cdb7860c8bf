//! Windows in place of `follow.rs` (inotify): `events --follow` is not available on
//! Windows yet (a portable watcher, the `notify` crate, is the macOS work of issue 18
//! and would serve here too). Reading a finished log works as everywhere.

use std::path::Path;

use crate::io::journal::Record;
use crate::io::segments::FileId;

/// Refuses plainly on Windows (module notes).
pub fn follow(_live: FileId, _offset: u64, _seen: u64, _dir: &Path, _print: &dyn Fn(&Record)) -> Result<(), String> {
    Err("events --follow is not available on Windows yet; run events without --follow".to_string())
}
