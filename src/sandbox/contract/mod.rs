//! The contract as a server enforces it: requests checked against the
//! operation's schemas with every failing field named, the error envelope,
//! and the answers' shapes; [`routes`] matches a request to its operation.

pub(in crate::sandbox) mod routes;

use serde_json::{Map, Value, json};

use crate::check::schema::{coerce, coerce_value, parsed, violations};
use crate::operations::{Operation, ParamLocation};

/// An error answer: `{"error": {code, message, details}}` with its status.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) details: Option<Box<Value>>,
    /// Extra headers (`Retry-After`, `Allow`).
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Failure {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    pub(super) fn details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 404 `NOT_FOUND` for a missing resource.
    pub(super) fn not_found(what: &str) -> Self {
        Self::new(404, "NOT_FOUND", format!("{what} not found."))
    }

    /// 409 `INVALID_STATE`: the resource's status does not allow this.
    pub(super) fn state(message: impl Into<String>) -> Self {
        Self::new(409, "INVALID_STATE", message)
    }

    /// 400 `VALIDATION_ERROR` for a business rule on one field.
    pub(super) fn rule(field: &str, message: impl Into<String>) -> Self {
        validation(vec![Problem {
            field: field.into(),
            location: Location::Body,
            message: message.into(),
            unknown: false,
        }])
    }

    /// `SANDBOX_LIMIT`: what the sandbox keeps per key is full (status from
    /// [`conflict_status`]).
    pub(super) fn limit(op: &Operation, what: &str) -> Self {
        Self::new(
            conflict_status(op),
            "SANDBOX_LIMIT",
            format!("This sandbox key holds the most {what} it keeps; POST /_sandbox/reset to start over."),
        )
    }

    /// The envelope.
    pub(super) fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.details {
            error["details"] = (**d).clone();
        }
        json!({ "error": error })
    }
}

/// The status of a conflict the contract does not describe for `op`: a 409
/// where it documents one, a 400 where it documents only that, a 409 otherwise.
pub(super) fn conflict_status(op: &Operation) -> u16 {
    if op.error_statuses.contains(&409) || !op.error_statuses.contains(&400) {
        409
    } else {
        400
    }
}

/// Where in a request a failing field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Location {
    Path,
    Query,
    Body,
    Form,
    Header,
}

impl Location {
    /// As the error envelope names it (`details.fields[].in`).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Body => "body",
            Location::Form => "form",
            Location::Header => "header",
        }
    }
}

/// One failing field of a request.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    /// `country`, `videos[0].description`, `page`, `Idempotency-Key`.
    pub(super) field: String,
    /// Where the field is.
    pub(super) location: Location,
    pub(super) message: String,
    /// Unknown to this contract version (a property, a query parameter, an
    /// enum value): accepted, with a warning, by a `--lenient` sandbox.
    pub(super) unknown: bool,
}

/// 400 `VALIDATION_ERROR` naming each field in `details.fields`.
pub(super) fn validation(problems: Vec<Problem>) -> Failure {
    let named: Vec<String> = problems
        .iter()
        .take(3)
        .map(|p| format!("`{}` {}", p.field, p.message))
        .collect();
    let more = problems.len().saturating_sub(3);
    let message = format!(
        "Invalid request: {}{}.",
        named.join("; "),
        if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        }
    );
    Failure::new(400, "VALIDATION_ERROR", message).details(fields(problems.iter()))
}

/// `{"fields": [{"field", "in", "message"}, ...]}`, the `details` of a
/// failure that names its fields.
fn fields<'a>(problems: impl Iterator<Item = &'a Problem>) -> Value {
    let fields: Vec<Value> = problems
        .map(|p| json!({"field": p.field, "in": p.location.as_str(), "message": p.message}))
        .collect();
    json!({ "fields": fields })
}

/// A malformed path id names no resource, so where the operation documents a
/// 404 that is its answer, `NOT_FOUND` with the failing fields in `details`
/// (Stripe answers "No such ..." for a malformed id too). `None` where no
/// path field failed, or where the operation documents no 404 (then the
/// failure is a 400, a gap of the contract the README lists).
pub(super) fn path_not_found(op: &Operation, problems: &[Problem]) -> Option<Failure> {
    let path: Vec<&Problem> = problems.iter().filter(|p| p.location == Location::Path).collect();
    if path.is_empty() || !op.error_statuses.contains(&404) {
        return None;
    }
    let named: Vec<String> = path.iter().map(|p| format!("`{}` {}", p.field, p.message)).collect();
    Some(
        Failure::new(404, "NOT_FOUND", format!("No such resource: {}.", named.join("; ")))
            .details(fields(path.iter().copied())),
    )
}

