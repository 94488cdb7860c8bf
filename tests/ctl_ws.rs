//! `run --listen 127.0.0.1:PORT`: the control protocol over WebSocket behind a bearer
//! token (ctl/ws.rs), and `pitboss attach ws://…`.

mod common;
mod ctl_common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Error as WsError, Message, WebSocket};

use common::{deadline, descendants, finish_within, kill_pid, read_events, wait_for, OutputWithin, Scratch};
use ctl_common::{eventually, stderr, POOLS};

/// A headless manager with `--listen 127.0.0.1:0`.
struct Listening {
    scratch: Scratch,
    dir: PathBuf,
    child: Option<Child>,
    /// `ws://127.0.0.1:PORT`, as the manager printed it.
    url: String,
    token: String,
}

impl Listening {
    fn start(workflow: &str) -> Listening {
        let scratch = Scratch::new();
        let dir = scratch.run_dir();
        let file = scratch.write("workflow.toml", workflow);
        let err_path = scratch.path().join("manager.err");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let child = scratch
            .pitboss()
            .args(["run", "--headless", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&dir)
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start pitboss");
        let mut live = Listening { scratch, dir, child: Some(child), url: String::new(), token: String::new() };
        let mut printed = String::new();
        let said = wait_for(deadline(), || {
            printed = std::fs::read_to_string(&err_path).unwrap_or_default();
            printed.contains("bearer token")
        });
        assert!(said, "the manager never printed its WebSocket address; stderr:\n{printed}");
        let line = printed.lines().find(|l| l.contains("bearer token")).expect("the line");
        live.url = line.split_whitespace().find(|w| w.starts_with("ws://")).expect("a ws:// address").to_string();
        live.token = line.rsplit(' ').next().expect("the token").to_string();
        live
    }

    fn token_file(&self) -> PathBuf {
        self.dir.join("ctl.token")
    }

    fn connect(&self, authorization: Option<&str>) -> Result<WebSocket<TcpStream>, WsError> {
        let mut request = self.url.as_str().into_client_request().expect("request");
        if let Some(value) = authorization {
            request.headers_mut().insert("Authorization", value.parse().expect("header"));
        }
        let tcp = TcpStream::connect(self.url.trim_start_matches("ws://")).expect("tcp connect");
        tcp.set_read_timeout(Some(deadline())).expect("timeout");
        tungstenite::client::client(request, tcp).map(|(ws, _)| ws).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("a blocking handshake was interrupted"),
        })
    }

    fn authorized(&self) -> WebSocket<TcpStream> {
        self.connect(Some(&format!("Bearer {}", self.token))).expect("the right token is let in")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let tree = descendants(child.id() as i32);
            kill_pid(child.id() as i32);
            tree.into_iter().for_each(kill_pid);
            let _ = finish_within(child, "the manager (SIGKILL)");
        }
    }
}

/// Sends one request and reads one reply.
fn request(ws: &mut WebSocket<TcpStream>, request: &str) -> Value {
    ws.send(Message::text(request)).expect("send");
    next_json(ws)
}

fn next_json(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("not a text message: {other:?}"),
        }
    }
}

fn workflow() -> String {
    format!("{POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n[[task]]\nid = \"early\"\npool = \"quick\"\n")
}

