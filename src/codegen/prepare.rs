//! Shapes the contract into what the generators read.
//!
//! [`normalize`] applies to everything derived from the spec (the progenitor
//! client, the operation table, the CLI and the MCP tools); [`for_progenitor`]
//! additionally builds progenitor's own input. Both work on a copy: the
//! vendored file itself is never changed.

use serde_json::{Map, Value, json};

use super::{SpecError, lower, pointer_segment};

/// HTTP methods that can carry an operation in a path item.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Operations whose response carries a secret or a one-time value. The server
/// would store that response for 24 hours under an idempotency key, so every
/// official client refuses a key on them (product docs, "Idempotency Keys").
pub const NO_IDEMPOTENCY_KEY: [&str; 6] = [
    "retrieveAccountVerificationCode",
    "revealAccountCredentials",
    "createWebhookEndpoint",
    "uploadImage",
    "uploadVideo",
    "createAnalyticsReport",
];

/// The request header that carries an idempotency key (product docs; not a spec parameter).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The request header that carries a caller-chosen request id.
pub const REQUEST_ID_HEADER: &str = "X-Request-ID";
/// The request header that makes a mutating call a preview (product docs' dry runs).
pub const DRY_RUN_HEADER: &str = "X-TokPortal-Dry-Run";

/// Cleans up two faults of the published contract, in place:
///
/// - a `description` that is the literal word `undefined` (a serializer
///   artefact upstream) is removed, so it never reaches rustdoc, `--help` or a
///   tool description;
/// - a query parameter described as "Repeatable ..." but typed as a single
///   scalar becomes an array of that scalar, sent as repeated keys
///   (`?account=a&account=b`), as the product docs' `exportVideos({account: [...]})`
///   does. This is the one place where that reading of the spec is made.
///
/// It also merges an `allOf` of inline object schemas into one object schema
/// (`batchConfigureBundleVideos` combines a closed schema,
/// `additionalProperties: false`, with one that adds `position`: read
/// literally, no instance could satisfy both; merged, the intent holds).
pub fn normalize(doc: &mut Value) {
    drop_undefined_descriptions(doc);
    merge_object_all_of(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (key, op) in item.iter_mut() {
            if key == "parameters" {
                make_repeatable_arrays(op);
            } else if METHODS.contains(&key.as_str())
                && let Some(params) = op.get_mut("parameters")
            {
                make_repeatable_arrays(params);
            }
        }
    }
}

fn merge_object_all_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(merge_object_all_of);
            let Some(Value::Array(members)) = map.get("allOf") else {
                return;
            };
            let mergeable = members.iter().all(|m| {
                m.get("$ref").is_none()
                    && m.get("type").and_then(Value::as_str).is_none_or(|t| t == "object")
                    && m.get("properties").is_none_or(Value::is_object)
            });
            if !mergeable {
                return;
            }
            let members = members.clone();
            map.remove("allOf");
            let mut properties = Map::new();
            let mut required: Vec<Value> = Vec::new();
            let mut closed = false;
            for member in members {
                if let Some(Value::Object(props)) = member.get("properties") {
                    properties.extend(props.clone());
                }
                for r in member.get("required").and_then(Value::as_array).into_iter().flatten() {
                    if !required.contains(r) {
                        required.push(r.clone());
                    }
                }
                closed |= member.get("additionalProperties") == Some(&Value::Bool(false));
                for (k, v) in member.as_object().into_iter().flatten() {
                    if !matches!(k.as_str(), "properties" | "required" | "additionalProperties" | "type") {
                        map.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            map.insert("type".into(), Value::String("object".into()));
            map.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                map.insert("required".into(), Value::Array(required));
            }
            if closed {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(merge_object_all_of),
        _ => {}
    }
}

fn drop_undefined_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("description").and_then(Value::as_str) == Some("undefined") {
                map.remove("description");
            }
            map.values_mut().for_each(drop_undefined_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_undefined_descriptions),
        _ => {}
    }
}

/// True when a parameter's description says the parameter may be repeated.
pub fn is_described_repeatable(param: &Value) -> bool {
    param
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.trim_start().to_ascii_lowercase().starts_with("repeatable"))
}

fn make_repeatable_arrays(params: &mut Value) {
    let Some(params) = params.as_array_mut() else {
        return;
    };
    for param in params {
        if param.get("in").and_then(Value::as_str) != Some("query") || !is_described_repeatable(param) {
            continue;
        }
        let Some(schema) = param.get_mut("schema") else {
            continue;
        };
        if schema.get("type").and_then(Value::as_str) == Some("array") {
            continue;
        }
        let item = schema.take();
        *schema = json!({"type": "array", "items": item});
    }
}

