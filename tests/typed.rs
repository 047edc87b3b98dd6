//! The progenitor-generated typed methods, through the SDK's hooks.

mod common;

use common::{KEY, UUID_A};
use httpmock::prelude::*;
use serde_json::json;
use tokportal::types::{CreateBundleRequest, CreateBundleRequestBundleType};
use tokportal::{Error, ResponseExt};

fn identifier() -> String {
    format!("tokportal-rust/{}", env!("CARGO_PKG_VERSION"))
}

#[tokio::test]
async fn get_current_user_is_typed_and_carries_metadata() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/me")
                .header("x-api-key", KEY)
                .header("x-tokportal-client", identifier());
            then.status(200)
                .header("content-type", "application/json")
                .header("x-tokportal-request-id", "req_abc")
                .header("x-ratelimit-limit", "120")
                .header("x-ratelimit-remaining", "119")
                .header("x-ratelimit-reset", "1779724800")
                .json_body(json!({"data": {
                    "id": UUID_A, "email": "you@example.com", "full_name": null,
                    "credits": {"balance": 1250}, "api_key": {"id": UUID_A, "name": "ci"}
                }}));
        })
        .await;
    let client = common::client(&server.base_url());
    let me = client.get_current_user().send().await.expect("typed call succeeds");
    mock.assert_async().await;
    assert_eq!(me.data.email, "you@example.com");
    assert_eq!(me.data.credits.balance, 1250.0);
    assert_eq!(me.data.full_name, None);
    let meta = me.meta();
    assert_eq!(meta.request_id.as_deref(), Some("req_abc"));
    assert_eq!(meta.rate_limit.and_then(|r| r.remaining), Some(119));
}

#[tokio::test]
async fn create_bundle_sends_typed_body_and_idempotency_key() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/bundles")
                .header("idempotency-key", "bundle-create-123")
                .header("x-request-id", "trace-1")
                // Exactly the fields set: the spec's defaults are the server's business.
                .json_body(json!({
                    "bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 5
                }));
            then.status(201)
                .header("content-type", "application/json")
                .header("idempotent-replayed", "true")
                .json_body(json!({"data": {"id": UUID_A}, "credits_charged": 50}));
        })
        .await;
    let client = common::client(&server.base_url());
    let created = client
        .create_bundle()
        .body(
            CreateBundleRequest::builder()
                .bundle_type(CreateBundleRequestBundleType::AccountAndVideos)
                .country(Some("USA".parse().unwrap()))
                .videos_quantity(5),
        )
        .idempotency_key("bundle-create-123")
        .x_request_id("trace-1")
        .send()
        .await
        .expect("created");
    mock.assert_async().await;
    assert_eq!(created.credits_charged, Some(50.0));
    assert_eq!(created.data["id"], UUID_A);
    assert!(created.meta().idempotent_replayed);
}

#[tokio::test]
async fn webhook_events_decode_into_their_type_without_a_key() {
    let server = MockServer::start_async().await;
    let example = json!({"data": {
        "events": [{"type": "bundle.created", "category": "bundle", "availability": "emitted",
                    "description": "d", "when": "w", "payload_schema": {}, "example_payload": {}}],
        "envelope": {"id": "evt_1", "type": "bundle.created", "api_version": "2026-05-25",
                     "created_at": "2026-06-01T12:00:00Z", "data": {}},
        "delivery": {"method": "POST", "content_type": "application/json", "timeout_ms": 8000,
                     "user_agent": "TokPortal-Webhooks/1.0", "headers": ["TokPortal-Signature"]},
        "signature": {"header": "TokPortal-Signature", "scheme": "s", "signed_payload": "p",
                      "algorithm": "HMAC-SHA256", "default_tolerance_seconds": 300}
    }});
    let mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/webhooks/events").header_missing("x-api-key");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(example.clone());
        })
        .await;
    let client = tokportal::Client::builder()
        .base_url(server.base_url())
        .build()
        .unwrap();
    let events = client
        .list_webhook_events()
        .send()
        .await
        .expect("public call needs no key");
    mock.assert_async().await;
    assert_eq!(events.data.events.len(), 1);
    assert_eq!(events.data.signature.default_tolerance_seconds, 300);
}

#[tokio::test]
async fn repeatable_filters_go_out_as_repeated_keys_and_csv_streams() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/analytics/export/videos")
                .query_param("account", "a1")
                .query_param("account", "a2")
                .query_param("country", "USA");
            then.status(200)
                .header("content-type", "text/csv")
                .body("id,views\n1,10\n");
        })
        .await;
    let client = common::client(&server.base_url());
    let csv = client
        .export_analytics_videos()
        .account(vec!["a1".to_string(), "a2".to_string()])
        .country(vec!["USA".to_string()])
        .send()
        .await
        .expect("csv");
    mock.assert_async().await;
    let mut stream = csv.into_inner();
    let mut text = Vec::new();
    use futures::TryStreamExt;
    while let Some(chunk) = stream.try_next().await.unwrap() {
        text.extend_from_slice(&chunk);
    }
    assert_eq!(text, b"id,views\n1,10\n");
}

