//! The open event log of a live run, and the check that it is still the run's log.
//!
//! A manager writes through a file descriptor, so an operator (or a script) that
//! removes `events.jsonl`, or renames another file over it, leaves the manager
//! writing into a file nobody can open any more: the run would "succeed" and leave a
//! folder that cannot be resumed. After every batch [`OpenLog::write_batch`] compares
//! the device and inode of the file it writes with those of the file the path names
//! (one `stat` per group commit, beside a write and an `fdatasync`) and reports
//! [`LogGone`] when they differ. What the run recorded is not lost: the descriptor
//! still reaches it, and it is copied beside the log ([`RESCUED_FILE`]).
//!
//! A deliberate change of file (compaction rolling to a new segment, DESIGN §6) is not
//! a replacement: the engine that rolls knows the new file and hands it over with
//! [`OpenLog::adopt`], which makes it the file the path is expected to name.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::fsutil::private_file;

/// Where a copy of a log removed or replaced under a live run is saved (beside it;
/// `.2`, `.3`… when that name is taken).
pub const RESCUED_FILE: &str = "events.jsonl.rescued";

/// Which file a path names: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(file: &File) -> std::io::Result<FileId> {
        let (dev, ino) = super::platform::file_id(file)?;
        Ok(FileId { dev, ino })
    }
}

/// What happened to the log's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneHow {
    /// Nothing is at the path any more.
    Removed,
    /// Another file (or a link) is at the path.
    Replaced,
}

impl std::fmt::Display for GoneHow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GoneHow::Removed => "removed",
            GoneHow::Replaced => "replaced",
        })
    }
}

/// The log was removed or replaced under the run: the run cannot go on recording.
#[derive(Debug, thiserror::Error)]
#[error("the event log {} was {how} while the run was writing it; {}", path.display(), rescue_text(rescued))]
pub struct LogGone {
    /// The log's path.
    pub path: PathBuf,
    /// Removed or replaced.
    pub how: GoneHow,
    /// Where the copy of what the run recorded was saved, or why it could not be.
    pub rescued: Result<PathBuf, String>,
}

fn rescue_text(rescued: &Result<PathBuf, String>) -> String {
    match rescued {
        Ok(copy) => format!(
            "every record the run wrote is saved in {}: put it back as events.jsonl to resume the run",
            copy.display()
        ),
        Err(e) => format!("a copy of what the run recorded could not be saved ({e}); this run cannot be resumed"),
    }
}

/// Why a batch could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file system refused the write or the sync (a full disk, an I/O error).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The path no longer names the file written.
    #[error(transparent)]
    Gone(#[from] LogGone),
}

/// The log file a run appends to, with the identity its path must keep.
pub struct OpenLog {
    path: PathBuf,
    file: File,
    id: FileId,
}

