//! One MCP tool per operation of the table: its name, description, input
//! schema and annotations; and how a failed call is reported.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::Error;
use crate::operations::{HttpMethod, Operation};

/// How tools are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// By operationId (`getCreditBalance`), the default.
    #[default]
    OperationId,
    /// As TokPortal's hosted server names them (`tokportal_get_credit_balance`),
    /// so agent rules written for it work unchanged.
    Official,
}

impl Naming {
    /// The tool name of `op`.
    pub fn name(self, op: &Operation) -> String {
        match self {
            Naming::OperationId => op.id.to_owned(),
            Naming::Official => format!("tokportal_{}", op.rust_method),
        }
    }
}

/// The input schema of `op`'s tool: [`Operation::input_schema`] without
/// `request_id` (the server sets its own), with `dry_run` where it applies.
pub fn input_schema(op: &Operation) -> JsonObject {
    match op.input_schema() {
        Value::Object(mut map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                props.remove(crate::operations::flat_keys::REQUEST_ID);
            }
            map
        }
        _ => JsonObject::new(),
    }
}

/// The tool's description: the spec's description, the method and path, and
/// what it spends. The summary is the tool's title and is not repeated.
pub fn description(op: &Operation) -> String {
    let mut text = match op
        .description
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != op.summary)
    {
        Some(d) => format!("{d} ({} {})", op.method.as_str(), op.path),
        None => format!("{} {}", op.method.as_str(), op.path),
    };
    if let Some(what) = op.hints().spends_credits {
        text.push_str(&format!(
            " Spends credits for {what} (prices: getCreditCosts), debited at once and not refunded: \
             confirm with the user or preview with dry_run."
        ));
    }
    text
}

/// The MCP tool of an operation.
pub fn tool(op: &Operation, naming: Naming) -> Tool {
    let hints = op.hints();
    // Only what differs from MCP's defaults (not read-only, destructive, not
    // idempotent, open world): the list is paid for in every conversation.
    let annotations = if op.method.is_read_only() {
        ToolAnnotations::default().read_only(true)
    } else {
        let mut a = ToolAnnotations::default().destructive(hints.destructive);
        if matches!(op.method, HttpMethod::Put | HttpMethod::Delete) {
            a = a.idempotent(true);
        }
        a
    };
    let mut tool = Tool::new(naming.name(op), description(op), Arc::new(input_schema(op)))
        .with_title(op.summary)
        .with_annotations(annotations);
    if let Some(Value::Object(schema)) = op.success_schema_json.and_then(|s| serde_json::from_str(s).ok()) {
        let Value::Object(schema) = without_prose(Value::Object(schema)) else {
            return tool;
        };
        tool.output_schema = Some(Arc::new(schema));
    }
    tool
}

/// A schema without its descriptions and examples: the shape a client checks
/// `structuredContent` against, at a fraction of the size.
fn without_prose(schema: Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "example" | "examples" | "title"))
                // `properties` maps names to schemas: a property named `description` stays.
                .map(|(k, v)| {
                    let v = if k == "properties" {
                        match v {
                            Value::Object(props) => {
                                Value::Object(props.into_iter().map(|(n, s)| (n, without_prose(s))).collect())
                            }
                            other => other,
                        }
                    } else {
                        without_prose(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_prose).collect()),
        other => other,
    }
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
        other => match other.idempotency_key() {
            // The call may have been applied: the key lets the agent send it
            // again (`idempotency_key` in the arguments) without a second charge.
            Some(key) => json!({"error": {"code": "REQUEST_FAILED", "message": other.to_string(),
                                          "idempotency_key": key,
                                          "resend": "call the tool again with the same arguments and this idempotency_key: it is charged at most once"}}),
            None => json!({"error": {"code": "REQUEST_FAILED", "message": other.to_string()}}),
        },
    };
    // What the API wrote is the API's: a key or a webhook secret it echoes
    // (`Invalid API key sk_live_…`) never reaches the agent.
    let mut value = value;
    crate::secret::scrub_json(&mut value);
    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API error that echoes the caller's key or a webhook secret reaches
    /// the agent without them, in the text and the structured content.
    #[test]
    fn an_error_answer_never_carries_a_secret() {
        let body = br#"{"error":{"code":"UNAUTHORIZED","message":"Invalid API key sk_live_LEAKME123",
            "details":{"key":"sk_live_LEAKME123","hint":"whsec_abcSECRET"}}}"#;
        let api = crate::ApiError::from_parts(http::StatusCode::UNAUTHORIZED, &http::HeaderMap::new(), body);
        let result = error_result(&Error::Api(Box::new(api)));
        let structured = result.structured_content.clone().unwrap().to_string();
        let text = serde_json::to_string(&result.content).unwrap();
        for shown in [&structured, &text] {
            assert!(!shown.contains("LEAKME") && !shown.contains("abcSECRET"), "{shown}");
            assert!(shown.contains("Invalid API key [redacted]"), "{shown}");
        }
    }
}
