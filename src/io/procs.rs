//! The process table, as the guardian and `resume` read it to find a manager's
//! workers by the marks in their environment: every pid, a process's environment,
//! whether it is a zombie, whether it runs this program; and a process's resident
//! memory (persistent pools' `max_rss_mb`).
//!
//! Linux reads `/proc`. macOS has no `/proc`: `libproc` lists the pids and tells a
//! process's state, and `sysctl(KERN_PROCARGS2)` returns its arguments followed by its
//! environment (for this user's processes, as `ps -E` shows them). Neither system
//! shows another user's environment, so neither finds another user's processes.
//!
//! An environment is returned as the kernel lays it out: `NAME=value` strings, each
//! ended by a NUL.

/// Every pid on the system (those that exit while listing may be in it).
pub fn pids() -> std::io::Result<Vec<u32>> {
    imp::pids()
}

/// The environment `pid` started with, or `None` if it is gone or not ours to read.
pub fn environ(pid: u32) -> Option<Vec<u8>> {
    imp::environ(pid)
}

/// True when `pid` is a zombie, or gone.
pub fn is_zombie(pid: u32) -> bool {
    imp::is_zombie(pid)
}

/// True when `pid` runs the same program file as this process.
pub fn runs_this_program(pid: u32) -> bool {
    imp::runs_this_program(pid)
}

/// The memory `pid` has resident now, in KiB, or `None` if it is gone.
pub fn resident_kib(pid: u32) -> Option<u64> {
    imp::resident_kib(pid)
}

#[cfg(target_os = "linux")]
mod imp {
    pub fn resident_kib(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn pids() -> std::io::Result<Vec<u32>> {
        let entries = std::fs::read_dir("/proc")?;
        Ok(entries.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())).collect())
    }

    pub fn environ(pid: u32) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/environ")).ok()
    }

    pub fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
            .unwrap_or(true)
    }

    pub fn runs_this_program(pid: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let same = |a: std::fs::Metadata, b: std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
        match (std::fs::metadata(format!("/proc/{pid}/exe")), std::fs::metadata("/proc/self/exe")) {
            (Ok(theirs), Ok(ours)) => same(theirs, ours),
            _ => false,
        }
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use std::ffi::c_void;

    pub fn pids() -> std::io::Result<Vec<u32>> {
        // SAFETY: a null buffer asks for the number of pids only.
        let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
        if count < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Room for processes started between the two calls.
        let mut buf = vec![0 as libc::pid_t; count as usize + 64];
        let bytes = i32::try_from(buf.len() * std::mem::size_of::<libc::pid_t>()).unwrap_or(i32::MAX);
        // SAFETY: the buffer holds `bytes` bytes; the call writes at most that.
        let found = unsafe { libc::proc_listallpids(buf.as_mut_ptr().cast::<c_void>(), bytes) };
        if found < 0 {
            return Err(std::io::Error::last_os_error());
        }
        buf.truncate((found as usize).min(buf.len()));
        Ok(buf.into_iter().filter_map(|p| u32::try_from(p).ok()).filter(|&p| p > 0).collect())
    }

    fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
        // SAFETY: a zeroed proc_bsdinfo is a valid out-parameter (plain integers and arrays).
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: the buffer is one proc_bsdinfo of `size` bytes.
        let n = unsafe {
            libc::proc_pidinfo(
                pid as libc::c_int,
                libc::PROC_PIDTBSDINFO,
                0,
                (&mut info as *mut libc::proc_bsdinfo).cast(),
                size,
            )
        };
        (n == size).then_some(info)
    }

    pub fn resident_kib(pid: u32) -> Option<u64> {
        // SAFETY: a zeroed proc_taskinfo is a valid out-parameter (plain integers).
        let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
        // SAFETY: the buffer is one proc_taskinfo of `size` bytes.
        let n = unsafe {
            libc::proc_pidinfo(
                pid as libc::c_int,
                libc::PROC_PIDTASKINFO,
                0,
                (&mut info as *mut libc::proc_taskinfo).cast(),
                size,
            )
        };
        (n == size).then_some(info.pti_resident_size / 1024)
    }

    pub fn is_zombie(pid: u32) -> bool {
        bsd_info(pid).is_none_or(|info| info.pbi_status == libc::SZOMB)
    }

    pub fn environ(pid: u32) -> Option<Vec<u8>> {
        let mut argmax: libc::c_int = 0;
        let mut size = std::mem::size_of::<libc::c_int>();
        let mut mib = [libc::CTL_KERN, libc::KERN_ARGMAX];
        // SAFETY: reads one c_int into `argmax`, whose size is `size`.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                2,
                (&mut argmax as *mut libc::c_int).cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 || argmax <= 0 {
            return None;
        }
        let mut buf = vec![0u8; argmax as usize];
        let mut size = buf.len();
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid as libc::c_int];
        // SAFETY: the buffer holds `size` bytes; the kernel writes at most that and says how many.
        let rc =
            unsafe { libc::sysctl(mib.as_mut_ptr(), 3, buf.as_mut_ptr().cast(), &mut size, std::ptr::null_mut(), 0) };
        if rc != 0 {
            return None;
        }
        buf.truncate(size);
        Some(super::environ_of_procargs(&buf)?.to_vec())
    }

    pub fn runs_this_program(pid: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mut path = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: the buffer holds the maximum size the call writes.
        let n = unsafe { libc::proc_pidpath(pid as libc::c_int, path.as_mut_ptr().cast(), path.len() as u32) };
        if n <= 0 {
            return false;
        }
        path.truncate(n as usize);
        let theirs = std::path::PathBuf::from(std::ffi::OsString::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&path),
        ));
        match (std::fs::metadata(theirs), std::env::current_exe().and_then(std::fs::metadata)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// Neither Linux nor macOS: no process table is known, so nothing is found.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    pub fn pids() -> std::io::Result<Vec<u32>> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no process table on this system"))
    }
    pub fn environ(_pid: u32) -> Option<Vec<u8>> {
        None
    }
    pub fn resident_kib(_pid: u32) -> Option<u64> {
        None
    }
    pub fn is_zombie(_pid: u32) -> bool {
        true
    }
    pub fn runs_this_program(_pid: u32) -> bool {
        false
    }
}

