//! The arguments of a dynamic call and their checks against the table:
//! unknown names, missing required values, values that do not match their
//! schema. What passes comes out as text ready for the URL.

use std::time::Duration;

use serde_json::{Map, Value};

use super::schema::{check_value, coerce_value};
use crate::error::Error;
use crate::operations::{Operation, ParamLocation};

/// Arguments of a dynamic call.
///
/// ```
/// use serde_json::json;
/// let args = tokportal::OperationArgs::new()
///     .path("id", "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c")
///     .query("per_page", 50)
///     .body(json!({"quantity": 2}))
///     .idempotency_key("slots-123");
/// assert_eq!(args.query["per_page"], 50);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OperationArgs {
    /// Path parameters by name.
    pub path: Map<String, Value>,
    /// Query parameters by name (an array for a repeatable one).
    pub query: Map<String, Value>,
    /// JSON body.
    pub body: Option<Value>,
    /// `Idempotency-Key` for a mutating call.
    pub idempotency_key: Option<String>,
    /// `X-Request-ID` to correlate the call.
    pub request_id: Option<String>,
    /// Timeout of each attempt, instead of the client's.
    pub timeout: Option<Duration>,
    /// Send `X-TokPortal-Dry-Run: true`: the API previews the call (what it
    /// would charge, synthetic ids) and changes nothing. No idempotency key
    /// is sent, generated or used up with it.
    pub dry_run: bool,
}

impl OperationArgs {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `{"path": {...}, "query": {...}, "body": ...}` (each part optional).
    pub fn from_json(value: Value) -> Result<Self, Error> {
        let Value::Object(mut map) = value else {
            return Err(Error::invalid(
                None,
                None,
                "arguments must be a JSON object with `path`, `query` and `body`",
            ));
        };
        let mut part = |name: &str| -> Result<Map<String, Value>, Error> {
            match map.remove(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m),
                Some(_) => Err(Error::invalid(None, Some(name), "must be a JSON object")),
            }
        };
        let path = part("path")?;
        let query = part("query")?;
        let body = map.remove("body").filter(|b| !b.is_null());
        if let Some(other) = map.keys().next() {
            return Err(Error::invalid(
                None,
                Some(other),
                "unknown part; expected `path`, `query` or `body`",
            ));
        }
        Ok(Self {
            path,
            query,
            body,
            ..Self::default()
        })
    }

    /// Sets a path parameter.
    pub fn path(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.path.insert(name.into(), value.into());
        self
    }

    /// Sets a query parameter (an array for several values of a repeatable one).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    /// Sets the JSON body.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the `Idempotency-Key`.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the `X-Request-ID`.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the timeout of each attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes this call a dry run (`X-TokPortal-Dry-Run: true`): the API
    /// answers with what it would do and charge, and changes nothing.
    ///
    /// ```
    /// let args = tokportal::OperationArgs::new().dry_run();
    /// assert!(args.dry_run);
    /// ```
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
}

