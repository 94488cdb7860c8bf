//! A pseudo-terminal of the test's own, for driving the real TUI as an operator would.
//!
//! [`Terminal::spawn`] opens a pty, starts the command as the leader of a new session
//! with the pty as its controlling terminal (so the TUI reads its size from it and
//! gets SIGWINCH on [`Terminal::resize`]), and starts a reader thread that drains the
//! pty into a `vt100` screen, so the child never blocks on a full pty buffer. Tests
//! read the screen only through [`Terminal::wait_for`], which polls it against a
//! condition until a deadline: a single capture can land in the middle of a redraw.
//!
//! Everything the child starts (pitboss's guardian and workers use their own process
//! groups but stay in the session) is found by session id in `/proc`, so dropping a
//! `Terminal` ends the whole tree by pid and [`Terminal::wait_exit`] can check that a
//! clean exit left nothing behind.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Bytes a terminal sends for keys (xterm, normal cursor mode; crossterm reads both forms).
pub mod key {
    pub const ENTER: &str = "\r";
    /// Send it alone and wait for its effect before the next key: ESC followed at once
    /// by a character is read as Alt+character.
    pub const ESC: &str = "\x1b";
    pub const BACKSPACE: &str = "\x7f";
    pub const UP: &str = "\x1b[A";
    pub const DOWN: &str = "\x1b[B";
    pub const RIGHT: &str = "\x1b[C";
    pub const LEFT: &str = "\x1b[D";
}

/// A command running in a pseudo-terminal, its screen kept up to date by a reader thread.
pub struct Terminal {
    child: Child,
    /// Our side of the pty: keys are written to it, the reader thread reads a clone.
    master: File,
    parser: Arc<Mutex<vt100::Parser>>,
    stop: Arc<AtomicBool>,
    /// Set by the reader when the pty is closed on the other side: the screen is final.
    drained: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Terminal {
    /// Starts `cmd` in a new `cols`×`rows` pty with `TERM=xterm-256color`; its stdin,
    /// stdout and stderr are the pty.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> Terminal {
        // O_CLOEXEC on both sides, from the start: tests run in parallel threads, and a
        // process another test spawns must not inherit (and so hold open) this pty.
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("open a pty");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        set_size(&master, cols, rows);
        let slave_path = ptsname_r(&master).expect("ptsname");
        let slave: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&slave_path)
            .expect("open the pty's slave")
            .into();
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm-256color")
            // The size must come from the pty, as it does for an operator.
            .env_remove("COLUMNS")
            .env_remove("LINES");
        // SAFETY: setsid and ioctl are async-signal-safe; this runs after stdio is set
        // up, so fd 0 is the slave, which becomes the new session's controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the command in the pty");
        drop(cmd); // our copies of the slave: once the child's tree closes it, reads end