/// `videos[0].description` from `["videos", "0", "description"]`.
fn field_name(prefix: Option<&str>, path: &[String]) -> String {
    let mut out = prefix.unwrap_or_default().to_owned();
    for part in path {
        if part.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() { "body".into() } else { out }
}

fn schema_problems(
    op: &'static Operation,
    field: &'static str,
    schema_json: &'static str,
    value: &Value,
    location: Location,
    prefix: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    match violations(op, field, schema_json, value) {
        Ok(found) => problems.extend(found.into_iter().map(|v| Problem {
            field: field_name(prefix, &v.path),
            location,
            message: v.message,
            unknown: v.unknown,
        })),
        // A schema of the vendored spec that does not compile: the contract's
        // fault, said as such rather than passed.
        Err(e) => problems.push(Problem {
            field: field.into(),
            location,
            message: format!("cannot be checked: {e}"),
            unknown: false,
        }),
    }
}

/// The path parameters, coerced to their schemas' types and checked.
pub(super) fn check_path(
    op: &'static Operation,
    given: Vec<(&'static str, String)>,
    problems: &mut Vec<Problem>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, raw) in given {
        let Some(p) = op.param(name) else { continue };
        let value = coerce(&parsed(p.schema_json), &raw);
        schema_problems(
            op,
            p.name,
            p.schema_json,
            &value,
            Location::Path,
            Some(p.name),
            problems,
        );
        out.insert(name.to_owned(), value);
    }
    out
}

/// The query string: known parameters coerced and checked (repeated keys
/// make an array for a repeatable one), unknown ones refused (kept as given,
/// for a `--lenient` sandbox).
pub(super) fn check_query(op: &'static Operation, raw: &str, problems: &mut Vec<Problem>) -> Map<String, Value> {
    let mut given: Map<String, Value> = Map::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let Some(p) = op.param(&name).filter(|p| p.location == ParamLocation::Query) else {
            let takes: Vec<&str> = op
                .params
                .iter()
                .filter(|p| p.location == ParamLocation::Query)
                .map(|p| p.name)
                .collect();
            problems.push(Problem {
                field: name.clone().into_owned(),
                location: Location::Query,
                message: format!(
                    "is not a query parameter of {}; it takes {}",
                    op.id,
                    if takes.is_empty() {
                        "none".into()
                    } else {
                        takes.join(", ")
                    }
                ),
                unknown: true,
            });
            // Kept as given: a `--lenient` sandbox accepts and echoes it.
            given.insert(name.into_owned(), Value::String(value.into_owned()));
            continue;
        };
        let schema = parsed(p.schema_json);
        let value = if p.repeatable {
            let item = coerce_value(&schema, Value::String(value.into_owned()));
            match given.remove(p.name) {
                Some(Value::Array(mut items)) => {
                    if let Value::Array(more) = item {
                        items.extend(more);
                    }
                    Value::Array(items)
                }
                _ => item,
            }
        } else {
            if given.contains_key(p.name) {
                problems.push(Problem {
                    field: p.name.into(),
                    location: Location::Query,
                    message: "is given more than once".into(),
                    unknown: false,
                });
            }
            integer_beyond_i64(&schema, &value).unwrap_or_else(|| coerce(&schema, &value))
        };
        given.insert(p.name.to_owned(), value);
    }
    for p in op.params.iter().filter(|p| p.location == ParamLocation::Query) {
        match given.get(p.name) {
            Some(value) => schema_problems(
                op,
                p.name,
                p.schema_json,
                value,
                Location::Query,
                Some(p.name),
                problems,
            ),
            None if p.required => problems.push(Problem {
                field: p.name.into(),
                location: Location::Query,
                message: "is required".into(),
                unknown: false,
            }),
            None => {}
        }
    }
    given
}

/// A whole number too large for an `i64` (`page=578831311003838492704768`)
/// is still an integer to the contract, which sets no maximum: as a server,
/// the sandbox takes it (as the nearest float, which JSON Schema counts as an
/// integer) rather than refuse valid data. The client side never does this:
/// it would change the number it sends.
fn integer_beyond_i64(schema: &Value, raw: &str) -> Option<Value> {
    let integer = match schema.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    };
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if !integer || digits.len() < 19 || !digits.bytes().all(|b| b.is_ascii_digit()) || raw.parse::<i64>().is_ok() {
        return None;
    }
    raw.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// A JSON body: its media type, its syntax and its schema. A body-less
/// operation takes nothing but an empty body or `{}`.
pub(super) fn check_json_body(
    op: &'static Operation,
    content_type: Option<&str>,
    bytes: &[u8],
    problems: &mut Vec<Problem>,
) -> Option<Value> {
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    let problem = |message: String| Problem {
        field: "body".into(),
        location: Location::Body,
        message,
        unknown: false,
    };
    let Some(spec) = op.body else {
        if !blank && serde_json::from_slice::<Value>(bytes).ok() != Some(json!({})) {
            problems.push(problem(format!("is not taken: {} has no request body", op.id)));
        }
        return None;
    };
    if blank {
        if spec.required {
            problems.push(problem("is required: send a JSON object".into()));
        }
        return None;
    }
    let is_json = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json") || m.trim().ends_with("+json"));
    if !is_json {
        problems.push(problem(format!(
            "must be sent as application/json, not {}",
            content_type.unwrap_or("no Content-Type")
        )));
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => {
            schema_problems(op, "body", spec.schema_json, &value, Location::Body, None, problems);
            Some(value)
        }
        Err(e) => {
            problems.push(problem(format!("is not valid JSON: {e}")));
            None
        }
    }
}

