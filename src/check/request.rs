//! The typed path's check: the query and JSON body of a request the generated
//! client built, re-checked against the spec (typify does not enforce every
//! constraint, integer ranges among them).

use std::borrow::Cow;

use serde_json::Value;

use super::schema::{check_value, coerce};
use crate::error::Error;
use crate::operations::{Operation, ParamLocation};

/// Checks the query parameters and JSON body of a built request (the
/// generated client's path: its typed values are re-checked against the spec).
pub(crate) fn check_request(op: &'static Operation, request: &reqwest::Request, strict: bool) -> Result<(), Error> {
    // Every problem is collected, as on the dynamic path.
    let mut problems = Vec::new();
    // Borrowed where nothing was escaped: a typed call's query costs no copies.
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = request.url().query_pairs().collect();
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &pairs {
        if seen.contains(&name.as_ref()) {
            continue;
        }
        seen.push(name);
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .collect();
        let Some(param) = op
            .params
            .iter()
            .find(|p| p.location == ParamLocation::Query && p.name == name)
        else {
            problems.push(Error::invalid(
                Some(op.id),
                Some(name),
                "not a query parameter of this operation",
            ));
            continue;
        };
        let schema = super::schema::parsed(param.schema_json);
        let value = if param.repeatable {
            let items = schema.get("items").unwrap_or(&Value::Null);
            Value::Array(values.iter().map(|v| coerce(items, v)).collect())
        } else if let [single] = values.as_slice() {
            coerce(&schema, single)
        } else {
            problems.push(Error::invalid(
                Some(op.id),
                Some(param.name),
                "given more than once but not repeatable",
            ));
            continue;
        };
        if let Err(e) = check_value(op, param.name, param.schema_json, &value, strict) {
            problems.push(e);
        }
    }
    if let (Some(body), Some(bytes)) = (&op.body, request.body().and_then(reqwest::Body::as_bytes))
        && body.content_type == "application/json"
    {
        let checked = serde_json::from_slice::<Value>(bytes)
            .map_err(|e| Error::invalid(Some(op.id), Some("body"), format!("not JSON: {e}")))
            .and_then(|value| check_value(op, "body", body.schema_json, &value, strict));
        if let Err(e) = checked {
            problems.push(e);
        }
    }
    match Error::combine(problems) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
