//! One flat JSON Schema per operation for its arguments: what an MCP client
//! sends, and what [`Client::call_operation`](crate::Client::call_operation) reads.

use serde_json::{Map, Value};

use super::{IdempotencyKeySupport, Operation};

/// Names of the flat-argument keys that are not spec parameters.
pub mod flat_keys {
    /// The JSON request body.
    pub const BODY: &str = "body";
    /// The local file of a multipart upload.
    pub const FILE_PATH: &str = "file_path";
    /// The `Idempotency-Key` header.
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    /// The `X-Request-ID` header.
    pub const REQUEST_ID: &str = "request_id";
    /// `X-TokPortal-Dry-Run: true`, on mutating operations.
    pub const DRY_RUN: &str = "dry_run";
}

impl Operation {
    /// A JSON Schema for this operation's arguments as one flat object: path and
    /// query parameters under their spec names, the JSON body under `body`, the
    /// multipart file under `file_path` and its form fields under their names,
    /// `idempotency_key` where one is accepted, and `request_id`. The MCP
    /// server's tool schemas are these.
    ///
    /// ```
    /// let op = tokportal::operations::find("uploadVideoDirect").unwrap();
    /// let schema = op.input_schema();
    /// assert_eq!(schema["required"], serde_json::json!(["file_path", "bundle_id"]));
    /// ```
    pub fn input_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for p in self.params {
            let mut schema = p.schema();
            if let (Some(d), Value::Object(m)) = (p.description, &mut schema) {
                m.entry("description").or_insert_with(|| Value::String(d.to_owned()));
            }
            properties.insert(p.name.to_owned(), schema);
            if p.required {
                required.push(Value::String(p.name.to_owned()));
            }
        }
        if let Some(body) = self.body {
            if self.is_multipart() {
                properties.insert(
                    flat_keys::FILE_PATH.into(),
                    serde_json::json!({"type": "string", "minLength": 1, "description": "Path of the local file to upload (streamed from disk)."}),
                );
                required.push(Value::String(flat_keys::FILE_PATH.into()));
                for field in body.form_fields() {
                    if field.required {
                        required.push(Value::String(field.name.clone()));
                    }
                    properties.insert(field.name, field.schema);
                }
            } else {
                properties.insert(flat_keys::BODY.into(), body.schema());
                if body.required {
                    required.push(Value::String(flat_keys::BODY.into()));
                }
            }
        }
        if self.idempotency_key == IdempotencyKeySupport::Accepted {
            properties.insert(
                flat_keys::IDEMPOTENCY_KEY.into(),
                // Explained once, in the MCP server's instructions, not on every tool.
                serde_json::json!({"type": "string", "maxLength": 255}),
            );
        }
        if !self.method.is_read_only() {
            properties.insert(flat_keys::DRY_RUN.into(), serde_json::json!({"type": "boolean"}));
        }
        properties.insert(
            flat_keys::REQUEST_ID.into(),
            serde_json::json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$",
                "description": "X-Request-ID to correlate this call."}),
        );
        serde_json::json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false
        })
    }
}
