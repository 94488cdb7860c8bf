//! Windows: the control socket is a named pipe (DESIGN §12, §15), with the Unix
//! socket's JSON lines and the same check of who connects (the client's user, as the
//! socket's peer uid). The name, `\\.\pipe\pitboss-PID-RANDOM`, is new for each manager
//! and written to the run folder's pointer file (socket_windows.rs), where clients
//! read it. The first instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so no
//! other process can have made that name first and be answering in the manager's
//! place; remote clients are rejected (`PIPE_REJECT_REMOTE_CLIENTS`).
//!
//! A pipe instance serves one client: the listener keeps one instance waiting and
//! makes the next as soon as a client takes it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use tokio::sync::Mutex;

use crate::io::platform::{check_pipe_client, pipe_busy, PIPE_BUSY_WAIT};

/// A control connection: the manager's end or a client's.
pub enum Stream {
    /// Accepted by the manager.
    Server(NamedPipeServer),
    /// Opened by a client (`attach DIR`, `mcp DIR`).
    Client(NamedPipeClient),
}

/// A connection's read half.
pub type OwnedReadHalf = tokio::io::ReadHalf<Stream>;
/// A connection's write half.
pub type OwnedWriteHalf = tokio::io::WriteHalf<Stream>;

impl Stream {
    /// Opens the pipe named `path`, waiting a moment if every instance is taken.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Stream> {
        let name = path.as_ref().as_os_str();
        let deadline = Instant::now() + PIPE_BUSY_WAIT;
        loop {
            match ClientOptions::new().open(name) {
                // The listener makes the next instance right after a connect.
                Err(e) if pipe_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                opened => return opened.map(Stream::Client),
            }
        }
    }

    /// The two halves, usable from different tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        tokio::io::split(self)
    }
}

/// `Err` with the refusal when the client runs as another user than the manager.
pub fn check_peer(stream: &Stream) -> Result<(), String> {
    match stream {
        Stream::Server(pipe) => check_pipe_client(pipe.as_raw_handle()),
        // Only the manager checks its peers.
        Stream::Client(_) => Ok(()),
    }
}

/// The manager's listener: the instance waiting for the next client.
pub struct Listener {
    name: OsString,
    /// `None` once a new instance could not be made: no more connections.
    waiting: Mutex<Option<NamedPipeServer>>,
}

/// How every instance is made (the first one also claims the name).
fn server_options(first: bool) -> ServerOptions {
    let mut options = ServerOptions::new();
    options.first_pipe_instance(first).reject_remote_clients(true);
    options
}

impl Listener {
    /// Creates the pipe `name`; fails if the name exists already (whoever made it).
    pub fn create(name: &OsStr) -> io::Result<Listener> {
        let first = server_options(true).create(name)?;
        Ok(Listener { name: name.to_os_string(), waiting: Mutex::new(Some(first)) })
    }

    /// The next client (cancel-safe: tokio's `connect` is). After a failed connect
    /// the instance is replaced; once no instance can be made, this never returns.
    pub async fn accept(&self) -> io::Result<(Stream, ())> {
        let mut waiting = self.waiting.lock().await;
        let Some(server) = waiting.as_ref() else {
            return std::future::pending().await;
        };
        let connected = server.connect().await;
        let next = server_options(false).create(&self.name);
        let taken = match next {
            Ok(next) => waiting.replace(next),
            Err(e) => {
                // Told once; the run goes on without new control connections.
                *waiting = None;
                return Err(io::Error::new(e.kind(), format!("no new pipe instance, no more connections: {e}")));
            }
        };
        connected?;
        let taken = taken.expect("an instance was waiting");
        Ok((Stream::Server(taken), ()))
    }
}

/// The listener is made ready by `socket_windows.rs` already.
pub fn listener_from_std(listener: Listener) -> io::Result<Listener> {
    Ok(listener)
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_read(cx, buf),
            Stream::Client(pipe) => Pin::new(pipe).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_write(cx, buf),
            Stream::Client(pipe) => Pin::new(pipe).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_flush(cx),
            Stream::Client(pipe) => Pin::new(pipe).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_shutdown(cx),
            Stream::Client(pipe) => Pin::new(pipe).poll_shutdown(cx),
        }
    }
}
