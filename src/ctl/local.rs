//! The local transport of the control socket, by platform: a Unix socket on Unix. On
//! Windows it is not built yet (a named pipe would take its place, DESIGN §15): these
//! stand-in types have no values, so everything that would use a connection compiles
//! and `connect` says plainly that there is none.

// The blocking client stream lives in io::platform, so that `cli` (below `ctl`) uses it too.
pub use crate::io::platform::BlockingStream;
#[cfg(unix)]
pub use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
#[cfg(unix)]
pub use tokio::net::{UnixListener as Listener, UnixStream as Stream};

/// The tokio listener for a bound socket.
#[cfg(unix)]
pub fn listener_from_std(listener: std::os::unix::net::UnixListener) -> std::io::Result<Listener> {
    Listener::from_std(listener)
}

/// `Err` with the refusal when the peer is not this manager's user.
#[cfg(unix)]
pub fn check_peer(stream: &Stream) -> Result<(), String> {
    let own_uid = nix::unistd::getuid().as_raw();
    let peer = stream.peer_cred().map(|c| c.uid());
    if peer.as_ref().ok() != Some(&own_uid) {
        let who = peer.map_or_else(|e| format!("unknown ({e})"), |uid| uid.to_string());
        return Err(format!("refused: uid {who} is not the manager's uid {own_uid}"));
    }
    Ok(())
}

#[cfg(windows)]
pub use windows::{check_peer, listener_from_std, Listener, OwnedReadHalf, OwnedWriteHalf, Stream};

#[cfg(windows)]
mod windows {
    use std::io;
    use std::path::Path;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// What every Windows connect says.
    pub fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "the control socket is not available on Windows yet")
    }

    /// A control connection: none exist on Windows yet.
    pub enum Stream {}
    /// Its read half.
    pub enum OwnedReadHalf {}
    /// Its write half.
    pub enum OwnedWriteHalf {}
    /// A listener: none exist on Windows yet.
    pub enum Listener {}

    // The service ends with `drop(listener)` on every system (on Unix that closes the
    // socket); a Drop here keeps that line free of a Windows `cfg`.
    impl Drop for Listener {
        fn drop(&mut self) {
            match *self {}
        }
    }

    pub fn check_peer(stream: &Stream) -> Result<(), String> {
        match *stream {}
    }

    pub fn listener_from_std(listener: Listener) -> io::Result<Listener> {
        Ok(listener)
    }

    impl Stream {
        pub async fn connect(_path: impl AsRef<Path>) -> io::Result<Stream> {
            Err(unsupported())
        }
        pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
            match self {}
        }
    }

    impl Listener {
        pub async fn accept(&self) -> io::Result<(Stream, ())> {
            match *self {}
        }
    }

    impl AsyncRead for OwnedReadHalf {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
    }

    impl AsyncWrite for OwnedWriteHalf {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            match *self {}
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
    }
}