        let master = File::from(OwnedFd::from(master));
        let parser = Arc::new(Mutex::new(vt100::Parser::new(nz(rows), nz(cols), 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let drained = Arc::new(AtomicBool::new(false));
        let reader = {
            let (source, parser, stop, drained) =
                (master.try_clone().expect("dup"), parser.clone(), stop.clone(), drained.clone());
            std::thread::spawn(move || drain(source, &parser, &stop, &drained))
        };
        Terminal { child, master, parser, stop, drained, reader: Some(reader) }
    }

    /// The child's pid (the session's id too).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Types `bytes` (text, or the sequences in [`key`]).
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Types `text` as is.
    pub fn send_keys(&mut self, text: &str) {
        self.send(text.as_bytes());
    }

    pub fn enter(&mut self) {
        self.send_keys(key::ENTER);
    }

    pub fn esc(&mut self) {
        self.send_keys(key::ESC);
    }

    /// The screen as text, one line per row (trailing blanks trimmed).
    pub fn screen(&self) -> String {
        self.parser().screen().contents()
    }

    /// Polls the screen every 10 ms until `cond` holds and returns that screen; panics
    /// after `limit` (or once the pty is closed and the screen can no longer change)
    /// with `what` and the last screen.
    pub fn wait_for(&self, limit: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            // Read `drained` first: a screen taken after it was set is final.
            let final_screen = self.drained.load(Ordering::Acquire);
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            if final_screen || Instant::now() >= deadline {
                let why = if final_screen { "the terminal closed" } else { "timed out" };
                panic!("{why} waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resizes the pty (the kernel sends the child SIGWINCH) and the screen with it.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        // Parser first: whatever the child draws for the new size lands on a screen of that size.
        self.parser().screen_mut().set_size(nz(rows), nz(cols));
        set_size(&self.master, cols, rows);
    }

    /// Waits up to `limit` for the child to exit and returns its exit code (128+N for
    /// signal N); then checks that nothing it started is left in its session (the
    /// guardian, workers). Panics with the screen or the leftovers otherwise.
    pub fn wait_exit(&self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        // WNOWAIT: the exited child stays a zombie, so its pid (the session id we sweep
        // by) cannot be reused until Drop reaps it.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        let code = loop {
            match waitid(Id::Pid(Pid::from_raw(self.pid())), flags) {
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("waitid: {e}"),
            }
            assert!(Instant::now() < deadline, "the program did not exit; screen:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(10));
        };
        let ended = super::wait_for(limit, || session_members(self.pid()).is_empty());
        assert!(ended, "left behind after exit: {}", describe(&session_members(self.pid())));
        // What the program printed last may still be in the pty: once its session is
        // gone the reader reaches the end, and the screen is final (a test reading it
        // right after the exit saw an empty screen, 1 in ~100 runs under load).
        let read_all = super::wait_for(limit, || self.drained.load(Ordering::Acquire));
        assert!(read_all, "the pty was not read to its end after the exit; screen:\n{}", self.screen());
        code
    }

    fn parser(&self) -> MutexGuard<'_, vt100::Parser> {
        // A panic elsewhere while holding the lock leaves the screen usable.
        self.parser.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Terminal {
    /// Ends the child and everything in its session, by pid. The child goes first so
    /// pitboss's guardian sees its manager die and sweeps the workers (even any that
    /// left the session), as in a real crash; whatever remains is then SIGKILLed.
    fn drop(&mut self) {
        let leader = self.pid();
        let _ = self.child.kill();
        if !super::wait_for(Duration::from_secs(5), || session_members(leader).is_empty()) {
            for pid in session_members(leader) {
                super::kill_pid(pid);
            }
            let ended = super::wait_for(Duration::from_secs(5), || session_members(leader).is_empty());
            if !ended && !std::thread::panicking() {
                panic!("could not end: {}", describe(&session_members(leader)));
            }
        }
        // Reaped last: until now its pid named the session.
        let _ = self.child.wait();
        self.stop.store(true, Ordering::Release);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: feeds everything the child writes to the screen until the pty
/// closes (read fails with EIO once no process holds the slave) or `stop` is set.
fn drain(mut master: File, parser: &Mutex<vt100::Parser>, stop: &AtomicBool, drained: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Acquire) {
        // A bounded wait, so `stop` is seen even if some process keeps the pty open.
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => parser.lock().unwrap_or_else(|p| p.into_inner()).process(&buf[..n]),
        }
    }
    drained.store(true, Ordering::Release);
}

/// Live (not zombie) processes whose session is `leader`'s.
pub fn session_members(leader: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            // After the command name: state, ppid, pgrp, session.
            let fields: Vec<&str> =
                stat.rfind(')').map(|i| stat[i + 1..].split_whitespace().collect()).unwrap_or_default();
            fields.first() != Some(&"Z") && fields.get(3).and_then(|s| s.parse().ok()) == Some(leader)
        })
        .collect()
}

/// "pid (command line)" for each pid, for failure messages.
fn describe(pids: &[i32]) -> String {
    let cmdline = |pid: i32| {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_string()
    };
    pids.iter().map(|&pid| format!("{pid} ({})", cmdline(pid))).collect::<Vec<_>>().join(", ")
}

fn set_size(fd: &impl AsRawFd, cols: u16, rows: u16) {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ as _, &size) };
    assert!(rc == 0, "set the pty's size: {}", std::io::Error::last_os_error());
}

fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a terminal size is at least 1×1")
}