#[tokio::test]
async fn delete_answers_unit_on_204() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(DELETE).path(format!("/webhooks/{UUID_A}"));
            then.status(204);
        })
        .await;
    let client = common::client(&server.base_url());
    let done = client
        .delete_webhook_endpoint()
        .id(UUID_A.parse::<uuid::Uuid>().unwrap())
        .send()
        .await
        .expect("deleted");
    mock.assert_async().await;
    assert_eq!(done.status().as_u16(), 204);
    let () = done.into_inner();
}

#[tokio::test]
async fn invalid_arguments_fail_before_sending() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).json_body(json!({"data": {}}));
        })
        .await;
    let client = common::client(&server.base_url());

    // A string longer than the spec's maxLength.
    let too_long = "x".repeat(201).parse::<tokportal::types::CreateBundleRequestTitle>();
    assert!(too_long.is_err());
    let err = client
        .create_bundle()
        .body(
            CreateBundleRequest::builder()
                .bundle_type(CreateBundleRequestBundleType::AccountOnly)
                .country(Some("USA".parse().unwrap())),
        )
        .idempotency_key("has a space")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");

    // An out-of-range integer (per_page maximum 100).
    let err = client.list_bundles().per_page(101).send().await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { operation: Some(op), field: Some(f), message, .. }
            if op == "listBundles" && f == "per_page" && message == "101 is greater than the maximum of 100"),
        "{err}"
    );
    // One wording on every path: the typed builder and the dynamic call say the same.
    let dynamic = client
        .request_operation("listBundles", tokportal::OperationArgs::new().query("per_page", 101))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), dynamic.to_string());
    assert_eq!(
        err.to_string(),
        "listBundles: invalid argument `per_page`: 101 is greater than the maximum of 100"
    );

    // An enum value the contract does not know, through a strict client's dynamic call
    // (a lenient client sends it as given: tests/forward_compat.rs).
    let strict = common::strict_client(client.base_url());
    let err = strict
        .request_operation(
            "listBundles",
            tokportal::OperationArgs::new().query("bundle_type", "nope"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { field: Some(f), .. } if f == "bundle_type"),
        "{err}"
    );

    // A key on an operation that returns a secret is refused locally.
    let err = client
        .request_operation(
            "revealAccountCredentials",
            tokportal::OperationArgs::new().path("id", UUID_A).idempotency_key("k1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { field: Some(f), .. } if f == "idempotency_key"),
        "{err}"
    );
    assert_eq!(any.calls_async().await, 0, "nothing may reach the server");
}

#[tokio::test]
async fn missing_key_is_a_typed_error_and_nothing_is_sent() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200);
        })
        .await;
    let client = tokportal::Client::builder()
        .base_url(server.base_url())
        .build()
        .unwrap();
    let err = client.get_current_user().send().await.unwrap_err();
    assert!(matches!(err, Error::MissingApiKey), "{err}");
    let err = client
        .request_operation("getCurrentUser", Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingApiKey), "{err}");
    assert_eq!(any.calls_async().await, 0);
}

#[tokio::test]
async fn api_key_never_follows_a_cross_origin_redirect() {
    let elsewhere = MockServer::start_async().await;
    let stolen = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).json_body(json!({"data": {}}));
        })
        .await;
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/credits/balance");
            then.status(302).header("location", elsewhere.url("/credits/balance"));
        })
        .await;
    let same_origin = server
        .mock_async(|when, then| {
            when.path("/countries").header("x-api-key", KEY);
            then.status(307).header("location", server.url("/countries-v2"));
        })
        .await;
    let followed = server
        .mock_async(|when, then| {
            when.path("/countries-v2").header("x-api-key", KEY);
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"data": []}));
        })
        .await;
    let client = common::client(&server.base_url());
    let err = client
        .request_operation("getCreditBalance", Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(302));
    assert_eq!(stolen.calls_async().await, 0, "another origin must never see the key");
    client
        .request_operation("listCountries", Default::default())
        .await
        .expect("same-origin redirect is followed");
    assert_eq!(same_origin.calls_async().await, 1);
    assert_eq!(followed.calls_async().await, 1);
}

#[test]
fn debug_never_shows_the_key() {
    let client = tokportal::Client::builder()
        .api_key("sk_live_supersecret")
        .build()
        .unwrap();
    let shown = format!(
        "{client:?} {:?}",
        tokportal::ClientBuilder::new().api_key("sk_live_supersecret")
    );
    assert!(!shown.contains("supersecret"), "{shown}");
    assert_eq!(client.base_url(), "https://app.tokportal.com/api/ext");
}

#[test]
fn bad_base_url_is_a_config_error() {
    assert!(matches!(
        tokportal::Client::builder().base_url("not a url").build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        tokportal::Client::builder().base_url("ftp://x.example").build(),
        Err(Error::Config(_))
    ));
}
