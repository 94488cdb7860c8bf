//! The Windows side of [`super`]. What it does differently from Unix:
//!
//! - **Process trees**: each attempt is put in a Job Object made with
//!   `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`. Ending the attempt terminates the job, so
//!   every process it started goes too; and since only the manager holds the job's
//!   handle, a manager that dies (even killed) closes it and Windows ends its workers.
//!   The process is started suspended and assigned before it runs (`windows_jobs`),
//!   so no child of it can escape the job (Unix: the group is set before exec).
//! - **No polite stop**: Windows has no SIGTERM for a process in another console
//!   group, so [`Signal::SIGTERM`] terminates the job like [`Signal::SIGKILL`]; the
//!   grace period does not apply.
//! - **Files**: no Unix modes. A private file or folder is created with an owner-only
//!   DACL instead, and a link is opened as itself (`windows_private`). The mode
//!   functions below do nothing or report what the DACL means in Unix terms.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Seek;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, STILL_ACTIVE};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE,
};

use super::windows_private::OPEN_REPARSE_POINT;

/// The two stops pitboss sends (their Unix names, so callers read the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Asked to stop: on Windows the same as [`Signal::SIGKILL`] (module notes).
    SIGTERM,
    /// Ended at once.
    SIGKILL,
}

/// No Unix modes on Windows: nothing to set.
pub fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// No Unix modes on Windows: nothing to set.
pub fn set_file_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// What the Unix mode would be for a private entry: owner only, read-only when
/// Windows says so.
pub fn mode_of(meta: &Metadata) -> u32 {
    let base = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.permissions().readonly() {
        base & 0o500
    } else {
        base
    }
}

/// Owners are ACLs on Windows; not compared.
pub fn owner_of(_meta: &Metadata) -> Option<u32> {
    None
}

/// No numeric user on Windows.
pub fn my_uid() -> Option<u32> {
    None
}

/// Which file an open file is: its volume's serial number and its file index (std
/// has them only unstably; timestamps will not do: wine reports the change time).
pub fn file_id(file: &File) -> std::io::Result<(u64, u64)> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION};
    // SAFETY: the handle is the open file's; the struct is ours to fill.
    unsafe {
        let mut info: BY_HANDLE_FILE_INFORMATION = std::mem::zeroed();
        if GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
        Ok((u64::from(info.dwVolumeSerialNumber), index))
    }
}

/// Which file `path` names, opened as itself (a link is not followed) for its
/// attributes only.
pub fn path_id(path: &Path) -> std::io::Result<(u64, u64)> {
    // FILE_FLAG_BACKUP_SEMANTICS: a folder opens too.
    const BACKUP_SEMANTICS: u32 = 0x0200_0000;
    let file = OpenOptions::new().access_mode(0).custom_flags(OPEN_REPARSE_POINT | BACKUP_SEMANTICS).open(path)?;
    file_id(&file)
}

/// Reads at `offset`, then puts the file's position back (Windows moves it).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut handle = file;
    let was = handle.stream_position()?;
    let read = file.seek_read(buf, offset);
    handle.seek(std::io::SeekFrom::Start(was))?;
    read
}

/// Nothing to set on Windows: [`spawn_contained`] puts the tree in a job.
pub fn own_group(_cmd: &mut std::process::Command) {}

/// Nothing to set on Windows: [`spawn_contained`] puts the tree in a job.
pub fn own_group_async(_cmd: &mut tokio::process::Command) {}

/// Terminates one process.
pub fn signal_pid(pid: u32, _signal: Signal) {
    // SAFETY: a handle we open and close here.
    unsafe {
        let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
        if !process.is_null() {
            windows_sys::Win32::System::Threading::TerminateProcess(process, 1);
            CloseHandle(process);
        }
    }
}

/// True if a process with this pid is still running.
pub fn process_exists(pid: i32) -> bool {
    // SAFETY: a handle we open and close here; the exit code is written to our u32.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid as u32);
        if process.is_null() {
            return false;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(process, &mut code) != 0;
        CloseHandle(process);
        !ok || code == STILL_ACTIVE as u32
    }
}

/// Windows processes end with a code, never a signal.
pub fn exit_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Ends this process at once, as a crash would (tests of crash safety).
pub fn kill_self() {
    signal_pid(std::process::id(), Signal::SIGKILL);
}

