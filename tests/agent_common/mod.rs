//! A local stand-in for the Anthropic Messages API, for tests that run the real
//! `claude` CLI offline (docs/AGENT-CLIS.md §1.5, §7): plain HTTP/1.1 on 127.0.0.1 with
//! keep-alive, `HEAD /` (the CLI's connectivity probe), `POST /v1/messages` answered
//! as server-sent events, and `POST /v1/messages/count_tokens`.
//!
//! Keywords in the conversation choose the answer:
//! - `PLEASE_FAIL`: HTTP 400 with `stand-in refuses: PLEASE_FAIL` as the API's message;
//! - `USE_TOOL`: first a `Bash` tool call (`touch standin-file`), then text once a
//!   tool result is in the conversation;
//! - `LOOP_TOOL`: the same `Bash` tool call every time (an agent in a loop);
//! - `BLOCK_ONCE`: the first such request is held until [`StandIn::release`] (or the
//!   stand-in is dropped), so a test can kill the manager mid-request; later ones answer;
//! - `REPLY_JSON`: the text is a JSON document `{"ok":true,"messages":N}`;
//! - anything else: the text `STANDIN-OK messages=N` (N: messages in the request).
//!
//! Every request's `messages` array is kept ([`StandIn::requests`]) so tests can see
//! what the CLI sent (a resumed conversation carries the earlier turns).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// What the stand-in shares with its connection threads.
#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Value>>,
    seen: Condvar,
    released: Mutex<bool>,
    release: Condvar,
    blocked_once: AtomicBool,
    stopping: AtomicBool,
}

/// The running stand-in; dropping it stops it (held requests are released).
pub struct StandIn {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts on a port the OS picks.
    pub fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("stand-in address").port();
        let shared = Arc::new(Shared::default());
        let for_accept = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if for_accept.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = for_accept.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        StandIn { port, shared, accept: Some(accept) }
    }

    /// `http://127.0.0.1:PORT` (the CLI's `ANTHROPIC_BASE_URL`: no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `messages` of every request so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until some request's messages contain `needle`.
    pub fn wait_for_request(&self, needle: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut requests = self.shared.requests.lock().unwrap();
        loop {
            if requests.iter().any(|r| r.to_string().contains(needle)) {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            requests = self.shared.seen.wait_timeout(requests, left).unwrap().0;
        }
    }

    /// Lets a held `BLOCK_ONCE` request go on (answered; its client may be gone).
    pub fn release(&self) {
        *self.shared.released.lock().unwrap() = true;
        self.shared.release.notify_all();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.release();
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One connection: requests until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while !shared.stopping.load(Ordering::SeqCst) {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            break;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        let reply = answer(&method, &path, &body, shared);
        if writer.write_all(&reply).is_err() {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn http(code: u16, ctype: &str, body: &str) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    format!("HTTP/1.1 {code} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

fn answer(method: &str, path: &str, body: &[u8], shared: &Shared) -> Vec<u8> {
    if method == "HEAD" {
        return http(200, "text/plain", "");
    }
    let path = path.split('?').next().unwrap_or("");
    if method != "POST" {
        return http(404, "application/json", r#"{"error":{"message":"no GET here"}}"#);
    }
    if path.ends_with("/messages/count_tokens") {
        return http(200, "application/json", r#"{"input_tokens":42}"#);
    }
    if !path.ends_with("/messages") {
        return http(
            404,
            "application/json",
            &json!({"error": {"message": format!("unknown path {path}")}}).to_string(),
        );
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let messages = request.get("messages").cloned().unwrap_or(Value::Array(Vec::new()));
    let text = messages.to_string();
    {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(messages.clone());
        shared.seen.notify_all();
    }
    if text.contains("BLOCK_ONCE") && !shared.blocked_once.swap(true, Ordering::SeqCst) {
        let mut released = shared.released.lock().unwrap();
        while !*released {
            released = shared.release.wait(released).unwrap();
        }
    }
    if text.contains("PLEASE_FAIL") {
        let error = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "stand-in refuses: PLEASE_FAIL"}});
        return http(400, "application/json", &error.to_string());
    }
    let count = messages.as_array().map_or(0, Vec::len);
    let tool = json!({"type": "tool_use", "id": "toolu_1", "name": "Bash",
                      "input": {"command": "touch standin-file", "description": "touch"}});
    let block = if text.contains("LOOP_TOOL") || (text.contains("USE_TOOL") && !text.contains("tool_result")) {
        tool
    } else if text.contains("REPLY_JSON") {
        json!({"type": "text", "text": json!({"ok": true, "messages": count}).to_string()})
    } else {
        json!({"type": "text", "text": format!("STANDIN-OK messages={count}")})
    };
    sse(&request, block)
}

/// One assistant message as the Messages API streams it.
fn sse(request: &Value, block: Value) -> Vec<u8> {
    let usage = json!({"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    let (start, delta, stop) = if block["type"] == "text" {
        (json!({"type": "text", "text": ""}), json!({"type": "text_delta", "text": block["text"]}), "end_turn")
    } else {
        let mut start = block.clone();
        start["input"] = json!({});
        (start, json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}), "tool_use")
    };
    let message = json!({"id": "msg_standin", "type": "message", "role": "assistant", "model": request.get("model"),
                         "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage});
    let events = [
        ("message_start", json!({"type": "message_start", "message": message})),
        ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": start})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": delta})),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 20}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let body: String = events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect();
    http(200, "text/event-stream", &body)
}

/// The environment that points a `claude` at `stand_in`, isolated in `home`.
pub fn claude_env(stand_in: &StandIn, home: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.display().to_string()),
        ("ANTHROPIC_BASE_URL".into(), stand_in.base_url()),
        ("ANTHROPIC_API_KEY".into(), "test".into()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
    ]
}
