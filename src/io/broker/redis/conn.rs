//! The two connections a Redis transport holds: a `ConnectionManager` for commands
//! (short response timeout, reconnects by itself) and separate multiplexed connections
//! for blocking reads (a `BLOCK` read on the command connection would stall every other
//! command behind it, and would trip its short timeout). Also the mapping of redis
//! errors to [`BrokerError`], keeping the broker's words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo, RedisError};
use tokio::sync::Mutex;

use crate::io::broker::trust;
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::BrokerError;

/// How long a blocking read waits on the server for new entries.
pub const BLOCK_MS: usize = 1000;
/// Response timeout of the command connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect timeout (an unreachable host is reported within this).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Response timeout of a blocking read: the block time plus slack, so a silent
/// partition is noticed instead of waiting forever.
const BLOCKING_TIMEOUT: Duration = Duration::from_millis(BLOCK_MS as u64 + 4000);

/// A client and its lazily made connections.
pub struct Conns {
    client: Client,
    /// The same server without credentials, to ask it in its own words why a login
    /// was refused (redis-rs replaces them with "Password authentication failed").
    probe: Option<(Client, Option<String>, Password)>,
    shown: String,
    user: String,
    /// The CA file trusted (for the words of a refused certificate).
    ca: Option<PathBuf>,
    cmd: Mutex<Option<ConnectionManager>>,
}

impl Conns {
    /// Builds the client (no I/O).
    pub fn new(url: &BrokerUrl, password: Option<&Password>) -> Result<Conns, BrokerError> {
        #[cfg(feature = "tls")]
        if url.tls {
            // redis builds rustls configs with the process-wide provider; "already
            // installed" is fine (another transport or the embedder did it).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        crate::io::broker::url::check_tls(url)?;
        let shown = url.to_string();
        let info = shown
            .as_str()
            .into_connection_info()
            .map_err(|e| BrokerError::Protocol { broker: shown.clone(), detail: format!("bad URL: {e}") })?;
        let bare = info.clone();
        let info = match password {
            Some(pw) => {
                let settings = info.redis_settings().clone().set_password(pw.expose());
                info.set_redis_settings(settings)
            }
            None => info,
        };
        let ca = url.ca.as_ref().map(|c| c.path().to_path_buf());
        let client = open_client(url, info).map_err(|e| map_err(&shown, &url.user_or_default(), ca.as_deref(), e))?;
        let probe = match (password, open_client(url, bare)) {
            (Some(pw), Ok(c)) => Some((c, url.user_name(), pw.clone())),
            _ => None,
        };
        Ok(Conns { client, probe, shown, user: url.user_or_default(), ca, cmd: Mutex::new(None) })
    }

    /// The redacted URL.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Maps a redis error to ours.
    pub fn err(&self, e: RedisError) -> BrokerError {
        map_err(&self.shown, &self.user, self.ca.as_deref(), e)
    }

    /// (Re)makes the command connection and checks it with a PING, so a wrong password
    /// or a dead server is an error here.
    pub async fn connect(&self) -> Result<ConnectionManager, BrokerError> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let mut conn = match self.client.get_connection_manager_with_config(config).await {
            Ok(c) => c,
            Err(e) if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed) => {
                return Err(match self.refusal_words().await {
                    Some(words) => BrokerError::Refused { broker: self.shown.clone(), user: self.user.clone(), words },
                    None => self.err(e),
                });
            }
            Err(e) => return Err(self.err(e)),
        };
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| self.err(e))?;
        *self.cmd.lock().await = Some(conn.clone());
        Ok(conn)
    }

    /// The server's own answer to our login (WRONGPASS …), asked on a bare connection.
    async fn refusal_words(&self) -> Option<String> {
        let (client, user, password) = self.probe.as_ref()?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.ok()?;
        let mut auth = redis::cmd("AUTH");
        if let Some(u) = user {
            auth.arg(u);
        }
        auth.arg(password.expose());
        let err = auth.query_async::<()>(&mut conn).await.err()?;
        Some(match (err.code(), err.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => err.to_string(),
        })
    }

    /// The command connection (made on first use).
    pub async fn cmd(&self) -> Result<ConnectionManager, BrokerError> {
        if let Some(c) = self.cmd.lock().await.as_ref() {
            return Ok(c.clone());
        }
        self.connect().await
    }

    /// A new connection for blocking reads.
    pub async fn blocking(&self) -> Result<MultiplexedConnection, BrokerError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCKING_TIMEOUT));
        self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(|e| self.err(e))
    }
}

/// A client for `info`. A TLS URL with a CA file trusts that CA's certificates in place
/// of the system's store (redis-rs takes one root store or the other, not both), and
/// one with a client certificate presents it.
fn open_client(url: &BrokerUrl, info: ConnectionInfo) -> redis::RedisResult<Client> {
    #[cfg(feature = "tls")]
    if url.tls && (url.ca.is_some() || url.client.is_some()) {
        let client_tls = url.client.as_ref().map(|c| redis::ClientTlsConfig {
            client_cert: c.cert_pem().as_bytes().to_vec(),
            client_key: c.key_pem().as_bytes().to_vec(),
        });
        let root_cert = url.ca.as_ref().map(|ca| ca.pem().as_bytes().to_vec());
        return Client::build_with_tls(info, redis::TlsCertificates { client_tls, root_cert });
    }
    #[cfg(not(feature = "tls"))]
    let _ = url;
    Client::open(info)
}

/// A slot for one blocking connection, dropped on error so the next read reconnects.
#[derive(Default)]
pub struct BlockingSlot(Mutex<Option<MultiplexedConnection>>);

impl BlockingSlot {
    /// Runs `cmd` on the slot's connection (made if missing); drops it on error.
    pub async fn query(&self, conns: &Conns, cmd: &redis::Cmd) -> Result<redis::Value, BrokerError> {
        let mut slot = self.0.lock().await;
        let mut conn = match slot.take() {
            Some(c) => c,
            None => conns.blocking().await?,
        };
        match cmd.query_async::<redis::Value>(&mut conn).await {
            Ok(v) => {
                *slot = Some(conn);
                Ok(v)
            }
            Err(e) => Err(conns.err(e)),
        }
    }

    /// Drops the connection (after a reconnect, so reads start afresh).
    pub async fn reset(&self) {
        self.0.lock().await.take();
    }
}

/// True when the error is a missing group or stream (the data is gone).
pub fn is_nogroup(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

fn map_err(broker: &str, user: &str, ca: Option<&Path>, e: RedisError) -> BrokerError {
    let words = e.to_string();
    let refused = matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"));
    if refused {
        return BrokerError::Refused { broker: broker.to_string(), user: user.to_string(), words };
    }
    if is_nogroup(&e) {
        return BrokerError::DataLost { broker: broker.to_string() };
    }
    let transient = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || matches!(e.code(), Some("LOADING" | "MASTERDOWN" | "TRYAGAIN"));
    if transient {
        return BrokerError::Unreachable { broker: broker.to_string(), reason: trust::hint(words, ca) };
    }
    BrokerError::Protocol { broker: broker.to_string(), detail: words }
}
