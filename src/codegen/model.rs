//! The operation model: every operation of the contract with its parameters,
//! body and responses, schemas fully dereferenced. `build.rs` turns it into the
//! static operation table; `cargo xtask` turns it into the inventory.

use serde_json::{Map, Value};

use super::prepare::{METHODS, accepts_idempotency_key};
use super::{SpecError, kebab_case, pointer_segment, snake_case};

/// One parameter of an operation (path or query).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name as spelled in the spec (`per_page`, `postLimit`).
    pub name: String,
    /// `path` or `query`.
    pub location: String,
    /// Whether the parameter must be given.
    pub required: bool,
    /// Description, if any.
    pub description: Option<String>,
    /// JSON Schema of the value, dereferenced.
    pub schema: Value,
}

/// The request body of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// `application/json` or `multipart/form-data`.
    pub content_type: String,
    /// Whether the body must be given.
    pub required: bool,
    /// JSON Schema of the body (for multipart, of the form fields), dereferenced.
    pub schema: Value,
}

/// One operation of the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `getCurrentUser`.
    pub id: String,
    /// Lower-case HTTP method.
    pub method: String,
    /// Path template, e.g. `/bundles/{id}`.
    pub path: String,
    /// First tag, used to group commands.
    pub tag: String,
    /// One-line summary.
    pub summary: String,
    /// Longer description, if any.
    pub description: Option<String>,
    /// Whether the `X-API-Key` header is required.
    pub requires_auth: bool,
    /// Path and query parameters, in spec order.
    pub params: Vec<Param>,
    /// Request body, if any.
    pub body: Option<Body>,
    /// The documented success status (the lowest 2xx).
    pub success_status: u16,
    /// Content type of the success body; `None` for an empty body (204).
    pub success_content_type: Option<String>,
    /// Name of the success schema when it is a named component (`MeResponse`).
    pub success_schema_name: Option<String>,
    /// That schema, every `$ref` inlined (only for a named success schema).
    pub success_schema: Option<Value>,
    /// The documented error statuses (4xx and 5xx), in order.
    pub error_statuses: Vec<u16>,
}

impl Operation {
    /// Rust method name (`get_current_user`).
    pub fn rust_name(&self) -> String {
        snake_case(&self.id)
    }
    /// CLI command name (`get-current-user`).
    pub fn cli_name(&self) -> String {
        kebab_case(&self.id)
    }
    /// Whether the operation accepts an `Idempotency-Key`.
    pub fn accepts_idempotency_key(&self) -> bool {
        accepts_idempotency_key(&self.method, &self.id)
    }
    /// Whether the operation is a `page`/`per_page` list.
    pub fn paginated(&self) -> bool {
        let has = |n: &str| self.params.iter().any(|p| p.name == n && p.location == "query");
        has("page") && has("per_page")
    }
    /// Whether the request body is multipart (written by hand, not by progenitor).
    pub fn is_multipart(&self) -> bool {
        self.body
            .as_ref()
            .is_some_and(|b| b.content_type == "multipart/form-data")
    }
}

/// Extracts every operation of a [`super::prepare::normalize`]d document.
pub fn operations(doc: &Value) -> Result<Vec<Operation>, SpecError> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| SpecError::new("/paths", "missing `paths` mapping"))?;
    let global_auth = doc
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let mut ops: Vec<Operation> = Vec::new();
    for (path, item) in paths {
        let item_ptr = format!("/paths/{}", pointer_segment(path));
        let item = item
            .as_object()
            .ok_or_else(|| SpecError::new(&item_ptr, "a path item must be a mapping"))?;
        let shared_params = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (method, op) in item {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let ptr = format!("{item_ptr}/{method}");
            let op = op
                .as_object()
                .ok_or_else(|| SpecError::new(&ptr, "an operation must be a mapping"))?;
            let operation = operation(doc, path, method, op, &shared_params, global_auth, &ptr)?;
            if let Some(dup) = ops.iter().find(|o| o.id == operation.id) {
                return Err(SpecError::new(
                    format!("{ptr}/operationId"),
                    format!(
                        "operationId `{}` is also used by {} {}",
                        dup.id,
                        dup.method.to_uppercase(),
                        dup.path
                    ),
                ));
            }
            ops.push(operation);
        }
    }
    Ok(ops)
}

