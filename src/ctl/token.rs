//! The `--listen` bearer token: 32 random bytes in hex, made when the listener starts,
//! stored in `STATE_DIR/ctl.token` (0600, never through a link) for the operator, and
//! compared in constant time so a wrong guess teaches nothing about the right one.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

/// The token's file in the run folder.
pub const TOKEN_FILE: &str = "ctl.token";

/// Makes a new token and writes it to `dir/ctl.token` (a leftover file of an earlier
/// manager is replaced: its token is void).
pub fn make(dir: &Path) -> Result<(String, PathBuf), String> {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the OS.
    rand::rng().fill(&mut bytes);
    let token = super::output::hex(&bytes);
    let path = dir.join(TOKEN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    crate::io::fsutil::private_file()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{token}\n").as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((token, path))
}

/// Reads a token file (`--token-file`): its first line, trimmed.
pub fn read(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("--token-file {}: the file is empty", path.display()));
    }
    Ok(token)
}

/// Whether an `Authorization` header carries `token` as a bearer token.
pub fn authorizes(header: Option<&[u8]>, token: &str) -> bool {
    let Some(header) = header else { return false };
    let Some(given) = header.strip_prefix(b"Bearer ") else { return false };
    constant_time_eq(given.trim_ascii(), token.as_bytes())
}

/// Equal slices, in a time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_authorizes() {
        let token = "ab12";
        assert!(authorizes(Some(b"Bearer ab12"), token));
        for wrong in [&b"Bearer ab13"[..], b"Bearer ab1", b"bearer ab12", b"ab12", b"Bearer ", b"Basic ab12"] {
            assert!(!authorizes(Some(wrong), token), "{}", String::from_utf8_lossy(wrong));
        }
        assert!(!authorizes(None, token));
    }

    #[test]
    fn a_new_token_is_64_hex_digits_in_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, path) = make(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (second, _) = make(dir.path()).unwrap();
        assert_ne!(first, second);
        assert_eq!(read(&path).unwrap(), second);
    }
}
