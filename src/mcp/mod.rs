//! `pitboss mcp DIR` (DESIGN §13): the Model Context Protocol on stdio, so an AI
//! manager (a Claude Code session, any MCP client) can submit, watch, approve, cancel
//! and replay the tasks of a live run. A thin client of the control socket (§12):
//! every tool call is one ctl request on its own connection, checked and recorded by
//! the manager exactly as `pitboss ctl` is (author `operator (ctl)`), and its refusal is
//! the ctl's message, returned as a tool error. The server holds no state of the run,
//! so a manager stopped and resumed under it is simply reached again on the next call.
//!
//! ```text
//! client ─stdin─▶ stdio.rs ─JSON lines─▶ rmcp ─tools/call─▶ tools.rs ─▶ DIR/ctl.sock
//!        ◀stdout─ (one writer) ◀──────── rmcp ◀──── tool result / error ◀─ reply
//! ```
//!
//! Nothing but protocol goes to stdout; logs go to pitboss's own log file.

mod stdio;
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ctl::client::{Conn, Target};

/// How long a tool call waits for the manager's reply.
const REPLY_WAIT: Duration = Duration::from_secs(30);

/// What the server tells the client's model about itself at `initialize`.
const INSTRUCTIONS: &str = "pitboss runs a fleet of worker agents with retries, dead letters, quality gates and a \
crash-proof event log. Plan and decompose the work yourself; hand each piece to pitboss as a task with `submit` \
(TOML [[task]] entries for the run's pools), follow it with `list_tasks`/`get_task`/`run_status`, answer tasks held \
for approval with `approve`/`reject`, and `replay` dead letters once their cause is fixed.";

/// Serves MCP on this process's stdin and stdout for the run at `dir` until the client
/// closes stdin.
pub fn main(dir: &Path) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(serve(dir.to_path_buf(), tokio::io::stdin(), tokio::io::stdout()))
}

/// Serves MCP on `input` and `output` for the run at `dir` until `input` ends.
pub async fn serve<R, W>(dir: PathBuf, input: R, output: W) -> Result<(), String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (ends, writer) = stdio::pump(input, output);
    let server = Pitboss { dir: Arc::new(dir) };
    match server.serve((ends.read, ends.write)).await {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        // A client that goes before (or without) initializing: nothing to serve.
        Err(e) => tracing::info!("mcp: the session did not start: {e}"),
    }
    let _ = writer.await;
    Ok(())
}

/// The server: which run folder it reaches.
#[derive(Clone)]
struct Pitboss {
    dir: Arc<PathBuf>,
}

impl ServerHandler for Pitboss {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("pitboss", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = tools::specs()
            .into_iter()
            .map(|spec| {
                let schema = match spec.schema {
                    Value::Object(schema) => schema,
                    _ => serde_json::Map::new(),
                };
                Tool::new(spec.name, spec.description, Arc::new(schema))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let call = match tools::call(&request.name, &args) {
            Ok(call) => call,
            Err(tools::Refusal::UnknownTool(why)) => return Err(ErrorData::invalid_params(why, None)),
            Err(tools::Refusal::BadArguments(why)) => return Ok(failure(&why).into()),
        };
        let result = match ask(&self.dir, &call.request).await {
            Ok(reply) if reply["ok"] == true => {
                let (message, data) = match &call.filter {
                    Some(filter) => tools::filter_rows(&reply["data"], filter),
                    None => (reply["message"].as_str().unwrap_or_default().to_string(), reply["data"].clone()),
                };
                success(&message, data)
            }
            Ok(reply) => failure(reply["error"].as_str().unwrap_or("the manager refused")),
            Err(why) if request.name == "run_status" => from_folder(&self.dir, &why),
            Err(why) => failure(&why),
        };
        Ok(result.into())
    }
}

/// One ctl request on its own connection, and its reply; the error says plainly why
/// there is none (no manager at `dir`, the run stopped, a reply too slow).
async fn ask(dir: &Path, request: &Value) -> Result<Value, String> {
    let mut conn = Conn::open(&Target::Dir(dir.to_path_buf())).await?;
    conn.send_line(&request.to_string()).await.map_err(|e| format!("control socket: {e}"))?;
    let reply = match tokio::time::timeout(REPLY_WAIT, conn.next_line()).await {
        Err(_) => {
            return Err(format!("the manager of {} did not answer within {}s", dir.display(), REPLY_WAIT.as_secs()))
        }
        Ok(Err(e)) => return Err(format!("control socket: {e}")),
        Ok(Ok(None)) => return Err("the manager closed the connection without a reply (did the run stop?)".into()),
        Ok(Ok(Some(line))) => line,
    };
    serde_json::from_str(&reply).map_err(|e| format!("control socket: a reply that is not JSON ({e})"))
}

/// `run_status` with no manager: the run as its folder's log has it, marked as such;
/// a folder that is no run is the error.
fn from_folder(dir: &Path, no_manager: &str) -> CallToolResult {
    match crate::io::journal::replay(&dir.join(crate::io::journal::LOG_FILE)) {
        Ok((state, _)) => {
            let (message, mut data) = crate::ctl::queries::status(&state);
            data["live"] = json!(false);
            success(&format!("{no_manager}; from its folder: {message}"), data)
        }
        Err(e) => failure(&format!("{no_manager}; and its folder cannot be read: {e}")),
    }
}

/// A tool's result: the message for the model to read, the reply's data as JSON text
/// beside it and as structured content.
fn success(message: &str, data: Value) -> CallToolResult {
    let mut content = vec![ContentBlock::text(message)];
    if !data.is_null() {
        content.push(ContentBlock::text(data.to_string()));
    }
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(json!({"message": message, "data": data}));
    result
}

/// A tool error (`isError`): the ctl's message, as `pitboss ctl` prints it.
fn failure(why: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(why)])
}
