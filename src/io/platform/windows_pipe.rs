//! Windows: the parts of the control socket's named pipe (DESIGN §12, §15) that `cli`
//! needs too, so they live below it: the blocking client (`ctl`, `submit`,
//! `events --follow`) and the check that a connected client runs as this user (the
//! uid check of the Unix socket).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::RawHandle;
use std::path::Path;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_PIPE_BUSY, HANDLE};
use windows_sys::Win32::Security::{GetLengthSid, GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, WaitNamedPipeW};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// How long a client waits for a free instance of the pipe. The manager makes the next
/// instance as soon as one is taken, so a client finds none only for a moment.
pub const PIPE_BUSY_WAIT: Duration = Duration::from_secs(5);

/// Whether an open failed only because every instance of the pipe is taken right now.
pub fn pipe_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32)
}

/// A blocking client connection to the control pipe (`ctl`, `submit`).
pub struct BlockingStream(File);

impl BlockingStream {
    /// Opens the pipe named `path` (`\\.\pipe\…`, from the run folder's pointer file).
    /// The manager may only identify the client, never act as it
    /// (`SECURITY_IDENTIFICATION`).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<BlockingStream> {
        let path = path.as_ref();
        let deadline = Instant::now() + PIPE_BUSY_WAIT;
        loop {
            let opened =
                OpenOptions::new().read(true).write(true).security_qos_flags(SECURITY_IDENTIFICATION).open(path);
            match opened {
                Err(e) if pipe_busy(&e) && Instant::now() < deadline => {
                    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
                    // Sleeps until an instance is free, at most 100 ms: no spinning.
                    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
                    unsafe { WaitNamedPipeW(wide.as_ptr(), 100) };
                }
                opened => return opened.map(BlockingStream),
            }
        }
    }

    /// A synchronous pipe handle has no read timeout: a reply is awaited until the
    /// manager answers or closes the pipe (it does when its run stops).
    pub fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Read for &BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Write for &BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&self.0).flush()
    }
}

/// `Err` with the refusal unless the client connected to the server end `pipe` runs as
/// the same user as this process (compared by the SIDs of their tokens).
pub fn check_pipe_client(pipe: RawHandle) -> Result<(), String> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is the open server end of a named pipe; `pid` is written once.
    if unsafe { GetNamedPipeClientProcessId(pipe as HANDLE, &mut pid) } == 0 {
        return Err(format!("refused: the client's process is unknown ({})", io::Error::last_os_error()));
    }
    // SAFETY: the current-process pseudo handle needs no closing.
    let own = user_sid(unsafe { GetCurrentProcess() })
        .map_err(|e| format!("refused: this process's user is unknown ({e})"))?;
    // SAFETY: a plain query; the handle is checked, then closed below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(format!("refused: process {pid} cannot be looked at ({})", io::Error::last_os_error()));
    }
    let theirs = user_sid(process);
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(process) };
    match theirs {
        Ok(sid) if sid == own => Ok(()),
        Ok(_) => Err(format!("refused: process {pid} runs as another user than the manager")),
        Err(e) => Err(format!("refused: the user of process {pid} is unknown ({e})")),
    }
}

/// The bytes of the user SID in `process`'s token.
fn user_sid(process: HANDLE) -> io::Result<Vec<u8>> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is a valid process handle; `token` is written on success.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // A TOKEN_USER and the SID it points at (at most 68 bytes) fit; u64s align it.
    let mut buf = [0u64; 64];
    let mut len = 0u32;
    // SAFETY: `buf` is writable for its whole size, which is what is passed.
    let ok = unsafe {
        GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf) as u32, &mut len)
    };
    let failed = io::Error::last_os_error();
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(token) };
    if ok == 0 {
        return Err(failed);
    }
    // SAFETY: on success `buf` starts with a TOKEN_USER whose SID lies inside `buf`.
    unsafe {
        let user = &*(buf.as_ptr() as *const TOKEN_USER);
        let sid = user.User.Sid;
        Ok(std::slice::from_raw_parts(sid as *const u8, GetLengthSid(sid) as usize).to_vec())
    }
}
