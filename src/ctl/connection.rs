//! One client connection: its peer checked (socket) or its token (WebSocket, ws.rs),
//! then requests read (each at most [`MAX_LINE`] bytes, never buffered beyond that)
//! and answered one reply each, until the client goes, the run stops, or it asks to
//! `subscribe` (records) or `subscribe_output` (workers' live output).

use std::sync::Arc;

use super::local::Stream as UnixStream;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::BufReader;

use super::transport::{Line, Transport, UnixLines};
use super::{output, queries, submit, subscribe, Shared, MAX_LINE, OPERATOR};
use crate::core::command::{self, Command};
use crate::core::Input;

/// A request line.
#[derive(Deserialize)]
struct Request {
    /// The command: a palette line (`cancel build`) or a query (`status`).
    cmd: String,
    /// Echoed in the reply, so a client can match replies to requests.
    #[serde(default)]
    id: Value,
    /// `submit`: the file's name (for messages) and its text.
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    toml: Option<String>,
    /// `subscribe`: the first record wanted.
    #[serde(default)]
    from_seq: Option<u64>,
}

/// Serves one control-socket connection to its end (its peer checked first).
pub(crate) async fn serve(stream: UnixStream, shared: Arc<Shared>) {
    let peer = super::local::check_peer(&stream);
    let (read, write) = stream.into_split();
    let mut transport = UnixLines { reader: BufReader::new(read), write };
    if let Err(refusal) = peer {
        let _ = send(&mut transport, &error_reply(&Value::Null, &refusal), &shared).await;
        return;
    }
    serve_requests(transport, shared).await;
}

/// Answers a client's requests until it goes, the run stops, or it subscribes (any
/// transport: the caller has checked who it is).
pub(crate) async fn serve_requests<T: Transport>(mut transport: T, shared: Arc<Shared>) {
    let mut ended = shared.ended.clone();
    loop {
        let line = tokio::select! {
            line = transport.receive(MAX_LINE) => line,
            _ = ended.wait_for(|stopped| *stopped) => return,
        };
        let bytes = match line {
            Ok(Some(Line::Text(bytes))) => bytes,
            Ok(Some(Line::TooLong)) => {
                let why = format!("request over {MAX_LINE} bytes: refused, connection closed");
                let _ = send(&mut transport, &error_reply(&Value::Null, &why), &shared).await;
                return;
            }
            Ok(None) | Err(_) => return,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request: Request = match serde_json::from_slice(&bytes) {
            Ok(request) => request,
            Err(e) => {
                let why = format!("not a request ({e}); send {{\"cmd\": \"status\"}}");
                if send(&mut transport, &error_reply(&Value::Null, &why), &shared).await.is_err() {
                    return;
                }
                continue;
            }
        };
        match request.cmd.split_whitespace().next() {
            Some("subscribe") => {
                let from = request.from_seq.unwrap_or(0);
                subscribe::stream(transport, shared, request.id, from).await;
                return;
            }
            Some("subscribe_output") => {
                output::stream(transport, shared, request.id).await;
                return;
            }
            _ => {}
        }
        let reply = answer(&shared, request).await;
        if send(&mut transport, &reply, &shared).await.is_err() {
            return;
        }
    }
}

/// The reply to one request.
async fn answer(shared: &Arc<Shared>, request: Request) -> Value {
    let id = request.id.clone();
    let words: Vec<&str> = request.cmd.split_whitespace().collect();
    let result: Result<(String, Value), String> = match words.first().copied() {
        None => Err("empty command".into()),
        Some("status") => {
            shared
                .read(|state, next_seq| {
                    let (message, mut data) = queries::status(state);
                    // Where the records so far end (an attaching TUI folds up to here first).
                    data["next_seq"] = next_seq.map_or(Value::Null, |n| json!(n));
                    (message, data)
                })
                .await
        }
        Some("tasks") => {
            let filter = words[1..].join(" ");
            shared.read(move |state, _| queries::tasks(state, &filter)).await
        }
        Some("task") => match words.get(1) {
            None => Err("usage: task ID".into()),
            Some(task) => {
                // The task is copied out of the engine's state; its history and output
                // are read from files off the engine's thread.
                let id = task.to_string();
                let found = shared.read(move |state, _| state.task_index(&id).map(|i| state.tasks[i].clone())).await;
                let (dir, id) = (shared.dir.clone(), task.to_string());
                let recent = shared.recent.text_of(&id);
                match found {
                    Err(e) => Err(e),
                    Ok(None) => Err(format!("no task {id:?}")),
                    Ok(Some(found)) => tokio::task::spawn_blocking(move || queries::task(&found, &dir, &id, recent))
                        .await
                        .unwrap_or_else(|e| Err(format!("task query failed: {e}"))),
                }
            }
        },
        Some("submit") => submit(shared, &request).await,
        Some(_) => operate(shared, &request.cmd).await,
    };
    match result {
        Ok((message, data)) => json!({"ok": true, "id": id, "message": message, "data": data}),
        Err(why) => error_reply(&id, &why),
    }
}

/// An operator command: parsed and checked against the engine's state, then sent.
async fn operate(shared: &Shared, line: &str) -> Result<(String, Value), String> {
    let line = line.to_string();
    let (command, inputs) = shared
        .read(move |state, _| {
            let command = command::parse(state, &line)?.ok_or("empty command")?;
            if let Command::Submit(file) = &command {
                return Err(format!(
                    "submit {file}: send the file's text as {{\"cmd\": \"submit\", \"file\": NAME, \"toml\": TEXT}} (pitboss submit DIR FILE does)"
                ));
            }
            let inputs = command::inputs(state, &command, OPERATOR)?;
            Ok((command, inputs))
        })
        .await??;
    send_inputs(shared, inputs)?;
    Ok((command::done_message(&command), Value::Null))
}

/// `submit`: the TOML's tasks, checked against the run as the engine has it (`submit.rs`),
/// then added.
async fn submit(shared: &Shared, request: &Request) -> Result<(String, Value), String> {
    let toml = request.toml.as_deref().ok_or("submit needs the file's text in \"toml\"")?;
    let file = request.file.as_deref().unwrap_or("submitted tasks");
    let (text, name) = (toml.to_string(), file.to_string());
    let tasks = shared.read(move |state, _| submit::tasks_for(state, &text, &name)).await??;
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    send_inputs(shared, vec![Input::Submit { tasks, source: format!("{OPERATOR}: submit {file}") }])?;
    Ok((format!("submitted {} task(s): {}", ids.len(), ids.join(", ")), json!(ids)))
}

fn send_inputs(shared: &Shared, inputs: Vec<Input>) -> Result<(), String> {
    for input in inputs {
        if !shared.engine.send(input) {
            return Err("the run has stopped".into());
        }
    }
    Ok(())
}

pub(crate) fn error_reply(id: &Value, why: &str) -> Value {
    json!({"ok": false, "id": id, "error": why})
}

/// Sends one message; a client that does not take it within the stall limit is given
/// up on.
pub(crate) async fn send<T: Transport>(transport: &mut T, value: &Value, shared: &Shared) -> std::io::Result<()> {
    match tokio::time::timeout(shared.stall, transport.send_text(value.to_string())).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")),
    }
}
