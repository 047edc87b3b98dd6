//! Every one of the 78 operations, called against httpmock on 127.0.0.1: the
//! server checks the method, path, query, headers and body it receives, and
//! the test checks the decoded answer. JSON operations go through
//! `request_operation`, multipart ones through `request_upload`.

mod common;

use common::{KEY, sample};
use httpmock::prelude::*;
use serde_json::{Map, Value, json};
use tokportal::operations::{OPERATIONS, Operation, ParamLocation};
use tokportal::uploads::{UploadOptions, UploadSource};
use tokportal::{OperationArgs, ResponseBody};

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Path, query and body arguments for `op`, from its schemas.
fn args_for(op: &Operation) -> (OperationArgs, String, Vec<(String, String)>) {
    let mut args = OperationArgs::new();
    let mut path = format!("/api/ext{}", op.path);
    let mut query = Vec::new();
    for p in op.params {
        let schema = p.schema();
        match p.location {
            ParamLocation::Path => {
                let v = sample(&schema);
                path = path.replace(&format!("{{{}}}", p.name), &text(&v));
                args = args.path(p.name, v);
            }
            ParamLocation::Query => {
                let v = if p.repeatable {
                    let item = sample(&schema["items"]);
                    // Two values of a repeatable filter go out as repeated keys.
                    let other = match &item {
                        Value::String(s) if schema["items"].get("enum").is_none() => json!(format!("{s}-2")),
                        _ => item.clone(),
                    };
                    json!([item, other])
                } else {
                    sample(&schema)
                };
                match &v {
                    Value::Array(items) => items.iter().for_each(|i| query.push((p.name.to_string(), text(i)))),
                    other => query.push((p.name.to_string(), text(other))),
                }
                args = args.query(p.name, v);
            }
        }
    }
    (args, path, query)
}

#[tokio::test]
async fn every_operation_sends_what_the_spec_says() {
    let server = MockServer::start_async().await;
    let client = common::client(&format!("{}/api/ext", server.base_url()));
    assert_eq!(OPERATIONS.len(), 78);
    let identifier = format!("tokportal-rust/{}", env!("CARGO_PKG_VERSION"));
    let mut multipart = 0;
    for op in OPERATIONS {
        let (mut args, path, query) = args_for(op);
        let body = op.body.filter(|_| !op.is_multipart()).map(|b| sample(&b.schema()));
        if let Some(b) = &body {
            args = args.body(b.clone());
        }
        let answer = json!({"data": {"operation": op.id}});
        let mock = server
            .mock_async(|when, then| {
                let mut when = when
                    .method(op.method.as_str())
                    .path(path.clone())
                    .header("x-tokportal-client", identifier.clone());
                // The key goes on every call, public operations included (it is harmless there).
                when = when.header("x-api-key", KEY);
                for (k, v) in &query {
                    when = when.query_param(k.clone(), v.clone());
                }
                if let Some(b) = &body {
                    when = when.json_body(b.clone()).header("content-type", "application/json");
                }
                if op.is_multipart() {
                    when = when
                        .header_includes("content-type", "multipart/form-data; boundary=")
                        .body_includes("file-content-of-the-upload");
                }
                // Retries are on: a generated key makes a mutating call safe to repeat.
                let _matched = if op.idempotency_key == tokportal::operations::IdempotencyKeySupport::Accepted {
                    when.header_exists("idempotency-key")
                } else {
                    when.header_missing("idempotency-key")
                };
                let then = then.status(op.success_status);
                match op.success_content_type {
                    Some("text/csv") => {
                        then.header("content-type", "text/csv").body("id,views\n1,2\n");
                    }
                    Some("text/html") => {
                        then.header("content-type", "text/html").body("<html>report</html>");
                    }
                    Some(_) => {
                        then.header("content-type", "application/json")
                            .json_body(answer.clone());
                    }
                    None => {}
                }
            })
            .await;
        let response = if op.is_multipart() {
            multipart += 1;
            let mut fields = Map::new();
            for (k, v) in &args.path {
                fields.insert(k.clone(), v.clone());
            }
            let form = op.body.map(|b| sample(&b.schema())).unwrap_or_default();
            for (k, v) in form.as_object().into_iter().flatten() {
                if k != "file" {
                    fields.insert(k.clone(), v.clone());
                }
            }
            client
                .request_upload(
                    op.id,
                    fields,
                    UploadSource::bytes(&b"file-content-of-the-upload"[..], "a.csv"),
                    UploadOptions::new(),
                )
                .await
        } else {
            client.request_operation(op.id, args).await
        };
        let response = response.unwrap_or_else(|e| panic!("{}: {e}", op.id));
        assert_eq!(mock.calls_async().await, 1, "{} was not received as expected", op.id);
        assert_eq!(response.meta.status, op.success_status, "{}", op.id);
        match op.success_content_type {
            Some("text/csv") => assert_eq!(response.body, ResponseBody::Text("id,views\n1,2\n".into())),
            Some("text/html") => assert_eq!(response.body, ResponseBody::Text("<html>report</html>".into())),
            Some(_) => assert_eq!(response.body, ResponseBody::Json(answer), "{}", op.id),
            None => assert_eq!(response.body, ResponseBody::Empty, "{}", op.id),
        }
    }
    assert_eq!(multipart, 3);
}

#[test]
fn table_matches_spec_facts() {
    let ids: Vec<_> = OPERATIONS.iter().map(|o| o.id).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 78);
    let handwritten: Vec<_> = OPERATIONS.iter().filter(|o| o.handwritten).map(|o| o.id).collect();
    assert_eq!(
        handwritten,
        ["importBundleVideosCsv", "uploadVideoDirect", "uploadImageDirect"]
    );
    let find = |id| tokportal::operations::find(id).unwrap();
    assert_eq!(find("exportAnalyticsVideos").success_content_type, Some("text/csv"));
    assert_eq!(
        find("exportAnalyticsReportHtml").success_content_type,
        Some("text/html")
    );
    assert_eq!(find("deleteWebhookEndpoint").success_status, 204);
    assert!(!find("listCountries").requires_auth);
    assert!(find("exportAnalyticsVideos").param("account").unwrap().repeatable);
    assert!(find("getAnalyticsSeries").param("account").unwrap().repeatable);
    // `description: undefined` in the spec does not survive.
    assert!(
        OPERATIONS
            .iter()
            .flat_map(|o| o.params)
            .all(|p| p.description != Some("undefined"))
    );
    let refused: Vec<_> = OPERATIONS
        .iter()
        .filter(|o| o.idempotency_key == tokportal::operations::IdempotencyKeySupport::Refused)
        .map(|o| o.id)
        .collect();
    assert_eq!(refused.len(), 6, "{refused:?}");
}
