//! `events --follow`: prints records as a live manager appends them. It sleeps in
//! inotify until the log or the lock changes (no polling), and stops once no manager
//! holds the folder.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::io::journal::{decode, Record};
use crate::io::rundir::{is_held, LOCK_FILE};

/// Follows `log` from byte `offset` (after `seen` records), calling `print` per record.
pub fn follow(log: &Path, offset: u64, seen: u64, dir: &Path, print: &dyn Fn(&Record)) -> Result<(), String> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| format!("inotify: {e}"))?;
    inotify
        .add_watch(log, AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_DELETE_SELF)
        .map_err(|e| format!("{}: cannot watch: {e}", log.display()))?;
    // The lock file is closed when a manager exits: that wakes us to check for the end.
    let _ = inotify.add_watch(&dir.join(LOCK_FILE), AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_CLOSE_NOWRITE);
    let mut file = File::open(log).map_err(|e| format!("{}: {e}", log.display()))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(file);
    let mut pending: Vec<u8> = Vec::new();
    let mut next_seq = seen + 1;
    let mut read_available = |reader: &mut BufReader<File>| -> Result<(), String> {
        // Everything complete so far; a partial last line waits for the rest of it.
        loop {
            let n = reader.read_until(b'\n', &mut pending).map_err(|e| e.to_string())?;
            if n == 0 || pending.last() != Some(&b'\n') {
                return Ok(());
            }
            match decode(&pending[..pending.len() - 1]) {
                Ok(rec) if rec.seq == next_seq => {
                    next_seq += 1;
                    print(&rec);
                }
                Ok(rec) => return Err(format!("{}: seq {} where {next_seq} was expected", log.display(), rec.seq)),
                Err(e) => return Err(format!("{}: damaged record after seq {}: {e}", log.display(), next_seq - 1)),
            }
            pending.clear();
        }
    };
    loop {
        read_available(&mut reader)?;
        if is_held(dir).is_none() {
            // No manager: read what it wrote last, then stop (nothing more will come
            // until somebody resumes the run).
            return read_available(&mut reader);
        }
        inotify.read_events().map_err(|e| format!("inotify: {e}"))?;
    }
}