/// The environment block of a `KERN_PROCARGS2` buffer: `argc` (a native int), the
/// executable's path, NUL padding, `argc` arguments, then the environment strings up
/// to an empty one. `None` if the buffer is cut short. Plain bytes, so tested on
/// every system.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn environ_of_procargs(buf: &[u8]) -> Option<&[u8]> {
    let argc = i32::from_ne_bytes(buf.get(..4)?.try_into().ok()?);
    let mut rest = &buf[4..];
    let path_end = rest.iter().position(|&b| b == 0)?;
    rest = &rest[path_end..];
    rest = &rest[rest.iter().position(|&b| b != 0).unwrap_or(rest.len())..];
    for _ in 0..argc.max(0) {
        let end = rest.iter().position(|&b| b == 0)?;
        rest = &rest[end + 1..];
    }
    // Strings until an empty one (two NULs in a row) or the end.
    let mut len = 0;
    while len < rest.len() && rest[len] != 0 {
        len += rest[len..].iter().position(|&b| b == 0).map_or(rest.len() - len, |n| n + 1);
    }
    Some(&rest[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_follows_the_path_and_the_arguments() {
        let mut buf = 2i32.to_ne_bytes().to_vec();
        buf.extend_from_slice(b"/bin/sh\0\0\0\0sh\0-c\0A=1\0PITBOSS_RUN_ID=r\0\0apple=junk\0");
        assert_eq!(environ_of_procargs(&buf), Some(&b"A=1\0PITBOSS_RUN_ID=r\0"[..]));
        // Cut in the arguments: nothing to trust.
        let mut cut = 3i32.to_ne_bytes().to_vec();
        cut.extend_from_slice(b"/bin/sh\0sh\0-c\0");
        assert_eq!(environ_of_procargs(&cut), None);
        assert_eq!(environ_of_procargs(b"\x01"), None);
    }

    #[test]
    fn this_process_is_listed_with_its_environment_and_program() {
        let me = std::process::id();
        assert!(pids().unwrap().contains(&me));
        assert!(!is_zombie(me));
        assert!(runs_this_program(me));
        assert!(resident_kib(me).is_some_and(|kib| kib > 0));
        // What it started with (tests may change their own environment since): a PATH.
        let environ = environ(me).unwrap();
        assert!(environ.split(|&b| b == 0).any(|var| var.starts_with(b"PATH=")), "no PATH");
    }
}
