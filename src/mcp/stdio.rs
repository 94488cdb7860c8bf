//! The lines between the MCP client and the SDK. rmcp drops a line that is not JSON
//! without a word (rust-sdk#938: its authors fear an error storm with a peer that
//! echoes); JSON-RPC 2.0 says such a line gets a parse error (-32700, id null), and a
//! client that wrote garbage by mistake learns more from one. So stdin is read here:
//! a line that is JSON goes on to the SDK unchanged, one that is not is answered here,
//! and the SDK's replies and these answers go out through one writer, a whole line at
//! a time, so they never interleave. Nothing else ever writes to stdout.
//!
//! A line longer than [`MAX_LINE`] is refused the same way, without being buffered
//! beyond that bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// The longest request line. A submit's TOML travels in one line; the control socket
/// refuses a request over 1 MiB itself, with its own message.
pub const MAX_LINE: usize = 4 << 20;

/// The SDK's two ends: what it reads (the client's JSON lines) and where it writes.
pub struct SdkEnds {
    /// The SDK reads requests here.
    pub read: DuplexStream,
    /// The SDK writes replies here.
    pub write: DuplexStream,
}

/// Starts pumping `input` into the SDK and the SDK's lines (and parse errors) to
/// `output`; returns the SDK's ends and a task that ends when both directions are done
/// (the client closed stdin and the SDK closed its writer), or when `output` fails.
pub fn pump<R, W>(input: R, output: W) -> (SdkEnds, tokio::task::JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_sdk, sdk_read) = tokio::io::duplex(64 * 1024);
    let (sdk_write, from_sdk) = tokio::io::duplex(64 * 1024);
    // Lines for stdout, from both directions; bounded, so a client that stops reading
    // holds the SDK back rather than filling memory.
    let (lines_tx, lines_rx) = mpsc::channel::<Vec<u8>>(64);
    let inbound = tokio::spawn(inbound(BufReader::new(input), to_sdk, lines_tx.clone()));
    let outbound = tokio::spawn(outbound(BufReader::new(from_sdk), lines_tx));
    let writer = tokio::spawn(async move {
        write_lines(lines_rx, output).await;
        // stdout is gone: nothing more can be answered.
        inbound.abort();
        let _ = outbound.await;
    });
    (SdkEnds { read: sdk_read, write: sdk_write }, writer)
}

/// Client → SDK: JSON lines pass, others get a parse error.
async fn inbound<R: AsyncBufRead + Unpin>(mut input: R, mut to_sdk: DuplexStream, out: mpsc::Sender<Vec<u8>>) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let too_long = match read_bounded_line(&mut input, &mut line).await {
            Ok(Some(too_long)) => too_long,
            // EOF or a broken stdin: the SDK sees its input end and stops.
            Ok(None) | Err(_) => return,
        };
        let text = trim_line(&line);
        if text.iter().all(u8::is_ascii_whitespace) && !too_long {
            continue;
        }
        let problem = if too_long {
            Some(format!("a line over {MAX_LINE} bytes; refused"))
        } else {
            match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
                Ok(_) => None,
                Err(e) => Some(format!("not JSON: {e}")),
            }
        };
        match problem {
            Some(why) => {
                let error = serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": {"code": -32700, "message": format!("Parse error: {why}")},
                });
                if out.send(error.to_string().into_bytes()).await.is_err() {
                    return;
                }
            }
            None => {
                let mut forward = text.to_vec();
                forward.push(b'\n');
                if to_sdk.write_all(&forward).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// SDK → client: whole lines.
async fn outbound<R: AsyncBufRead + Unpin>(from_sdk: R, out: mpsc::Sender<Vec<u8>>) {
    let mut lines = from_sdk.split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        if out.send(line).await.is_err() {
            return;
        }
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut lines: mpsc::Receiver<Vec<u8>>, mut output: W) {
    while let Some(mut line) = lines.recv().await {
        line.push(b'\n');
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

/// Reads one line into `line` (without its newline), keeping at most [`MAX_LINE`]
/// bytes of it: `Some(true)` when it was longer (the rest was read and dropped),
/// `Some(false)` for a whole line, `None` at the end of input.
async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if any { Some(too_long) } else { None });
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(at) => (&buf[..at], Some(at + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() > MAX_LINE {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(buf.len());
        input.consume(used);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
