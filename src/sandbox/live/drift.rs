//! Drift: how far a live answer is from what the vendored contract says.
//!
//! [`check`] reads one answer and names each difference as a [`Finding`]:
//!
//! | kind | when |
//! |---|---|
//! | `unknown_operation` | no operation of the contract has this method and path |
//! | `undocumented_status` | the status is neither the operation's success nor one of its documented errors |
//! | `unknown_field` | the body has a field its schema does not name (where the schema names its fields) |
//! | `type_mismatch` | a value is not of its schema's type (or the body is not JSON) |
//! | `enum_mismatch` | a value is not one of its schema's values |
//! | `missing_field` | a required field is absent |
//! | `missing_header` | a documented header is absent |
//!
//! The contract types three success bodies (`getCurrentUser`,
//! `createBundle`, `listWebhookEvents`) and the error envelope of every
//! error; other success bodies are not checked field by field. Headers are
//! the sandbox's choice, since the contract documents them without saying
//! which are always sent: `X-TokPortal-API-Version`,
//! `X-TokPortal-API-Stability` and `X-TokPortal-Request-ID` on every answer
//! of a known operation, and the three `X-RateLimit-*` on every success of
//! one that takes a key (`Retry-After` and `Idempotent-Replayed` are sent
//! only on a 429 and a replay). A value redacted in a recording matches any
//! schema.
//!
//! [`Tally`] counts what a running sandbox found (`GET /_sandbox/drift`);
//! [`DriftReport`] is what it and `tokportal sandbox drift FILE` show.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::redact::REDACTED;
use crate::check::schema::parsed;
use crate::sandbox::contract::routes::{self, Route};

/// The contract's `ErrorResponse`, the envelope of every documented error
/// (a test checks it against the spec).
const ERROR_RESPONSE: &str = r#"{"type":"object","required":["error"],"properties":{"error":{"type":"object","required":["code","message"],"properties":{"code":{"type":"string"},"message":{"type":"string"},"details":{"type":"object","additionalProperties":true}}}}}"#;

/// Headers documented on every answer.
const ALWAYS: [&str; 3] = [
    "x-tokportal-api-version",
    "x-tokportal-api-stability",
    "x-tokportal-request-id",
];
/// Headers documented on every success of an operation that takes a key.
const RATE_LIMITED: [&str; 3] = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];

/// Examples a report keeps at most (one for each kind, operation and place).
const MAX_EXAMPLES: usize = 100;
/// Distinct findings a tally tells apart at most.
const MAX_DISTINCT: usize = 10_000;

/// A kind of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DriftKind {
    /// No operation of the contract has this method and path.
    UnknownOperation,
    /// A status the operation does not document.
    UndocumentedStatus,
    /// A field the schema does not name.
    UnknownField,
    /// A value not of its schema's type.
    TypeMismatch,
    /// A value not among its schema's values.
    EnumMismatch,
    /// A required field absent.
    MissingField,
    /// A documented header absent.
    MissingHeader,
}

impl DriftKind {
    /// Its name in reports (`unknown_field`).
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::UnknownOperation => "unknown_operation",
            DriftKind::UndocumentedStatus => "undocumented_status",
            DriftKind::UnknownField => "unknown_field",
            DriftKind::TypeMismatch => "type_mismatch",
            DriftKind::EnumMismatch => "enum_mismatch",
            DriftKind::MissingField => "missing_field",
            DriftKind::MissingHeader => "missing_header",
        }
    }
}

/// One difference between a live answer and the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of drift.
    pub kind: DriftKind,
    /// The operationId, or `METHOD /path` for an operation the contract
    /// does not know (segments holding a digit shown as `{id}`).
    pub operation: String,
    /// Where: a field's path (`data.events[].type`), a header's name or a
    /// status; empty for an unknown operation.
    pub at: String,
    /// What was found, in words: types, and for an enum mismatch the value
    /// (at most 100 characters); never the value of an unknown field.
    pub detail: String,
}

/// A count of one kind of drift for one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCount {
    /// The kind.
    pub kind: DriftKind,
    /// The operation.
    pub operation: String,
    /// How many times it was seen.
    pub count: u64,
}

/// What drift was found: counts by kind and operation, and the first
/// example of each distinct finding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Answers checked.
    pub exchanges: u64,
    /// Findings in all (each answer's, counted again when seen again).
    pub findings: u64,
    /// By kind and operation, in that order.
    pub counts: Vec<DriftCount>,
    /// The first example of each distinct finding (kind, operation and
    /// place), at most 100.
    pub examples: Vec<Finding>,
}

