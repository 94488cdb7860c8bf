//! Windows process trees: Job Objects, and the memory their processes use.
//!
//! - **No gap before the job.** [`spawn_contained`] starts the process with
//!   `CREATE_SUSPENDED`, puts it in a new kill-on-close job, and only then lets its
//!   main thread run: nothing it starts can be outside the job (a process started
//!   then assigned would run for a moment outside it, and a child started in that
//!   moment would escape). std keeps the new thread's handle to itself, so the thread
//!   is found with a Toolhelp snapshot of the process's threads (a suspended process
//!   has that one thread only).
//! - **Jobs are keyed by pid** (the process they were made for), so every caller's
//!   pid-based API (`signal_group`, `release`) is the same as on Unix.
//! - **Memory.** [`resident_kib`] is a process's working set now (what Linux calls
//!   resident). [`tree_peak_kib`] is the largest memory any process of a job has used:
//!   the job's own `PeakProcessMemoryUsed` (committed memory, kept by Windows for
//!   every process ever in the job) and each live member's peak working set. wine
//!   (8) keeps no job peaks, so there only the sampled working sets count.

use std::collections::HashMap;
use std::os::windows::io::AsRawHandle;
use std::sync::{Mutex, OnceLock};

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectBasicProcessIdList, JobObjectExtendedLimitInformation,
    QueryInformationJobObject, SetInformationJobObject, TerminateJobObject, JOBOBJECT_BASIC_PROCESS_ID_LIST,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenThread, ResumeThread, CREATE_SUSPENDED, PROCESS_QUERY_LIMITED_INFORMATION, THREAD_SUSPEND_RESUME,
};

use super::Signal;

/// Jobs by the pid of the process they were made for (handles as integers: a raw
/// handle is not `Send`).
fn jobs() -> &'static Mutex<HashMap<u32, usize>> {
    static JOBS: OnceLock<Mutex<HashMap<u32, usize>>> = OnceLock::new();
    JOBS.get_or_init(Mutex::default)
}

/// Starts `cmd` inside a new kill-on-close Job Object before it runs a single
/// instruction (module notes). `Ok((child, Err(e)))`: it runs, but outside any job
/// (the caller says so and goes on, its tree less surely ended).
pub fn spawn_contained(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(tokio::process::Child, std::io::Result<()>)> {
    cmd.creation_flags(CREATE_SUSPENDED);
    let mut child = cmd.spawn()?;
    let (Some(pid), Some(handle)) = (child.id(), child.raw_handle()) else {
        return Ok((child, Err(std::io::Error::other("the process ended before it could be put in a job"))));
    };
    let contained = contain(pid, handle as HANDLE);
    if let Err(e) = resume(pid) {
        // A process left suspended would hang its attempt for ever.
        let _ = child.start_kill();
        release(pid);
        return Err(std::io::Error::new(e.kind(), format!("cannot start the suspended process {pid}: {e}")));
    }
    Ok((child, contained))
}

/// [`spawn_contained`] for std's command (the `perf` gate's runs).
pub fn spawn_contained_std(
    cmd: &mut std::process::Command,
) -> std::io::Result<(std::process::Child, std::io::Result<()>)> {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(CREATE_SUSPENDED);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let contained = contain(pid, child.as_raw_handle() as HANDLE);
    if let Err(e) = resume(pid) {
        let _ = child.kill();
        let _ = child.wait();
        release(pid);
        return Err(std::io::Error::new(e.kind(), format!("cannot start the suspended process {pid}: {e}")));
    }
    Ok((child, contained))
}

/// Puts `process` (pid `pid`) in a new kill-on-close Job Object.
fn contain(pid: u32, process: HANDLE) -> std::io::Result<()> {
    // SAFETY: plain Win32 calls; the job is closed on every path that does not keep it,
    // the process handle is the caller's.
    unsafe {
        let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
        if job.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let set = SetInformationJobObject(
            job,
            JobObjectExtendedLimitInformation,
            (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        );
        if set == 0 || AssignProcessToJobObject(job, process) == 0 {
            let error = std::io::Error::last_os_error();
            CloseHandle(job);
            return Err(error);
        }
        if let Some(old) = jobs().lock().unwrap_or_else(|e| e.into_inner()).insert(pid, job as usize) {
            CloseHandle(old as HANDLE);
        }
    }
    Ok(())
}

/// Resumes every suspended thread of `pid` (a process started suspended has one).
fn resume(pid: u32) -> std::io::Result<()> {
    // SAFETY: the snapshot and thread handles are opened and closed here; the entry is
    // ours, with its size set as Toolhelp requires.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(std::io::Error::last_os_error());
        }
        let mut entry: THREADENTRY32 = std::mem::zeroed();
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut resumed = 0;
        let mut more = Thread32First(snapshot, &mut entry) != 0;
        while more {
            if entry.th32OwnerProcessID == pid {
                let thread = OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID);
                if !thread.is_null() {
                    if ResumeThread(thread) != u32::MAX {
                        resumed += 1;
                    }
                    CloseHandle(thread);
                }
            }
            entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
            more = Thread32Next(snapshot, &mut entry) != 0;
        }
        CloseHandle(snapshot);
        if resumed == 0 {
            // Not NotFound: that would read as "no such program" to the attempt's caller.
            return Err(std::io::Error::other("no thread of it could be resumed"));
        }
    }
    Ok(())
}

