//! Starting a program the way glibc's `posix_spawnp` does (a `clone` with
//! `CLONE_VM | CLONE_VFORK`: the child runs on the manager's memory until its exec,
//! while the calling thread waits), without what that costs per call: a fresh stack
//! mapped and unmapped around every clone, attributes and file actions built and
//! freed (with a `getrlimit` per `dup2` action), and a `pidfd_open` after. Here the
//! stack is kept for the thread and the pidfd comes from the clone itself
//! (`CLONE_PIDFD`). Together that was about a tenth of the manager's time in
//! benchmark P1.
//!
//! The child does what `posix_spawnp` with the direct start's attributes did: the
//! manager's signal handlers reset to the default (and SIGPIPE, which Rust ignores),
//! its own process group, stdin/stdout/stderr in place, an empty signal mask, then
//! `execve` along the manager's PATH as `execvp` searches it. Everything it uses is
//! prepared by the parent ([`Plan`]): sharing the manager's memory, the child must
//! not allocate, lock or unwind, only make system calls.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use libc::{c_char, c_int, c_void};

/// The child's stack. Its own code, the C library's wrappers and, for a first call
/// of one, the dynamic linker's lazy binding (which saves the vector registers) use
/// a few KiB of it.
const STACK_BYTES: usize = 128 << 10;

thread_local! {
    /// One stack per thread that starts processes: a clone returns only once the
    /// child has exec'd or exited, so the stack is free again by then.
    static STACK: RefCell<Vec<u8>> = RefCell::new(vec![0; STACK_BYTES]);
    /// The files to try for a program name, by name (the manager's PATH is read once
    /// per name: the direct start is only used while the child's PATH is the
    /// manager's, and the manager never changes its own).
    static CANDIDATES: RefCell<HashMap<String, Rc<Candidates>>> = RefCell::new(HashMap::new());
}

/// The paths `execve` is tried on for one program, in order, as C strings with
/// their pointer list (NULL-terminated).
pub struct Candidates {
    /// What `ptrs` points at (read only by tests: it is here to be kept alive).
    #[cfg_attr(not(test), allow(dead_code))]
    paths: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Candidates {
    /// `program` itself when it names a path (holds a `/`), else `program` in each
    /// directory of `path_var` (an empty entry is the working directory, as for
    /// `execvp`), or of `/bin:/usr/bin` without a PATH.
    pub fn new(program: &CStr, path_var: Option<&[u8]>) -> Candidates {
        let name = program.to_bytes();
        let paths: Vec<CString> = if name.contains(&b'/') {
            vec![program.to_owned()]
        } else {
            path_var
                .unwrap_or(b"/bin:/usr/bin")
                .split(|&b| b == b':')
                .filter_map(|dir| {
                    let mut path = if dir.is_empty() { b".".to_vec() } else { dir.to_vec() };
                    path.push(b'/');
                    path.extend_from_slice(name);
                    CString::new(path).ok()
                })
                .collect()
        };
        let mut ptrs: Vec<*const c_char> = paths.iter().map(|p| p.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Candidates { paths, ptrs }
    }

    /// For `program` on the manager's PATH, built at its first start on this thread.
    pub fn on_manager_path(program: &CStr) -> Rc<Candidates> {
        // Looked up without a copy of the name: this runs for every spawn.
        let key = String::from_utf8_lossy(program.to_bytes());
        CANDIDATES.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(found) = cache.get(key.as_ref()) {
                return found.clone();
            }
            let path = std::env::var_os("PATH");
            let built = Rc::new(Candidates::new(program, path.as_deref().map(|p| p.as_bytes())));
            // A workflow names a handful of programs; a bound all the same.
            if cache.len() >= 256 {
                cache.clear();
            }
            cache.insert(key.into_owned(), built.clone());
            built
        })
    }

    #[cfg(test)]
    pub fn paths(&self) -> Vec<&CStr> {
        self.paths.iter().map(|p| p.as_c_str()).collect()
    }
}

/// Everything the child needs, prepared by the parent and alive until the clone
/// returns.
pub struct Plan<'a> {
    pub candidates: &'a Candidates,
    /// NULL-terminated.
    pub argv: &'a [*mut c_char],
    /// NULL-terminated.
    pub envp: &'a [*mut c_char],
    /// The read end of the stdin pipe, or `None` for /dev/null.
    pub stdin: Option<RawFd>,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// What the child reads and writes: raw pointers only.
#[repr(C)]
struct Shared {
    candidates: *const *const c_char,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// Set by the child when it gives up (then it exits with 127).
    errno: c_int,
}

/// A started process: its pid and its pidfd (close-on-exec, readable once it exits).
pub struct Started {
    pub pid: u32,
    pub pidfd: OwnedFd,
}

