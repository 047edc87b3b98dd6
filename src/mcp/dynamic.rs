//! `--dynamic`: three meta-tools instead of one tool per operation, so an
//! agent pays a few kilobytes of context instead of the whole list, and still
//! reaches every exposed operation: search, describe, call.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::tools::{Naming, description, input_schema};
use super::toolsets::{Selection, toolset_name};
use crate::operations::Operation;

/// What a meta-tool call comes to.
pub enum Step {
    /// The answer itself (a search, a description).
    Answer(CallToolResult),
    /// An operation to call with these arguments, as its own tool would be.
    Call(&'static Operation, JsonObject),
}

const SEARCH: &str = "search_operations";
const DESCRIBE: &str = "describe_operation";
pub(crate) const CALL: &str = "call_operation";

fn object(value: Value) -> Arc<JsonObject> {
    Arc::new(match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    })
}

/// The meta-tools.
pub fn tools() -> Vec<Tool> {
    let toolsets = super::toolsets::toolset_names().join(", ");
    vec![
        Tool::new(
            SEARCH,
            format!(
                "Find TokPortal operations by words (all must match the name, summary, description or path) \
                 and/or toolset ({toolsets}). Returns names, summaries and whether each only reads."
            ),
            object(json!({"type": "object", "properties": {
                "query": {"type": "string"},
                "toolset": {"type": "string"}
            }, "additionalProperties": false})),
        )
        .with_annotations(ToolAnnotations::default().read_only(true).open_world(false)),
        Tool::new(
            DESCRIBE,
            "The description and input schema of one operation, by name.",
            object(json!({"type": "object", "properties": {"name": {"type": "string"}},
                "required": ["name"], "additionalProperties": false})),
        )
        .with_annotations(ToolAnnotations::default().read_only(true).open_world(false)),
        Tool::new(
            CALL,
            "Call one operation by name with its arguments (as describe_operation gives them); they are \
             checked before anything is sent. Paid operations debit credits at once, never refunded: confirm \
             with the user or set dry_run: true in the arguments to preview.",
            object(json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "arguments": {"type": "object"}
            }, "required": ["name"], "additionalProperties": false})),
        )
        .with_annotations(ToolAnnotations::default().destructive(true).open_world(true)),
    ]
}

fn text(value: &Value) -> Result<CallToolResult, McpError> {
    let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value.clone());
    Ok(result)
}

fn string_arg<'a>(arguments: &'a JsonObject, key: &str) -> Result<Option<&'a str>, McpError> {
    match arguments.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(McpError::invalid_params(format!("`{key}` must be a string"), None)),
    }
}

/// Runs the meta-tool `name` over the exposed operations (`exposed` finds
/// one by either name).
pub fn step(
    selection: &Selection,
    naming: Naming,
    exposed: impl Fn(&str) -> Option<&'static Operation>,
    name: &str,
    arguments: JsonObject,
) -> Result<Step, McpError> {
    let find = |arguments: &JsonObject| -> Result<_, McpError> {
        let name =
            string_arg(arguments, "name")?.ok_or_else(|| McpError::invalid_params("`name` is required", None))?;
        exposed(name).ok_or_else(|| {
            McpError::invalid_params(format!("no operation `{name}` on this server; use {SEARCH}"), None)
        })
    };
    match name {
        SEARCH => {
            let words: Vec<String> = string_arg(&arguments, "query")?
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_lowercase)
                .collect();
            let toolset = string_arg(&arguments, "toolset")?.map(toolset_name);
            let found: Vec<Value> = selection
                .operations()
                .iter()
                .filter(|op| toolset.as_ref().is_none_or(|t| *t == toolset_name(op.tag)))
                .filter(|op| {
                    let haystack = format!(
                        "{} {} {} {}",
                        op.id,
                        op.summary,
                        op.description.unwrap_or_default(),
                        op.path
                    )
                    .to_lowercase();
                    words.iter().all(|w| haystack.contains(w.as_str()))
                })
                .map(|op| {
                    json!({"name": naming.name(op), "summary": op.summary, "toolset": toolset_name(op.tag),
                           "read_only": op.method.is_read_only()})
                })
                .collect();
            text(&json!({"operations": found})).map(Step::Answer)
        }
        DESCRIBE => {
            let op = find(&arguments)?;
            text(&json!({
                "name": naming.name(op),
                "summary": op.summary,
                "description": description(op),
                "read_only": op.method.is_read_only(),
                "destructive": op.hints().destructive,
                "input_schema": Value::Object(input_schema(op)),
            }))
            .map(Step::Answer)
        }
        CALL => {
            let op = find(&arguments)?;
            let inner = match arguments.get("arguments") {
                None | Some(Value::Null) => JsonObject::new(),
                Some(Value::Object(map)) => map.clone(),
                Some(_) => return Err(McpError::invalid_params("`arguments` must be an object", None)),
            };
            Ok(Step::Call(op, inner))
        }
        other => Err(McpError::invalid_params(
            format!("unknown tool `{other}`; this server offers {SEARCH}, {DESCRIBE} and {CALL}"),
            None,
        )),
    }
}
