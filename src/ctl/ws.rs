//! `--listen ADDR`: the control protocol over WebSocket (DESIGN §12), one text message
//! per request, reply or streamed line, served by the same request loop as the socket
//! (connection.rs) through [`Transport`]. The upgrade request must carry
//! `Authorization: Bearer TOKEN`; anything else gets HTTP 401 and nothing more.
//!
//! No TLS here: a non-loopback address is refused unless the operator says a TLS
//! proxy is in front (`--behind-proxy`), because the token travels in clear text.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{http, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::transport::{Line, Transport};
use super::{connection, token, Shared, MAX_LINE};

/// How long a client may take over its upgrade request (a silent one holds no task
/// for long).
const HANDSHAKE: Duration = Duration::from_secs(10);

/// A bound `--listen` address, ready for the control service.
pub struct Listen {
    pub(crate) listener: std::net::TcpListener,
    /// Where it listens (the port resolved when 0 was asked for).
    pub addr: SocketAddr,
}

impl Listen {
    /// Binds `addr` (HOST:PORT). A non-loopback address is refused unless
    /// `behind_proxy`: without TLS the token would cross the network in clear text.
    pub fn bind(addr: &str, behind_proxy: bool) -> Result<Listen, String> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| format!("--listen {addr}: not an address ({e}); use HOST:PORT, e.g. 127.0.0.1:7777"))?
            .collect();
        let first = *addrs.first().ok_or_else(|| format!("--listen {addr}: the name resolves to no address"))?;
        if !behind_proxy {
            if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(format!(
                    "--listen {addr}: {} is not a loopback address; pitboss serves no TLS, so the token would travel in clear text. Listen on 127.0.0.1 and put a TLS proxy in front (then pass --behind-proxy)",
                    open.ip()
                ));
            }
        }
        let listener = std::net::TcpListener::bind(first).map_err(|e| format!("--listen {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("--listen {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("--listen {addr}: {e}"))?;
        Ok(Listen { listener, addr })
    }
}

/// The frame and message limits: a message over [`MAX_LINE`] is refused while its
/// header is read, never buffered.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_LINE)).max_frame_size(Some(MAX_LINE))
}

/// Serves one TCP connection: the upgrade (token checked), then the requests.
pub(crate) async fn serve(stream: TcpStream, token: Arc<str>, shared: Arc<Shared>) {
    // The callback's type is the library's (its error is the response to send).
    #[allow(clippy::result_large_err)]
    let check = move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let header = request.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        if token::authorizes(header, &token) {
            Ok(response)
        } else {
            Err(unauthorized())
        }
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config()));
    let ws = match tokio::time::timeout(HANDSHAKE, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::info!("control websocket: upgrade refused: {e}");
            return;
        }
        Err(_) => return,
    };
    connection::serve_requests(WsMessages(ws), shared).await;
}

fn unauthorized() -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(
        "unauthorized: send Authorization: Bearer TOKEN (the run folder's ctl.token)\n".into(),
    ));
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    response
}

/// A WebSocket as a [`Transport`]: text (or binary) messages are requests.
pub(crate) struct WsMessages<S>(pub WebSocketStream<S>);

impl<S> Transport for WsMessages<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    async fn receive(&mut self, max: usize) -> io::Result<Option<Line>> {
        loop {
            let bytes = match self.0.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(WsError::Capacity(_))) => return Ok(Some(Line::TooLong)),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                // Pings are answered by the library on the next write.
                Some(Ok(_)) => continue,
            };
            return Ok(Some(if bytes.len() > max { Line::TooLong } else { Line::Text(bytes) }));
        }
    }

    async fn send_text(&mut self, text: String) -> io::Result<()> {
        self.0.send(Message::text(text)).await.map_err(io::Error::other)
    }
}
