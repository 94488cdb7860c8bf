//! The local transport of the control socket, by platform: a Unix socket on Unix, a
//! named pipe on Windows (pipe_windows.rs). Both give the same names (a stream with
//! `connect` and `into_split`, its halves, a listener with `accept`, `check_peer`), so
//! the transport, connection and client code has no `cfg` of its own.

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
#[path = "pipe_windows.rs"]
mod pipe;
#[cfg(windows)]
pub use pipe::{check_peer, listener_from_std, Listener, OwnedReadHalf, OwnedWriteHalf, Stream};
