//! Shared by the tests that drive real tools from the npm registry (the `claude` CLI,
//! an MCP client): each package is installed once per target folder, at a pinned
//! version, under `target/tmp/npm/NAME` (`CARGO_TARGET_TMPDIR`), and reused by later
//! runs. Tests of one binary run in parallel and several binaries may install at once,
//! so the install holds an exclusive lock on a file beside it.
//!
//! A machine without npm (or without the registry) skips these tests with a loud
//! message; under `CI=true` that fails them instead, as the broker tests do.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True under CI, where a tool that cannot be installed is a failure.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The folder `package@version` is installed in (its `node_modules/.bin` holds the
/// commands).
fn prefix_of(spec: &str) -> PathBuf {
    let name: String = spec.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm").join(name)
}

/// Installs `spec` (`@scope/name@1.2.3`, always a pinned version) unless it is
/// already there, and returns the path of its command `bin` in `node_modules/.bin`.
/// `None` (with a loud SKIPPED line) when npm or the registry is missing, outside CI.
pub fn installed(spec: &str, bin: &str) -> Option<PathBuf> {
    let prefix = prefix_of(spec);
    let command = prefix.join("node_modules").join(".bin").join(bin);
    std::fs::create_dir_all(&prefix).expect("make the npm tool folder");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(prefix.with_extension("lock"))
        .expect("open the install lock");
    let _held = Locked::take(lock);
    let done = prefix.join(".installed");
    if done.exists() && command.exists() {
        return Some(command);
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&prefix)
        .arg(spec)
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() && command.exists() => {
            File::create(&done).expect("mark the install done");
            Some(command)
        }
        other => {
            let why = format!("`npm install {spec}` did not give {bin}: {other:?}");
            if under_ci() {
                panic!("{why} (required under CI=true)");
            }
            eprintln!("SKIPPED ({why}): install npm and reach its registry to run this test");
            None
        }
    }
}

/// An exclusive `flock` held until dropped (the kernel drops it if the test dies).
struct Locked(File);

impl Locked {
    fn take(file: File) -> Locked {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this struct owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "lock the npm install: {}", std::io::Error::last_os_error());
        Locked(file)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
