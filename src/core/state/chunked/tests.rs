use std::sync::Arc;

use super::{Chunked, CHUNK};

fn numbers(n: usize) -> Chunked<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[test]
fn a_clone_shares_every_chunk() {
    let a = numbers(3 * CHUNK + 5);
    let b = a.clone();
    assert_eq!(a.chunks(), 4);
    assert_eq!(b.chunks_apart_from(&a), 0);
    for (x, y) in a.chunks.iter().zip(&b.chunks) {
        assert!(Arc::ptr_eq(x, y), "a clone copied a chunk");
    }
}

#[test]
fn a_write_to_one_copy_leaves_the_other_unchanged() {
    let a = numbers(3 * CHUNK + 5);
    let mut b = a.clone();
    b[CHUNK + 1] = "changed".into();
    assert_eq!(a[CHUNK + 1], (CHUNK + 1).to_string());
    assert_eq!(b[CHUNK + 1], "changed");
    // Only the written chunk was copied.
    assert_eq!(b.chunks_apart_from(&a), 1);
    assert!(Arc::ptr_eq(&a.chunks[0], &b.chunks[0]));
    assert!(!Arc::ptr_eq(&a.chunks[1], &b.chunks[1]));
    // A push copies the last chunk, not the others; the clone keeps its length.
    b.push("new".into());
    assert_eq!((a.len(), b.len()), (3 * CHUNK + 5, 3 * CHUNK + 6));
    assert_eq!(b.chunks_apart_from(&a), 2);
    // Writing every element through iter_mut leaves the original as it was.
    for x in b.iter_mut() {
        x.push('!');
    }
    assert!(a.iter().enumerate().all(|(i, x)| *x == i.to_string()));
    assert!(b.iter().all(|x| x.ends_with('!')));
}

#[test]
fn it_reads_like_the_vec_it_was_built_from() {
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 17] {
        let vec: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let chunked = Chunked::from(vec.clone());
        assert_eq!(chunked.len(), n);
        assert_eq!(chunked.is_empty(), n == 0);
        assert_eq!(chunked.iter().len(), n);
        assert_eq!(chunked.iter().cloned().collect::<Vec<_>>(), vec);
        assert_eq!(chunked.iter().rev().cloned().collect::<Vec<_>>(), vec.iter().rev().cloned().collect::<Vec<_>>());
        // Both ends at once meet in the middle.
        let mut both = chunked.iter();
        let mut met = Vec::new();
        while let (Some(x), back) = (both.next(), both.next_back()) {
            met.push(x.clone());
            met.extend(back.cloned());
        }
        assert_eq!(met.len(), n);
        assert_eq!(chunked.get(n), None);
        for i in 0..n {
            assert_eq!(chunked[i], vec[i]);
            assert_eq!(chunked.get(i), Some(&vec[i]));
        }
        assert_eq!(Chunked::from_elem(7u32, n).iter().copied().collect::<Vec<_>>(), vec![7u32; n]);
    }
}

#[test]
fn it_serializes_as_the_vec_does_byte_for_byte() {
    for n in [0, 1, CHUNK, 3 * CHUNK + 5] {
        let vec: Vec<String> = (0..n).map(|i| format!("task-{i}")).collect();
        let chunked = Chunked::from(vec.clone());
        let (mine, plain) = (serde_json::to_vec(&chunked).unwrap(), serde_json::to_vec(&vec).unwrap());
        assert_eq!(mine, plain);
        let back: Chunked<String> = serde_json::from_slice(&plain).unwrap();
        assert_eq!(back, chunked);
        assert_eq!(serde_json::to_vec(&back).unwrap(), plain);
    }
    assert!(serde_json::from_slice::<Chunked<String>>(b"{\"a\":1}").is_err());
}

#[test]
fn equal_copies_compare_equal_whether_or_not_they_share() {
    let a = numbers(2 * CHUNK);
    let mut b = a.clone();
    assert_eq!(a, b);
    b[3] = "3".into();
    assert_eq!(a, b, "same elements in an unshared chunk");
    b[3] = "x".into();
    assert_ne!(a, b);
    assert_ne!(a, numbers(2 * CHUNK - 1));
}

/// A table filled a chunk at a time has the shape `push` gives (every chunk full but
/// the last, which is not empty), so `get`, `push` and a clone's sharing work on it.
#[test]
fn a_filled_table_is_the_one_pushes_make() {
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
        let mut pushed = Chunked::default();
        let mut filling = super::Filling::with_len(n / 2);
        for i in 0..n {
            pushed.push(i.to_string());
            filling.push(i.to_string());
        }
        let mut filled = filling.done();
        let shape = |c: &Chunked<String>| c.chunks.iter().map(|chunk| chunk.len()).collect::<Vec<_>>();
        assert_eq!(shape(&filled), shape(&pushed), "n = {n}");
        assert_eq!((filled.len(), filled.get(n)), (n, None));
        assert!((0..n).all(|i| filled.get(i) == Some(&i.to_string())));
        filled.push("more".into());
        pushed.push("more".into());
        assert_eq!(shape(&filled), shape(&pushed), "a push after, n = {n}");
        assert_eq!(filled, pushed);
    }
}
