//! `E`: a task's payload in the operator's own editor (`$VISUAL`, else `$EDITOR`). The
//! payload goes to a private temporary file (0600, in a 0700 directory), the
//! editor gets the terminal (the app loop pauses the event reader and leaves the
//! screen around [`run`]), and what it saved comes back as text for `actions.rs` to
//! check and record like the palette's `payload` line. The run goes on meanwhile: the
//! editor is awaited, not waited for, on the runtime the engine runs on.

use crate::io::platform;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The editor command line, from `$VISUAL` then `$EDITOR` (blank counts as unset).
pub fn command() -> Option<String> {
    ["VISUAL", "EDITOR"].iter().filter_map(|name| std::env::var(name).ok()).find(|v| !v.trim().is_empty())
}

/// What the editor left.
#[derive(Debug)]
pub struct Edited {
    /// The file's text after the editor exited.
    pub text: String,
    /// The file (kept when its text is refused, so the operator's work is not lost).
    pub path: PathBuf,
}

/// Runs `editor` on `task`'s private file with the terminal as its stdio, and reads
/// the file back. The file starts as `text`, unless a refused edit of the task left
/// it: then the editor reopens the operator's text. An editor that exits with a
/// failure (vi's `:cq`) records nothing and leaves the file.
pub async fn run(editor: &str, task: &str, text: &str) -> Result<Edited, String> {
    let path = private_file(task, text)?;
    // Through the shell, as git does: "code --wait" and "vim -u NONE" are commands
    // with arguments; the path is passed as an argument, never parsed as shell text.
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .await
        .map_err(|e| format!("could not start the editor {editor:?}: {e}"))?;
    if !status.success() {
        return Err(format!("nothing recorded: the editor exited with {status} (E reopens your text)"));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Edited { text, path })
}

/// Removes an edit's file (once its text was recorded, or was unchanged).
pub fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
    // The directory goes with its last file (a kept one keeps it).
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// `TASK.json` (0600) in this process's private directory (0700, in the temp dir):
/// a payload may hold secrets, and other users must not read or swap it. Left as it
/// is when it exists (a refused edit kept for the operator), else written with `text`.
fn private_file(task: &str, text: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("pitboss-edit-{}", std::process::id()));
    match platform::private_dir_builder().create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Ours only if it is a real directory of ours that no one else can enter.
            let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mine = platform::owner_of(&meta) == platform::my_uid();
            if !meta.is_dir() || !mine || platform::mode_of(&meta) & 0o077 != 0 {
                return Err(format!("{} is not a private directory of yours: not used", dir.display()));
            }
        }
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let safe: String =
        task.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).take(60).collect();
    let path = dir.join(format!("{safe}.json"));
    if path.exists() {
        return Ok(path);
    }
    let mut file = platform::private_open_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
