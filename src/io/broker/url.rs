//! Broker URLs and passwords: which broker a URL names, how it is shown (never with a
//! secret), and where the password comes from. A password is never taken from the URL:
//! argv is visible in `ps` and the URL lands in the log's first record (DESIGN §14).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::io::broker::trust::{CaFile, ClientCert};

/// The environment variable a broker password is read from.
pub const PASSWORD_ENV: &str = "PITBOSS_BROKER_PASSWORD";

/// Which broker a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `redis://`, `rediss://`.
    Redis,
    /// `amqp://`, `amqps://`.
    Amqp,
}

/// Why a URL or password setup cannot be used. Messages show the redacted URL only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("{url} is not a broker URL ({reason}); expected redis://HOST[:PORT] or amqp://HOST[:PORT]")]
    Malformed {
        /// The redacted text.
        url: String,
        /// The parser's words.
        reason: String,
    },
    /// A scheme this build does not speak.
    #[error("{url}: unknown broker scheme {scheme:?}; expected redis, rediss, amqp or amqps")]
    Scheme {
        /// The redacted text.
        url: String,
        /// The scheme given.
        scheme: String,
    },
    /// A TLS scheme in a build without the `tls` feature.
    #[error("{url}: this pitboss was built without TLS (feature `tls`)")]
    NoTls {
        /// The redacted text.
        url: String,
    },
    /// A password in the URL itself.
    #[error("{url} carries a password: put it in {PASSWORD_ENV} or a file (--broker-password-file) instead")]
    PasswordInUrl {
        /// The redacted text.
        url: String,
    },
    /// The URL names no host.
    #[error("{url} names no host")]
    NoHost {
        /// The redacted text.
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

/// A parsed broker URL, with no password in it (those are refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Which broker.
    pub kind: BrokerKind,
    /// `rediss://` / `amqps://`.
    pub tls: bool,
    /// The host name or address.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// The user name, if any.
    pub user: Option<String>,
    /// The path after the host: a Redis database number, an AMQP vhost.
    pub path: String,
    /// The URL as given (it holds no secret: passwords are refused).
    text: String,
    /// The CA to trust for TLS instead of the system's store ([`BrokerUrl::with_ca`]);
    /// not part of the URL's text: a file on this host.
    pub ca: Option<CaFile>,
    /// The client certificate to present (mTLS), from a file on this host too.
    pub client: Option<ClientCert>,
}

impl BrokerUrl {
    /// Parses `text`, refusing a password inside it.
    pub fn parse(text: &str) -> Result<BrokerUrl, UrlError> {
        let shown = redact(text);
        let url = ::url::Url::parse(text.trim())
            .map_err(|e| UrlError::Malformed { url: shown.clone(), reason: e.to_string() })?;
        let (kind, tls, default_port) = match url.scheme() {
            "redis" => (BrokerKind::Redis, false, 6379),
            "rediss" => (BrokerKind::Redis, true, 6379),
            "amqp" => (BrokerKind::Amqp, false, 5672),
            "amqps" => (BrokerKind::Amqp, true, 5671),
            other => return Err(UrlError::Scheme { url: shown, scheme: other.to_string() }),
        };
        let password_in_query =
            url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass"));
        if url.password().is_some() || password_in_query {
            return Err(UrlError::PasswordInUrl { url: shown });
        }
        if tls && !cfg!(feature = "tls") {
            return Err(UrlError::NoTls { url: shown });
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_string(),
            _ => return Err(UrlError::NoHost { url: shown }),
        };
        let user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        Ok(BrokerUrl {
            kind,
            tls,
            host,
            port: url.port().unwrap_or(default_port),
            user,
            path: url.path().trim_start_matches('/').to_string(),
            text: text.trim().to_string(),
            ca: None,
            client: None,
        })
    }

    /// The same URL, trusting `ca` (see [`crate::io::broker::trust`]).
    pub fn with_ca(mut self, ca: Option<CaFile>) -> BrokerUrl {
        self.ca = ca;
        self
    }

    /// The same URL, presenting `client` when the broker asks for a certificate.
    pub fn with_client(mut self, client: Option<ClientCert>) -> BrokerUrl {
        self.client = client;
        self
    }

    /// The URL as given: safe to show and record (it holds no password).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The user the broker sees (`default` for Redis without one, `guest` for AMQP).
    pub fn user_or_default(&self) -> &str {
        match (&self.user, self.kind) {
            (Some(u), _) => u,
            (None, BrokerKind::Redis) => "default",
            (None, BrokerKind::Amqp) => "guest",
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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

/// Decodes `%XX` escapes of a URL's user name (invalid escapes are kept as written).
fn percent_decode(text: &str) -> String {
    ::url::form_urlencoded::parse(format!("u={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
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
    fn parses_schemes_and_defaults() {
        let u = BrokerUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((u.kind, u.tls, u.port, u.user_or_default()), (BrokerKind::Redis, false, 6379, "default"));
        let u = BrokerUrl::parse("amqp://bob@rabbit:5673/vh").unwrap();
        assert_eq!((u.kind, u.port, u.user.as_deref(), u.path.as_str()), (BrokerKind::Amqp, 5673, Some("bob"), "vh"));
        let u = BrokerUrl::parse("redis://[::1]:7000/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 7000, "2"));
    }

    #[test]
    fn refuses_passwords_and_never_shows_them() {
        for text in ["redis://u:hunter2@h:6379", "redis://h/0?password=hunter2", "amqp://:hunter2@h"] {
            let err = BrokerUrl::parse(text).unwrap_err();
            assert!(matches!(err, UrlError::PasswordInUrl { .. }), "{text}: {err}");
            let shown = err.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(PASSWORD_ENV), "{shown}");
        }
    }

    #[test]
    fn redacts_even_malformed_text() {
        assert_eq!(redact("rediss://u:p@ss@h:1/0"), "rediss://u:***@h:1/0");
        assert_eq!(redact("redis://h?db=1&password=x#f"), "redis://h?db=1&password=***#f");
        assert_eq!(redact("u:secret@host"), "u:***@host");
        let err = BrokerUrl::parse("redis//u:secret@").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn unknown_scheme_and_no_host_are_plain_errors() {
        assert!(matches!(BrokerUrl::parse("http://h").unwrap_err(), UrlError::Scheme { .. }));
        assert!(matches!(
            BrokerUrl::parse("redis://").unwrap_err(),
            UrlError::NoHost { .. } | UrlError::Malformed { .. }
        ));
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
