//! The control socket (DESIGN §12): each live manager serves `STATE_DIR/ctl.sock` so
//! a run can be operated and watched from another terminal (`pitboss ctl`, `submit`,
//! `events --follow`). JSON lines: one request, one reply; `subscribe` streams records.
//!
//! ```text
//! client ─JSON line─▶ connection ─core::command─▶ engine.send
//!                          │◀── the engine's own RunState, read between its batches
//!                          └─ subscribe: log file, then live batches (seq-deduplicated)
//! ```
//!
//! With `--listen ADDR` the same connections are also served over WebSocket (ws.rs),
//! behind a bearer token (token.rs).

pub mod attach;
pub mod client;
mod connection;
pub mod local;
pub mod output;
pub mod queries;
mod recent;
#[cfg_attr(windows, path = "socket_windows.rs")]
mod socket;
mod submit;
mod subscribe;
pub mod token;
mod transport;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::core::RunState;
use crate::engine::EngineHandle;
use crate::launch::{Service, ServiceContext, ServiceFuture};

/// The longest request line (bytes, without its newline).
pub const MAX_LINE: usize = 1 << 20;

/// How long a subscriber may leave records unread before it is dropped; the
/// environment variable `PITBOSS_CTL_STALL_MS` changes it (tests).
const STALL: Duration = Duration::from_secs(30);

/// Batches a subscriber may have waiting before its live queue is dropped and it is
/// refilled from the log file instead; `PITBOSS_CTL_QUEUE` changes it (tests).
const QUEUE_BATCHES: usize = 256;

/// Who the engine records as the author of commands that came over the socket.
pub const OPERATOR: &str = "operator (ctl)";

/// What every connection shares.
pub(crate) struct Shared {
    engine: EngineHandle,
    dir: PathBuf,
    /// True once the run has stopped (the engine's records ended).
    ended: watch::Receiver<bool>,
    /// Running attempts' recent output, for `subscribe_output`.
    recent: recent::Recent,
    stall: Duration,
    queue_batches: usize,
}

impl Shared {
    /// Runs `f` on the engine's state (and the seq of its next record) between two of
    /// its batches: queries and refusals see the run as the engine has it, with no
    /// second fold in the manager. Short work only; an error once the run stopped.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&RunState, Option<u64>) -> R + Send + 'static,
    ) -> Result<R, String> {
        self.engine.read(f).await.ok_or_else(|| "the run has stopped".to_string())
    }
}

/// The control socket as a launcher service.
pub fn service() -> Service {
    service_with(None)
}

/// The control socket, and the WebSocket listener too when one is given.
pub fn service_with(listen: Option<ws::Listen>) -> Service {
    Box::new(move |context| start(context, listen))
}

fn start(context: ServiceContext, listen: Option<ws::Listen>) -> Result<ServiceFuture, String> {
    let ServiceContext { engine, dir, run_id, mut records } = context;
    let socket::Bound { listener, path, pointer } = socket::bind_for(&dir, &run_id)?;
    let files = socket::Files { path, pointer };
    let listener = match local::listener_from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            files.remove();
            return Err(format!("control socket: {e}"));
        }
    };
    let setting = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let stall = setting("PITBOSS_CTL_STALL_MS").map_or(STALL, Duration::from_millis);
    let queue_batches = setting("PITBOSS_CTL_QUEUE").map_or(QUEUE_BATCHES, |n| n.max(1) as usize);
    let (ended_tx, ended) = watch::channel(false);
    // Subscribed before the engine's first step: the service sees every chunk.
    let mut output = engine.subscribe_output();
    let shared = Arc::new(Shared { engine, dir, ended, stall, queue_batches, recent: recent::Recent::new() });
    let websocket = match listen {
        None => None,
        Some(listen) => match open_websocket(listen, &shared.dir) {
            Ok(open) => Some(open),
            Err(e) => {
                files.remove();
                return Err(e);
            }
        },
    };
    Ok(Box::pin(async move {
        // The records say when the run stops and which attempts ended (queries read
        // the engine's state); the output is kept for `subscribe_output`.
        let mut connections = tokio::task::JoinSet::new();
        let mut output_open = true;
        loop {
            tokio::select! {
                batch = records.recv() => match batch {
                    Some(batch) => shared.recent.after(&batch),
                    None => break,
                },
                chunk = output.recv(), if output_open => match chunk {
                    Ok(chunk) => shared.recent.record(chunk),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("control socket: {n} output chunks missed");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => output_open = false,
                },
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection::serve(stream, shared.clone()));
                    }
                    Err(e) => tracing::warn!("control socket: accept: {e}"),
                },
                accepted = accept_tcp(&websocket) => match accepted {
                    Ok((stream, _)) => {
                        let token = websocket.as_ref().map(|w| w.token.clone()).unwrap_or_default();
                        connections.spawn(ws::serve(stream, token, shared.clone()));
                    }
                    Err(e) => tracing::warn!("control websocket: accept: {e}"),
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        // The run stopped: no new connection; subscribers send their last line.
        drop(listener);
        files.remove();
        if let Some(websocket) = websocket {
            // The token dies with its listener.
            let _ = std::fs::remove_file(&websocket.token_file);
        }
        let _ = ended_tx.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), drained).await.is_err() {
            connections.abort_all();
        }
    }))
}

/// The WebSocket listener and its token.
struct Websocket {
    listener: tokio::net::TcpListener,
    token: Arc<str>,
    token_file: PathBuf,
}

/// Starts serving `listen`: a new token, stored in the run folder and shown once.
fn open_websocket(listen: ws::Listen, dir: &std::path::Path) -> Result<Websocket, String> {
    let listener =
        tokio::net::TcpListener::from_std(listen.listener).map_err(|e| format!("--listen {}: {e}", listen.addr))?;
    let (token, token_file) = token::make(dir)?;
    // Printed once, here; afterwards only the 0600 file holds it.
    eprintln!(
        "pitboss: control over WebSocket at ws://{} — bearer token (also in {}): {token}",
        listen.addr,
        token_file.display()
    );
    Ok(Websocket { listener, token: Arc::from(token), token_file })
}

/// The next WebSocket connection, or never when there is no listener.
async fn accept_tcp(websocket: &Option<Websocket>) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match websocket {
        Some(websocket) => websocket.listener.accept().await,
        None => std::future::pending().await,
    }
}