impl DriftReport {
    /// Whether nothing drifted.
    pub fn is_clean(&self) -> bool {
        self.findings == 0
    }

    /// The report as a table for a terminal.
    ///
    /// ```
    /// let report = tokportal::sandbox::DriftReport::default();
    /// assert!(report.table().contains("no drift"));
    /// ```
    pub fn table(&self) -> String {
        if self.is_clean() {
            return format!(
                "no drift: {} answer{} checked against the contract\n",
                self.exchanges,
                if self.exchanges == 1 { "" } else { "s" }
            );
        }
        let mut rows = vec![("KIND".to_owned(), "OPERATION".to_owned(), "COUNT".to_owned())];
        for c in &self.counts {
            rows.push((c.kind.as_str().to_owned(), c.operation.clone(), c.count.to_string()));
        }
        let wide = |f: fn(&(String, String, String)) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let (a, b) = (wide(|r| r.0.chars().count()), wide(|r| r.1.chars().count()));
        let mut out = String::new();
        for (kind, op, count) in &rows {
            out.push_str(&format!("{kind:<a$}  {op:<b$}  {count}\n"));
        }
        out.push_str(&format!(
            "\n{} finding{} in {} answer{}; first examples:\n",
            self.findings,
            if self.findings == 1 { "" } else { "s" },
            self.exchanges,
            if self.exchanges == 1 { "" } else { "s" }
        ));
        for f in &self.examples {
            let at = if f.at.is_empty() {
                String::new()
            } else {
                format!(" {}", f.at)
            };
            out.push_str(&format!("  {} {}{at}: {}\n", f.kind.as_str(), f.operation, f.detail));
        }
        out
    }
}

/// Findings of a running sandbox, since it started.
#[derive(Default)]
pub(in crate::sandbox) struct Tally(Mutex<Counted>);

#[derive(Default)]
struct Counted {
    exchanges: u64,
    findings: u64,
    counts: BTreeMap<(DriftKind, String), u64>,
    seen: HashSet<(DriftKind, String, String)>,
    examples: Vec<Finding>,
}

impl Tally {
    /// Counts one answer's findings.
    pub(in crate::sandbox) fn add(&self, findings: Vec<Finding>) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.exchanges += 1;
        for f in findings {
            c.findings += 1;
            *c.counts.entry((f.kind, f.operation.clone())).or_default() += 1;
            if c.seen.len() < MAX_DISTINCT
                && c.seen.insert((f.kind, f.operation.clone(), f.at.clone()))
                && c.examples.len() < MAX_EXAMPLES
            {
                c.examples.push(f);
            }
        }
    }

    /// What was found so far.
    pub(in crate::sandbox) fn report(&self) -> DriftReport {
        let c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        DriftReport {
            exchanges: c.exchanges,
            findings: c.findings,
            counts: c
                .counts
                .iter()
                .map(|((kind, operation), count)| DriftCount {
                    kind: *kind,
                    operation: operation.clone(),
                    count: *count,
                })
                .collect(),
            examples: c.examples.clone(),
        }
    }
}

/// An answer as the check reads it.
pub(in crate::sandbox) struct Answer<'a> {
    pub(in crate::sandbox) method: &'a str,
    /// The path below the API's base.
    pub(in crate::sandbox) path: &'a str,
    pub(in crate::sandbox) status: u16,
    /// Whether a header of this name was sent.
    pub(in crate::sandbox) has_header: &'a dyn Fn(&str) -> bool,
    pub(in crate::sandbox) content_type: Option<&'a str>,
    /// The body, when it was received whole.
    pub(in crate::sandbox) body: Option<&'a [u8]>,
}