/// A multipart form's text fields (coerced) with its file part standing in
/// as a string when present, against the form's schema.
pub(super) fn check_form(
    op: &'static Operation,
    fields: Map<String, Value>,
    file_field: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Map<String, Value> {
    let Some(spec) = op.body else { return fields };
    let known = spec.form_fields();
    let mut coerced = Map::new();
    for (name, value) in fields {
        let value = match known.iter().find(|f| f.name == name) {
            Some(f) => coerce_value(&f.schema, value),
            None => value,
        };
        coerced.insert(name, value);
    }
    let mut whole = coerced.clone();
    if let Some(file) = file_field {
        whole.insert(file.to_owned(), Value::String(String::new()));
    }
    schema_problems(
        op,
        "body",
        spec.schema_json,
        &Value::Object(whole),
        Location::Form,
        None,
        problems,
    );
    coerced
}

/// `body` with the top-level `default`s of `op`'s body schema filled in:
/// defaults are the server's to apply.
pub(super) fn with_defaults(op: &'static Operation, body: &Map<String, Value>) -> Map<String, Value> {
    let mut out = body.clone();
    let Some(spec) = op.body else { return out };
    let schema = parsed(spec.schema_json);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            if let Some(default) = prop.get("default")
                && !out.contains_key(name)
            {
                out.insert(name.clone(), default.clone());
            }
        }
    }
    out
}

/// A value that satisfies `schema`, for an operation the sandbox has no
/// behaviour for (a newer spec): required properties, formats, enums,
/// lengths and minimums are honoured.
pub(super) fn example(schema: &Value) -> Value {
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|e| e.first()) {
            let mut merged = example(first);
            if key == "allOf"
                && let (Some(obj), Some(rest)) = (merged.as_object_mut(), schema.get(key).and_then(Value::as_array))
            {
                for more in rest.iter().skip(1) {
                    if let Value::Object(m) = example(more) {
                        obj.extend(m);
                    }
                }
            }
            return merged;
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        // No type: an object when it has properties, and as good a guess as any otherwise.
        _ => "object",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let required = crate::operations::required_names(schema);
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if required.contains(&name.as_str()) {
                        out.insert(name.clone(), example(prop));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0).min(3);
            let item = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            Value::Array((0..n).map(|_| example(&item)).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0).max(0)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0).max(0.0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => {
            let text = match schema.get("format").and_then(Value::as_str) {
                Some("uuid") => uuid::Uuid::nil().to_string(),
                Some("date-time") => "2026-01-01T00:00:00Z".into(),
                Some("date") => "2026-01-01".into(),
                Some("email") => "sandbox@example.com".into(),
                Some("uri") => "https://example.com/".into(),
                _ => {
                    let pattern_prefix = schema
                        .get("pattern")
                        .and_then(Value::as_str)
                        .and_then(|p| p.strip_prefix('^'))
                        .map(|p| {
                            p.chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect::<String>()
                        })
                        .unwrap_or_default();
                    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let mut text = format!("{pattern_prefix}sandbox");
                    while text.len() < min {
                        text.push('x');
                    }
                    text
                }
            };
            Value::String(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_named() {
        let op = crate::operations::find("createBundle").unwrap();
        let mut problems = Vec::new();
        let body = br#"{"country": "U", "videos_quantity": -1, "nope": 1}"#;
        check_json_body(op, Some("application/json"), body, &mut problems);
        let mut named: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        named.sort_unstable();
        assert_eq!(named, ["bundle_type", "country", "nope", "videos_quantity"]);
        let failure = validation(problems);
        assert_eq!((failure.status, failure.code), (400, "VALIDATION_ERROR"));
        assert_eq!(
            failure.body()["error"]["details"]["fields"].as_array().unwrap().len(),
            4
        );
    }

    #[test]
    fn nested_fields_and_queries() {
        let op = crate::operations::find("batchConfigureBundleVideos").unwrap();
        let mut problems = Vec::new();
        check_json_body(
            op,
            Some("application/json"),
            br#"{"videos": [{"video_type": "video"}]}"#,
            &mut problems,
        );
        assert!(
            problems.iter().any(|p| p.field == "videos[0].description"),
            "{problems:?}"
        );
        let list = crate::operations::find("listBundles").unwrap();
        let mut problems = Vec::new();
        let q = check_query(list, "page=2.0&per_page=500&colour=red", &mut problems);
        assert_eq!(q["page"], json!(2));
        let named: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(named, ["colour", "per_page"]);
    }

    #[test]
    fn examples_satisfy_every_success_schema() {
        for op in crate::operations::OPERATIONS {
            let Some(schema_json) = op.success_schema_json else {
                continue;
            };
            let schema: Value = serde_json::from_str(schema_json).unwrap();
            let value = example(&schema);
            let v = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap();
            assert!(v.is_valid(&value), "{}: {value}", op.id);
        }
    }
}