#[test]
fn with_the_token_status_a_command_and_subscribe_from_0_work_and_the_token_file_is_private() {
    let live = Listening::start(&workflow());
    let mode = std::fs::metadata(live.token_file()).expect("ctl.token").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "ctl.token must be private");
    let stored = std::fs::read_to_string(live.token_file()).expect("ctl.token");
    assert_eq!(stored.trim(), live.token, "the printed token is the stored one");
    assert_eq!(live.token.len(), 64);

    let mut ws = live.authorized();
    let status = request(&mut ws, r#"{"cmd":"status","id":7}"#);
    assert_eq!((status["ok"].clone(), status["id"].clone()), (json!(true), json!(7)), "{status}");
    eventually("early to complete", || request(&mut ws, r#"{"cmd":"task early"}"#)["data"]["state"] == "completed");
    let paused = request(&mut ws, r#"{"cmd":"pause quick"}"#);
    assert_eq!(paused["ok"], true, "{paused}");
    eventually("pool_paused in the log", || read_events(&live.dir).iter().any(|e| e["type"] == "pool_paused"));

    let mut sub = live.authorized();
    sub.send(Message::text(r#"{"cmd":"subscribe","from_seq":0}"#)).expect("send");
    let log = read_events(&live.dir);
    let mut streamed = Vec::new();
    while streamed.len() < log.len() {
        let line = next_json(&mut sub);
        assert!(line.get("seq").is_some(), "a record, not {line}");
        streamed.push(line);
    }
    let seqs: Vec<u64> = streamed.iter().map(|r| r["seq"].as_u64().expect("a seq")).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order, none skipped: {seqs:?}");
    let events: Vec<Value> = streamed.iter().map(|r| r["event"].clone()).collect();
    assert_eq!(events, log, "subscribe from 0 is the log");
}

#[test]
fn no_token_or_a_wrong_token_gets_401_and_changes_nothing() {
    let live = Listening::start(&workflow());
    let mut ws = live.authorized();
    eventually("long to run", || request(&mut ws, r#"{"cmd":"task long"}"#)["data"]["state"] == "running");
    for header in
        [None, Some("Bearer 0000"), Some(format!("Bearer {}x", live.token).as_str()), Some(live.token.as_str())]
    {
        match live.connect(header) {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401, "{header:?}"),
            Err(other) => panic!("{header:?}: expected HTTP 401, got {other}"),
            Ok(_) => panic!("{header:?}: let in without the right token"),
        }
    }
    // A refused upgrade by hand: the status line is 401 and the connection ends there.
    let mut raw = TcpStream::connect(live.url.trim_start_matches("ws://")).expect("tcp");
    raw.set_read_timeout(Some(deadline())).expect("timeout");
    let upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer nope\r\n\r\n";
    std::io::Write::write_all(&mut raw, upgrade.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut raw, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    let _ = std::io::Write::write_all(&mut raw, b"{\"cmd\":\"cancel long\"}\n");

    // Nothing changed: the long task still runs, nothing was cancelled.
    assert_eq!(request(&mut ws, r#"{"cmd":"task long"}"#)["data"]["state"], "running");
    let cancels = read_events(&live.dir).iter().filter(|e| e["type"].as_str().unwrap_or("").contains("cancel")).count();
    assert_eq!(cancels, 0, "a refused client changed the run");

    // The client: a wrong token file is a plain refusal, exit 2.
    let wrong = live.scratch.write("wrong.token", "deadbeef\n");
    let out =
        live.scratch.pitboss().arg("attach").arg(&live.url).arg("--token-file").arg(&wrong).output_within("attach");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the manager refused the token (401)"), "{}", stderr(&out));
}

#[test]
fn attach_to_an_address_where_nothing_listens_says_so_with_exit_2() {
    let scratch = Scratch::new();
    // A port that was free a moment ago (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let token = scratch.write("t", "abc\n");
    let url = format!("ws://127.0.0.1:{port}");
    let out = scratch.pitboss().arg("attach").arg(&url).arg("--token-file").arg(&token).output_within("attach");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing is listening"), "{}", stderr(&out));
    let out = scratch.pitboss().arg("attach").arg(&url).output_within("attach without a token file");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--token-file"), "{}", stderr(&out));
}

#[test]
fn a_non_loopback_listen_is_refused_unless_behind_a_proxy() {
    let scratch = Scratch::new();
    let file = scratch.write("w.toml", &workflow());
    let out = scratch
        .pitboss()
        .args(["run", "--headless", "--listen", "0.0.0.0:0", "--state-dir"])
        .arg(scratch.run_dir())
        .arg(&file)
        .output_within("run --listen 0.0.0.0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("clear text"), "{}", stderr(&out));
    assert!(!scratch.run_dir().exists(), "a refused --listen leaves no run folder");
}

#[test]
fn garbage_gets_an_error_reply_and_a_2_mib_message_an_error_and_close() {
    let live = Listening::start(&workflow());
    let mut ws = live.authorized();
    let reply = request(&mut ws, "this is not json");
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("not a request"), "{reply}");
    assert_eq!(request(&mut ws, r#"{"cmd":"status"}"#)["ok"], true, "the connection survives garbage");
    let reply = request(&mut ws, r#"{"cmd":"no-such-command"}"#);
    assert_eq!(reply["ok"], false, "{reply}");

    let big = format!("{{\"cmd\":\"status\",\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    // The manager may close while the message is still being written.
    let _ = ws.send(Message::text(big));
    let mut saw_error = false;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let reply: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_eq!(reply["ok"], false, "{reply}");
                assert!(reply["error"].as_str().unwrap().contains("over"), "{reply}");
                saw_error = true;
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(saw_error, "an oversized message gets an error reply before the close");
    // The manager is fine.
    assert_eq!(request(&mut live.authorized(), r#"{"cmd":"status"}"#)["ok"], true);
}

/// A worker that prints `hello-live` once `go` exists, then waits for `done`.
fn talker(scratch: &Scratch) -> String {
    let go = scratch.path().join("go");
    let done = scratch.path().join("done");
    let script = format!(
        "cat >/dev/null; while [ ! -e '{}' ]; do sleep 0.05; done; echo hello-live; while [ ! -e '{}' ]; do sleep 0.05; done; echo '{{}}'",
        go.display(),
        done.display()
    );
    format!("{POOLS}\n{}\n[[task]]\nid = \"talker\"\npool = \"talk\"\n", common::sh_pool("talk", &script, ""))
}

#[test]
fn subscribe_output_over_the_socket_streams_a_running_workers_lines() {
    let scratch = Scratch::new();
    let workflow = talker(&scratch);
    let mut live = ctl_common::Live::start_in(scratch, None, &workflow, &[]);
    live.wait_state("talker", "running");
    let mut stream = ctl_common::connect(&live.dir);
    std::io::Write::write_all(&mut stream, b"{\"cmd\":\"subscribe_output\",\"id\":1}\n").expect("write");
    let mut reader = std::io::BufReader::new(stream);
    let ready = ctl_common::read_json_line(&mut reader);
    assert_eq!((ready["ok"].clone(), ready["id"].clone()), (json!(true), json!(1)), "{ready}");
    live.scratch.write("go", "");
    let mut seen = String::new();
    while !seen.contains("hello-live") {
        let line = ctl_common::read_json_line(&mut reader);
        assert_eq!(line["output"]["task"], "talker", "{line}");
        seen.push_str(line["output"]["text"].as_str().unwrap_or(""));
    }
    // The stream ends with the run: its last line says so.
    live.scratch.write("done", "");
    loop {
        let line = ctl_common::read_json_line(&mut reader);
        if line.get("end").is_some() {
            break;
        }
    }
    assert_eq!(live.finish().status.code(), Some(0));
}

#[test]
fn attach_over_ws_shows_a_running_workers_live_output_and_q_detaches() {
    use common::pty::Terminal;
    let scratch = Scratch::new();
    let workflow = talker(&scratch);
    let live = Listening::start(&workflow);
    let mut ws = live.authorized();
    eventually("talker to run", || request(&mut ws, r#"{"cmd":"task talker"}"#)["data"]["state"] == "running");
    let mut cmd = live.scratch.pitboss();
    cmd.arg("attach").arg(&live.url).arg("--token-file").arg(live.token_file());
    cmd.env("PITBOSS_CONFIG", live.scratch.path().join("config"));
    let mut t = Terminal::spawn(cmd, 120, 40);
    let limit = std::time::Duration::from_secs(30);
    t.wait_for(limit, "the dashboard", |sc| sc.contains("talker") && sc.contains("Workers"));
    t.send_keys(":inspect talker");
    t.enter();
    t.wait_for(limit, "the detail of the running task", |sc| sc.contains("talker running"));
    scratch.write("go", "");
    t.wait_for(limit, "the worker's live line in the detail", |sc| sc.contains("hello-live"));
    t.esc();
    t.wait_for(limit, "the dashboard again", |sc| sc.contains("Workers (") && !sc.contains("History"));
    t.send_keys("q");
    t.wait_for(limit, "the detach question", |sc| sc.contains("Detach? The run keeps going."));
    t.send_keys("y");
    assert_eq!(t.wait_exit(limit), 0);
    assert_eq!(request(&mut ws, r#"{"cmd":"task talker"}"#)["data"]["state"], "running", "detaching stopped the run");
}
