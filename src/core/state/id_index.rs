//! The index of tasks by id, without a copy of any id (issue 14, memory): a hash
//! table of task positions, hashed by id and compared against the workflow's own
//! spec ids. A `HashMap<String, usize>` held a second copy of every id (an allocation
//! each) and 32-byte slots: ~25 MB at 250k tasks, against ~2 MB of `u32` slots here.
//! Every lookup is given the specs the positions point into (the state's workflow).
//!
//! Ids are hashed with foldhash (hashbrown's default hasher), seeded at random per
//! process, not with std's SipHash: hashing a quarter million ids was 10 % of opening
//! a format-4 snapshot (issue 14). The ids come from the operator's workflow, their
//! own submits, a planner's spawns and our own sealed snapshots; a random seed keeps
//! collisions from being chosen ahead, and a collision costs a probe, never a wrong
//! answer (every candidate is compared by its id).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::core::workflow::TaskSpec;

/// Where the ids an index points into are: the specs, or a lazily read snapshot's spec
/// rows (`lazy`), which give their ids without decoding the rest.
pub trait Ids {
    /// The id of task `i`, if there is one.
    fn id_at(&self, i: usize) -> Option<&str>;
    /// How many tasks.
    fn count(&self) -> usize;
}

impl Ids for [TaskSpec] {
    fn id_at(&self, i: usize) -> Option<&str> {
        self.get(i).map(|s| s.id.as_str())
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Ids for Vec<TaskSpec> {
    fn id_at(&self, i: usize) -> Option<&str> {
        self.as_slice().id_at(i)
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// Task positions by id; the ids themselves are the specs'. (`S` is another hasher
/// only in tests: one that makes every id collide.)
#[derive(Clone, Default)]
pub struct IdIndex<S = DefaultHashBuilder> {
    table: HashTable<u32>,
    hasher: S,
}

impl IdIndex {
    /// The index of `specs`; the positions of ids that appear twice are left out after
    /// the first (the caller compares [`IdIndex::len`] with the count to refuse them).
    pub fn build<I: Ids + ?Sized>(specs: &I) -> IdIndex {
        IdIndex::build_with(specs, DefaultHashBuilder::default())
    }
}

impl<S: BuildHasher> IdIndex<S> {
    fn build_with<I: Ids + ?Sized>(specs: &I, hasher: S) -> IdIndex<S> {
        let mut index = IdIndex { table: HashTable::with_capacity(specs.count()), hasher };
        for i in 0..specs.count() {
            index.insert(specs, i);
        }
        index
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Where the task `id` is, in `specs` (the ones this index was built over).
    pub fn get<I: Ids + ?Sized>(&self, specs: &I, id: &str) -> Option<usize> {
        let at = |&i: &u32| specs.id_at(i as usize) == Some(id);
        self.table.find(self.hash(id), at).map(|&i| i as usize)
    }

    /// Adds `specs[i]` (already in `specs`); false, and nothing added, when its id is
    /// already there.
    pub fn insert<I: Ids + ?Sized>(&mut self, specs: &I, i: usize) -> bool {
        let id = specs.id_at(i).expect("the task is in its specs");
        let hasher = &self.hasher;
        let rehash = |&j: &u32| hasher.hash_one(specs.id_at(j as usize).unwrap_or_default());
        let same = |&j: &u32| specs.id_at(j as usize) == Some(id);
        // One probe for the look and the insert (a look then an insert was two: 10 %
        // of opening a quarter million specs, issue 14).
        match self.table.entry(hasher.hash_one(id), same, rehash) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(u32::try_from(i).expect("fewer than 4 billion tasks"));
                true
            }
        }
    }

    /// Ids indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    fn positions(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.table.iter().copied().collect();
        all.sort_unstable();
        all
    }
}

impl<S: BuildHasher> PartialEq for IdIndex<S> {
    /// The same positions indexed (over the same specs, the same index).
    fn eq(&self, other: &IdIndex<S>) -> bool {
        self.len() == other.len() && self.positions() == other.positions()
    }
}

impl<S: BuildHasher> std::fmt::Debug for IdIndex<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdIndex({} ids)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::IdIndex;
    use crate::core::workflow::TaskSpec;

    fn specs(ids: &[&str]) -> Vec<TaskSpec> {
        let text = |id: &str| {
            format!(
                r#"{{"id":"{id}","type":"","pool":null,"requires":[],"payload":{{}},"depends_on":[],"timeout_ms":1,"retry":{{"max_attempts":1,"initial_ms":1,"max_ms":1,"multiplier":1.0,"jitter":false}}}}"#
            )
        };
        ids.iter().map(|id| serde_json::from_str(&text(id)).unwrap()).collect()
    }

    #[test]
    fn it_finds_every_id_and_refuses_a_second_one() {
        let mut all = specs(&["a", "b", "c", "b"]);
        let index = IdIndex::build(&all);
        assert_eq!(index.len(), 3, "the second b is left out");
        assert_eq!([index.get(&all, "a"), index.get(&all, "b"), index.get(&all, "c")], [Some(0), Some(1), Some(2)]);
        assert_eq!(index.get(&all, "d"), None);
        // Grown past its first capacity (a planner's spawns), every id still found.
        let mut index = IdIndex::build(&all[..3]);
        all.truncate(3);
        for n in 0..1000 {
            all.extend(specs(&[&format!("s{n}")]));
            assert!(index.insert(&all, all.len() - 1));
        }
        assert!(!index.insert(&all, 0), "a taken id is refused");
        assert!((0..all.len()).all(|i| index.get(&all, &all[i].id) == Some(i)));
    }

    /// A hasher that gives every id the same hash: the index must tell ids apart by
    /// comparing them, never by their hash.
    #[derive(Clone, Default)]
    struct Colliding;

    impl std::hash::BuildHasher for Colliding {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn ids_that_collide_are_still_told_apart() {
        let all = specs(&["a", "b", "c", "b", "ab", "ba", ""]);
        let mut index = IdIndex::build_with(&all, Colliding);
        assert_eq!(index.len(), 6, "the second b is left out, by its id");
        for (id, at) in [("a", 0), ("b", 1), ("c", 2), ("ab", 4), ("ba", 5), ("", 6)] {
            assert_eq!(index.get(&all, id), Some(at), "{id:?}");
        }
        assert_eq!([index.get(&all, "d"), index.get(&all, "aa")], [None, None]);
        assert!(!index.insert(&all, 3), "a taken id is refused");
    }

    /// The default (foldhash) index over ids as a big run names them: every id at its
    /// place, and ids that are not there (close to ones that are) not found.
    #[test]
    fn every_one_of_many_ids_is_found_where_it_is() {
        let one = specs(&["a"]).remove(0);
        let all: Vec<TaskSpec> = (0..50_000).map(|n| TaskSpec { id: format!("t{n:06}"), ..one.clone() }).collect();
        let index = IdIndex::build(&all);
        assert_eq!(index.len(), all.len());
        assert!((0..all.len()).all(|i| index.get(&all, &all[i].id) == Some(i)));
        assert!((0..1000).all(|n| index.get(&all, &format!("t{:06}", 50_000 + n)).is_none()));
        assert!((0..1000).all(|n| index.get(&all, &format!("t{n:05}")).is_none()));
    }

    #[test]
    fn a_slot_is_a_position_not_an_id() {
        // 4 bytes a slot (and a control byte) instead of a `String` key, its own
        // allocation and a `usize`: the old index of 250k tasks was ~25 MB.
        let one = specs(&["a"]).remove(0);
        let all: Vec<TaskSpec> = (0..10_000).map(|n| TaskSpec { id: format!("t{n:06}"), ..one.clone() }).collect();
        let index = IdIndex::build(&all);
        assert_eq!(index.len(), all.len());
        let per_task = index.table.allocation_size() as f64 / all.len() as f64;
        assert!(per_task <= 10.0, "{per_task} bytes a task");
    }
}