/// Arguments that passed their checks: path and query values as the text
/// they are sent as, in spec order.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Path parameters by name.
    pub(crate) path: Vec<(&'static str, String)>,
    /// Query pairs (a repeatable parameter once per value).
    pub(crate) query: Vec<(&'static str, String)>,
    /// Query pairs the vendored contract does not know, sent as given.
    pub(crate) extra_query: Vec<(String, String)>,
}

impl Checked {
    /// The text of path parameter `name`.
    pub(crate) fn path_value(&self, name: &str) -> Option<&str> {
        self.path.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Checks a dynamic call's arguments against its operation: names, required
/// values, schemas, the JSON body and the header values. Nothing is sent
/// unless this passes.
///
/// Unless `strict`, a query parameter or a body the vendored contract does not
/// give this operation is sent as given, with one warning per name (see
/// [`check_value`] for the properties and enum values inside a body).
pub(crate) fn check(op: &'static Operation, args: &OperationArgs, strict: bool) -> Result<Checked, Error> {
    // Every problem is collected, so that a caller can mend them all at once.
    let mut problems: Vec<Error> = Vec::new();
    let invalid = |field: &str, message: String| Error::invalid(Some(op.id), Some(field), message);
    for name in args.path.keys() {
        if !op
            .params
            .iter()
            .any(|p| p.location == ParamLocation::Path && p.name == name)
        {
            problems.push(invalid(name, format!("not a path parameter of {}", op.id)));
        }
    }
    let mut checked = Checked::default();
    for (name, value) in &args.query {
        let known = op
            .params
            .iter()
            .any(|p| p.location == ParamLocation::Query && p.name == name);
        if known {
            continue;
        }
        if strict {
            let known: Vec<_> = op
                .params
                .iter()
                .filter(|p| p.location == ParamLocation::Query)
                .map(|p| p.name)
                .collect();
            let takes = if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            };
            problems.push(invalid(
                name,
                format!("not a query parameter of {}; it takes {takes}", op.id),
            ));
            continue;
        }
        super::sent_as_given(op, name);
        let items = match value {
            Value::Null => Vec::new(),
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            match scalar_text(op, name, item) {
                Ok(text) => checked.extra_query.push((name.to_owned(), text)),
                Err(e) => problems.push(e),
            }
        }
    }
    match (&op.body, &args.body) {
        (None, Some(_)) if !strict => super::sent_as_given(op, "body"),
        (None, Some(_)) => problems.push(invalid("body", format!("{} takes no body", op.id))),
        (Some(b), None) if b.required && !op.is_multipart() => {
            problems.push(invalid("body", format!("{} needs a JSON body", op.id)));
        }
        (Some(b), Some(body)) if !op.is_multipart() => {
            if let Err(e) = check_value(op, "body", b.schema_json, body, strict) {
                problems.push(e);
            }
        }
        _ => {}
    }
    for p in op.params {
        let supplied = match p.location {
            ParamLocation::Path => args.path.get(p.name),
            ParamLocation::Query => args.query.get(p.name),
        };
        let Some(value) = supplied.filter(|v| !v.is_null()) else {
            if p.required {
                problems.push(invalid(p.name, "required".into()));
            }
            continue;
        };
        let value = coerce_value(&super::schema::parsed(p.schema_json), value.clone());
        if let Err(e) = check_value(op, p.name, p.schema_json, &value, strict) {
            problems.push(e);
            continue;
        }
        let texts = match &value {
            Value::Array(items) if p.location == ParamLocation::Query => items.iter().collect(),
            other => vec![other],
        };
        for item in texts {
            match (scalar_text(op, p.name, item), p.location) {
                // `url` drops `.` and `..` segments and an empty one adds a slash: each
                // would send the request to another path, so they are refused.
                (Ok(text), ParamLocation::Path) if matches!(text.as_str(), "" | "." | "..") => {
                    problems.push(invalid(p.name, format!("`{text}` cannot stand as a path segment")));
                }
                // `url` strips tabs and line breaks from a segment, and a NUL has no
                // place in a path: refused rather than sent somewhere else.
                (Ok(text), ParamLocation::Path) if text.chars().any(|c| c.is_ascii_control()) => {
                    problems.push(invalid(
                        p.name,
                        "a path parameter cannot hold control characters".into(),
                    ));
                }
                (Ok(text), ParamLocation::Path) => checked.path.push((p.name, text)),
                (Ok(text), ParamLocation::Query) => checked.query.push((p.name, text)),
                (Err(e), _) => problems.push(e),
            }
        }
    }
    if args.dry_run && op.method.is_read_only() {
        problems.push(invalid(
            "dry_run",
            "a read-only operation changes nothing and charges nothing: there is nothing to preview".into(),
        ));
    }
    if let Some(key) = &args.idempotency_key {
        if let Err(m) = crate::idempotency::validate_key(key.as_bytes()) {
            problems.push(invalid("idempotency_key", m));
        } else if op.idempotency_key == crate::operations::IdempotencyKeySupport::NotApplicable {
            problems.push(invalid(
                "idempotency_key",
                "a read-only operation takes no idempotency key".into(),
            ));
        }
    }
    if let Some(id) = &args.request_id
        && let Err(m) = crate::idempotency::validate_request_id(id.as_bytes())
    {
        problems.push(invalid("request_id", m));
    }
    match Error::combine(problems) {
        Some(error) => Err(error),
        None => Ok(checked),
    }
}

fn scalar_text(op: &Operation, name: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::invalid(
            Some(op.id),
            Some(name),
            "must be a string, number or boolean",
        )),
    }
}

/// One value or many, for a repeatable query filter of a typed builder:
/// `.account("A")`, `.account(vec!["A", "B"])` or `.account(["A", "B"])`.
///
/// ```
/// use tokportal::IntoValues;
/// assert_eq!("a".into_values(), vec!["a".to_owned()]);
/// assert_eq!(["a", "b"].into_values(), vec!["a".to_owned(), "b".to_owned()]);
/// ```
pub trait IntoValues {
    /// The values, as sent.
    fn into_values(self) -> Vec<String>;
}

impl IntoValues for &str {
    fn into_values(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}

impl IntoValues for String {
    fn into_values(self) -> Vec<String> {
        vec![self]
    }
}

impl IntoValues for &String {
    fn into_values(self) -> Vec<String> {
        vec![self.clone()]
    }
}

impl<T: Into<String>> IntoValues for Vec<T> {
    fn into_values(self) -> Vec<String> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<String> + Clone> IntoValues for &[T] {
    fn into_values(self) -> Vec<String> {
        self.iter().cloned().map(Into::into).collect()
    }
}

impl<T: Into<String>, const N: usize> IntoValues for [T; N] {
    fn into_values(self) -> Vec<String> {
        self.into_iter().map(Into::into).collect()
    }
}
