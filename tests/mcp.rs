//! `pitboss mcp DIR` driven over its own stdin and stdout, as an MCP client would:
//! JSON-RPC 2.0 lines against a live headless manager (the real binary both sides).
//! The npm MCP Inspector drives it too, in tests/mcp_inspector.rs.

mod common;
mod ctl_common;

use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};

use serde_json::{json, Value};

use common::{finish_within, read_events, KillOnPanic, Lines, Scratch};
use ctl_common::{Live, POOLS};

/// A `pitboss mcp DIR` process and its pipes.
struct Mcp {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Lines,
    next_id: u64,
    _guard: KillOnPanic,
}

impl Mcp {
    fn start(scratch: &Scratch, dir: &std::path::Path) -> Mcp {
        let err = std::fs::File::create(scratch.path().join("mcp.err")).expect("stderr file");
        let mut child = scratch
            .pitboss()
            .arg("mcp")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start pitboss mcp");
        let guard = KillOnPanic::new(&[child.id()]);
        let lines = Lines::new(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        Mcp { child: Some(child), stdin, lines, next_id: 0, _guard: guard }
    }

    /// Writes one raw line to the server.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).and_then(|()| stdin.write_all(b"\n")).expect("write to pitboss mcp");
    }

    /// The next line the server writes, parsed (every line must be JSON-RPC).
    #[track_caller]
    fn next(&mut self, what: &str) -> Value {
        let line = self.lines.next_within(what).unwrap_or_else(|| panic!("{what}: pitboss mcp closed its stdout"));
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "{what}: {value}");
        value
    }

    /// A request; its response (matched by id).
    #[track_caller]
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string());
        loop {
            let reply = self.next(method);
            // Anything else (a notification of the server's) is passed over.
            if reply["id"] == id {
                return reply;
            }
        }
    }

    /// `tools/call`; its result (a JSON-RPC error fails the test).
    #[track_caller]
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        assert!(reply.get("error").is_none(), "{tool}: {reply}");
        reply["result"].clone()
    }

    fn initialize(&mut self) -> Value {
        let reply = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tests/mcp.rs", "version": "1"}}),
        );
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        reply
    }

    /// Closes stdin and waits for the server to end by itself.
    fn close(&mut self) -> std::process::Output {
        drop(self.stdin.take());
        finish_within(self.child.take().expect("running"), "pitboss mcp after stdin closed")
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            common::kill_pid(child.id() as i32);
            let _ = finish_within(child, "pitboss mcp (killed)");
        }
    }
}

fn text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or_default().to_string()
}

fn live_run() -> Live {
    // A task that never ends keeps the run going while the tests submit to it.
    Live::start(&format!("{POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n"))
}

#[test]
fn initialize_lists_the_tools_and_bad_input_gets_errors_while_the_server_lives() {
    let mut live = live_run();
    let mut mcp = Mcp::start(&live.scratch, &live.dir);
    let init = mcp.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "pitboss", "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    assert!(init["result"]["capabilities"]["tools"].is_object(), "{init}");

    let list = mcp.request("tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap_or_else(|| panic!("{list}"));
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["submit", "list_tasks", "get_task", "approve", "reject", "cancel", "replay", "run_status"]);
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }

    // A line that is not JSON: a parse error with a null id, and the server goes on.
    mcp.send("this is not json {");
    let parse = mcp.next("the parse error");
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], Value::Null, "{parse}");

    // The manager's refusal, in the ctl's words, as a tool error.
    let refused = mcp.call("cancel", json!({"id": "nope"}));
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(text(&refused), "no task \"nope\"");
    // Bad arguments never reach the manager; the message names the argument.
    let bad = mcp.call("get_task", json!({}));
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(text(&bad).contains("`id` is required"), "{bad}");
    // No such tool: a JSON-RPC error (invalid params), not a crash.
    let unknown = mcp.request("tools/call", json!({"name": "rm_rf", "arguments": {}}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    // Still alive and answering, from the live manager.
    let status = mcp.call("run_status", json!({}));
    assert_eq!(status["isError"], false, "{status}");
    assert_eq!(status["structuredContent"]["data"]["counts"]["running"], 1, "{status}");

    let out = mcp.close();
    assert!(out.status.success(), "pitboss mcp ended with {}", out.status);
    live.stop();
}

#[test]
fn submit_runs_the_task_and_the_call_is_recorded_as_an_operators_submit() {
    let mut live = live_run();
    let mut mcp = Mcp::start(&live.scratch, &live.dir);
    mcp.initialize();
    let toml = "[[task]]\nid = \"q1\"\npool = \"quick\"\n";
    let submitted = mcp.call("submit", json!({"toml": toml, "name": "plan-1"}));
    assert_eq!(submitted["isError"], false, "{submitted}");
    assert_eq!(text(&submitted), "submitted 1 task(s): q1");
    live.wait_state("q1", "completed");

    let task = mcp.call("get_task", json!({"id": "q1"}));
    assert_eq!(task["structuredContent"]["data"]["result"], json!({"done": true}), "{task}");
    let held = mcp.call("list_tasks", json!({"pool": "quick", "state": "completed"}));
    assert_eq!(held["structuredContent"]["data"][0]["id"], "q1", "{held}");

    // A bad entry: the file's problem at its line, and nothing added.
    let bad = mcp.call("submit", json!({"toml": "[[task]]\nid = \"q2\"\npool = \"nowhere\"\n"}));
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(text(&bad).contains("mcp:3:"), "{bad}");

    // Recorded as any ctl submit is: by the operator, under the name given.
    let events = read_events(&live.dir);
    let sources: Vec<&str> =
        events.iter().filter(|e| e["type"] == "tasks_submitted").filter_map(|e| e["source"].as_str()).collect();
    assert_eq!(sources, ["operator (ctl): submit plan-1"]);
    let cancelled = mcp.call("cancel", json!({"id": "long"}));
    assert_eq!(text(&cancelled), "long: cancelled", "{cancelled}");
    // "long" was the run's last task: cancelling it ends the run, and the manager (and
    // its socket) with it, so the log is read once the manager is gone.
    mcp.close();
    live.finish();
    let events = read_events(&live.dir);
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "task_cancelled" && e["task"] == "long")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["operator (ctl)"]);
}

#[test]
fn without_a_manager_each_call_says_so_and_run_status_reads_the_folder() {
    let mut live = live_run();
    live.stop();
    let mut mcp = Mcp::start(&live.scratch, &live.dir);
    mcp.initialize();
    let cancel = mcp.call("cancel", json!({"id": "long"}));
    assert_eq!(cancel["isError"], true, "{cancel}");
    assert!(text(&cancel).starts_with("no manager is running"), "{cancel}");
    let status = mcp.call("run_status", json!({}));
    assert_eq!(status["isError"], false, "{status}");
    assert!(text(&status).contains("from its folder: run"), "{status}");
    assert_eq!(status["structuredContent"]["data"]["live"], false, "{status}");
    mcp.close();

    // A folder that is no run at all: an error that says both.
    let empty = Scratch::new();
    let mut mcp = Mcp::start(&empty, &empty.path().join("nothing"));
    mcp.initialize();
    let status = mcp.call("run_status", json!({}));
    assert_eq!(status["isError"], true, "{status}");
    assert!(text(&status).contains("no event log here"), "{status}");
    mcp.close();
}
