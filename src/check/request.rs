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
    // The query is parsed once; its pairs are borrowed where nothing was
    // escaped, so a typed call's query costs one list and no copies.
    let pairs = request.url().query().map(query_pairs).unwrap_or_default();
    for (index, (name, first)) in pairs.iter().enumerate() {
        if pairs[..index].iter().any(|(earlier, _)| earlier == name) {
            continue;
        }
        let mut values = pairs[index..].iter().filter(|(k, _)| k == name).map(|(_, v)| v);
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
        // Values a simple rule accepts need no JSON value and no validator.
        if (param.repeatable || values.clone().nth(1).is_none())
            && values
                .clone()
                .all(|raw| super::schema::text_surely_valid(param.schema_json, raw))
        {
            continue;
        }
        let schema = super::schema::parsed(param.schema_json);
        let value = if param.repeatable {
            let items = schema.get("items").unwrap_or(&Value::Null);
            Value::Array(values.map(|v| coerce(items, v)).collect())
        } else if values.nth(1).is_none() {
            coerce(&schema, first)
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

/// The pairs of `query`, as `form_urlencoded` reads them, borrowed from it
/// where nothing is escaped. Hand-rolled around the crate: it decodes every
/// key and value (a scan for `+`, one for `%` and a UTF-8 check each) even
/// when nothing is escaped, which costs more than the rest of a typed call's
/// query check; a pair with an escape still goes through it.
fn query_pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            if piece.bytes().any(|b| b == b'%' || b == b'+') {
                url::form_urlencoded::parse(piece.as_bytes()).next().unwrap_or_default()
            } else {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                (Cow::Borrowed(name), Cow::Borrowed(value))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(op: &str, query: &str) -> Result<(), Error> {
        let op = crate::operations::find(op).unwrap();
        let url = format!("https://app.tokportal.com/api/ext{}?{query}", op.path)
            .parse()
            .unwrap();
        check_request(op, &reqwest::Request::new(reqwest::Method::GET, url), false)
    }

    proptest::proptest! {
        /// The pairs are the ones `form_urlencoded` reads, escaped or not.
        #[test]
        fn query_pairs_read_as_form_urlencoded_does(query in "[a-z0-9=&%+._~-]{0,40}") {
            let ours: Vec<(String, String)> =
                query_pairs(&query).into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let theirs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn the_query_is_walked_once_per_name() {
        assert!(checked("listBundles", "page=1&per_page=10&status=published").is_ok());
        assert!(
            checked("exportAnalyticsVideos", "account=A&account=B").is_ok(),
            "repeatable"
        );
        let fields = |e: Error| {
            e.invalid_fields()
                .into_iter()
                .map(|f| f.field.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        let err = checked("listBundles", "page=1&status=a&page=2&per_page=0&colour=red").unwrap_err();
        assert_eq!(fields(err), ["page", "per_page", "colour"]);
        let err = checked("listBundles", "page=1&page=2").unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }
}
