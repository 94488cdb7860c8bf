//! Specs read on first use (issue 14): a format-4 snapshot's spec rows are checked at
//! open (every check the decoder makes: `columns::skim_specs`) and kept as bytes, with
//! where each row starts and the index by id over them; the specs themselves, and the
//! graph built from them, are decoded only when something asks for them. A finished
//! run's `inspect` needs only ids and `resume` none: the spec thread's work (a quarter
//! million rows built, the graph's tables) was ~40 % of both.
//!
//! The state keeps its API: `state.workflow` derefs to the `Arc<Workflow>` and the
//! state to its `Graph` as before, decoding them on the first deref. What reads ids
//! and the workflow's head without decoding goes through [`WorkflowCell::id`],
//! [`WorkflowCell::head`] and the state's `task_index`. A write (`Arc::make_mut`
//! through `DerefMut`) turns the cell into a plain one first.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use super::bytes::Src;
use super::graph::Graph;
use super::id_index::{IdIndex, Ids};
use super::{columns, RunState};
use crate::core::workflow::{TaskSpec, Workflow};

/// A snapshot's spec section, checked, with what is needed before it is decoded.
pub struct Later {
    /// The workflow without its specs (the snapshot's head).
    head: Workflow,
    /// The spec rows as written.
    rows: Vec<u8>,
    /// Where each row starts in `rows`.
    starts: Vec<u32>,
    /// Task positions by id, over the rows' ids.
    index: IdIndex,
    /// True when some row has rare fields (type, pool, gates, input guard, …).
    rare: bool,
    workflow: OnceLock<Arc<Workflow>>,
    graph: OnceLock<Arc<Graph>>,
}

/// The rows' ids, for the index.
struct RowIds<'a> {
    rows: &'a [u8],
    starts: &'a [u32],
}

impl Ids for RowIds<'_> {
    fn id_at(&self, i: usize) -> Option<&str> {
        self.starts.get(i).map(|&s| columns::spec_id(self.rows, s))
    }
    fn count(&self) -> usize {
        self.starts.len()
    }
}

impl Later {
    /// `n` spec rows checked and indexed; refused as the eager reader refuses them
    /// (a row that does not decode, an id named twice).
    pub fn read(head: Workflow, n: usize, rows: Vec<u8>) -> Result<Later, String> {
        let (starts, rare) = columns::skim_specs(n, &rows)?;
        let index = IdIndex::build(&RowIds { rows: &rows, starts: &starts });
        if index.len() != n {
            return Err("its workflow names a task twice".into());
        }
        let (workflow, graph) = (OnceLock::new(), OnceLock::new());
        Ok(Later { head, rows, starts, index, rare, workflow, graph })
    }

    fn ids(&self) -> RowIds<'_> {
        RowIds { rows: &self.rows, starts: &self.starts }
    }

    /// The whole workflow, decoded on the first call.
    fn workflow(&self) -> &Arc<Workflow> {
        self.workflow.get_or_init(|| {
            tracing::debug!("decoding {} specs on first use", self.starts.len());
            let mut src = Src::new(&self.rows[..], self.rows.len() as u64);
            // `read` ran every check `read_specs` makes on these very bytes.
            let tasks = columns::read_specs(self.starts.len(), &mut src).expect("spec rows checked at open");
            Arc::new(Workflow { tasks, ..self.head.clone() })
        })
    }

    /// Spec `i`: the decoded workflow's when it is decoded, else its row decoded alone.
    fn spec(&self, i: usize) -> Cow<'_, TaskSpec> {
        match self.workflow.get() {
            Some(w) => Cow::Borrowed(&w.tasks[i]),
            // `read` checked this row as `read_specs` reads it.
            None => Cow::Owned(columns::spec_at(&self.rows, self.starts[i]).expect("spec rows checked at open")),
        }
    }

    /// The graph of the decoded workflow, built on the first call.
    fn graph(&self) -> &Arc<Graph> {
        self.graph.get_or_init(|| Arc::new(Graph::build(self.workflow())))
    }
}

/// The state's workflow: decoded, or a snapshot's rows decoded on first use.
#[derive(Clone)]
pub enum WorkflowCell {
    /// Held whole.
    Now(Arc<Workflow>),
    /// Read from a snapshot, not decoded until asked for.
    Later(Arc<Later>),
}

impl WorkflowCell {
    /// Task `i`'s id, without decoding the specs.
    pub fn id(&self, i: usize) -> &str {
        match self {
            WorkflowCell::Now(w) => &w.tasks[i].id,
            WorkflowCell::Later(l) => match l.workflow.get() {
                Some(w) => &w.tasks[i].id,
                None => columns::spec_id(&l.rows, l.starts[i]),
            },
        }
    }

