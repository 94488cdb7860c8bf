//! `[run] broker` (DESIGN §7): which broker a run's queues live on, and the pure
//! reading of a broker URL that `config` (the workflow key) and `io` (the `--broker`
//! flag, `pitboss worker`) share.
//!
//! A password never travels in a URL: argv is visible in `ps` and the URL is recorded
//! in the log's first record. So a URL that carries one (`user:pw@`, `?password=`) is
//! refused, and the password comes from an environment variable or a file
//! ([`PasswordSource`]). What is recorded is therefore the URL as written.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::tls_files::{CaFile, ClientCert};

/// The environment variable a broker password is read from by default.
pub const PASSWORD_ENV: &str = "PITBOSS_BROKER_PASSWORD";
/// How long a delivery may sit unacknowledged without a heartbeat before the manager
/// reclaims it (`[run] broker_lease`).
pub const DEFAULT_LEASE_MS: u64 = 30_000;
/// How long a worker's registration lives without a refresh before it counts as
/// vanished.
pub const DEFAULT_TTL_MS: u64 = 15_000;

/// The run's broker, as recorded in the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerSpec {
    /// The URL, which never holds a password ([`BrokerUrl::parse`] refuses one).
    pub url: String,
    /// Where the password is read at connect time (never the password itself).
    #[serde(default, skip_serializing_if = "PasswordSource::is_none")]
    pub password: PasswordSource,
    /// Reclaim lease.
    pub lease_ms: u64,
    /// Worker registration lifetime.
    pub ttl_ms: u64,
}

impl BrokerSpec {
    /// A spec for `url` with the default lease and TTL, the password read from
    /// [`PASSWORD_ENV`] when that is set.
    pub fn new(url: &BrokerUrl) -> BrokerSpec {
        BrokerSpec {
            url: url.to_string(),
            password: PasswordSource::Env(PASSWORD_ENV.to_string()),
            lease_ms: DEFAULT_LEASE_MS,
            ttl_ms: DEFAULT_TTL_MS,
        }
    }

    /// The broker's kind, for the header (`redis`, `rabbitmq`); `broker` when the
    /// recorded URL no longer reads (a newer scheme).
    pub fn label(&self) -> &'static str {
        BrokerUrl::parse(&self.url).map(|u| u.kind.label()).unwrap_or("broker")
    }
}

/// Where a broker password comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSource {
    /// No password (the broker needs none).
    #[default]
    None,
    /// This environment variable, when it is set (unset: no password).
    Env(String),
    /// This file's content, trailing newline removed.
    File(PathBuf),
}

impl PasswordSource {
    /// True for [`PasswordSource::None`].
    pub fn is_none(&self) -> bool {
        *self == PasswordSource::None
    }
}

/// Which broker a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Redis Streams (`redis://`, `rediss://`).
    Redis,
    /// RabbitMQ (`amqp://`, `amqps://`).
    Amqp,
}

impl BrokerKind {
    /// The name an operator knows it by.
    pub fn label(self) -> &'static str {
        match self {
            BrokerKind::Redis => "redis",
            BrokerKind::Amqp => "rabbitmq",
        }
    }

    fn default_port(self, tls: bool) -> u16 {
        match (self, tls) {
            (BrokerKind::Redis, _) => 6379,
            (BrokerKind::Amqp, false) => 5672,
            (BrokerKind::Amqp, true) => 5671,
        }
    }
}

/// A broker URL, read: `SCHEME://[USER@]HOST[:PORT][/PATH][?QUERY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Redis or RabbitMQ.
    pub kind: BrokerKind,
    /// True for `rediss://` and `amqps://`.
    pub tls: bool,
    /// The user name, if any.
    pub user: Option<String>,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port, the scheme's default when the URL has none.
    pub port: u16,
    /// What follows the authority (a Redis database `/0`, an AMQP vhost), as written.
    pub path: String,
    /// The query (without `?`), as written.
    pub query: Option<String>,
    /// The CA to trust for TLS instead of the system's store ([`BrokerUrl::with_ca`]):
    /// a file on this host, not part of the URL's text (never shown or recorded).
    pub ca: Option<CaFile>,
    /// The client certificate to present (mTLS), from a file on this host too.
    pub client: Option<ClientCert>,
}