/// The command of an attempt. The program is found with `PATH` (the attempt's own
/// when it sets one) and `PATHEXT`; a `.cmd`/`.bat` runs through `cmd.exe /d /s /c`
/// with every argument quoted, and one that cannot be quoted safely is refused
/// (`super::cmdline`).
pub fn attempt_command(
    argv: &[String],
    cwd: Option<&Path>,
    env: &[(String, String)],
) -> std::io::Result<tokio::process::Command> {
    Ok(attempt_command_std(argv, cwd, env)?.into())
}

/// [`attempt_command`] as std's command (the `perf` gate's runs, on a thread of
/// their own).
pub fn attempt_command_std(
    argv: &[String],
    cwd: Option<&Path>,
    env: &[(String, String)],
) -> std::io::Result<std::process::Command> {
    use super::cmdline;
    use std::os::windows::process::CommandExt;
    use std::process::Command;
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("PATH"))
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path_var).collect();
    let pathext = std::env::var("PATHEXT").unwrap_or_else(|_| cmdline::DEFAULT_PATHEXT.to_string());
    let found = cmdline::resolve(&argv[0], cwd, &dirs, &pathext, &|p| p.is_file());
    match found {
        Some(script) if cmdline::is_script(&script) => {
            let line = cmdline::cmd_line(&script, &argv[1..])
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            let shell = std::env::var_os("ComSpec").unwrap_or_else(|| "cmd.exe".into());
            let mut cmd = Command::new(shell);
            cmd.raw_arg(line);
            Ok(cmd)
        }
        found => {
            let program: std::ffi::OsString = found.map_or_else(|| argv[0].clone().into(), |p| p.into_os_string());
            let mut cmd = Command::new(program);
            cmd.args(&argv[1..]);
            Ok(cmd)
        }
    }
}

/// No job control on Windows: always in the foreground.
pub fn in_foreground() -> bool {
    true
}

/// No job control on Windows: Ctrl-Z does not suspend, so this returns at once.
pub fn suspend_self() {}

/// The console events that ask pitboss to stop: Ctrl-C, Ctrl-Break, and the console
/// window closing (Windows then ends the process after a few seconds whatever it
/// does, so a stop on close is as far as the run gets in that time).
pub struct StopSignals {
    c: tokio::signal::windows::CtrlC,
    brk: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        Ok(StopSignals { c: ctrl_c()?, brk: ctrl_break()?, close: ctrl_close()? })
    }

    /// The next stop request, by its event's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.c.recv() => "CTRL_C",
            _ = self.brk.recv() => "CTRL_BREAK",
            _ = self.close.recv() => "CTRL_CLOSE",
        }
    }
}

/// No SIGPIPE on Windows: a write to a closed pipe is an error the writer sees.
pub fn default_sigpipe() {}

/// Nothing to block on Windows (console events come to a handler, see below).
pub fn block_stop_signals() {}

/// Nothing to unblock on Windows.
pub fn unblock_stop_signals() {}

/// Where the console control handler sends what it takes.
static DELIVER: OnceLock<fn(&str)> = OnceLock::new();

/// Takes Ctrl-C, Ctrl-Break and console close with a console control handler, which
/// Windows runs on a thread of its own, and calls `deliver` with the event's name.
pub fn take_stop_signals(deliver: fn(&str)) -> std::io::Result<()> {
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    let _ = DELIVER.set(deliver);
    // SAFETY: registers a plain function that lives as long as the process.
    if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT};
    let name = match event {
        CTRL_C_EVENT => "CTRL_C",
        CTRL_BREAK_EVENT => "CTRL_BREAK",
        CTRL_CLOSE_EVENT => "CTRL_CLOSE",
        // Log-off and shutdown: left to Windows.
        _ => return 0,
    };
    if let Some(deliver) = DELIVER.get() {
        deliver(name);
    }
    1
}

/// Ends the process with `code` at once: no destructor or exit handler runs.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: ExitProcess takes a code and does not return.
    unsafe { windows_sys::Win32::System::Threading::ExitProcess(code as u32) }
}

/// No limit on open handles to read on Windows.
pub fn open_file_limits() -> Option<(u64, u64)> {
    None
}

/// Nothing to raise on Windows.
pub fn set_open_file_limit(_soft: u64, _hard: u64) -> bool {
    false
}

/// This host's name: Windows keeps it in `COMPUTERNAME` for every process.
pub fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|name| !name.is_empty())
}