/// Ids of the operations whose request body is `multipart/form-data`.
pub fn multipart_operations(doc: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for_each_operation(doc, |_, _, op| {
        let is_multipart = op
            .pointer("/requestBody/content")
            .and_then(Value::as_object)
            .is_some_and(|c| c.contains_key("multipart/form-data"));
        if is_multipart && let Some(id) = op.get("operationId").and_then(Value::as_str) {
            ids.push(id.to_owned());
        }
    });
    ids
}

/// Calls `f(path, method, operation)` for every operation of the document.
pub fn for_each_operation(doc: &Value, mut f: impl FnMut(&str, &str, &Value)) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, op) in item {
            if METHODS.contains(&method.as_str()) {
                f(path, method, op);
            }
        }
    }
}

/// Whether an operation of this method accepts an idempotency key.
pub fn accepts_idempotency_key(method: &str, operation_id: &str) -> bool {
    matches!(method, "post" | "put" | "patch" | "delete") && !NO_IDEMPOTENCY_KEY.contains(&operation_id)
}

/// Removes every schema `default` (a property named `default` stays).
fn strip_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("default");
            for (key, child) in map.iter_mut() {
                if key == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(strip_defaults);
                    }
                } else {
                    strip_defaults(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

/// Builds progenitor's input from a [`normalize`]d document:
///
/// 1. the `multipart/form-data` operations are left out (progenitor rejects
///    the whole spec on them; the SDK writes them by hand);
/// 2. only success responses are kept, and a lone success code becomes `2XX`,
///    so every error status reaches the SDK's own error decoding (which keeps
///    the status, headers and raw body) and a 200 where 201 was documented is
///    still a success;
/// 3. an optional `Idempotency-Key` header parameter is declared on every
///    mutating operation that accepts one, and an optional `X-Request-ID`
///    on every operation, so the generated builders offer `.idempotency_key()`
///    and `.x_request_id()` (both validated before sending), and an optional
///    `X-TokPortal-Dry-Run` on every mutating operation (wrapped as
///    `.dry_run()` by a generated extension);
/// 4. schema `default`s are removed: they are the server's business, and
///    typify's builders would send them as if the caller had set them (a
///    `videos_only` bundle pinned to `platform: tiktok`). Without them an
///    optional field is an `Option`, sent only when set;
/// 5. the result is lowered to OpenAPI 3.0.3 ([`lower::lower_to_30`]).
pub fn for_progenitor(normalized: &Value) -> Result<Value, SpecError> {
    let mut doc = normalized.clone();
    let multipart = multipart_operations(&doc);
    let paths = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SpecError::new("/paths", "missing `paths`"))?;
    let mut empty_paths = Vec::new();
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            return Err(SpecError::new(
                format!("/paths/{}", pointer_segment(path)),
                "a path item must be a mapping",
            ));
        };
        item.retain(|method, op| {
            !(METHODS.contains(&method.as_str())
                && op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| multipart.iter().any(|m| m == id)))
        });
        for (method, op) in item.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let pointer = format!("/paths/{}/{method}", pointer_segment(path));
            let op = op
                .as_object_mut()
                .ok_or_else(|| SpecError::new(&pointer, "an operation must be a mapping"))?;
            keep_success_responses(op, &pointer)?;
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let params = op
                .entry("parameters")
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| SpecError::new(format!("{pointer}/parameters"), "must be a list"))?;
            if accepts_idempotency_key(method, &id) {
                params.push(json!({
                    "name": IDEMPOTENCY_HEADER, "in": "header", "required": false,
                    "description": "Makes a retried request safe: the server stores the first response for 24 hours and replays it for the same key and request.",
                    "schema": {"$ref": "#/components/schemas/IdempotencyKey"}
                }));
            }
            if matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                params.push(json!({
                    "name": DRY_RUN_HEADER, "in": "header", "required": false,
                    "description": "`true`: preview the call (what it would charge, synthetic ids); nothing changes and no idempotency key is sent.",
                    "schema": {"type": "boolean"}
                }));
            }
            params.push(json!({
                "name": REQUEST_ID_HEADER, "in": "header", "required": false,
                "description": "Correlation id echoed back as `X-TokPortal-Request-ID`.",
                "schema": {"$ref": "#/components/schemas/RequestId"}
            }));
        }
        if !item.keys().any(|k| METHODS.contains(&k.as_str())) {
            empty_paths.push(path.clone());
        }
    }
    for path in empty_paths {
        paths.remove(&path);
    }
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SpecError::new("/components/schemas", "missing component schemas"))?;
    for name in ["IdempotencyKey", "RequestId"] {
        if schemas.contains_key(name) {
            return Err(SpecError::new(
                format!("/components/schemas/{name}"),
                "this name is reserved by the SDK for a request header type",
            ));
        }
    }
    schemas.insert(
        "IdempotencyKey".into(),
        json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$",
               "description": "An idempotency key: 1 to 255 visible ASCII characters."}),
    );
    schemas.insert(
        "RequestId".into(),
        json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$",
               "description": "A request correlation id: 1 to 255 visible ASCII characters."}),
    );
    strip_defaults(&mut doc);
    lower::lower_to_30(&mut doc)?;
    Ok(doc)
}