/// Starts the plan's program. The error is the one the child met (`execve`'s for
/// a program that is missing, not executable or not a program) or the clone's.
pub fn start(plan: &Plan) -> io::Result<Started> {
    assert!(plan.argv.last().is_some_and(|p| p.is_null()) && plan.envp.last().is_some_and(|p| p.is_null()));
    let mut shared = Shared {
        candidates: plan.candidates.ptrs.as_ptr(),
        argv: plan.argv.as_ptr(),
        envp: plan.envp.as_ptr(),
        stdin: plan.stdin.unwrap_or(-1),
        stdout: plan.stdout,
        stderr: plan.stderr,
        errno: 0,
    };
    let mut pidfd: c_int = -1;
    let pid = STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        // The stack grows down from its 16-byte aligned top.
        let end = stack.as_mut_ptr() as usize + stack.len();
        let top = (end & !15) as *mut c_void;
        // SAFETY: all signals are blocked around the clone so that no handler of the
        // manager runs on the child, which shares our memory, before it has reset
        // them; the mask is restored right after. `shared`, the pointers in it and
        // the stack outlive the child's use of them: with CLONE_VFORK the clone
        // returns only after the child's exec or exit.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
            let pid = libc::clone(child, top, flags, (&mut shared as *mut Shared).cast(), &mut pidfd as *mut c_int);
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                Err(clone_error)
            } else {
                Ok(pid)
            }
        }
    })?;
    // SAFETY: CLONE_PIDFD stored a fresh descriptor that nobody else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // Read after the clone returned: the child is gone from our memory by now.
    let errno = unsafe { std::ptr::read_volatile(&shared.errno) };
    if errno != 0 {
        // It has exited (127): reaped here, nobody else knows it.
        let mut status = 0;
        // SAFETY: plain syscall on our own child.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(Started { pid: pid as u32, pidfd })
}

/// Sets `sig` (one of the C library's own, which its `sigaction` refuses) to be
/// ignored, with the kernel's call: its handler must not run on the child, and
/// glibc's posix_spawn leaves them ignored (the worker inherits that, as it does
/// from std's start).
///
/// # Safety
/// Only in the child.
unsafe fn ignore_internal(sig: c_int) {
    // The kernel's `struct sigaction` on x86-64 and arm64 (asm-generic with a
    // restorer): handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let ignore = KernelSigaction { handler: libc::SIG_IGN, flags: 0, restorer: 0, mask: 0 };
    libc::syscall(
        libc::SYS_rt_sigaction,
        sig,
        &ignore as *const KernelSigaction,
        std::ptr::null_mut::<c_void>(),
        8usize,
    );
}

/// The child's end when it cannot go on: `errno` for the parent, exit 127.
///
/// # Safety
/// Only in the child, with the parent's `Shared`.
unsafe fn fail(shared: &mut Shared) -> ! {
    shared.errno = *libc::__errno_location();
    libc::_exit(127)
}

/// The child, between the clone and the exec: system calls only (see the module
/// notes). Any failure is left in `errno` for the parent, then `_exit(127)`.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Shared`, alive while the parent waits; every
    // call below is a plain system call wrapper on values prepared by the parent.
    unsafe {
        let shared = &mut *(arg as *mut Shared);
        // The manager's handlers would run here, on its memory: back to the default
        // before anything is unblocked. Ignored signals stay ignored (as exec keeps
        // them), except SIGPIPE, which only Rust's runtime ignores.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut now: libc::sigaction = std::mem::zeroed();
            // The C library refuses its own internal signals (EINVAL): ignored
            // instead, as its posix_spawn does.
            if libc::sigaction(sig, std::ptr::null(), &mut now) != 0 {
                ignore_internal(sig);
                continue;
            }
            if sig == libc::SIGPIPE || (now.sa_sigaction != libc::SIG_DFL && now.sa_sigaction != libc::SIG_IGN) {
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(shared);
        }
        if shared.stdin >= 0 {
            if libc::dup2(shared.stdin, 0) < 0 {
                fail(shared);
            }
        } else {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if null < 0 {
                fail(shared);
            }
            if null != 0 {
                if libc::dup2(null, 0) < 0 {
                    fail(shared);
                }
                libc::close(null);
            }
        }
        // The pipes' ends are above 2 (the parent made sure), so each dup2 makes a
        // new descriptor without close-on-exec.
        if libc::dup2(shared.stdout, 1) < 0 || libc::dup2(shared.stderr, 2) < 0 {
            fail(shared);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // As execvp: on to the next directory when the file is not there; a file
        // found but not executable is said (EACCES) if nothing later runs; any other
        // error (not a program, too long, ...) stops the search.
        let mut denied = false;
        let mut path = shared.candidates;
        while !(*path).is_null() {
            libc::execve(*path, shared.argv.cast(), shared.envp.cast());
            match *libc::__errno_location() {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT | libc::ESTALE => {}
                _ => fail(shared),
            }
            path = path.add(1);
        }
        if denied {
            *libc::__errno_location() = libc::EACCES;
        }
        fail(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_looked_for_in_each_path_directory_and_a_path_taken_as_it_is() {
        let c = Candidates::new(c"sh", Some(b"/usr/local/bin::/bin"));
        assert_eq!(c.paths(), vec![c"/usr/local/bin/sh", c"./sh", c"/bin/sh"]);
        let c = Candidates::new(c"./run.sh", Some(b"/bin"));
        assert_eq!(c.paths(), vec![c"./run.sh"]);
        let c = Candidates::new(c"sh", None);
        assert_eq!(c.paths(), vec![c"/bin/sh", c"/usr/bin/sh"]);
    }
}
