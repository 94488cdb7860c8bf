//! `subscribe_output`: workers' output chunks as they arrive, for an attached TUI's
//! live panes. Not durable and not complete: the engine's output fan-out never waits
//! for a reader, so a client that falls behind misses chunks (it is told how many with
//! a `{"missed": N}` line) — the output files in the run folder stay the full record.
//!
//! Lines: first `{"ok": true, "id": …}` (the subscription is live from here), then
//! each running attempt's recent output (the last 8 KiB it printed, stdout and stderr
//! together, as one chunk: `recent.rs`), then
//! `{"output": {"task", "attempt", "stderr", "text"}}` per chunk (`"hex"` instead of
//! `"text"` when a chunk is not UTF-8, e.g. cut inside a character), and a last
//! `{"ok": true, "end": true}` when the run stops.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::connection::send;
use super::transport::Transport;
use super::Shared;
use crate::io::runner::OutputChunk;

/// Streams output chunks until the run stops or the client goes.
pub(crate) async fn stream<T: Transport>(mut client: T, shared: Arc<Shared>, id: Value) {
    let (recent, mut chunks) = shared.recent.subscribe();
    let mut ended = shared.ended.clone();
    let ready = json!({"ok": true, "id": id, "message": "streaming workers' output"});
    if send(&mut client, &ready, &shared).await.is_err() {
        return;
    }
    // What running attempts printed before the subscription, then what follows.
    for chunk in &recent {
        if send(&mut client, &chunk_line(chunk), &shared).await.is_err() {
            return;
        }
    }
    enum Next {
        Chunk(OutputChunk),
        Missed(u64),
        Stopped,
        Gone,
    }
    loop {
        let next = tokio::select! {
            chunk = chunks.recv() => match chunk {
                Ok(chunk) => Next::Chunk(chunk),
                Err(RecvError::Lagged(n)) => Next::Missed(n),
                Err(RecvError::Closed) => Next::Stopped,
            },
            _ = ended.wait_for(|stopped| *stopped) => Next::Stopped,
            () = client.closed() => Next::Gone,
        };
        let line = match next {
            Next::Chunk(chunk) => chunk_line(&chunk),
            Next::Missed(n) => json!({"missed": n}),
            Next::Stopped => break,
            Next::Gone => return,
        };
        if send(&mut client, &line, &shared).await.is_err() {
            return;
        }
    }
    let _ = send(&mut client, &json!({"ok": true, "id": id, "end": true, "message": "the run stopped"}), &shared).await;
}

/// A chunk as a line of `subscribe_output`.
pub(crate) fn chunk_line(chunk: &OutputChunk) -> Value {
    let mut output = json!({"task": &*chunk.task, "attempt": chunk.attempt, "stderr": chunk.stderr});
    match std::str::from_utf8(&chunk.bytes) {
        Ok(text) => output["text"] = json!(text),
        Err(_) => output["hex"] = json!(hex(&chunk.bytes)),
    }
    json!({"output": output})
}

/// A `subscribe_output` line's chunk, `None` for any other line.
pub fn parse_chunk(line: &Value) -> Option<OutputChunk> {
    let output = line.get("output")?;
    let bytes: Vec<u8> = match (output["text"].as_str(), output["hex"].as_str()) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(hex)) => unhex(hex)?,
        (None, None) => return None,
    };
    Some(OutputChunk {
        task: Arc::from(output["task"].as_str()?),
        attempt: u32::try_from(output["attempt"].as_u64()?).ok()?,
        stderr: output["stderr"].as_bool().unwrap_or(false),
        bytes: Arc::from(bytes),
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_survive_the_line_both_as_text_and_as_hex() {
        for bytes in [b"hello\n".to_vec(), vec![0xe2, 0x82, b'\n', 0xff]] {
            let chunk = OutputChunk { task: Arc::from("t"), attempt: 2, stderr: true, bytes: Arc::from(bytes.clone()) };
            let back = parse_chunk(&chunk_line(&chunk)).expect("a chunk");
            assert_eq!((&*back.task, back.attempt, back.stderr, &*back.bytes), ("t", 2, true, &bytes[..]));
        }
        assert!(parse_chunk(&json!({"ok": true})).is_none());
        assert!(parse_chunk(&json!({"output": {"task": "t", "attempt": 1, "hex": "zz"}})).is_none());
    }
}
