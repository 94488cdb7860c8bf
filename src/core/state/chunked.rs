//! Per-task tables stored as copy-on-write chunks. A clone of a [`Chunked`] copies one
//! pointer per [`CHUNK`] elements and shares the elements; the first write to an
//! element of a shared chunk copies that chunk alone (`Arc::make_mut`). So a clone of
//! a 250,000-task state (a time-travel checkpoint, entering time travel) costs ~1,000
//! pointer copies instead of 250,000 task clones, and a checkpoint holds only the
//! chunks written since the one before it. A state that nobody cloned writes in place
//! as a `Vec` does (one uniqueness check per write).
//!
//! It serializes as the plain sequence of its elements, so a snapshot is the same
//! bytes as with a `Vec`.

use std::fmt;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// Elements per chunk: a chunk of tasks is ~72 KB, small enough that a write copies
/// little, big enough that a clone of 250,000 tasks is ~1,000 pointers.
pub const CHUNK: usize = 256;

/// A `Vec<T>` split in chunks of [`CHUNK`] elements shared between clones.
#[derive(Clone)]
pub struct Chunked<T> {
    /// Every chunk is full but the last, which is not empty.
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> Chunked<T> {
    /// `n` copies of `value`.
    pub fn from_elem(value: T, n: usize) -> Chunked<T> {
        let mut chunks = Vec::with_capacity(n.div_ceil(CHUNK));
        let mut left = n;
        while left > 0 {
            let take = left.min(CHUNK);
            chunks.push(Arc::new(vec![value.clone(); take]));
            left -= take;
        }
        Chunked { chunks, len: n }
    }

    /// Appends one element (copies the last chunk first if a clone shares it).
    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// Element `i` to write, if there is one (its chunk is copied first if shared).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        Some(&mut Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK])
    }

    /// Every element to write, in order. Copies every shared chunk: where only a few
    /// elements change, write those through `IndexMut` instead.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flat_map(|chunk| Arc::make_mut(chunk).iter_mut())
    }
}

impl<T> Chunked<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        Some(&self.chunks[i / CHUNK][i % CHUNK])
    }

    /// Every element, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { chunks: self.chunks.iter(), front: [].iter(), back: [].iter(), left: self.len }
    }

    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Chunks of `self` that `other` does not share (the memory `self` holds apart
    /// from it, in chunks). Compared by position: a chunk is only ever shared at the
    /// same place.
    pub fn chunks_apart_from(&self, other: &Chunked<T>) -> usize {
        let shared = self.chunks.iter().zip(&other.chunks).filter(|(mine, theirs)| Arc::ptr_eq(mine, theirs)).count();
        self.chunks.len() - shared
    }
}

/// The elements of a [`Chunked`], in order.
pub struct Iter<'a, T> {
    chunks: std::slice::Iter<'a, Arc<Vec<T>>>,
    front: std::slice::Iter<'a, T>,
    back: std::slice::Iter<'a, T>,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(x) = self.front.next() {
                self.left -= 1;
                return Some(x);
            }
            match self.chunks.next() {
                Some(chunk) => self.front = chunk.iter(),
                None => {
                    let x = self.back.next()?;
                    self.left -= 1;
                    return Some(x);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.back.next_back() {
                self.left -= 1;
                return Some(x);
            }
            match self.chunks.next_back() {
                Some(chunk) => self.back = chunk.iter(),
                None => {
                    let x = self.front.next_back()?;
                    self.left -= 1;
                    return Some(x);
                }
            }
        }
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        // Out of range panics as a `Vec` does: past the last chunk, or past the end of
        // the last one (which alone is not full).
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T: Clone> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK]
    }
}

impl<T: Clone> From<Vec<T>> for Chunked<T> {
    fn from(values: Vec<T>) -> Chunked<T> {
        values.into_iter().collect()
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Chunked<T> {
        let values = values.into_iter();
        let mut filling = Filling::with_len(values.size_hint().0);
        for value in values {
            filling.push(value);
        }
        filling.done()
    }
}

/// A [`Chunked`] built from the front, a chunk at a time: no uniqueness check and no
/// chunk lookup per element (`Chunked::push` makes both: 8.5 % of reading a format-4
/// snapshot's quarter million tasks into four tables, issue 14).
pub struct Filling<T> {
    chunks: Vec<Arc<Vec<T>>>,
    current: Vec<T>,
    len: usize,
}

impl<T> Filling<T> {
    /// Room for `n` elements' chunk pointers (more may be pushed).
    pub fn with_len(n: usize) -> Filling<T> {
        Filling { chunks: Vec::with_capacity(n.div_ceil(CHUNK)), current: Vec::with_capacity(CHUNK), len: 0 }
    }

    pub fn push(&mut self, value: T) {
        self.current.push(value);
        self.len += 1;
        if self.current.len() == CHUNK {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
            self.chunks.push(Arc::new(full));
        }
    }

    /// The table: every chunk full but the last, which is not empty.
    pub fn done(mut self) -> Chunked<T> {
        if !self.current.is_empty() {
            self.chunks.push(Arc::new(self.current));
        }
        Chunked { chunks: self.chunks, len: self.len }
    }
}

impl<T: PartialEq> PartialEq for Chunked<T> {
    fn eq(&self, other: &Chunked<T>) -> bool {
        self.len == other.len
            && self.chunks.iter().zip(&other.chunks).all(|(a, b)| Arc::ptr_eq(a, b) || a.as_slice() == b.as_slice())
    }
}

impl<T: fmt::Debug> fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for Chunked<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Chunked<T>, D::Error> {
        struct Elements<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for Elements<T> {
            type Value = Chunked<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Chunked<T>, A::Error> {
                let mut filling = Filling::with_len(0);
                while let Some(value) = seq.next_element()? {
                    filling.push(value);
                }
                Ok(filling.done())
            }
        }

        d.deserialize_seq(Elements(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests;
