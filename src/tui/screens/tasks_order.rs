//! The tasks table's order as one integer per row: the sort column's value (flipped
//! when descending, a missing one after every other either way) and the task's rank in
//! id order as the tie-break. Sorting 10,000 such keys costs a fraction of a frame;
//! comparing values and id strings per comparison cost several (P3). The id ranks
//! are worked out once per number of tasks and kept with the view ([`IdRanks`]):
//! ids never change and tasks are only appended, so ranks made over more tasks
//! still order any prefix of them (the travelled-to run) correctly.

use std::sync::{Arc, Mutex};

use super::tasks::{descending, duration_of, started_of, SortKey};
use crate::core::TaskStateName;
use crate::tui::model::Fleet;
use crate::tui::view::ViewState;

/// Each task's position in id order, by task index; kept between frames.
#[derive(Debug, Default)]
pub struct IdRanks(Mutex<Arc<Vec<u32>>>);

impl Clone for IdRanks {
    fn clone(&self) -> IdRanks {
        IdRanks(Mutex::new(self.get_kept()))
    }
}

impl IdRanks {
    fn get_kept(&self) -> Arc<Vec<u32>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The ranks for `fleet`'s tasks, made again only when it has more tasks.
    pub fn of(&self, fleet: &Fleet) -> Arc<Vec<u32>> {
        let kept = self.get_kept();
        if kept.len() >= fleet.state.tasks.len() {
            return kept;
        }
        let state = &fleet.state;
        let mut by_id: Vec<u32> = (0..state.tasks.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| state.task_id(a as usize).cmp(state.task_id(b as usize)));
        let mut ranks = vec![0u32; by_id.len()];
        for (rank, &i) in by_id.iter().enumerate() {
            ranks[i as usize] = rank as u32;
        }
        let ranks = Arc::new(ranks);
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = ranks.clone();
        ranks
    }
}

/// How `vs` orders the tasks: a key per task, smaller first.
pub struct Order {
    sort: SortKey,
    descending: bool,
    ranks: Arc<Vec<u32>>,
    /// Pool names in name order (a task's pool sorts by its place among them).
    pools: Vec<String>,
    /// The view's clock ([`ViewState::now_ms`]).
    now_ms: u64,
}

impl Order {
    /// The order `vs` asks for, over `fleet`.
    pub fn new(fleet: &Fleet, vs: &ViewState) -> Order {
        let mut pools: Vec<String> = fleet.state.workflow.head().pools.iter().map(|p| p.name.to_string()).collect();
        pools.sort();
        Order { sort: vs.sort, descending: descending(vs), ranks: vs.id_ranks.of(fleet), pools, now_ms: vs.now_ms }
    }

    /// Task `i`'s key: missing value bit, value (flipped when descending), id rank.
    /// Ties in the column go by id ascending in both directions.
    pub fn key(&self, fleet: &Fleet, i: usize) -> u128 {
        let rank = u64::from(self.ranks.get(i).copied().unwrap_or(u32::MAX));
        let task = &fleet.state.tasks[i];
        let value = match self.sort {
            SortKey::Workflow => Some(i as u64),
            SortKey::Id => Some(rank),
            SortKey::State => {
                let name = task.state.name();
                TaskStateName::ALL.iter().position(|n| *n == name).map(|p| p as u64)
            }
            SortKey::Pool => {
                let pool = task.pool.as_deref();
                pool.map(|p| self.pools.binary_search_by(|name| name.as_str().cmp(p)).unwrap_or_else(|at| at) as u64)
            }
            SortKey::Attempts => Some(u64::from(task.attempts)),
            // Running attempts as of the clock the frame shows them with (the app
            // loop stamps it on the view before each key and frame), else as of the
            // newest record (time travel, tests without a clock).
            SortKey::Duration => duration_of(fleet, i, self.now_ms.max(fleet.last_ts)),
            SortKey::Started => started_of(fleet, i),
        };
        match value {
            None => (1u128 << 96) | u128::from(rank),
            Some(v) => {
                let v = if self.descending { u64::MAX - v } else { v };
                (u128::from(v) << 32) | u128::from(rank)
            }
        }
    }

    /// `rows` (task indices) in this order.
    pub fn sort(&self, fleet: &Fleet, rows: Vec<usize>) -> Vec<usize> {
        let mut keyed: Vec<(u128, usize)> = rows.into_iter().map(|i| (self.key(fleet, i), i)).collect();
        keyed.sort_unstable_by_key(|(key, _)| *key);
        keyed.into_iter().map(|(_, i)| i).collect()
    }
}
