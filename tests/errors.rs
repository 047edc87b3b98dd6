//! Every error status the spec lists, decoded into the structured error.

mod common;

use httpmock::prelude::*;
use serde_json::json;
use tokportal::types::{CreateBundleRequest, CreateBundleRequestBundleType};
use tokportal::{Error, OperationArgs};

const CODES: [(u16, &str); 8] = [
    (400, "VALIDATION_ERROR"),
    (401, "UNAUTHORIZED"),
    (402, "INSUFFICIENT_CREDITS"),
    (403, "FORBIDDEN"),
    (404, "NOT_FOUND"),
    (409, "CONFLICT"),
    (429, "RATE_LIMIT_EXCEEDED"),
    (502, "UPSTREAM_ERROR"),
];

fn error_mock<'a>(server: &'a MockServer, status: u16, code: &str) -> httpmock::Mock<'a> {
    server.mock(|when, then| {
        when.any_request();
        then.status(status)
            .header("content-type", "application/json")
            .header("x-tokportal-request-id", format!("req_{status}"))
            .header("retry-after", "7")
            .header("x-ratelimit-limit", "120")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", "1779724800")
            .json_body(json!({"error": {"code": code, "message": format!("status {status}"), "details": {"field": "country"}}}));
    })
}

fn check(err: &Error, status: u16, code: &str) {
    let api = err.api().unwrap_or_else(|| panic!("{status}: not an API error: {err}"));
    assert_eq!(api.status, status);
    assert_eq!(api.code.as_deref(), Some(code));
    assert_eq!(api.message, format!("status {status}"));
    assert_eq!(api.details, Some(json!({"field": "country"})));
    assert_eq!(api.request_id.as_deref(), Some(format!("req_{status}").as_str()));
    assert_eq!(api.retry_after_seconds, Some(7));
    let rl = api.rate_limit.expect("rate limit");
    assert_eq!(
        (rl.limit, rl.remaining, rl.reset),
        (Some(120), Some(0), Some(1779724800))
    );
    assert_eq!(err.is_retryable(), matches!(status, 429 | 502));
    assert_eq!(
        err.to_string(),
        format!("HTTP {status} {code}: status {status} (request id req_{status})")
    );
}

#[tokio::test]
async fn each_listed_status_decodes_through_the_typed_client() {
    for (status, code) in CODES {
        let server = MockServer::start_async().await;
        let mut mock = error_mock(&server, status, code);
        let client = common::client_without_retries(&server.base_url());
        let err = client
            .create_bundle()
            .body(CreateBundleRequest::builder().bundle_type(CreateBundleRequestBundleType::AccountOnly))
            .send()
            .await
            .unwrap_err();
        check(&err, status, code);
        assert_eq!(mock.calls(), 1, "sent once with retries off");
        mock.delete();
    }
}

#[tokio::test]
async fn each_listed_status_decodes_through_the_dynamic_call() {
    for (status, code) in CODES {
        let server = MockServer::start_async().await;
        let _mock = error_mock(&server, status, code);
        let client = common::client_without_retries(&server.base_url());
        let err = client
            .request_operation(
                "createBundle",
                OperationArgs::new().body(json!({"bundle_type": "account_only"})),
            )
            .await
            .unwrap_err();
        check(&err, status, code);
    }
}

#[tokio::test]
async fn an_html_502_from_a_proxy_keeps_its_raw_body() {
    let server = MockServer::start_async().await;
    server.mock(|when, then| {
        when.any_request();
        then.status(502)
            .header("content-type", "text/html")
            .header("x-request-id", "edge-1")
            .body("<html><h1>502 Bad Gateway</h1></html>");
    });
    let client = common::client_without_retries(&server.base_url());
    let err = client.get_current_user().send().await.unwrap_err();
    let api = err.api().expect("API error");
    assert_eq!(api.status, 502);
    assert_eq!(api.code, None);
    assert_eq!(api.raw_body.as_deref(), Some("<html><h1>502 Bad Gateway</h1></html>"));
    assert_eq!(api.request_id.as_deref(), Some("edge-1"));
    assert!(err.is_retryable());
    assert_eq!(
        api.payload(),
        json!({"raw_body": "<html><h1>502 Bad Gateway</h1></html>"})
    );
    assert_eq!(err.to_string(), "HTTP 502: Bad Gateway (request id edge-1)");
}

#[tokio::test]
async fn an_undecodable_success_body_is_a_decode_error() {
    let server = MockServer::start_async().await;
    server.mock(|when, then| {
        when.any_request();
        then.status(200)
            .header("content-type", "application/json")
            .body("{\"data\": ");
    });
    let client = common::client_without_retries(&server.base_url());
    let err = client.get_current_user().send().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    let err = client
        .request_operation("getCurrentUser", OperationArgs::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { body, .. } if body == "{\"data\": "),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_connect_error() {
    // Bind then drop a listener: the port is free and nothing answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = common::client_without_retries(&format!("http://127.0.0.1:{port}"));
    let err = client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_secret_bearing_answer_never_lands_in_an_error() {
    let server = MockServer::start_async().await;
    server.mock(|when, then| {
        when.any_request();
        then.status(200)
            .header("content-type", "application/json")
            .body("{\"data\": {\"password\": \"hunter2\"");
    });
    let client = common::client_without_retries(&server.base_url());
    let err = client
        .request_operation(
            "revealAccountCredentials",
            OperationArgs::new().path("id", common::UUID_A),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(!format!("{err:?} {err}").contains("hunter2"));
    // The typed method too.
    let err = client
        .reveal_account_credentials()
        .id(common::UUID_A.parse::<uuid::Uuid>().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(!format!("{err:?} {err}").contains("hunter2"), "{err:?}");
}
