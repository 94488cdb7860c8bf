//! Broker URLs and passwords, as connections use them. The URL itself is read by the
//! core's [`BrokerUrl`] (one parser for the workflow, the flags and the transports,
//! with the password rules in one place); this module adds what needs the process:
//! the build's TLS support, the redacted text for messages about a URL that did not
//! read, and where the password comes from. A password is never taken from the URL:
//! argv is visible in `ps` and the URL lands in the log's first record (DESIGN §14).

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::core::workflow::{BrokerKind, BrokerUrl, BrokerUrlError, PASSWORD_ENV};

/// Why a URL or password setup cannot be used. Messages show the redacted URL only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL does not read (no scheme, a password in it, no host, a bad port…).
    #[error("{url}: {error}")]
    Url {
        /// The redacted text.
        url: String,
        /// What is wrong (its words never hold the password).
        error: BrokerUrlError,
    },
    /// A TLS scheme in a build without the `tls` feature.
    #[error("{url}: this pitboss was built without TLS (feature `tls`)")]
    NoTls {
        /// The URL.
        url: String,
    },
    /// The password file cannot be read.
    #[error("cannot read the broker password file {path}: {reason}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The OS's words.
        reason: String,
    },
    /// The password file can be read by others.
    #[error("the broker password file {path} is readable by group or others (mode {mode:o}): chmod 600 it")]
    PasswordFileOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A TLS file (CA, client certificate or key) cannot be used.
    #[error("the broker {what} {path} cannot be used: {reason}")]
    TlsFile {
        /// Which file (`CA file`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (never the file's content).
        reason: String,
    },
    /// A TLS file flag for a URL that does not use TLS.
    #[error("{url} does not use TLS, so {flag} has nothing to do: use rediss:// or amqps://")]
    TlsFileWithoutTls {
        /// The URL.
        url: String,
        /// The flag given.
        flag: &'static str,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("a broker client certificate needs both files: give {missing} too")]
    ClientCertHalf {
        /// Where the missing one is given.
        missing: &'static str,
    },
    /// An empty password (an unset variable's mistake more often than a real password).
    #[error("the broker password from {source_name} is empty")]
    EmptyPassword {
        /// Where it came from (the variable or file).
        source_name: String,
    },
}

/// Reads `text` (a flag's value, spaces around it dropped) as a broker URL this build
/// can connect to; an error names the URL with any password redacted.
pub fn parse(text: &str) -> Result<BrokerUrl, UrlError> {
    let url = BrokerUrl::parse(text.trim()).map_err(|error| UrlError::Url { url: redact(text), error })?;
    check_tls(&url)?;
    Ok(url)
}

/// A TLS URL (`rediss://`, `amqps://`) needs a build with the `tls` feature.
pub fn check_tls(url: &BrokerUrl) -> Result<(), UrlError> {
    match url.tls && !cfg!(feature = "tls") {
        true => Err(UrlError::NoTls { url: url.to_string() }),
        false => Ok(()),
    }
}

/// `text` with any password removed (`user:***@`, `password=***`), for messages about a
/// URL that may be malformed or carry one. Works on text that is not a URL at all.
pub fn redact(text: &str) -> String {
    let text = text.trim();
    let query_at = text.find(['?', '#']).unwrap_or(text.len());
    let (head, tail) = text.split_at(query_at);
    // Any '/'-separated piece holding `user:secret@` is redacted, not only the one a
    // parser would call the authority: the text may not be a well-formed URL.
    let pieces: Vec<String> = head
        .split('/')
        .map(|piece| match piece.rfind('@') {
            Some(at) => match piece[..at].find(':') {
                Some(colon) => format!("{}:***{}", &piece[..colon], &piece[at..]),
                None => piece.to_string(),
            },
            None => piece.to_string(),
        })
        .collect();
    format!("{}{}", pieces.join("/"), redact_query(tail))
}

/// Replaces the values of `password=` / `pass=` query parameters.
fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_string();
    };
    let (path, query) = tail.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") => {
                format!("{k}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}{}{fragment}", parts.join("&"))
}

/// A broker password: never printed (its `Debug` and `Display` redact it).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(value: String) -> Password {
        Password(value)
    }

    /// The secret itself, for the broker's login only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Finds the broker password: the file when one is given (refused when group or world
/// can read it), else [`PASSWORD_ENV`] from the environment, else none.
pub fn password(file: Option<&Path>) -> Result<Option<Password>, UrlError> {
    password_from(std::env::var(PASSWORD_ENV).ok().as_deref(), file)
}

/// [`password`] with the environment's value given (for tests).
pub fn password_from(env: Option<&str>, file: Option<&Path>) -> Result<Option<Password>, UrlError> {
    if let Some(path) = file {
        return read_password_file(path).map(Some);
    }
    match env {
        None => Ok(None),
        Some("") => Err(UrlError::EmptyPassword { source_name: PASSWORD_ENV.to_string() }),
        Some(v) => Ok(Some(Password(v.to_string()))),
    }
}

/// Reads a password file: one line, trailing newline dropped, private to its owner.
fn read_password_file(path: &Path) -> Result<Password, UrlError> {
    let io_err = |e: std::io::Error| UrlError::PasswordFile { path: path.to_path_buf(), reason: e.to_string() };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(UrlError::PasswordFileOpen { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(io_err)?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(UrlError::EmptyPassword { source_name: path.display().to_string() });
    }
    Ok(Password(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_passwords_and_never_shows_them() {
        for text in ["redis://u:hunter2@h:6379", "redis://h/0?password=hunter2", "amqp://:hunter2@h"] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, UrlError::Url { error: BrokerUrlError::Password, .. }), "{text}: {err}");
            let shown = err.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(PASSWORD_ENV), "{shown}");
        }
        assert!(parse("redis://u:hunter2@h").unwrap_err().to_string().starts_with("redis://u:***@h: "));
    }

    #[test]
    fn redacts_even_malformed_text() {
        assert_eq!(redact("rediss://u:p@ss@h:1/0"), "rediss://u:***@h:1/0");
        assert_eq!(redact("redis://h?db=1&password=x#f"), "redis://h?db=1&password=***#f");
        assert_eq!(redact("u:secret@host"), "u:***@host");
        let err = parse("redis//u:secret@").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn unknown_scheme_and_no_host_are_plain_errors() {
        let err = parse("http://h").unwrap_err();
        assert_eq!(err.to_string(), "http://h: unknown broker scheme `http` (redis, rediss, amqp or amqps)");
        assert_eq!(parse("redis://").unwrap_err().to_string(), "redis://: the broker URL has no host");
        // A flag's value may come with spaces around it.
        assert_eq!(parse(" redis://h ").unwrap().to_string(), "redis://h:6379");
    }

    #[test]
    fn password_sources() {
        assert_eq!(password_from(None, None).unwrap(), None);
        assert_eq!(password_from(Some("pw"), None).unwrap().unwrap().expose(), "pw");
        assert!(password_from(Some(""), None).is_err());
        assert_eq!(format!("{:?}", Password::new("pw".into())), "Password(***)");
    }

    #[cfg(unix)]
    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = password_from(Some("env"), Some(&path)).unwrap_err();
        assert!(matches!(err, UrlError::PasswordFileOpen { mode: 0o644, .. }), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(password_from(Some("env"), Some(&path)).unwrap().unwrap().expose(), "s3cret");
    }
}
