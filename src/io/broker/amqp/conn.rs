//! Opening a RabbitMQ connection with a name operators (and tests) can find, and the
//! mapping of lapin errors to [`BrokerError`], keeping the broker's words.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ErrorKind};

use crate::io::broker::trust;
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::BrokerError;

/// Connect timeout (an unreachable or silent host is reported within this).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for any one broker answer (a silent partition fails, never hangs).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// AMQP's code for a refused login or a refused permission.
const ACCESS_REFUSED: u16 = 403;

/// Where and as whom to connect (no I/O).
pub struct Target {
    uri: AMQPUri,
    /// A CA file's certificates, trusted on top of the system's store (`amqps://`).
    tls: OwnedTLSConfig,
    /// That CA file (for the words of a refused certificate).
    ca: Option<PathBuf>,
    shown: String,
    user: String,
}

impl Target {
    /// Reads the URL, with the password from its own source (never from the URL).
    pub fn new(url: &BrokerUrl, password: Option<&Password>) -> Result<Target, BrokerError> {
        crate::io::broker::url::check_tls(url)?;
        let shown = url.to_string();
        let mut uri: AMQPUri = shown
            .parse()
            .map_err(|e| BrokerError::Protocol { broker: shown.clone(), detail: format!("bad URL: {e}") })?;
        let user = url.user_or_default();
        uri.authority.userinfo.username = user.clone();
        uri.authority.userinfo.password = match password {
            Some(pw) => pw.expose().to_string(),
            // RabbitMQ's stock account, as the URL's default user says.
            None if url.user.is_none() => "guest".to_string(),
            None => String::new(),
        };
        let tls = tls_config(url);
        let ca = url.ca.as_ref().filter(|_| url.tls).map(|c| c.path().to_path_buf());
        Ok(Target { uri, tls, ca, shown, user })
    }

    /// The redacted URL.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens a connection named `name`.
    pub async fn open(&self, name: &str) -> Result<Connection, BrokerError> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime().map_err(|e| self.err(&e))?;
        let connect = Connection::connect_uri_with_config(self.uri.clone(), props, self.tls.clone(), runtime);
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.err(&e)),
            Err(_) => Err(BrokerError::Unreachable {
                broker: self.shown.clone(),
                reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Maps a lapin error to ours.
    pub fn err(&self, e: &lapin::Error) -> BrokerError {
        map_err(&self.shown, &self.user, self.ca.as_deref(), e)
    }

    /// Runs one broker call with [`CALL_TIMEOUT`], mapping its error.
    pub async fn call<T>(&self, what: &str, fut: impl Future<Output = lapin::Result<T>>) -> Result<T, BrokerError> {
        match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.err(&e)),
            Err(_) => Err(BrokerError::Unreachable {
                broker: self.shown.clone(),
                reason: format!("{what}: no answer within {} s", CALL_TIMEOUT.as_secs()),
            }),
        }
    }

    /// The error for a consumer that ended (its channel or connection closed).
    pub fn ended(&self, what: &str) -> BrokerError {
        BrokerError::Unreachable { broker: self.shown.clone(), reason: format!("{what}: the consumer was closed") }
    }
}

/// The TLS settings for `url`: its CA file's certificates, if any (lapin adds them to
/// the store it loads), and its client certificate (PEM chain and PEM key); a plain URL
/// never looks at them.
fn tls_config(url: &BrokerUrl) -> OwnedTLSConfig {
    if !url.tls {
        return OwnedTLSConfig::default();
    }
    let cert_chain = url.ca.as_ref().map(|ca| ca.pem().to_string());
    let identity = url
        .client
        .as_ref()
        .map(|c| OwnedIdentity::PKCS8 { pem: c.cert_pem().as_bytes().to_vec(), key: c.key_pem().as_bytes().to_vec() });
    OwnedTLSConfig { identity, cert_chain }
}

/// True when the error is the broker saying a queue or exchange does not exist.
pub fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 404)
}

/// True when the broker refused because another connection holds the queue
/// exclusively (RESOURCE_LOCKED).
pub fn is_locked(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 405)
}

fn map_err(broker: &str, user: &str, ca: Option<&Path>, e: &lapin::Error) -> BrokerError {
    match e.kind() {
        ErrorKind::ProtocolError(p) if p.get_id() == ACCESS_REFUSED => BrokerError::Refused {
            broker: broker.to_string(),
            user: user.to_string(),
            words: p.get_message().to_string(),
        },
        ErrorKind::ProtocolError(p) if e.is_amqp_soft_error() => {
            BrokerError::Protocol { broker: broker.to_string(), detail: p.get_message().to_string() }
        }
        ErrorKind::AuthProviderError(words) => {
            BrokerError::Refused { broker: broker.to_string(), user: user.to_string(), words: words.clone() }
        }
        ErrorKind::ParsingError(_)
        | ErrorKind::SerialisationError(_)
        | ErrorKind::InvalidProtocolVersion(_)
        | ErrorKind::ChannelsLimitReached
        | ErrorKind::FutureCompleted
        | ErrorKind::NoDefaultRuntime => BrokerError::Protocol { broker: broker.to_string(), detail: e.to_string() },
        // Connection-level errors, closed channels and I/O: reconnecting may cure them.
        _ => BrokerError::Unreachable { broker: broker.to_string(), reason: trust::hint(e.to_string(), ca) },
    }
}
