//! The worker's scratch folder for attempt output (`TMP/pitboss-worker-PID`). A clean
//! exit removes it; a worker killed with SIGKILL cannot, so each worker that starts
//! removes the folders of workers that are gone (same user, pid no longer running),
//! and a machine running workers for weeks does not collect one per kill.

use std::path::{Path, PathBuf};

use crate::io::platform::{my_uid, owner_of, process_exists};

const PREFIX: &str = "pitboss-worker-";

/// The scratch folder of the worker with `pid` under `temp`.
pub fn folder(temp: &Path, pid: u32) -> PathBuf {
    temp.join(format!("{PREFIX}{pid}"))
}

/// Removes `temp`'s scratch folders of this user's workers that no longer run; the
/// number removed. A folder whose pid runs (a live worker, or a reused pid) is kept:
/// removing a live worker's output would lose its attempt's output.
pub fn sweep_dead(temp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp) else { return 0 };
    let me = my_uid();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // symlink_metadata: a link named like a folder of ours is not followed.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.is_dir() || owner_of(&meta) != me || pid <= 0 || process_exists(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_dead_workers_go_and_live_ones_stay() {
        let temp = tempfile::tempdir().unwrap();
        // A child that has exited and been waited for: its pid runs no more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = folder(temp.path(), child.id());
        let live = folder(temp.path(), std::process::id());
        for dir in [&dead, &live] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("t.1.stdout"), b"out").unwrap();
        }
        let unrelated = temp.path().join("pitboss-worker-notapid");
        std::fs::create_dir(&unrelated).unwrap();
        assert_eq!(sweep_dead(temp.path()), 1);
        assert!(!dead.exists(), "the dead worker's folder is removed");
        assert!(live.join("t.1.stdout").exists(), "a running worker's folder is kept");
        assert!(unrelated.exists(), "only names ending in a pid");
    }
}
