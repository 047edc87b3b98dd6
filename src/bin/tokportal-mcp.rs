//! `tokportal-mcp`: the TokPortal API as an MCP server over stdio.
//!
//! One tool per operation (78), named by its operationId, described and typed
//! from the vendored spec. Configure it as the product docs show:
//!
//! ```json
//! {"mcpServers": {"tokportal": {"command": "tokportal-mcp", "env": {"TOKPORTAL_API_KEY": "sk_..."}}}}
//! ```
//!
//! `TOKPORTAL_BASE_URL` overrides the API's address. Logs go to stderr
//! (`RUST_LOG`, default `warn`); stdout carries protocol messages only.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokportal::operations::{HttpMethod, OPERATIONS, Operation};
use tokportal::{Client, ClientBuilder, Error, ResponseBody};

/// `X-TokPortal-Client` of the MCP server.
const IDENTIFIER: &str = concat!("tokportal-rust-mcp/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
struct TokPortalMcp {
    client: Client,
    tools: Arc<Vec<Tool>>,
}

fn tool(op: &Operation) -> Tool {
    let mut description = op.summary.to_owned();
    if let Some(d) = op.description.filter(|d| !d.is_empty() && *d != op.summary) {
        description.push_str("\n\n");
        description.push_str(d);
    }
    description.push_str(&format!("\n\n{} {}", op.method.as_str(), op.path));
    let schema = match op.input_schema() {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    let annotations = ToolAnnotations::with_title(op.summary)
        .read_only(op.method.is_read_only())
        .destructive(op.method == HttpMethod::Delete)
        .idempotent(matches!(
            op.method,
            HttpMethod::Get | HttpMethod::Put | HttpMethod::Delete
        ))
        .open_world(true);
    Tool::new(op.id, description, Arc::new(schema))
        .with_title(op.summary)
        .with_annotations(annotations)
}

/// An error result: the API payload plus diagnostics, as the other official servers report it.
fn error_result(error: &Error) -> CallToolResult {
    let value = match error {
        Error::Api(api) => json!({"payload": api.payload(), "diagnostics": api.diagnostics()}),
        Error::InvalidArgument { field, message, .. } => {
            json!({"error": {"code": "INVALID_ARGUMENT", "field": field, "message": message}})
        }
        Error::MissingApiKey => json!({"error": {"code": "MISSING_API_KEY", "message": error.to_string()}}),
        other => json!({"error": {"code": "REQUEST_FAILED", "message": other.to_string()}}),
    };
    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}

impl ServerHandler for TokPortalMcp {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tokportal-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "TokPortal API tools, one per operation of the public API (operationId names). \
                 Mutating tools accept an idempotency_key; list tools take page/per_page.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(op) = tokportal::operations::find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        tracing::info!(tool = op.id, "tools/call");
        let result = match self.client.call_operation(op.id, arguments).await {
            Ok(response) => {
                let (text, structured) = match response.body {
                    ResponseBody::Json(v) => (v.to_string(), Some(v)),
                    ResponseBody::Text(t) => (t, None),
                    ResponseBody::Empty => (json!({"status": response.meta.status}).to_string(), None),
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured.filter(Value::is_object);
                result
            }
            Err(e) => {
                tracing::warn!(tool = op.id, error = %e, "tool call failed");
                error_result(&e)
            }
        };
        Ok(result.into())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let client = match ClientBuilder::from_env().client_identifier(IDENTIFIER).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("tokportal-mcp: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if std::env::var(tokportal::API_KEY_ENV).is_err() {
        tracing::warn!("TOKPORTAL_API_KEY is not set: only the public operations will work");
    }
    let tools = Arc::new(OPERATIONS.iter().map(tool).collect::<Vec<_>>());
    let server = TokPortalMcp { client, tools };
    let running = match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("tokportal-mcp: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match running.waiting().await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokportal-mcp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
