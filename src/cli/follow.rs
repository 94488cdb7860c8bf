//! `events --follow`: prints records as a live manager appends them. It sleeps until
//! the run folder changes or its manager lets go of it (io/watch.rs: inotify on Linux,
//! kqueue on macOS, ReadDirectoryChangesW on Windows; no polling), and stops once no manager holds the folder. When the
//! manager rolls its log into the archive (DESIGN §6) the old file is read to its end
//! and following goes on in the file that holds the next record.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::io::journal::{decode, Record, LOG_FILE};
use crate::io::rundir::is_held;
use crate::io::segments::{self, FileId};
use crate::io::watch::RunWatch;

/// The file being followed and what was read of it.
struct Following {
    path: PathBuf,
    id: FileId,
    reader: BufReader<File>,
    pending: Vec<u8>,
    next_seq: u64,
}

impl Following {
    /// Prints every complete record available; a partial last line waits for the rest.
    fn read_available(&mut self, print: &dyn Fn(&Record)) -> Result<(), String> {
        let shown = self.path.display();
        loop {
            let n = self.reader.read_until(b'\n', &mut self.pending).map_err(|e| e.to_string())?;
            if n == 0 || self.pending.last() != Some(&b'\n') {
                return Ok(());
            }
            match decode(&self.pending[..self.pending.len() - 1]) {
                Ok(rec) if rec.seq == self.next_seq => {
                    self.next_seq += 1;
                    print(&rec);
                }
                Ok(rec) => return Err(format!("{shown}: seq {} where {} was expected", rec.seq, self.next_seq)),
                Err(e) => return Err(format!("{shown}: damaged record after seq {}: {e}", self.next_seq - 1)),
            }
            self.pending.clear();
        }
    }
}

/// Opens the file of the run's log that is `id`: the live log, or the archived
/// segment it became.
fn open_id(dir: &Path, id: FileId) -> Result<(PathBuf, File), String> {
    let live = dir.join(LOG_FILE);
    if let Ok(file) = File::open(&live) {
        if FileId::of(&file).ok() == Some(id) {
            return Ok((live, file));
        }
    }
    let archived = segments::archived(dir, None).map_err(|e| e.to_string())?;
    let segment = archived
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| format!("{}: the log file being followed is gone", live.display()))?;
    let file = File::open(&segment.path).map_err(|e| format!("{}: {e}", segment.path.display()))?;
    Ok((segment.path, file))
}

/// The file holding record `next`, after a roll: an archived segment starting with
/// it (the log rolled more than once meanwhile), else the live log.
fn next_file(dir: &Path, next: u64) -> Result<(PathBuf, FileId, File), String> {
    let live = dir.join(LOG_FILE);
    let file = File::open(&live).map_err(|e| format!("{}: {e}", live.display()))?;
    let live_id = FileId::of(&file).map_err(|e| e.to_string())?;
    for segment in segments::archived(dir, Some(live_id)).map_err(|e| e.to_string())? {
        if segments::first_seq(&segment.path).ok().flatten() == Some(next) {
            let file = File::open(&segment.path).map_err(|e| format!("{}: {e}", segment.path.display()))?;
            return Ok((segment.path, segment.id, file));
        }
    }
    Ok((live, live_id, file))
}

/// Follows the log file `live` from byte `offset` (after `seen` records), calling
/// `print` per record.
pub fn follow(live: FileId, offset: u64, seen: u64, dir: &Path, print: &dyn Fn(&Record)) -> Result<(), String> {
    // Before the first read: whatever is written after it wakes the loop.
    let mut watch = RunWatch::start(dir)?;
    let (path, mut file) = open_id(dir, live)?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut at = Following { path, id: live, reader: BufReader::new(file), pending: Vec::new(), next_seq: seen + 1 };
    let log = dir.join(LOG_FILE);
    loop {
        watch.track_log();
        at.read_available(print)?;
        if FileId::at(&log).ok() != Some(at.id) {
            // Rolled (or rolled past): the file followed is complete; its last records
            // may have landed since the read above.
            at.read_available(print)?;
            // A log removed outright is the manager's to report (it stops, exit 2).
            if let Ok((path, id, file)) = next_file(dir, at.next_seq) {
                if id != at.id {
                    let next_seq = at.next_seq;
                    at = Following { path, id, reader: BufReader::new(file), pending: Vec::new(), next_seq };
                    continue;
                }
            }
        }
        if is_held(dir).is_none() {
            // No manager: read what it wrote last, then stop (nothing more will come
            // until somebody resumes the run).
            return at.read_available(print);
        }
        watch.wait()?;
    }
}
