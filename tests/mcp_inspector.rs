//! Issue 17's must-show: a real MCP client from npm, the MCP Inspector in CLI mode,
//! lists pitboss's tools, submits a task to a live run through `pitboss mcp DIR`, and
//! reads its result. Each Inspector call starts `pitboss mcp` itself over stdio (its
//! `--cli COMMAND ARGS…` form), initializes, makes the one call, prints the result as
//! JSON and ends both.
//!
//! The Inspector is pinned at 1.0.3: its 2.x needs Node.js 22.19, and the machines run
//! Node.js 20 (1.0.3 declares 22.7.5 but runs on 20; seen here). Its separately
//! published `inspector-cli` package alone does not start (it looks for the package
//! beside it), so the whole package is installed.

mod common;
mod ctl_common;
mod npm_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use common::{OutputWithin, Scratch};
use ctl_common::{Live, POOLS};

const INSPECTOR: &str = "@modelcontextprotocol/inspector@1.0.3";

/// One Inspector call against `pitboss mcp dir`: its stdout as JSON (a failed call
/// fails the test with both streams).
#[track_caller]
fn inspect(inspector: &Path, scratch: &Scratch, dir: &Path, args: &[&str]) -> Value {
    let home = scratch.path().join("home");
    let out = Command::new(inspector)
        .arg("--cli")
        // The server's environment: pitboss's own log in the scratch folder.
        .args(["-e", &format!("PITBOSS_HOME={}", home.display())])
        .arg(env!("CARGO_BIN_EXE_pitboss"))
        .arg("mcp")
        .arg(dir)
        .args(args)
        .env("PITBOSS_HOME", &home)
        .stdin(std::process::Stdio::null())
        .output_within("the MCP Inspector");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mcp-inspector {args:?}: {}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("mcp-inspector {args:?}: not JSON ({e}): {stdout}"))
}

fn inspector() -> Option<PathBuf> {
    npm_common::installed(INSPECTOR, "mcp-inspector")
}

#[test]
fn the_mcp_inspector_lists_the_tools_submits_a_task_and_reads_its_result() {
    let Some(inspector) = inspector() else { return };
    // A task that never ends keeps the run live while the client submits to it.
    let mut live = Live::start(&format!("{POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n"));

    let listed = inspect(&inspector, &live.scratch, &live.dir, &["--method", "tools/list"]);
    let names: Vec<&str> =
        listed["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["submit", "list_tasks", "get_task", "approve", "reject", "cancel", "replay", "run_status"]);

    let toml = "[[task]]\nid = \"from-ai\"\npool = \"quick\"\npayload = { prompt = \"say done\" }\n";
    let submitted = inspect(
        &inspector,
        &live.scratch,
        &live.dir,
        &["--method", "tools/call", "--tool-name", "submit", "--tool-arg", &format!("toml={toml}")],
    );
    assert_eq!(submitted["isError"], false, "{submitted}");
    assert_eq!(submitted["content"][0]["text"], "submitted 1 task(s): from-ai", "{submitted}");

    // The run does it; the client sees it complete and reads its result.
    live.wait_state("from-ai", "completed");
    let got = inspect(
        &inspector,
        &live.scratch,
        &live.dir,
        &["--method", "tools/call", "--tool-name", "get_task", "--tool-arg", "id=from-ai"],
    );
    assert_eq!(got["isError"], false, "{got}");
    assert_eq!(got["content"][0]["text"], "from-ai: completed, 1 attempt(s)", "{got}");
    assert_eq!(got["structuredContent"]["data"]["result"], json!({"done": true}), "{got}");

    // A refusal reaches the client as a tool error with the ctl's message.
    let refused = inspect(
        &inspector,
        &live.scratch,
        &live.dir,
        &["--method", "tools/call", "--tool-name", "approve", "--tool-arg", r#"ids=["from-ai"]"#],
    );
    assert_eq!(refused["isError"], true, "{refused}");
    let why = refused["content"][0]["text"].as_str().unwrap_or_default();
    assert!(why.contains("only a task held for approval can be approved"), "{refused}");
    live.stop();
}
