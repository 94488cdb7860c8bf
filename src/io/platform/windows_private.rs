//! Private files and folders on Windows: what Unix's 0600 and 0700 are there.
//!
//! A folder pitboss creates privately gets a *protected* DACL (inheriting nothing from
//! its parent) with one entry: full access for this process's user, inherited by every
//! file and folder created inside it (`D:P(A;OICI;FA;;;<user's SID>)`). So other users
//! (Administrators aside, who can take ownership) cannot read the run's log, results
//! or secrets, whatever the parent folder allows. A private *file* gets no DACL of
//! its own: std's `OpenOptions` has no way to pass one, and Windows gives a new file
//! its folder's inheritable entries, so a file in a private folder is private. The
//! user's own SID is written rather than `OW` (owner rights): wine maps the entries of
//! a DACL to Unix mode bits and has no mapping for `OW` (the folder would be mode 000
//! there). wine applies no inheritance, so there the folder alone keeps others out.
//!
//! As on Unix the rule applies when the folder is created, never to an existing one.
//! If the descriptor cannot be built (no token to read), folders are created as
//! before, with their parent's permissions.
//!
//! A file is also opened with `FILE_FLAG_OPEN_REPARSE_POINT`, so a symbolic link is
//! opened as itself rather than followed (the Unix `O_NOFOLLOW` refuses it instead).

use std::fs::OpenOptions;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a link itself, never its target.
pub(super) const OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// The security attributes of a private entry (module notes), built once and kept for
/// the life of the process (as an address: a raw pointer is not `Sync`); `None` if
/// they could not be built.
fn private_attributes() -> Option<*mut SECURITY_ATTRIBUTES> {
    static ATTRIBUTES: OnceLock<Option<usize>> = OnceLock::new();
    let address = ATTRIBUTES.get_or_init(|| {
        let descriptor = owner_only_descriptor()?;
        let attributes = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: descriptor,
            bInheritHandle: 0,
        };
        Some(Box::into_raw(Box::new(attributes)) as usize)
    });
    address.map(|a| a as *mut SECURITY_ATTRIBUTES)
}

/// The SID of this process's user, as text (`S-1-5-21-…`).
fn my_sid() -> Option<String> {
    // SAFETY: the token handle is opened and closed here; the buffer is ours and its
    // size is what GetTokenInformation asked for; the SID text is freed with LocalFree.
    unsafe {
        let mut token: HANDLE = std::ptr::null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return None;
        }
        let mut needed = 0u32;
        GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed);
        // u64s: TOKEN_USER holds pointers, so the buffer must be aligned for them.
        let mut buffer = vec![0u64; (needed as usize).div_ceil(8).max(1)];
        let ok = GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast(), needed, &mut needed) != 0;
        CloseHandle(token);
        if !ok {
            return None;
        }
        let user = &*(buffer.as_ptr() as *const TOKEN_USER);
        let mut text: *mut u16 = std::ptr::null_mut();
        if ConvertSidToStringSidW(user.User.Sid, &mut text) == 0 || text.is_null() {
            return None;
        }
        let len = (0..).take_while(|&k| *text.add(k) != 0).count();
        let sid = String::from_utf16(std::slice::from_raw_parts(text, len)).ok();
        LocalFree(text.cast());
        sid
    }
}

/// A self-relative security descriptor allowing only this user (never freed: it is
/// kept for the life of the process).
fn owner_only_descriptor() -> Option<*mut core::ffi::c_void> {
    let sddl = format!("D:P(A;OICI;FA;;;{})", my_sid()?);
    let wide: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: a NUL-terminated string of ours; the descriptor is written to our pointer.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            wide.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            std::ptr::null_mut(),
        )
    };
    (ok != 0 && !descriptor.is_null()).then_some(descriptor)
}

/// Open options for a private file (module notes).
pub fn private_open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.custom_flags(OPEN_REPARSE_POINT);
    options
}

/// A folder builder whose folders are private (module notes): std's `DirBuilder`
/// has no way to pass security attributes, so this is a small one of our own with
/// the two methods pitboss uses.
#[derive(Debug, Default)]
pub struct PrivateDirBuilder {
    recursive: bool,
}

/// A builder of private folders (module notes).
pub fn private_dir_builder() -> PrivateDirBuilder {
    PrivateDirBuilder::default()
}

impl PrivateDirBuilder {
    /// Whether missing parents are made too (private as well), and an existing folder
    /// is no error: as `std::fs::DirBuilder::recursive`.
    pub fn recursive(&mut self, recursive: bool) -> &mut Self {
        self.recursive = recursive;
        self
    }

    /// Makes the folder `path`.
    pub fn create<P: AsRef<Path>>(&self, path: P) -> std::io::Result<()> {
        let path = path.as_ref();
        if self.recursive {
            if path.is_dir() {
                return Ok(());
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                self.create(parent)?;
            }
        }
        match create_dir(path) {
            Err(e) if self.recursive && e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            made => made,
        }
    }
}

fn create_dir(path: &Path) -> std::io::Result<()> {
    let Some(attributes) = private_attributes() else { return std::fs::create_dir(path) };
    let wide = wide_path(path)?;
    // SAFETY: a NUL-terminated path of ours and attributes that live for ever.
    if unsafe { CreateDirectoryW(wide.as_ptr(), attributes) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `path` as CreateDirectoryW takes it, NUL-terminated: as it is when short, else
/// absolute with the `\\?\` prefix that lifts the 248-character limit on a folder's
/// path (std does the same for its own calls). In UTF-16 throughout: a Windows name
/// need not be valid Unicode.
fn wide_path(path: &Path) -> std::io::Result<Vec<u16>> {
    const SHORT: usize = 240;
    let wide = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let mut text: Vec<u16> = path.as_os_str().encode_wide().collect();
    if text.len() >= SHORT && !text.starts_with(&wide(r"\\?\")) {
        let full: Vec<u16> = std::path::absolute(path)?.as_os_str().encode_wide().collect();
        text = match full.strip_prefix(wide(r"\\").as_slice()) {
            Some(unc) => [wide(r"\\?\UNC\").as_slice(), unc].concat(),
            None => [wide(r"\\?\").as_slice(), &full].concat(),
        };
    }
    text.push(0);
    Ok(text)
}
