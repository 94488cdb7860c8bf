//! The engine starts a local attempt once its `attempt_started` is written, before
//! the batch's fdatasync, and still records nothing of it before that fdatasync
//! (issue 14, P1; `src/engine/early.rs`). A store whose fdatasync the test holds,
//! and a runner that reports each start, on paused tokio time. (The held batch here
//! also records the manager's start, which later batches never overtake; batches
//! that may be overtaken are `tests/engine_in_flight.rs`'s.)

mod engine_common;

use std::time::Duration;

use engine_common::{engine, Held, A_WHILE};
use pitboss::core::Event;
use pitboss::engine::Ending;

/// The store holds the first batch that starts an attempt.
fn starts_an_attempt(event: &Event) -> bool {
    matches!(event, Event::AttemptStarted { .. })
}

#[tokio::test(start_paused = true)]
async fn a_local_attempt_starts_before_its_start_is_durable_and_its_end_is_recorded_after() {
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 2\n\
              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
    let Held { store, release, mut starts, run, .. } = engine(wf, starts_an_attempt, false, Duration::ZERO);
    // Both attempts start while the batch that started them is still not durable.
    for _ in 0..2 {
        let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
        assert!(matches!(start, Ok(Some(_))), "an attempt waited for its start's fdatasync: {:?}", store.types());
    }
    // Both ended at once, but nothing of them is recorded before that fdatasync.
    tokio::time::sleep(A_WHILE).await;
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_started").count(), 2, "{types:?}");
    assert!(!types.iter().any(|t| t == "attempt_succeeded" || t == "attempt_spawned"), "{types:?}");
    release.send(()).unwrap();
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 2, "{types:?}");
    let last_start = types.iter().rposition(|t| t == "attempt_started").unwrap();
    let first_end = types.iter().position(|t| t == "attempt_succeeded").unwrap();
    assert!(last_start < first_end, "{types:?}");
}

/// Consensus replicas keep the write-ahead: none starts before its attempt's start
/// is durable (see `src/engine/early.rs` for why).
#[tokio::test(start_paused = true)]
async fn consensus_replicas_wait_for_the_start_to_be_durable() {
    let wf = "[defaults]\nretry = { max_attempts = 1 }\n\
              [[pool]]\nname = \"w\"\ncommand = [\"unused\"]\n\
              [[task]]\nid = \"q\"\nconsensus = { replicas = 3, strategy = \"majority\" }\n";
    let Held { store, release, mut starts, run, .. } = engine(wf, starts_an_attempt, false, Duration::ZERO);
    tokio::time::sleep(A_WHILE).await;
    assert!(starts.try_recv().is_err(), "a replica started before its start was durable: {:?}", store.types());
    assert!(store.types().iter().any(|t| t == "attempt_started"), "{:?}", store.types());
    release.send(()).unwrap();
    let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
    assert!(matches!(start, Ok(Some(_))), "no replica started once durable");
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
}

/// The write-ahead that stays: no attempt starts before its `attempt_started` is
/// written (in a real log: in the page cache, where a crash of the manager alone
/// cannot lose it).
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_before_its_start_is_written() {
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\n[[task]]\nid = \"a\"\n";
    let Held { store, release, mut starts, run, .. } = engine(wf, starts_an_attempt, true, Duration::ZERO);
    tokio::time::sleep(A_WHILE).await;
    assert!(starts.try_recv().is_err(), "an attempt started before its start was written: {:?}", store.types());
    release.send(()).unwrap();
    let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
    assert!(matches!(start, Ok(Some(_))), "no start once written");
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
}
