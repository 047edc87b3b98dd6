//! The MCP server: `tools/list` from the table, `tools/call` through
//! [`Client::call_operation`](crate::Client::call_operation).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::tools::error_result;
use crate::{Client, ResponseBody};

/// The TokPortal MCP server: one tool per operation, calls made with `client`.
#[derive(Clone)]
pub struct TokPortalMcp {
    client: Client,
    tools: Arc<Vec<Tool>>,
}

impl TokPortalMcp {
    /// A server exposing every operation of the table, calling the API with `client`.
    pub fn new(client: Client) -> Self {
        let tools = crate::operations::OPERATIONS.iter().map(super::tools::tool).collect();
        Self {
            client,
            tools: Arc::new(tools),
        }
    }
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
        let Some(op) = crate::operations::find(&request.name) else {
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