    /// Task `i`'s spec, without decoding the others.
    pub fn spec(&self, i: usize) -> Cow<'_, TaskSpec> {
        match self {
            WorkflowCell::Now(w) => Cow::Borrowed(&w.tasks[i]),
            WorkflowCell::Later(l) => l.spec(i),
        }
    }

    /// How many specs, without decoding them.
    pub fn len(&self) -> usize {
        match self {
            WorkflowCell::Now(w) => w.tasks.len(),
            WorkflowCell::Later(l) => l.starts.len(),
        }
    }

    /// True when there is no spec.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The workflow's fields but its specs, without decoding them: its `tasks` are
    /// empty when the specs are not decoded (read them through the deref).
    pub fn head(&self) -> &Workflow {
        match self {
            WorkflowCell::Now(w) => w,
            WorkflowCell::Later(l) => &l.head,
        }
    }

    /// The specs' rows as a snapshot holds them, when not decoded into a workflow
    /// that may have changed since (a format-4 writer copies them).
    pub fn rows(&self) -> Option<&[u8]> {
        match self {
            WorkflowCell::Now(_) => None,
            WorkflowCell::Later(l) => Some(&l.rows),
        }
    }

    /// True when the specs are known to be plain without decoding them: none has
    /// rare fields (no type, pool, requirements, gates, input guard, fallback,
    /// consensus). False when not known (decoded specs are not looked at).
    pub fn all_plain(&self) -> bool {
        matches!(self, WorkflowCell::Later(l) if !l.rare)
    }

    /// True while the specs have not been decoded.
    pub fn is_lazy(&self) -> bool {
        matches!(self, WorkflowCell::Later(l) if l.workflow.get().is_none())
    }
}

impl Deref for WorkflowCell {
    type Target = Arc<Workflow>;

    fn deref(&self) -> &Arc<Workflow> {
        match self {
            WorkflowCell::Now(w) => w,
            WorkflowCell::Later(l) => l.workflow(),
        }
    }
}

impl DerefMut for WorkflowCell {
    fn deref_mut(&mut self) -> &mut Arc<Workflow> {
        if let WorkflowCell::Later(l) = self {
            *self = WorkflowCell::Now(Arc::clone(l.workflow()));
        }
        match self {
            WorkflowCell::Now(w) => w,
            WorkflowCell::Later(_) => unreachable!("made plain just above"),
        }
    }
}

impl std::fmt::Debug for WorkflowCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.deref().fmt(f)
    }
}

/// The state's graph: built, or built from the lazily read specs on first use.
#[derive(Clone)]
pub enum GraphCell {
    /// Held whole.
    Now(Arc<Graph>),
    /// The specs' graph, built when first asked for.
    Later(Arc<Later>),
}

impl GraphCell {
    /// Where task `id` is, over `workflow`'s specs (the state's), without building
    /// the graph or decoding the specs of a lazily read snapshot.
    pub fn index_of(&self, workflow: &WorkflowCell, id: &str) -> Option<usize> {
        match self {
            GraphCell::Now(g) => g.index.get(&workflow.tasks, id),
            GraphCell::Later(l) => l.index.get(&l.ids(), id),
        }
    }

    /// Task `i`'s dependencies, without building the graph of a lazily read snapshot
    /// (then its specs' own edges: the graph is the one they give).
    pub fn dependencies_of(&self, i: usize) -> Vec<usize> {
        match self {
            GraphCell::Later(l) if l.graph.get().is_none() => {
                l.spec(i).depends_on.iter().filter_map(|d| l.index.get(&l.ids(), d)).collect()
            }
            _ => self.dependencies[i].to_vec(),
        }
    }

    /// True while the graph is the one the specs give, never written (a lazily read
    /// snapshot is only read with edges it derives: see `binary`).
    pub fn is_derived(&self) -> bool {
        matches!(self, GraphCell::Later(_))
    }
}

impl Deref for GraphCell {
    type Target = Arc<Graph>;

    fn deref(&self) -> &Arc<Graph> {
        match self {
            GraphCell::Now(g) => g,
            GraphCell::Later(l) => l.graph(),
        }
    }
}

impl DerefMut for GraphCell {
    fn deref_mut(&mut self) -> &mut Arc<Graph> {
        if let GraphCell::Later(l) = self {
            *self = GraphCell::Now(Arc::clone(l.graph()));
        }
        match self {
            GraphCell::Now(g) => g,
            GraphCell::Later(_) => unreachable!("made plain just above"),
        }
    }
}

impl std::fmt::Debug for GraphCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.deref().fmt(f)
    }
}

impl RunState {
    /// A format-4 state whose specs are decoded on first use (`later`, shared by its
    /// workflow and graph cells), from the head's small fields and the task rows.
    pub fn from_later(later: Later, small: super::SmallIn, rows: columns::TaskRows) -> Result<RunState, String> {
        let later = Arc::new(later);
        let pool_names = later.head.pools.iter().map(|p| Arc::from(p.name.as_str())).collect();
        RunState::assemble(WorkflowCell::Later(Arc::clone(&later)), GraphCell::Later(later), pool_names, small, rows)
    }
}
