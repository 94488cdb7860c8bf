//! The journal's fdatasyncs, on a thread of their own (issue 14, P1).
//!
//! With the write and the fdatasync of a batch on one thread, the next batch could not
//! even be *written* until the disk had answered, and the attempts it starts (which
//! need only the write, `engine::early`) waited for it: on this box's virtual disk an
//! fdatasync takes 1.5 ms on average and now and then 20–500 ms, during which every
//! slot that ended stayed empty (benchmark P1 measured whole cores idle for 350 ms).
//! Now the engine writes each batch itself (a `write` into the page cache, in order)
//! and hands it over; this thread syncs whatever was handed over so far with one
//! fdatasync and then tells each batch it is durable, oldest first. A batch is only
//! told after an fdatasync that started once it was written, so "durable" means what
//! it meant.

use std::fs::File;
use std::sync::mpsc::{Receiver, Sender};

use tokio::sync::oneshot;

use crate::io::logfile::WriteError;

/// What the journal thread hands over, in the order it wrote.
pub(super) enum SyncJob {
    /// A batch is written: `done` is told once it is durable (once every batch
    /// before it is, when it needs no fdatasync itself).
    Batch { durable: bool, done: oneshot::Sender<Result<(), WriteError>> },
    /// The log rolled: what follows is written to this file (the old one was made
    /// durable by the roll).
    File(File),
}

/// Starts the sync thread on (a handle of) the log's file.
pub(super) fn spawn(file: File) -> std::io::Result<Sender<SyncJob>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("pitboss-fsync".into()).spawn(move || sync_jobs(file, rx))?;
    Ok(tx)
}

fn sync_jobs(mut file: File, jobs: Receiver<SyncJob>) {
    let mut waiting = Vec::new();
    while let Ok(job) = jobs.recv() {
        // Everything handed over by now is written: one fdatasync covers all of it.
        let mut durable = false;
        for job in std::iter::once(job).chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
            match job {
                SyncJob::Batch { durable: needs, done } => {
                    durable |= needs;
                    waiting.push(done);
                }
                SyncJob::File(next) => {
                    tell(&file, std::mem::take(&mut durable), &mut waiting);
                    file = next;
                }
            }
        }
        tell(&file, durable, &mut waiting);
    }
}

/// Syncs `file` when `durable`, then tells every batch waiting how it went.
fn tell(file: &File, durable: bool, waiting: &mut Vec<oneshot::Sender<Result<(), WriteError>>>) {
    let result = if durable { file.sync_data() } else { Ok(()) };
    for done in waiting.drain(..) {
        let told = match &result {
            Ok(()) => Ok(()),
            // Each waiter gets the error (io::Error is not Clone): the engine stops on
            // the first, the others only say the same.
            Err(e) => Err(WriteError::Io(std::io::Error::new(e.kind(), e.to_string()))),
        };
        let _ = done.send(told);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    type Told = oneshot::Receiver<Result<(), WriteError>>;

    fn batch(durable: bool) -> (SyncJob, Told) {
        let (done, told) = oneshot::channel();
        (SyncJob::Batch { durable, done }, told)
    }

    /// A file whose fdatasync fails (a pipe: EINVAL).
    fn unsyncable() -> File {
        let (_, writer) = std::io::pipe().unwrap();
        File::from(std::os::fd::OwnedFd::from(writer))
    }

    /// Runs the sync thread's loop here on jobs all handed over before it starts (one
    /// group), and gives how each batch was told.
    fn run(file: File, jobs: Vec<SyncJob>) {
        let (tx, rx) = std::sync::mpsc::channel();
        for job in jobs {
            tx.send(job).unwrap();
        }
        drop(tx);
        sync_jobs(file, rx);
    }

    fn told(mut told: Told) -> Result<(), String> {
        told.try_recv().expect("every batch is told").map_err(|e| e.to_string())
    }

    #[test]
    fn every_batch_of_a_group_is_told_the_outcome_of_its_one_fdatasync() {
        let (a, told_a) = batch(true);
        let (b, told_b) = batch(false);
        let (c, told_c) = batch(true);
        run(unsyncable(), vec![a, b, c]);
        // The non-durable batch waited behind a durable one: it is told the same.
        for told_x in [told_a, told_b, told_c] {
            let e = told(told_x).unwrap_err();
            assert!(e.contains("Invalid argument"), "{e}");
        }
        let (a, told_a) = batch(true);
        let (b, told_b) = batch(true);
        run(tempfile::tempfile().unwrap(), vec![a, b]);
        assert_eq!((told(told_a), told(told_b)), (Ok(()), Ok(())));
    }

    #[test]
    fn batches_that_need_no_fdatasync_get_none() {
        let (a, told_a) = batch(false);
        let (b, told_b) = batch(false);
        run(unsyncable(), vec![a, b]);
        assert_eq!((told(told_a), told(told_b)), (Ok(()), Ok(())));
    }

    #[test]
    fn after_a_roll_the_new_file_is_synced_and_the_old_one_first() {
        let (a, told_a) = batch(true);
        let (b, told_b) = batch(true);
        run(unsyncable(), vec![a, SyncJob::File(tempfile::tempfile().unwrap()), b]);
        assert!(told(told_a).is_err(), "the batch before the roll was synced with the new file");
        assert_eq!(told(told_b), Ok(()), "the batch after the roll was synced with the old file");
    }
}
