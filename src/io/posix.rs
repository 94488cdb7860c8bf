//! The few unix calls whose form differs between Linux and macOS, each with one arm
//! per system, so that the modules using them carry no `cfg`.
//!
//! - A socket is made close-on-exec and non-blocking by `socket`'s own flags on Linux
//!   (atomic: no spawn can inherit it in between); macOS has no such flags, so
//!   `fcntl` sets both right after. The manager spawns workers from other threads, and
//!   the standard library's spawn closes no descriptors: a worker started in that
//!   instant inherits the socket, which stays listening in it but is never served.
//! - `sun_path` holds 108 bytes on Linux and 104 on macOS.
//! - The host's name: `gethostname`, the same call on both (macOS has no
//!   `/proc/sys/kernel/hostname`).

use std::os::fd::OwnedFd;

use nix::sys::socket::{socket, AddressFamily, SockType};

/// The longest socket path `sun_path` holds, without its closing NUL.
#[cfg(target_os = "linux")]
pub const SUN_PATH_MAX: usize = 107;
/// The longest socket path `sun_path` holds, without its closing NUL.
#[cfg(not(target_os = "linux"))]
pub const SUN_PATH_MAX: usize = 103;

/// A unix stream socket, close-on-exec and non-blocking.
#[cfg(target_os = "linux")]
pub fn unix_stream_socket() -> nix::Result<OwnedFd> {
    use nix::sys::socket::SockFlag;
    socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
}

/// A unix stream socket, close-on-exec and non-blocking.
#[cfg(not(target_os = "linux"))]
pub fn unix_stream_socket() -> nix::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    let fd = socket(AddressFamily::Unix, SockType::Stream, nix::sys::socket::SockFlag::empty(), None)?;
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(fd)
}

/// This host's name (as `hostname` prints it), or `None` if the system gives none.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer holds `buf.len()` bytes; gethostname writes at most that.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    // A name that fills the buffer may lack its NUL: then it is the whole buffer.
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_close_on_exec_and_non_blocking() {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        let fd = unix_stream_socket().unwrap();
        let fd_flags = FdFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFD).unwrap());
        let status = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).unwrap());
        assert!(fd_flags.contains(FdFlag::FD_CLOEXEC));
        assert!(status.contains(OFlag::O_NONBLOCK));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_host_name_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name().as_deref(), Some(kernel.trim()));
    }
}