/// Closes the job of `pid`, which ends whatever is still in it (kill on close).
pub fn release(pid: u32) {
    if let Some(job) = jobs().lock().unwrap_or_else(|e| e.into_inner()).remove(&pid) {
        // SAFETY: a handle we made and no longer hold anywhere else.
        unsafe { CloseHandle(job as HANDLE) };
    }
}

/// Ends the job of `pid` (the whole tree); a process with no job alone.
pub fn signal_group(pid: u32, signal: Signal) {
    // Under the lock: `release` cannot close the handle while it is used here.
    let jobs = jobs().lock().unwrap_or_else(|e| e.into_inner());
    match jobs.get(&pid) {
        // SAFETY: a live handle of ours (closed only by `release`, which needs the lock).
        Some(&job) => unsafe {
            TerminateJobObject(job as HANDLE, 1);
        },
        None => super::signal_pid(pid, signal),
    }
}

/// The memory process `pid` has resident now (its working set), in KiB.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let counters = memory_counters(pid)?;
    Some(counters.WorkingSetSize as u64 / 1024)
}

/// The largest memory any process in the job of `pid` has used so far, in KiB (module
/// notes); `None` when nothing could be read (no job, or no counters).
pub fn tree_peak_kib(pid: u32) -> Option<u64> {
    let jobs = jobs().lock().unwrap_or_else(|e| e.into_inner());
    let job = *jobs.get(&pid)? as HANDLE;
    let mut peak = 0u64;
    // SAFETY: a live job handle of ours (under the lock); the structs are ours to fill.
    unsafe {
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
        let size = std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32;
        let mut _len = 0;
        let into = (&mut limits as *mut JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast();
        if QueryInformationJobObject(job, JobObjectExtendedLimitInformation, into, size, &mut _len) != 0 {
            peak = limits.PeakProcessMemoryUsed as u64 / 1024;
        }
        // Room for 64 pids; a bigger tree is read in part (ERROR_MORE_DATA still fills it).
        #[repr(C)]
        struct Ids {
            list: JOBOBJECT_BASIC_PROCESS_ID_LIST,
            more: [usize; 63],
        }
        let mut ids: Ids = std::mem::zeroed();
        QueryInformationJobObject(
            job,
            JobObjectBasicProcessIdList,
            (&mut ids as *mut Ids).cast(),
            std::mem::size_of::<Ids>() as u32,
            &mut _len,
        );
        let listed = (ids.list.NumberOfProcessIdsInList as usize).min(64);
        let first = std::ptr::addr_of!(ids.list.ProcessIdList).cast::<usize>();
        for k in 0..listed {
            let member = *first.add(k) as u32;
            if let Some(counters) = memory_counters(member) {
                peak = peak.max(counters.PeakWorkingSetSize as u64 / 1024);
            }
        }
    }
    drop(jobs);
    (peak > 0).then_some(peak)
}

/// The memory counters of a process still running (`None` if it is gone or hidden).
fn memory_counters(pid: u32) -> Option<PROCESS_MEMORY_COUNTERS> {
    // SAFETY: a handle we open and close here; the counters are ours to fill.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return None;
        }
        let mut counters: PROCESS_MEMORY_COUNTERS = std::mem::zeroed();
        counters.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
        let ok = K32GetProcessMemoryInfo(process, &mut counters, counters.cb) != 0;
        CloseHandle(process);
        ok.then_some(counters)
    }
}

/// The peak working set of a process by its handle, in KiB: read after it exited (the
/// handle keeps the process object), where Windows still has it.
pub fn peak_kib_of(child: &std::process::Child) -> Option<u64> {
    // SAFETY: the child's own handle, alive as long as `child`; the counters are ours.
    unsafe {
        let mut counters: PROCESS_MEMORY_COUNTERS = std::mem::zeroed();
        counters.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
        let ok = K32GetProcessMemoryInfo(child.as_raw_handle() as HANDLE, &mut counters, counters.cb) != 0;
        (ok && counters.PeakWorkingSetSize > 0).then_some(counters.PeakWorkingSetSize as u64 / 1024)
    }
}
