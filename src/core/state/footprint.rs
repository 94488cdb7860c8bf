//! What a copy of the state holds on its own: time travel keeps many copies of one
//! run (checkpoints) and bounds their memory by what they do not share.

use std::mem::size_of;

use super::{PoolState, RunState, Standing, Task, CHUNK};

/// Bytes of one entry of the ready queue (a `BTreeMap<u64, usize>` entry with its
/// share of the node around it), estimated.
const QUEUE_ENTRY_BYTES: usize = 24;
/// Bytes of one running consensus attempt's seats, estimated.
const SEATS_BYTES: usize = 128;

impl RunState {
    /// Bytes of this state that `newer` (a later copy of the same run) does not share,
    /// estimated: its chunks of tasks and readiness counts that were written since
    /// (a task's own heap parts, shared or rare, are not counted), and the tables every
    /// clone copies whole (the queue, the pools, the seats).
    pub fn bytes_apart_from(&self, newer: &RunState) -> usize {
        let (mine, theirs) = (&self.readiness, &newer.readiness);
        let tasks = self.tasks.chunks_apart_from(&newer.tasks) * CHUNK * size_of::<Task>();
        let counts = (mine.unsatisfied.chunks_apart_from(&theirs.unsatisfied)
            + mine.failed.chunks_apart_from(&theirs.failed))
            * CHUNK
            * size_of::<u32>()
            + mine.standing.chunks_apart_from(&theirs.standing) * CHUNK * size_of::<Standing>();
        let copied = self.queue.len() * QUEUE_ENTRY_BYTES
            + self.pools.len() * size_of::<PoolState>()
            + self.seats.len() * SEATS_BYTES;
        tasks + counts + copied
    }
}
