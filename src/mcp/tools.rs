//! One MCP tool per operation of the table: its name, description, input
//! schema and annotations; and how a failed call is reported.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::Error;
use crate::operations::{HttpMethod, Operation};

/// The MCP tool of an operation, named by its operationId.
pub fn tool(op: &Operation) -> Tool {
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
pub fn error_result(error: &Error) -> CallToolResult {
    let value = match error {
        Error::Api(api) => json!({"payload": api.payload(), "diagnostics": api.diagnostics()}),
        Error::InvalidArgument { field, .. } => {
            json!({"error": {"code": "INVALID_ARGUMENT", "field": field, "message": error.to_string(),
                             "errors": error.invalid_fields()}})
        }
        Error::MissingApiKey => json!({"error": {"code": "MISSING_API_KEY", "message": error.to_string()}}),
        other => json!({"error": {"code": "REQUEST_FAILED", "message": other.to_string()}}),
    };
    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}
