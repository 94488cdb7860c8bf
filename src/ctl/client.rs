//! A client's connection to a live manager, over its run folder's socket or over
//! `--listen`'s WebSocket: one JSON document per line or per message, both ways.

use std::path::{Path, PathBuf};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;

use super::local::{OwnedReadHalf, OwnedWriteHalf, Stream as UnixStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{http, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::launch::{CTL_SOCKET, CTL_SOCKET_POINTER};

/// Where the manager is.
#[derive(Clone)]
pub enum Target {
    /// The run folder (its control socket).
    Dir(PathBuf),
    /// A `--listen` address (`ws://HOST:PORT`) and its bearer token.
    Ws {
        /// The URL.
        url: String,
        /// The token.
        token: String,
    },
}

impl Target {
    /// How messages name the run.
    pub fn describe(&self) -> String {
        match self {
            Target::Dir(dir) => dir.display().to_string(),
            Target::Ws { url, .. } => url.clone(),
        }
    }
}

/// An open connection.
pub enum Conn {
    /// The control socket.
    Unix {
        /// Reply lines.
        lines: Lines<BufReader<OwnedReadHalf>>,
        /// Requests.
        write: OwnedWriteHalf,
    },
    /// The WebSocket.
    Ws(Box<WebSocketStream<TcpStream>>),
}

impl Conn {
    /// Connects to the manager at `target`; the message says plainly why not.
    pub async fn open(target: &Target) -> Result<Conn, String> {
        match target {
            Target::Dir(dir) => {
                let no_manager = || {
                    format!("no manager is running {} (start it with pitboss resume {})", dir.display(), dir.display())
                };
                let path = socket_path(dir).ok_or_else(no_manager)?;
                let stream = UnixStream::connect(&path).await.map_err(|_| no_manager())?;
                let (read, write) = stream.into_split();
                Ok(Conn::Unix { lines: BufReader::new(read).lines(), write })
            }
            Target::Ws { url, token } => open_ws(url, token).await.map(|ws| Conn::Ws(Box::new(ws))),
        }
    }

    /// Sends one request (a JSON document).
    pub async fn send_line(&mut self, text: &str) -> Result<(), String> {
        match self {
            Conn::Unix { write, .. } => {
                let mut line = text.as_bytes().to_vec();
                line.push(b'\n');
                write.write_all(&line).await.map_err(|e| e.to_string())
            }
            Conn::Ws(ws) => ws.send(Message::text(text)).await.map_err(|e| e.to_string()),
        }
    }

    /// The next reply or streamed line; `None` when the manager closed the connection.
    pub async fn next_line(&mut self) -> Result<Option<String>, String> {
        match self {
            Conn::Unix { lines, .. } => lines.next_line().await.map_err(|e| e.to_string()),
            Conn::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_string())),
                    Some(Ok(Message::Binary(bytes))) => return Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
                    Some(Ok(_)) => continue,
                    // A manager killed mid-stream: the same as a closed socket.
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_))) => return Ok(None),
                    Some(Err(e)) => return Err(e.to_string()),
                }
            },
        }
    }
}

/// The WebSocket upgrade with the bearer token; a refused token and an address where
/// nothing listens are told apart.
async fn open_ws(url: &str, token: &str) -> Result<WebSocketStream<TcpStream>, String> {
    if url.starts_with("wss://") {
        return Err(format!(
            "{url}: pitboss speaks no TLS itself; reach a manager behind a TLS proxy through an SSH tunnel or a local stunnel, as ws://"
        ));
    }
    let mut request = url.into_client_request().map_err(|e| format!("{url}: not a ws://HOST:PORT address ({e})"))?;
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token file holds characters a header cannot carry".to_string())?;
    request.headers_mut().insert(http::header::AUTHORIZATION, bearer);
    let host = request.uri().host().ok_or_else(|| format!("{url}: no host"))?.trim_matches(['[', ']']).to_string();
    let port = request.uri().port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("nothing is listening at {url} ({e}); is the manager running with --listen?"))?;
    match tokio_tungstenite::client_async_with_config(request, stream, Some(super::ws::config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) if response.status() == http::StatusCode::UNAUTHORIZED => {
            Err("the manager refused the token (401); use the ctl.token of the run it serves now".into())
        }
        Err(WsError::Http(response)) => Err(format!("{url}: the server answered HTTP {}", response.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// `DIR/ctl.sock`, or the path its pointer file names.
fn socket_path(dir: &Path) -> Option<PathBuf> {
    let direct = dir.join(CTL_SOCKET);
    if direct.exists() {
        return Some(direct);
    }
    let pointer = std::fs::read_to_string(dir.join(CTL_SOCKET_POINTER)).ok()?;
    Some(PathBuf::from(pointer.trim_end()))
}
