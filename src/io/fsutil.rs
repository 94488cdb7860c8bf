//! How pitboss opens the files and folders of a run: one place for the privacy rule.
//!
//! Logs, captured output and the lock may hold prompts, results and secrets a worker
//! printed, so files are created 0600 and folders 0700 whatever the umask, and a file
//! is never opened through a symbolic link (`O_NOFOLLOW`), which could redirect a
//! write anywhere the user can write.

use std::fs::OpenOptions;
use std::path::Path;

use super::platform;

/// Open options for a private file: created 0600 (the umask can only remove bits, so
/// never more), and refused when the path is a symbolic link. The caller adds the
/// access and creation flags (`read`, `append`, `create_new`…); the mode matters only
/// when the open creates the file.
pub fn private_file() -> OpenOptions {
    platform::private_open_options()
}

/// Creates `path` and any missing parents as 0700 folders. A folder that exists
/// already keeps its mode (tighten it with `set_permissions` where that matters).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    platform::private_dir_builder().recursive(true).create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        private_file().append(true).create_new(true).open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = private_file().append(true).create(true).open(&link).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");

        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
