//! Each task's edges on one side (its dependencies, or its dependents) in one flat
//! table (issue 14, memory): a `Vec<Vec<usize>>` cost 24 bytes a task plus an
//! allocation for each task with an edge, though most tasks of a big run have none or
//! one. Here a task's row is one 8-byte slot: no edge, the one edge itself, or the
//! place of its list among the few tasks that have two or more. Read as before,
//! `table[i]` is task `i`'s edges as a slice; written only by `push` (a growing DAG
//! appends edges, never removes one). Equal, printed and (de)serialized by rows, as a
//! list of lists, so a snapshot's `dependents`/`dependencies` are what they were.

use std::fmt;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A row with no edge.
const NONE: usize = usize::MAX;
/// The bit of a slot that holds the place of a list in `lists` (with `NONE` apart).
/// No task index reaches it; an edge that did (only a damaged snapshot could hold
/// one) is kept in a list, so a slot never misreads.
const LIST: usize = 1 << (usize::BITS - 1);

/// Every task's edges on one side. See the module's comment.
#[derive(Clone, Default)]
pub struct EdgeTable {
    /// One per task: [`NONE`], the one edge, or [`LIST`] | the place in `lists`.
    slots: Vec<usize>,
    /// The rows with two or more edges.
    lists: Vec<Vec<usize>>,
}

impl EdgeTable {
    /// `n` tasks without edges.
    pub fn with_rows(n: usize) -> EdgeTable {
        EdgeTable { slots: vec![NONE; n], lists: Vec::new() }
    }

    /// Number of tasks (rows).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the table has no task.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A task without edges, after the last.
    pub fn push_row(&mut self) {
        self.slots.push(NONE);
    }

    /// Adds `edge` at the end of task `row`'s edges.
    pub fn push(&mut self, row: usize, edge: usize) {
        let slot = self.slots[row];
        if slot == NONE && edge < LIST {
            self.slots[row] = edge;
        } else if slot != NONE && slot & LIST != 0 {
            self.lists[slot & !LIST].push(edge);
        } else {
            let list = if slot == NONE { vec![edge] } else { vec![slot, edge] };
            self.slots[row] = LIST | self.lists.len();
            self.lists.push(list);
        }
    }

    /// Every task's edges, in task order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    /// The table of these rows.
    fn from_rows(rows: Vec<Vec<usize>>) -> EdgeTable {
        let mut table = EdgeTable::with_rows(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            for edge in row {
                table.push(i, edge);
            }
        }
        table
    }
}

impl Index<usize> for EdgeTable {
    type Output = [usize];

    fn index(&self, i: usize) -> &[usize] {
        let slot = &self.slots[i];
        match *slot {
            NONE => &[],
            s if s & LIST != 0 => &self.lists[s & !LIST],
            _ => std::slice::from_ref(slot),
        }
    }
}

impl PartialEq for EdgeTable {
    fn eq(&self, other: &EdgeTable) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl fmt::Debug for EdgeTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for EdgeTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for EdgeTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EdgeTable, D::Error> {
        Vec::<Vec<usize>>::deserialize(d).map(EdgeTable::from_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::{EdgeTable, LIST};

    #[test]
    fn rows_read_back_as_pushed_and_as_lists() {
        let mut table = EdgeTable::with_rows(4);
        table.push(1, 7);
        table.push(2, 3);
        table.push(2, 0);
        table.push(2, 9);
        table.push(3, LIST + 1);
        table.push_row();
        table.push(4, 0);
        let rows: Vec<Vec<usize>> = table.iter().map(<[usize]>::to_vec).collect();
        assert_eq!(rows, vec![vec![], vec![7], vec![3, 0, 9], vec![LIST + 1], vec![0]]);
        let text = serde_json::to_string(&table).unwrap();
        assert_eq!(text, format!("[[],[7],[3,0,9],[{}],[0]]", LIST + 1));
        let back: EdgeTable = serde_json::from_str(&text).unwrap();
        assert_eq!(back, table);
        assert_eq!(format!("{back:?}"), format!("{rows:?}"));
        assert_ne!(back, EdgeTable::with_rows(5));
    }

    #[test]
    fn a_row_costs_one_word_until_it_has_two_edges() {
        let mut table = EdgeTable::with_rows(1000);
        for i in 1..1000 {
            table.push(i, i - 1);
        }
        assert!(table.lists.is_empty(), "a list for a single edge");
        assert_eq!(std::mem::size_of_val(table.slots.as_slice()), 8 * 1000);
    }
}
