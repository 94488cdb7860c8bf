//! What a connection needs of its transport, so the Unix socket and the WebSocket
//! listener share one request loop, one `subscribe` and one `subscribe_output`: a
//! message in (a JSON line, or a WebSocket text message), a message out.

use std::future::Future;
use std::io;

use super::local::{OwnedReadHalf, OwnedWriteHalf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a bounded read found.
pub(crate) enum Line {
    /// A complete message (or the last bytes before the end of the stream).
    Text(Vec<u8>),
    /// A message over the limit; its bytes so far were dropped.
    TooLong,
}

/// One client's messages, both ways.
pub(crate) trait Transport: Send + 'static {
    /// The next message of at most `max` bytes; `None` when the client closed.
    /// Cancel-safe enough for `closed`: a cancelled read loses at most a partial
    /// message, which a subscriber's reader ignores anyway.
    fn receive(&mut self, max: usize) -> impl Future<Output = io::Result<Option<Line>>> + Send;

    /// Sends one message (a JSON document, without a newline).
    fn send_text(&mut self, text: String) -> impl Future<Output = io::Result<()>> + Send;

    /// Returns once the client closed its side (what it sends meanwhile is ignored).
    fn closed(&mut self) -> impl Future<Output = ()> + Send {
        async move { while let Ok(Some(_)) = self.receive(super::MAX_LINE).await {} }
    }
}

/// The control socket: JSON lines.
pub(crate) struct UnixLines {
    pub reader: BufReader<OwnedReadHalf>,
    pub write: OwnedWriteHalf,
}

impl Transport for UnixLines {
    async fn receive(&mut self, max: usize) -> io::Result<Option<Line>> {
        read_line(&mut self.reader, max).await
    }

    async fn send_text(&mut self, text: String) -> io::Result<()> {
        let mut line = text.into_bytes();
        line.push(b'\n');
        self.write.write_all(&line).await
    }
}

/// Reads one line of at most `max` bytes; `None` at the end of the stream.
async fn read_line(reader: &mut BufReader<OwnedReadHalf>, max: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some(Line::Text(line)));
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end, true),
            None => (available.len(), false),
        };
        if line.len() + take > max {
            let n = if done { take + 1 } else { take };
            reader.consume(n);
            // The rest of an oversized line is never read: the caller closes.
            return Ok(Some(Line::TooLong));
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(Line::Text(line)));
        }
    }
}