/// Everything in `answer` the contract does not say.
pub(in crate::sandbox) fn check(answer: &Answer<'_>) -> Vec<Finding> {
    let op = match routes::route(answer.method, answer.path) {
        Route::Operation(op, _) => op,
        Route::WrongMethod(_) | Route::NotFound => {
            return vec![Finding {
                kind: DriftKind::UnknownOperation,
                operation: unknown_name(answer.method, answer.path),
                at: String::new(),
                detail: format!("answered {}", answer.status),
            }];
        }
    };
    let mut found = Vec::new();
    let mut note = |kind, at: String, detail: String| {
        found.push(Finding {
            kind,
            operation: op.id.to_owned(),
            at,
            detail,
        });
    };
    let success = answer.status == op.success_status;
    let documented_error = op.error_statuses.contains(&answer.status);
    if !success && !documented_error {
        note(
            DriftKind::UndocumentedStatus,
            answer.status.to_string(),
            format!(
                "{} documents {} and the errors {:?}",
                op.id, op.success_status, op.error_statuses
            ),
        );
    }
    let mut headers: Vec<&str> = ALWAYS.to_vec();
    if success && op.requires_auth {
        headers.extend(RATE_LIMITED);
    }
    for name in headers {
        if !(answer.has_header)(name) {
            note(DriftKind::MissingHeader, name.to_owned(), "documented, not sent".into());
        }
    }
    let schema = match (success, documented_error) {
        (true, _) => op.success_schema_json,
        (false, true) => Some(ERROR_RESPONSE),
        (false, false) => None,
    };
    if let (Some(schema), Some(body)) = (schema, answer.body) {
        let json_type = answer
            .content_type
            .is_none_or(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        match serde_json::from_slice::<Value>(body) {
            Ok(value) if json_type => {
                let mut differences = Vec::new();
                walk(&parsed(schema), &value, "", &mut differences);
                for (kind, at, detail) in differences {
                    note(kind, at, detail);
                }
            }
            _ => note(
                DriftKind::TypeMismatch,
                "(body)".into(),
                format!("not a JSON body ({})", answer.content_type.unwrap_or("no content type")),
            ),
        }
    }
    found
}

/// The name of an operation the contract does not know: its method and
/// path, segments with a digit in them shown as `{id}`.
fn unknown_name(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.bytes().any(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    let mut name = format!("{method} /{}", segments.join("/"));
    name.truncate(200);
    name
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(value: &Value, ty: &str) -> bool {
    match (ty, value) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => type_of(value) == ty,
    }
}

fn shown(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 100 {
        let mut end = 100;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// `at.name`, the name's control characters (and line and paragraph
/// separators) escaped: it reaches log lines and pages.
fn join(at: &str, name: &str) -> String {
    let mut name: String = name
        .chars()
        .take(100)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if name.is_empty() {
        name.push_str("\"\"");
    }
    if at.is_empty() { name } else { format!("{at}.{name}") }
}

/// The differences between `value` and `schema` (a JSON Schema of the
/// contract's: `type`, `enum`, `properties`, `required`,
/// `additionalProperties`, `items`; `anyOf`/`oneOf` by their closest branch).
fn walk(schema: &Value, value: &Value, at: &str, out: &mut Vec<(DriftKind, String, String)>) {
    if value.as_str() == Some(REDACTED) {
        return;
    }
    if let Some(branches) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let mut best: Option<Vec<_>> = None;
        for branch in branches {
            let mut found = Vec::new();
            walk(branch, value, at, &mut found);
            if best.as_ref().is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        out.extend(best.unwrap_or_default());
        return;
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            walk(part, value, at, out);
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let place = if at.is_empty() {
        "(body)".to_owned()
    } else {
        at.to_owned()
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
        out.push((
            DriftKind::TypeMismatch,
            place,
            format!("{} where the contract says {}", type_of(value), types.join(" or ")),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push((
            DriftKind::EnumMismatch,
            place,
            format!(
                "{} is not one of {}",
                shown(value),
                shown(&Value::Array(allowed.clone()))
            ),
        ));
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        out.push((DriftKind::MissingField, join(at, name), "required, absent".into()));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            for (name, field) in map {
                match (properties.and_then(|p| p.get(name)), extra) {
                    (Some(sub), _) => walk(sub, field, &join(at, name), out),
                    (None, Some(sub @ Value::Object(_))) => walk(sub, field, &join(at, name), out),
                    (None, Some(Value::Bool(true))) => {}
                    // A schema that names no field names nothing unknown.
                    (None, _) if properties.is_none() => {}
                    // Its type, never its value: a new field may hold a secret.
                    (None, _) => out.push((DriftKind::UnknownField, join(at, name), format!("a {}", type_of(field)))),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                let at = format!("{at}[]");
                for v in items {
                    walk(item, v, &at, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn findings(
        method: &str,
        path: &str,
        status: u16,
        headers: &[&str],
        body: Value,
    ) -> Vec<(DriftKind, String, String)> {
        let has = |name: &str| headers.contains(&name);
        let bytes = body.to_string().into_bytes();
        check(&Answer {
            method,
            path,
            status,
            has_header: &has,
            content_type: Some("application/json"),
            body: Some(&bytes),
        })
        .into_iter()
        .map(|f| (f.kind, f.operation, f.at))
        .collect()
    }

    const ALL: [&str; 6] = [
        "x-tokportal-api-version",
        "x-tokportal-api-stability",
        "x-tokportal-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ];

    fn me() -> Value {
        json!({"data": {"id": "0b0e7d2c-1111-4c4c-9999-000000000001", "email": "a@b.c",
                        "credits": {"balance": 10}, "api_key": {"id": "0b0e7d2c-1111-4c4c-9999-000000000002", "name": "k"}}})
    }

    #[test]
    fn a_conforming_answer_has_no_drift() {
        assert_eq!(findings("GET", "/me", 200, &ALL, me()), vec![]);
        let error = json!({"error": {"code": "NOT_FOUND", "message": "m", "details": {"x": 1}}});
        assert_eq!(findings("GET", "/bundles/b_1", 404, &ALL[..3], error), vec![]);
    }

    #[test]
    fn each_kind_is_named_where_it_is() {
        let mut body = me();
        body["data"]["beta"] = json!(true);
        body["data"]["credits"]["balance"] = json!("ten");
        body["data"]
            .as_object_mut()
            .map(|d| d.remove("email"))
            .expect("an object");
        let mut found = findings("GET", "/me", 200, &ALL[..5], body);
        found.sort();
        let me = |k, at: &str| (k, "getCurrentUser".to_owned(), at.to_owned());
        assert_eq!(
            found,
            vec![
                me(DriftKind::UnknownField, "data.beta"),
                me(DriftKind::TypeMismatch, "data.credits.balance"),
                me(DriftKind::MissingField, "data.email"),
                me(DriftKind::MissingHeader, "x-ratelimit-reset"),
            ]
        );
        assert_eq!(
            findings("GET", "/bundles/b_12/insights", 200, &[], json!({})),
            vec![(
                DriftKind::UnknownOperation,
                "GET /bundles/{id}/insights".to_owned(),
                String::new()
            )]
        );
        let found = findings(
            "GET",
            "/me",
            418,
            &ALL,
            json!({"error": {"code": "TEAPOT", "message": "m"}}),
        );
        assert_eq!(found, vec![me(DriftKind::UndocumentedStatus, "418")]);
        let events = json!({"data": {"events": [{"type": "account.banned"}]}});
        let found = findings("GET", "/webhooks/events", 200, &ALL, events);
        assert!(
            found.contains(&(
                DriftKind::EnumMismatch,
                "listWebhookEvents".into(),
                "data.events[].type".into()
            )),
            "{found:?}"
        );
    }

    #[test]
    fn names_cannot_forge_a_log_line_and_values_are_not_shown() {
        let mut body = me();
        body["data"]["x\nINFO forged"] = json!("sk_live_secret_value");
        let bytes = body.to_string().into_bytes();
        let has = |name: &str| ALL.contains(&name);
        let found = check(&Answer {
            method: "GET",
            path: "/me",
            status: 200,
            has_header: &has,
            content_type: Some("application/json"),
            body: Some(&bytes),
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].at, "data.x\\u{a}INFO forged");
        assert_eq!(found[0].detail, "a string");
    }

    #[test]
    fn each_kind_is_named_in_reports_as_in_json() {
        for kind in [
            DriftKind::UnknownOperation,
            DriftKind::UndocumentedStatus,
            DriftKind::UnknownField,
            DriftKind::TypeMismatch,
            DriftKind::EnumMismatch,
            DriftKind::MissingField,
            DriftKind::MissingHeader,
        ] {
            assert_eq!(serde_json::to_value(kind).ok(), Some(json!(kind.as_str())));
        }
    }

    #[test]
    fn redacted_values_match_anything() {
        let mut body = me();
        body["data"]["credits"]["balance"] = json!(REDACTED);
        assert_eq!(findings("GET", "/me", 200, &ALL, body), vec![]);
    }

    #[test]
    fn the_error_envelope_is_the_contracts() {
        use serde_norway::Value as Yaml;
        let spec: Yaml = serde_norway::from_str(include_str!("../../../spec/openapi.yaml")).expect("the spec");
        let envelope = &spec["components"]["schemas"]["ErrorResponse"];
        let envelope: Value = serde_json::to_value(envelope).expect("as JSON");
        let ours: Value = serde_json::from_str(ERROR_RESPONSE).expect("JSON");
        assert_eq!(ours, envelope);
    }

    #[test]
    fn a_tally_counts_each_time_and_keeps_one_example_of_each() {
        let tally = Tally::default();
        let f = Finding {
            kind: DriftKind::UnknownField,
            operation: "getCurrentUser".into(),
            at: "data.beta".into(),
            detail: "true".into(),
        };
        tally.add(vec![f.clone()]);
        tally.add(vec![f.clone()]);
        tally.add(Vec::new());
        let report = tally.report();
        assert_eq!((report.exchanges, report.findings, report.examples.len()), (3, 2, 1));
        assert_eq!(report.counts[0].count, 2);
        assert!(report.table().contains("unknown_field") && !report.is_clean());
    }
}