impl OpenLog {
    /// Takes `file`, just opened at `path`, as the run's log. It must be opened for
    /// reading too, so that a removed log can still be copied out.
    pub fn new(path: PathBuf, file: File) -> std::io::Result<OpenLog> {
        let id = FileId::of(&file)?;
        Ok(OpenLog { path, file, id })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` (with an `fdatasync` when `durable`), then checks that the path
    /// still names this file. Checked after the write, so a removal at any moment
    /// before the check is caught, and the batch is in the rescued copy.
    pub fn write_batch(&mut self, bytes: &[u8], durable: bool) -> Result<(), WriteError> {
        self.write_checked(bytes)?;
        if durable {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes `bytes` without the `fdatasync`, then checks the path as
    /// [`OpenLog::write_batch`] does: once this returns the batch is in the kernel's
    /// page cache, where a crash of the manager alone (SIGKILL, a panic, the OOM
    /// killer) cannot lose it; only a crash of the machine can.
    pub fn write_checked(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.file.write_all(bytes)?;
        self.check()
    }

    /// Makes everything written so far durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<(), WriteError> {
        Ok(self.file.sync_data()?)
    }

    /// Another handle on the file written (for a thread that only syncs it).
    pub fn file_handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Errors unless the path still names the file this log writes.
    pub fn check(&self) -> Result<(), WriteError> {
        let how = match super::platform::path_id(&self.path) {
            Ok((dev, ino)) if FileId { dev, ino } == self.id => return Ok(()),
            Ok(_) => GoneHow::Replaced,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => GoneHow::Removed,
            Err(e) => return Err(WriteError::Io(e)),
        };
        Err(WriteError::Gone(LogGone { path: self.path.clone(), how, rescued: self.rescue() }))
    }

    /// Makes `file` the log from now on: a deliberate roll to a new file at the same
    /// path (compaction writes the new segment and renames it over the log), which the
    /// check must not take for a replacement.
    pub fn adopt(&mut self, file: File) -> std::io::Result<()> {
        self.id = FileId::of(&file)?;
        self.file = file;
        Ok(())
    }

    /// Copies everything written so far to a fresh file beside the log.
    fn rescue(&self) -> Result<PathBuf, String> {
        let mut copy = None;
        for k in 1..=100 {
            let name = if k == 1 { RESCUED_FILE.to_string() } else { format!("{RESCUED_FILE}.{k}") };
            let path = self.path.with_file_name(name);
            match private_file().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    copy = Some((path, file));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        let (path, mut out) = copy.ok_or_else(|| format!("{RESCUED_FILE}.1 to .100 exist already"))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0u64;
        let copied: std::io::Result<()> = (|| {
            loop {
                let n = super::platform::read_at(&self.file, &mut buf, offset)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                offset += n as u64;
            }
            out.sync_all()
        })();
        copied.map_err(|e| {
            // Half a copy would pass for the whole record of the run.
            let _ = std::fs::remove_file(&path);
            format!("{}: {e}", path.display())
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> OpenLog {
        let file = private_file().read(true).append(true).create(true).open(path).unwrap();
        OpenLog::new(path.to_path_buf(), file).unwrap()
    }

    #[test]
    fn a_removed_log_is_reported_and_what_it_held_is_copied_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut log = open(&path);
        log.write_batch(b"one\n", true).unwrap();
        std::fs::remove_file(&path).unwrap();
        let err = log.write_batch(b"two\n", true).unwrap_err();
        let WriteError::Gone(gone) = err else { panic!("{err}") };
        assert_eq!(gone.how, GoneHow::Removed);
        let copy = gone.rescued.as_ref().unwrap();
        assert_eq!(copy, &dir.path().join(RESCUED_FILE));
        assert_eq!(std::fs::read(copy).unwrap(), b"one\ntwo\n");
        assert!(gone.to_string().contains("was removed while the run was writing it"), "{gone}");
        // A second rescue does not overwrite the first.
        let WriteError::Gone(again) = log.check().unwrap_err() else { panic!() };
        assert_eq!(again.rescued.unwrap(), dir.path().join(format!("{RESCUED_FILE}.2")));
    }

    #[test]
    fn a_replaced_log_is_reported_but_a_roll_the_writer_made_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut log = open(&path);
        log.write_batch(b"one\n", true).unwrap();

        // A roll: the writer makes the new file, renames it over the log, adopts it.
        let next = dir.path().join("segment.tmp");
        std::fs::write(&next, b"").unwrap();
        std::fs::rename(&next, &path).unwrap();
        log.adopt(private_file().read(true).append(true).open(&path).unwrap()).unwrap();
        log.write_batch(b"two\n", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");

        // The same rename by somebody else is a replacement.
        std::fs::write(&next, b"other\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        let WriteError::Gone(gone) = log.write_batch(b"three\n", true).unwrap_err() else { panic!() };
        assert_eq!(gone.how, GoneHow::Replaced);
        assert_eq!(std::fs::read(&path).unwrap(), b"other\n", "the file put there is not touched");
        assert_eq!(std::fs::read(gone.rescued.unwrap()).unwrap(), b"two\nthree\n");
    }
}