/// Why a broker URL is refused. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerUrlError {
    /// Not `redis`, `rediss`, `amqp` or `amqps` (the scheme as written, or empty).
    Scheme(String),
    /// The URL carries a password.
    Password,
    /// No host.
    NoHost,
    /// The port is not a number in 1..=65535.
    Port(String),
    /// Something else is malformed (what).
    Malformed(&'static str),
}

impl fmt::Display for BrokerUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUrlError::Scheme(s) if s.is_empty() => {
                write!(f, "a broker URL starts with redis://, rediss://, amqp:// or amqps://")
            }
            BrokerUrlError::Scheme(s) => {
                write!(f, "unknown broker scheme `{s}` (redis, rediss, amqp or amqps)")
            }
            BrokerUrlError::Password => write!(
                f,
                "the broker URL holds a password, which would be visible in `ps` and recorded in the log: \
                 remove it and put it in {PASSWORD_ENV} or a file (broker_password_file, --broker-password-file)"
            ),
            BrokerUrlError::NoHost => write!(f, "the broker URL has no host"),
            BrokerUrlError::Port(p) => write!(f, "the broker URL's port `{p}` is not a number in 1..=65535"),
            BrokerUrlError::Malformed(what) => write!(f, "malformed broker URL: {what}"),
        }
    }
}

impl std::error::Error for BrokerUrlError {}

impl BrokerUrl {
    /// Reads a broker URL, refusing one that carries a password.
    pub fn parse(text: &str) -> Result<BrokerUrl, BrokerUrlError> {
        let (scheme, rest) = text.split_once("://").ok_or(BrokerUrlError::Scheme(String::new()))?;
        let (kind, tls) = match scheme.to_ascii_lowercase().as_str() {
            "redis" => (BrokerKind::Redis, false),
            "rediss" => (BrokerKind::Redis, true),
            "amqp" => (BrokerKind::Amqp, false),
            "amqps" => (BrokerKind::Amqp, true),
            _ => return Err(BrokerUrlError::Scheme(scheme.chars().take(20).collect())),
        };
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BrokerUrlError::Malformed("it holds spaces or control characters"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q.to_string())),
            None => (rest, None),
        };
        if query.as_deref().is_some_and(has_password_param) {
            return Err(BrokerUrlError::Password);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, String::new()),
        };
        // The last `@` ends the user info (a password may itself hold `@`).
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((info, hp)) => {
                if info.contains(':') {
                    return Err(BrokerUrlError::Password);
                }
                (Some(info.to_string()).filter(|u| !u.is_empty()), hp)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(BrokerUrlError::NoHost);
        }
        let port = match port {
            None => kind.default_port(tls),
            Some(p) => p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| BrokerUrlError::Port(p.to_string()))?,
        };
        Ok(BrokerUrl { kind, tls, user, host: host.to_string(), port, path, query, ca: None, client: None })
    }

    /// The same URL, trusting `ca` (read by `io::broker::trust`).
    pub fn with_ca(mut self, ca: Option<CaFile>) -> BrokerUrl {
        self.ca = ca;
        self
    }

    /// The same URL, presenting `client` when the broker asks for a certificate.
    pub fn with_client(mut self, client: Option<ClientCert>) -> BrokerUrl {
        self.client = client;
        self
    }

    /// The user name with its `%XX` escapes decoded, if the URL names one.
    pub fn user_name(&self) -> Option<String> {
        self.user.as_deref().map(percent_decode)
    }

    /// The user the broker sees: the URL's, else `default` (Redis) or `guest` (AMQP).
    pub fn user_or_default(&self) -> String {
        self.user_name().unwrap_or_else(|| {
            match self.kind {
                BrokerKind::Redis => "default",
                BrokerKind::Amqp => "guest",
            }
            .to_string()
        })
    }
}

/// Decodes `%XX` escapes (an invalid one is kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `password=` (or `pass=`) among a query's parameters.
fn has_password_param(query: &str) -> bool {
    query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or_default().to_ascii_lowercase();
        key == "password" || key == "pass"
    })
}

/// `HOST[:PORT]`, `[V6]:PORT`.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), BrokerUrlError> {
    if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or(BrokerUrlError::Malformed("an unclosed `[`"))?;
        return match after {
            "" => Ok((host, None)),
            _ => after.strip_prefix(':').map(|p| (host, Some(p))).ok_or(BrokerUrlError::Malformed("text after `]`")),
        };
    }
    Ok(match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    })
}

