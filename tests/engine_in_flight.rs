//! While a batch waits for its fdatasync the engine goes on taking later batches,
//! unless what the batch still has to do cannot wait behind them (issue 14, P1;
//! `src/engine/in_flight.rs`). A store that holds the fdatasync of one chosen batch,
//! and a runner whose attempts report their start, on paused tokio time.

mod engine_common;

use std::time::Duration;

use engine_common::{engine, Held, A_WHILE};
use pitboss::core::{Event, Input};
use pitboss::engine::Ending;
use pitboss::io::journal::Record;

const THREE_IN_A_ROW: &str = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 1\n\
                              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\n";

fn succeeded(event: &Event) -> bool {
    matches!(event, Event::AttemptSucceeded { .. })
}

fn cancelled(event: &Event) -> bool {
    matches!(event, Event::TaskCancelled { .. })
}

#[tokio::test(start_paused = true)]
async fn later_batches_go_on_while_an_earlier_one_waits_for_its_fdatasync() {
    // The batch recording a's success (and starting b) waits for the disk; b's and c's
    // attempts run meanwhile.
    let Held { store, release, mut starts, handle, mut run } = engine(THREE_IN_A_ROW, succeeded, false, Duration::ZERO);
    let mut subscriber = handle.subscribe();
    let mut started = Vec::new();
    for k in 0..3 {
        if k == 2 {
            // b started with the held batch (once written); c's batch comes only once
            // the engine's patience with that fdatasync (3 ms) is over: a usual
            // fdatasync is still waited for, so that batches stay big.
            tokio::time::sleep(Duration::from_micros(500)).await;
            assert!(starts.try_recv().is_err(), "a later batch was taken at once: {:?}", store.types());
        }
        match tokio::time::timeout(A_WHILE, starts.recv()).await {
            Ok(Some(task)) => started.push(task),
            _ => panic!("only {started:?} started while a batch waited for its fdatasync: {:?}", store.types()),
        }
    }
    assert_eq!(started, ["a", "b", "c"]);
    tokio::time::sleep(A_WHILE).await;
    let held_at = store.held_at().expect("the batch with a's success was written");
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 3, "{types:?}");
    // What waits for durability did not happen: the fan-out stops before the held
    // batch, a reader is not answered, and the run does not end.
    let mut published = 0;
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_millis(1), subscriber.recv()).await {
        published = batch.last().map_or(published, |r: &Record| r.seq);
    }
    assert!(published < held_at, "records up to {published} published, the batch up to {held_at} is not durable");
    let read = handle.read(|state, _| state.finished);
    tokio::pin!(read);
    assert!(tokio::time::timeout(A_WHILE, &mut read).await.is_err(), "a reader saw state that is not durable");
    assert!(tokio::time::timeout(A_WHILE, &mut run).await.is_err(), "the run ended with a batch not durable");
    release.send(()).unwrap();
    assert_eq!(tokio::time::timeout(A_WHILE, read).await.expect("the reader is answered once durable"), Some(true));
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    // Everything reached the fan-out, in order.
    let mut seqs = Vec::new();
    while let Ok(Some(batch)) = tokio::time::timeout(A_WHILE, subscriber.recv()).await {
        seqs.extend(batch.iter().map(|r| r.seq));
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(seqs.last().copied(), store.records.lock().unwrap().last().map(|r| r.seq));
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_stops_something_is_waited_for_before_the_next() {
    // a runs for a minute; c (after b) is cancelled meanwhile, and the cancel's batch
    // waits for the disk. a's end comes, but no batch is taken after the cancel's
    // until it is durable: a's success is not recorded and b does not start.
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 1\n\
              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n";
    let Held { store, release, mut starts, handle, run } = engine(wf, cancelled, false, Duration::from_secs(60));
    assert_eq!(tokio::time::timeout(A_WHILE, starts.recv()).await.ok().flatten().as_deref(), Some("a"));
    handle.send(Input::Cancel { task: "c".into(), reason: "operator".into() });
    tokio::time::sleep(A_WHILE).await;
    let held_at = store.held_at().expect("the cancel was written");
    let after = store.types().split_off(held_at as usize);
    assert!(after.is_empty(), "recorded while a cancel waited for its fdatasync: {after:?}");
    assert!(starts.try_recv().is_err(), "an attempt started while a cancel waited for its fdatasync");
    release.send(()).unwrap();
    assert_eq!(tokio::time::timeout(A_WHILE, starts.recv()).await.ok().flatten().as_deref(), Some("b"));
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "task_cancelled").count(), 1, "{types:?}");
}
