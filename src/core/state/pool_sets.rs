//! Each task's eligible pools (issue 14, memory): a run has a few distinct sets and
//! a quarter million tasks naming them, so the table holds each distinct set once
//! and each task the set's number, 4 bytes (a shared `Arc<[usize]>` per task was 16).
//! Read as `table[i]`, task `i`'s pools as a slice; written by `push` (a growing DAG
//! appends tasks). Equal, printed and (de)serialized by rows, as a list of lists, so
//! format 1 and 2 snapshots keep their `eligible` field as it was.

use std::collections::HashMap;
use std::fmt;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every task's eligible pools. See the module's comment.
#[derive(Clone, Default)]
pub struct PoolSets {
    /// The distinct sets, in order of first use.
    sets: Vec<Box<[usize]>>,
    /// Each task's set, by its place in `sets`.
    of_task: Vec<u32>,
}

impl PoolSets {
    /// The table of these rows, each distinct set kept once.
    pub fn from_rows(rows: impl IntoIterator<Item = Vec<usize>>) -> PoolSets {
        let mut table = PoolSets::default();
        let mut known: HashMap<Vec<usize>, u32> = HashMap::new();
        for row in rows {
            let next = table.sets.len();
            let k = *known.entry(row).or_insert_with_key(|row| {
                table.sets.push(row.as_slice().into());
                u32::try_from(next).unwrap_or(u32::MAX)
            });
            table.of_task.push(k);
        }
        table
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.of_task.len()
    }

    /// True when the table has no task.
    pub fn is_empty(&self) -> bool {
        self.of_task.is_empty()
    }

    /// Number of distinct sets.
    pub fn distinct(&self) -> usize {
        self.sets.len()
    }

    /// A task after the last, with `set` as its pools: a known set is found among
    /// the last few (a spawn's or submit's tasks are mostly alike), else added.
    pub fn push(&mut self, set: Vec<usize>) {
        let known = self.sets.iter().rev().take(16).position(|s| **s == *set).map(|back| self.sets.len() - 1 - back);
        let k = known.unwrap_or_else(|| {
            self.sets.push(set.into());
            self.sets.len() - 1
        });
        self.of_task.push(u32::try_from(k).unwrap_or(u32::MAX));
    }

    /// A task after the last, with the last task's pools (none before the first task:
    /// then an empty set).
    pub fn repeat_last(&mut self) {
        match self.of_task.last() {
            Some(&k) => self.of_task.push(k),
            None => self.push(Vec::new()),
        }
    }

    /// Every task's pools, in task order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        (0..self.len()).map(|i| &self[i])
    }
}

impl Index<usize> for PoolSets {
    type Output = [usize];

    fn index(&self, i: usize) -> &[usize] {
        &self.sets[self.of_task[i] as usize]
    }
}

impl PartialEq for PoolSets {
    fn eq(&self, other: &PoolSets) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl fmt::Debug for PoolSets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for PoolSets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PoolSets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PoolSets, D::Error> {
        Vec::<Vec<usize>>::deserialize(d).map(PoolSets::from_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::PoolSets;

    #[test]
    fn each_distinct_set_is_held_once() {
        let mut table = PoolSets::from_rows([vec![0, 1], vec![2], vec![0, 1], vec![]]);
        assert_eq!(table.distinct(), 3);
        table.push(vec![2]);
        table.push(vec![3]);
        assert_eq!(table.distinct(), 4);
        let rows: Vec<Vec<usize>> = table.iter().map(<[usize]>::to_vec).collect();
        assert_eq!(rows, vec![vec![0, 1], vec![2], vec![0, 1], vec![], vec![2], vec![3]]);
        let text = serde_json::to_string(&table).unwrap();
        assert_eq!(text, "[[0,1],[2],[0,1],[],[2],[3]]");
        let back: PoolSets = serde_json::from_str(&text).unwrap();
        assert_eq!(back, table);
        assert_eq!(back.distinct(), 4);
        assert_eq!(format!("{back:?}"), format!("{rows:?}"));
    }
}
