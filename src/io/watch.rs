//! Waking a reader of a live run folder (`events --follow`) when there may be more to
//! read, without polling: when a file in the folder changes, and when the manager
//! lets go of the folder.
//!
//! - **Changes** come from the `notify` crate: inotify on Linux, kqueue on macOS,
//!   `ReadDirectoryChangesW` on Windows (which reports writes as its folder's changes).
//!   inotify reports writes to every file of a watched folder; kqueue reports only
//!   entries added, removed or renamed in a folder, and writes to a file only on a
//!   watch of that file. So the folder is watched (a roll renames a new file over the
//!   log), and so is the live log file itself ([`RunWatch::track_log`]), on every
//!   system alike so that Linux runs the same code as macOS.
//! - **The manager's end**: a thread waits for a shared `flock` on `manager.lock`,
//!   which the kernel grants once the manager's exclusive lock is gone (however the
//!   manager ended), lets go of it at once and wakes the reader. inotify also reports
//!   the lock file's close, but kqueue has no close event; the lock is the one signal
//!   every system gives (on Windows it is `LockFileEx`, waiting for the manager's
//!   exclusive lock in the same way). Taken for an instant, the shared lock never keeps
//!   a manager out: one starting at that very instant finds the dead holder's pid in
//!   the file and retries (io/rundir.rs).
//!
//! A thread still waiting for a lock when the watch is dropped ends when the manager
//! does (its wake goes nowhere): `events --follow` exits first anyway.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::journal::LOG_FILE;
use super::rundir::LOCK_FILE;
use super::segments::FileId;

/// Why a reader woke.
enum Wake {
    /// Something in the folder changed.
    Changed,
    /// The manager's lock was free for a moment.
    Released,
    /// The watcher failed: the reader can no longer trust it to wake.
    Failed(String),
}

/// Watches a run folder for its reader. See the module notes.
pub struct RunWatch {
    watcher: RecommendedWatcher,
    wakes: Receiver<Wake>,
    sender: Sender<Wake>,
    dir: PathBuf,
    /// The live log file being watched on its own, by identity.
    log: Option<FileId>,
}

impl RunWatch {
    /// Starts watching `dir`, and waiting for its manager's lock.
    pub fn start(dir: &Path) -> Result<RunWatch, String> {
        let (sender, wakes) = channel();
        let changes = sender.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let wake = match event {
                Ok(event) if !wakes_a_reader(&event.kind) => return,
                Ok(_) => Wake::Changed,
                Err(e) => Wake::Failed(e.to_string()),
            };
            let _ = changes.send(wake);
        })
        .map_err(|e| format!("{}: cannot watch: {e}", dir.display()))?;
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| format!("{}: cannot watch: {e}", dir.display()))?;
        let mut watch = RunWatch { watcher, wakes, sender, dir: dir.to_path_buf(), log: None };
        watch.wait_for_release();
        watch.track_log();
        Ok(watch)
    }

    /// Keeps a watch on the live log file itself (kqueue reports writes only there).
    /// Call it before reading, so that a write after the read always wakes the reader:
    /// a new file renamed over the log is reported by the folder's watch.
    pub fn track_log(&mut self) {
        let path = self.dir.join(LOG_FILE);
        let now = FileId::at(&path).ok();
        if now == self.log {
            return;
        }
        // The old file was renamed away or removed: its watch may be gone already.
        let _ = self.watcher.unwatch(&path);
        self.log = now.filter(|_| self.watcher.watch(&path, RecursiveMode::NonRecursive).is_ok());
    }

    /// Sleeps until something may have changed. A manager's lock found free starts a
    /// new wait for it: a new manager may have taken the folder since.
    pub fn wait(&mut self) -> Result<(), String> {
        let first = self.wakes.recv().map_err(|_| format!("{}: the watch stopped", self.dir.display()))?;
        // Everything else that arrived meanwhile: one read covers it all.
        for wake in std::iter::once(first).chain(self.wakes.try_iter()) {
            match wake {
                Wake::Changed => {}
                Wake::Released => self.wait_for_release(),
                Wake::Failed(e) => return Err(format!("{}: watch: {e}", self.dir.display())),
            }
        }
        Ok(())
    }

    /// A thread that wakes the reader once no manager holds the folder (at once if
    /// none does now, or the lock file is missing or unreadable).
    fn wait_for_release(&self) {
        let lock = self.dir.join(LOCK_FILE);
        let released = self.sender.clone();
        let spawned = std::thread::Builder::new().name("pitboss-follow-lock".into()).spawn(move || {
            if let Ok(file) = File::open(&lock) {
                // Blocks while a manager holds the exclusive lock (std's lock is the
                // same `flock` as io/rundir.rs's); closing the file lets go at once.
                let _ = file.lock_shared();
            }
            let _ = released.send(Wake::Released);
        });
        if spawned.is_err() {
            // No thread: wake now; the reader looks at the lock itself each time.
            let _ = self.sender.send(Wake::Released);
        }
    }
}

/// Whether a change may mean more to read or a manager gone. Opening and reading a
/// file (the reader's own looks at the log and the lock) are not: waking on them
/// would make every look wake the reader again, a busy loop.
fn wakes_a_reader(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read))
            | EventKind::Modify(ModifyKind::Metadata(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};

    #[test]
    fn the_readers_own_opens_do_not_wake_it() {
        assert!(!wakes_a_reader(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!wakes_a_reader(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(!wakes_a_reader(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))));
        assert!(wakes_a_reader(&EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        assert!(wakes_a_reader(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(wakes_a_reader(&EventKind::Create(CreateKind::File)));
    }

    /// The next wake, within a deadline (a watch that never wakes fails the test).
    fn next_wake(watch: &RunWatch) -> Wake {
        watch.wakes.recv_timeout(std::time::Duration::from_secs(20)).expect("no wake within 20 s")
    }

    #[test]
    fn a_write_to_the_log_wakes_the_reader() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG_FILE);
        let mut writer = File::create(&log).unwrap();
        // A held lock, as a live manager's: the release thread waits.
        let held = File::create(dir.path().join(LOCK_FILE)).unwrap();
        held.try_lock().unwrap();
        let watch = RunWatch::start(dir.path()).unwrap();
        writer.write_all(b"x\n").unwrap();
        assert!(matches!(next_wake(&watch), Wake::Changed));
        drop(held);
    }

    #[test]
    fn a_manager_letting_go_wakes_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let held = File::create(dir.path().join(LOCK_FILE)).unwrap();
        held.try_lock().unwrap();
        let watch = RunWatch::start(dir.path()).unwrap();
        // Let go of the lock, the file still open: no close (or any other) event the
        // folder's watch would see.
        held.unlock().unwrap();
        // Only the lock thread wakes the reader now (opens are not wakes).
        while !matches!(next_wake(&watch), Wake::Released) {}
        // And a wake for a free lock starts a new wait, which finds it free at once.
        watch.wait_for_release();
        assert!(matches!(next_wake(&watch), Wake::Released));
        drop(held);
    }
}