fn str_field(op: &Map<String, Value>, key: &str) -> Option<String> {
    op.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn operation(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Map<String, Value>,
    shared_params: &[Value],
    global_auth: bool,
    ptr: &str,
) -> Result<Operation, SpecError> {
    let id = str_field(op, "operationId")
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            SpecError::new(
                format!("{ptr}/operationId"),
                "every operation needs an operationId made of ASCII letters, digits and `_`",
            )
        })?;
    let requires_auth = match op.get("security") {
        Some(Value::Array(list)) => !list.is_empty(),
        _ => global_auth,
    };
    let mut params = Vec::new();
    let own = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (index, raw) in shared_params.iter().chain(own.iter()).enumerate() {
        let pptr = format!("{ptr}/parameters/{index}");
        let raw = resolve(doc, raw, &pptr, &mut Vec::new())?;
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| SpecError::new(&pptr, "a parameter needs a `name`"))?
            .to_owned();
        let location = raw.get("in").and_then(Value::as_str).unwrap_or_default().to_owned();
        if location != "path" && location != "query" {
            return Err(SpecError::new(
                format!("{pptr}/in"),
                format!("parameter `{name}` of {id} is in `{location}`; only path and query parameters are supported"),
            ));
        }
        let required = raw.get("required").and_then(Value::as_bool).unwrap_or(false);
        if location == "path" && !required {
            return Err(SpecError::new(
                format!("{pptr}/required"),
                format!("path parameter `{name}` of {id} must be `required: true`"),
            ));
        }
        if location == "path" && !path.contains(&format!("{{{name}}}")) {
            return Err(SpecError::new(
                &pptr,
                format!("path parameter `{name}` of {id} does not appear in the path `{path}`"),
            ));
        }
        let schema = raw
            .get("schema")
            .ok_or_else(|| SpecError::new(&pptr, format!("parameter `{name}` of {id} has no schema")))?;
        let schema = resolve_all(doc, schema, &format!("{pptr}/schema"), &mut Vec::new())?;
        params.retain(|p: &Param| !(p.name == name && p.location == location));
        params.push(Param {
            name,
            location,
            required,
            description: raw.get("description").and_then(Value::as_str).map(str::to_owned),
            schema,
        });
    }
    for segment in path.split('/').filter(|s| s.starts_with('{')) {
        let name = segment.trim_start_matches('{').trim_end_matches('}');
        if !params.iter().any(|p| p.location == "path" && p.name == name) {
            return Err(SpecError::new(
                format!("{ptr}/parameters"),
                format!("the path `{path}` of {id} uses `{{{name}}}`, which no path parameter declares"),
            ));
        }
    }
    let body = match op.get("requestBody") {
        None => None,
        Some(raw) => {
            let bptr = format!("{ptr}/requestBody");
            let raw = resolve(doc, raw, &bptr, &mut Vec::new())?;
            let content = raw
                .get("content")
                .and_then(Value::as_object)
                .ok_or_else(|| SpecError::new(&bptr, "a request body needs `content`"))?;
            let (content_type, media) = content
                .iter()
                .find(|(ct, _)| *ct == "application/json" || *ct == "multipart/form-data")
                .ok_or_else(|| {
                    SpecError::new(
                        format!("{bptr}/content"),
                        format!(
                            "{id}: unsupported request content type(s) {:?}; expected application/json or multipart/form-data",
                            content.keys().collect::<Vec<_>>()
                        ),
                    )
                })?;
            let schema = media
                .get("schema")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let schema = resolve_all(
                doc,
                &schema,
                &format!("{bptr}/content/{}/schema", pointer_segment(content_type)),
                &mut Vec::new(),
            )?;
            Some(Body {
                content_type: content_type.clone(),
                required: raw.get("required").and_then(Value::as_bool).unwrap_or(false),
                schema,
            })
        }
    };
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| SpecError::new(format!("{ptr}/responses"), format!("{id} has no `responses`")))?;
    let (status, response) = responses
        .iter()
        .filter_map(|(code, r)| {
            code.parse::<u16>()
                .ok()
                .filter(|c| (200..300).contains(c))
                .map(|c| (c, r))
        })
        .min_by_key(|(c, _)| *c)
        .ok_or_else(|| SpecError::new(format!("{ptr}/responses"), format!("{id} documents no 2xx response")))?;
    let mut error_statuses: Vec<u16> = responses
        .keys()
        .filter_map(|code| code.parse::<u16>().ok())
        .filter(|c| *c >= 400)
        .collect();
    error_statuses.sort_unstable();
    let content = response.get("content").and_then(Value::as_object);
    let success_content_type = content.and_then(|c| {
        c.keys()
            .find(|k| *k == "application/json")
            .or_else(|| c.keys().next())
            .cloned()
    });
    let success_schema_name = success_content_type
        .as_ref()
        .and_then(|ct| content.and_then(|c| c.get(ct)))
        .and_then(|m| m.pointer("/schema/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map(str::to_owned);
    let success_schema = match &success_schema_name {
        Some(name) => {
            let pointer = format!("/components/schemas/{name}");
            let schema = doc
                .pointer(&pointer)
                .ok_or_else(|| SpecError::new(&pointer, "the success schema is missing"))?;
            Some(resolve_all(doc, schema, &pointer, &mut Vec::new())?)
        }
        None => None,
    };
    Ok(Operation {
        id,
        method: method.to_owned(),
        path: path.to_owned(),
        tag: op
            .get("tags")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(Value::as_str)
            .unwrap_or("Other")
            .to_owned(),
        summary: str_field(op, "summary").unwrap_or_default(),
        description: str_field(op, "description"),
        requires_auth,
        params,
        body,
        success_status: status,
        success_content_type,
        success_schema_name,
        success_schema,
        error_statuses,
    })
}

/// Follows a `$ref` at the top of `value` (not below it).
fn resolve(doc: &Value, value: &Value, ptr: &str, seen: &mut Vec<String>) -> Result<Value, SpecError> {
    match value.get("$ref").and_then(Value::as_str) {
        None => Ok(value.clone()),
        Some(reference) => {
            let target = reference.strip_prefix('#').ok_or_else(|| {
                SpecError::new(
                    format!("{ptr}/$ref"),
                    format!("external reference `{reference}` is not supported"),
                )
            })?;
            if seen.iter().any(|s| s == reference) {
                return Err(SpecError::new(
                    format!("{ptr}/$ref"),
                    format!("recursive reference `{reference}` cannot be inlined"),
                ));
            }
            let found = doc.pointer(target).ok_or_else(|| {
                SpecError::new(format!("{ptr}/$ref"), format!("reference `{reference}` points nowhere"))
            })?;
            seen.push(reference.to_owned());
            let out = resolve(doc, found, ptr, seen);
            seen.pop();
            out
        }
    }
}

/// Inlines every `$ref` below `value`, so the schema stands on its own.
fn resolve_all(doc: &Value, value: &Value, ptr: &str, seen: &mut Vec<String>) -> Result<Value, SpecError> {
    if value.get("$ref").is_some() {
        // `resolve` checks the reference itself; `seen` guards against cycles below it.
        let reference = value["$ref"].as_str().unwrap_or_default().to_owned();
        if seen.contains(&reference) {
            return Err(SpecError::new(
                format!("{ptr}/$ref"),
                format!("recursive reference `{reference}` cannot be inlined"),
            ));
        }
        let target = resolve(doc, value, ptr, &mut Vec::new())?;
        seen.push(reference);
        let out = resolve_all(doc, &target, ptr, seen);
        seen.pop();
        return out;
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(
                    k.clone(),
                    resolve_all(doc, v, &format!("{ptr}/{}", pointer_segment(k)), seen)?,
                );
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| resolve_all(doc, v, &format!("{ptr}/{i}"), seen))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "security": [{"ApiKeyAuth": []}],
            "paths": {
                "/things/{id}": {
                    "get": {
                        "operationId": "getThing", "summary": "Get", "tags": ["Things"],
                        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}
                    }
                },
                "/public": {"get": {"operationId": "pub", "security": [], "responses": {"204": {"description": "ok"}}}}
            },
            "components": {"schemas": {"T": {"type": "object", "properties": {"u": {"$ref": "#/components/schemas/U"}}}, "U": {"type": "integer"}}}
        })
    }

    #[test]
    fn extracts_operations() {
        let ops = operations(&doc()).unwrap();
        assert_eq!(ops.len(), 2);
        let get = &ops[0];
        assert_eq!(
            (get.id.as_str(), get.method.as_str(), get.tag.as_str()),
            ("getThing", "get", "Things")
        );
        assert!(get.requires_auth);
        assert_eq!(get.success_schema_name.as_deref(), Some("T"));
        assert!(!ops[1].requires_auth);
        assert_eq!(ops[1].success_content_type, None);
        assert_eq!(ops[1].success_status, 204);
    }

    #[test]
    fn missing_path_parameter_is_reported() {
        let mut d = doc();
        d["paths"]["/things/{id}"]["get"]["parameters"] = json!([]);
        let err = operations(&d).unwrap_err();
        assert!(err.message.contains("{id}"), "{err}");
        assert!(err.message.contains("getThing"), "{err}");
    }

    #[test]
    fn duplicate_operation_id_is_reported() {
        let mut d = doc();
        d["paths"]["/public"]["get"]["operationId"] = json!("getThing");
        let err = operations(&d).unwrap_err();
        assert_eq!(err.pointer, "/paths/~1public/get/operationId");
    }

    #[test]
    fn dangling_and_recursive_refs_are_reported() {
        let mut d = doc();
        d["paths"]["/things/{id}"]["get"]["parameters"][0]["schema"] = json!({"$ref": "#/components/schemas/T"});
        d["components"]["schemas"]["U"] = json!({"$ref": "#/components/schemas/Nope"});
        assert!(operations(&d).unwrap_err().message.contains("points nowhere"));
        let mut d = doc();
        d["paths"]["/things/{id}"]["get"]["parameters"][0]["schema"] = json!({"$ref": "#/components/schemas/T"});
        d["components"]["schemas"]["U"] =
            json!({"type": "object", "properties": {"t": {"$ref": "#/components/schemas/T"}}});
        assert!(operations(&d).unwrap_err().message.contains("recursive"));
    }

    #[test]
    fn optional_path_parameter_is_reported() {
        let mut d = doc();
        d["paths"]["/things/{id}"]["get"]["parameters"][0]["required"] = json!(false);
        assert!(operations(&d).unwrap_err().message.contains("required"));
    }
}
