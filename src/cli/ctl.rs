//! `pitboss ctl DIR COMMAND…`, `pitboss ctl DIR subscribe [--from N]` and
//! `pitboss submit DIR FILE`: clients of a live manager's control socket (DESIGN §12).
//! Exit 0 when the manager did it, 1 when it refused, 2 when no manager runs DIR.

use crate::io::platform::BlockingStream as UnixStream;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::run::CmdResult;
use super::{usage, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::core::escape::{escape_json, escape_line};
use crate::launch::{CTL_SOCKET, CTL_SOCKET_POINTER};

/// How long a request waits for its reply.
const REPLY_WAIT: Duration = Duration::from_secs(30);

/// The socket of the manager running `dir`, or the message saying none is.
pub fn connect(dir: &Path) -> Result<UnixStream, (u8, String)> {
    let no_manager = || {
        (
            EXIT_USAGE,
            format!("no manager is running {} (start it with pitboss resume {})", dir.display(), dir.display()),
        )
    };
    let path = socket_path(dir).ok_or_else(no_manager)?;
    UnixStream::connect(&path).map_err(|_| no_manager())
}

/// `DIR/ctl.sock`, or the path its pointer file names (a folder path too long for a
/// socket).
fn socket_path(dir: &Path) -> Option<PathBuf> {
    let direct = dir.join(CTL_SOCKET);
    if direct.exists() {
        return Some(direct);
    }
    let pointer = std::fs::read_to_string(dir.join(CTL_SOCKET_POINTER)).ok()?;
    Some(PathBuf::from(pointer.trim_end()))
}

/// Sends one request and reads its reply.
pub fn request(stream: &mut UnixStream, request: &Value) -> Result<Value, (u8, String)> {
    let failed = |e: std::io::Error| usage(format!("control socket: {e}"));
    let _ = stream.set_read_timeout(Some(REPLY_WAIT));
    let mut line = request.to_string().into_bytes();
    line.push(b'\n');
    stream.write_all(&line).map_err(failed)?;
    let mut reply = String::new();
    BufReader::new(&*stream).read_line(&mut reply).map_err(failed)?;
    if reply.is_empty() {
        return Err(usage("the manager closed the connection without a reply (did the run stop?)"));
    }
    serde_json::from_str(&reply).map_err(|e| usage(format!("control socket: a reply that is not JSON ({e})")))
}

/// `pitboss ctl DIR WORDS…` (`--json` anywhere prints the raw reply; `subscribe
/// [--from N]` streams records).
pub fn ctl(dir: &Path, words: &[String]) -> CmdResult {
    let json_out = words.iter().any(|w| w == "--json");
    let mut words: Vec<&str> = words.iter().map(String::as_str).filter(|w| *w != "--json").collect();
    if words.first() == Some(&"subscribe") {
        let from = match words.iter().position(|w| *w == "--from") {
            Some(at) => {
                let n = words.get(at + 1).and_then(|n| n.parse::<u64>().ok());
                let n = n.ok_or_else(|| usage("usage: pitboss ctl DIR subscribe [--from SEQ]"))?;
                words.drain(at..at + 2);
                n
            }
            None => 0,
        };
        return subscribe(dir, from, &mut |line| print_streamed(line, json_out));
    }
    if words.is_empty() {
        return Err(usage("usage: pitboss ctl DIR COMMAND… (status, tasks, task ID, cancel ID, retry ID, …)"));
    }
    let mut stream = connect(dir)?;
    let reply = request(&mut stream, &json!({"cmd": words.join(" ")}))?;
    Ok(show_reply(&reply, json_out))
}

/// `pitboss submit DIR FILE`.
pub fn submit(dir: &Path, file: &Path) -> CmdResult {
    let toml = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut stream = connect(dir)?;
    // Absolute: the manager may run in another folder, and relative paths in the
    // file (gate programs, schema files) resolve next to it.
    let name = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()).display().to_string();
    let reply = request(&mut stream, &json!({"cmd": "submit", "file": name, "toml": toml}))?;
    Ok(show_reply(&reply, false))
}

/// Prints a reply; the exit code it stands for.
fn show_reply(reply: &Value, json_out: bool) -> u8 {
    let ok = reply["ok"].as_bool() == Some(true);
    if json_out {
        println!("{}", escape_json(&reply.to_string()));
    } else if ok {
        if let Some(message) = reply["message"].as_str() {
            for line in message.lines() {
                println!("{}", escape_line(line));
            }
        }
    } else {
        eprintln!("{}", escape_line(reply["error"].as_str().unwrap_or("refused")));
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// Streams `subscribe` from `from` to `each` (every record line, then the last line)
/// until the run stops.
pub fn subscribe(dir: &Path, from: u64, each: &mut dyn FnMut(&Value)) -> CmdResult {
    let mut stream = connect(dir)?;
    let failed = |e: std::io::Error| usage(format!("control socket: {e}"));
    let mut line = json!({"cmd": "subscribe", "from_seq": from}).to_string().into_bytes();
    line.push(b'\n');
    stream.write_all(&line).map_err(failed)?;
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(failed)?;
        let value: Value = serde_json::from_str(&line).map_err(|e| usage(format!("control socket: {e}")))?;
        each(&value);
        if value.get("ok").is_some() {
            // The last line: the run stopped (or the manager refused).
            return Ok(if value["ok"].as_bool() == Some(true) { EXIT_OK } else { EXIT_FAILED });
        }
    }
    Err(usage("the manager went away before the run stopped"))
}

/// One streamed line: a record as `events` prints it, or the last line.
fn print_streamed(line: &Value, json_out: bool) {
    if line.get("seq").is_some() {
        super::events::print_value(line, json_out);
    } else if json_out {
        println!("{}", escape_json(&line.to_string()));
    } else if let Some(error) = line["error"].as_str() {
        eprintln!("{}", escape_line(error));
    } else {
        eprintln!("{}", escape_line(line["message"].as_str().unwrap_or("")));
    }
}