impl fmt::Display for BrokerUrl {
    /// The URL with its port spelled out (it holds no password to redact).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.kind, self.tls) {
            (BrokerKind::Redis, false) => "redis",
            (BrokerKind::Redis, true) => "rediss",
            (BrokerKind::Amqp, false) => "amqp",
            (BrokerKind::Amqp, true) => "amqps",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port)?,
            false => write!(f, "{}:{}", self.host, self.port)?,
        }
        write!(f, "{}", self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_scheme_with_its_default_port() {
        let u = BrokerUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((u.kind, u.tls, u.port, u.host.as_str()), (BrokerKind::Redis, false, 6379, "127.0.0.1"));
        let u = BrokerUrl::parse("rediss://ops@cache.example:6380/2").unwrap();
        assert_eq!((u.tls, u.user.as_deref(), u.port, u.path.as_str()), (true, Some("ops"), 6380, "/2"));
        assert_eq!(BrokerUrl::parse("amqp://h").unwrap().port, 5672);
        assert_eq!(BrokerUrl::parse("amqps://h").unwrap().port, 5671);
        let u = BrokerUrl::parse("redis://[::1]:7000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 7000));
        assert_eq!(u.to_string(), "redis://[::1]:7000");
        assert_eq!(
            BrokerUrl::parse("amqp://u@h/%2f?heartbeat=5").unwrap().to_string(),
            "amqp://u@h:5672/%2f?heartbeat=5"
        );
    }

    #[test]
    fn users_paths_and_default_users() {
        let u = BrokerUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((u.user_or_default().as_str(), u.user_name()), ("default", None));
        let u = BrokerUrl::parse("amqp://bob@rabbit:5673/vh").unwrap();
        assert_eq!(
            (u.kind, u.port, u.user_or_default().as_str(), u.path.as_str()),
            (BrokerKind::Amqp, 5673, "bob", "/vh")
        );
        assert_eq!(BrokerUrl::parse("amqp://h").unwrap().user_or_default(), "guest");
        let u = BrokerUrl::parse("redis://[::1]:7000/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 7000, "/2"));
        // Escapes in a user name are decoded for the login, kept as written in the URL.
        let u = BrokerUrl::parse("redis://ops%2Bci@h").unwrap();
        assert_eq!((u.user_name().as_deref(), u.to_string().as_str()), (Some("ops+ci"), "redis://ops%2Bci@h:6379"));
        assert_eq!(BrokerUrl::parse("redis://a%zz@h").unwrap().user_or_default(), "a%zz");
    }

    #[test]
    fn a_password_anywhere_in_the_url_is_refused_without_echoing_it() {
        for url in [
            "redis://u:s3cret@h",
            "redis://:s3cret@h:6379",
            "amqp://u:s3cret@h/v",
            "redis://h?password=s3cret",
            "redis://h/0?db=1&PASS=s3cret",
            "rediss://u:p@ss@h:1/0",
        ] {
            let err = BrokerUrl::parse(url).unwrap_err();
            assert_eq!(err, BrokerUrlError::Password, "{url}");
            assert!(!err.to_string().contains("s3cret"));
            assert!(err.to_string().contains(PASSWORD_ENV));
        }
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        assert!(matches!(BrokerUrl::parse("http://h"), Err(BrokerUrlError::Scheme(s)) if s == "http"));
        assert!(matches!(BrokerUrl::parse("localhost:6379"), Err(BrokerUrlError::Scheme(s)) if s.is_empty()));
        assert_eq!(BrokerUrl::parse("redis://"), Err(BrokerUrlError::NoHost));
        assert_eq!(BrokerUrl::parse("redis://h:0"), Err(BrokerUrlError::Port("0".into())));
        assert_eq!(BrokerUrl::parse("redis://h:99999"), Err(BrokerUrlError::Port("99999".into())));
        assert!(matches!(BrokerUrl::parse("redis://[::1"), Err(BrokerUrlError::Malformed(_))));
        assert!(matches!(BrokerUrl::parse("redis://h x"), Err(BrokerUrlError::Malformed(_))));
    }

    #[test]
    fn the_spec_records_where_the_password_is_not_the_password() {
        let spec = BrokerSpec::new(&BrokerUrl::parse("redis://h").unwrap());
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"url":"redis://h:6379","password":{"env":"PITBOSS_BROKER_PASSWORD"},"lease_ms":30000,"ttl_ms":15000}"#
        );
        assert_eq!(serde_json::from_str::<BrokerSpec>(&json).unwrap(), spec);
        assert_eq!(spec.label(), "redis");
    }
}