/// Removes the array-typed query parameters (the repeatable filters) from a
/// progenitor input, for progenitor's httpmock generator, which cannot match them.
pub fn drop_array_query_params(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                params.retain(|p| {
                    !(p.get("in").and_then(Value::as_str) == Some("query")
                        && p.pointer("/schema/type").and_then(Value::as_str) == Some("array"))
                });
            }
        }
    }
}

fn keep_success_responses(op: &mut Map<String, Value>, pointer: &str) -> Result<(), SpecError> {
    let responses = op
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SpecError::new(format!("{pointer}/responses"), "missing `responses`"))?;
    responses.retain(|code, _| code.starts_with('2'));
    if responses.is_empty() {
        return Err(SpecError::new(
            format!("{pointer}/responses"),
            "the operation documents no success (2xx) response",
        ));
    }
    if responses.len() == 1 {
        let (code, response) = responses
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        responses.remove(&code);
        responses.insert("2XX".into(), response);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/things": {
                    "get": {
                        "operationId": "listThings",
                        "parameters": [
                            {"name": "account", "in": "query", "description": "Repeatable account filter.", "schema": {"type": "string"}},
                            {"name": "from", "in": "query", "description": "undefined", "schema": {"type": "string"}}
                        ],
                        "responses": {"200": {"description": "ok"}, "401": {"description": "no"}}
                    },
                    "post": {"operationId": "createThing", "responses": {"201": {"description": "ok"}}}
                },
                "/upload": {
                    "post": {
                        "operationId": "uploadThing",
                        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}},
                        "responses": {"200": {"description": "ok"}}
                    }
                },
                "/secret": {"post": {"operationId": "uploadVideo", "responses": {"200": {"description": "ok"}}}}
            },
            "components": {"schemas": {}}
        })
    }

    #[test]
    fn normalize_drops_undefined_and_makes_repeatable_arrays() {
        let mut d = spec();
        normalize(&mut d);
        let params = &d["paths"]["/things"]["get"]["parameters"];
        assert_eq!(
            params[0]["schema"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert!(params[1].get("description").is_none());
        assert_eq!(params[1]["schema"], json!({"type": "string"}));
    }

    #[test]
    fn object_all_of_is_merged() {
        let mut d = json!({"paths": {}, "components": {"schemas": {"S": {"allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}, "additionalProperties": false},
            {"type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}}}
        ]}}}});
        normalize(&mut d);
        assert_eq!(
            d["components"]["schemas"]["S"],
            json!({
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": false
            })
        );
        // An allOf with a $ref member is left to the generators.
        let mut d = json!({"x": {"allOf": [{"$ref": "#/a"}, {"type": "object"}]}});
        normalize(&mut d);
        assert!(d["x"].get("allOf").is_some());
    }

    #[test]
    fn progenitor_input_leaves_out_multipart_and_errors() {
        let mut d = spec();
        normalize(&mut d);
        assert_eq!(multipart_operations(&d), vec!["uploadThing".to_string()]);
        let p = for_progenitor(&d).unwrap();
        assert_eq!(p["openapi"], "3.0.3");
        assert!(p["paths"].get("/upload").is_none());
        let responses = p["paths"]["/things"]["get"]["responses"].as_object().unwrap();
        assert_eq!(responses.keys().collect::<Vec<_>>(), vec!["2XX"]);
    }

    #[test]
    fn idempotency_header_only_where_allowed() {
        let mut d = spec();
        normalize(&mut d);
        let p = for_progenitor(&d).unwrap();
        let names = |ptr: &str| -> Vec<String> {
            p.pointer(ptr)
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(names("/paths/~1things/post/parameters").contains(&IDEMPOTENCY_HEADER.to_string()));
        assert!(!names("/paths/~1secret/post/parameters").contains(&IDEMPOTENCY_HEADER.to_string()));
        assert!(!names("/paths/~1things/get/parameters").contains(&IDEMPOTENCY_HEADER.to_string()));
        assert!(names("/paths/~1things/get/parameters").contains(&REQUEST_ID_HEADER.to_string()));
        assert!(p["components"]["schemas"]["IdempotencyKey"].is_object());
    }

    #[test]
    fn operation_without_success_is_an_error() {
        let mut d = spec();
        d["paths"]["/things"]["post"]["responses"] = json!({"400": {"description": "bad"}});
        let err = for_progenitor(&d).unwrap_err();
        assert_eq!(err.pointer, "/paths/~1things/post/responses");
    }
}
