//! What the client reports through `tracing`. One test in its own binary:
//! tracing caches per-callsite interest process-wide, so a scoped subscriber
//! is only reliable when no other test runs beside it.

mod common;

use std::sync::{Arc, Mutex};

use common::KEY;
use httpmock::prelude::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_newer_api_version_is_reported_once_and_the_key_never_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/countries");
            then.status(200)
                .header("x-tokportal-api-version", "2027-01-01")
                .header("content-type", "application/json")
                .json_body(json!({"data": []}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/bundles");
            then.status(201)
                .header("content-type", "application/json")
                .json_body(json!({"data": {}}));
        })
        .await;
    let client = common::client(&server.base_url());
    for _ in 0..3 {
        client.list_countries().send().await.unwrap();
    }
    // What the vendored contract does not know: one warning per operation and name.
    for _ in 0..3 {
        client
            .request_operation(
                "createBundle",
                tokportal::OperationArgs::new()
                    .body(json!({"bundle_type": "account_only", "country": "USA", "wants_advanced_warming": true})),
            )
            .await
            .unwrap();
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logs.matches("2027-01-01, this SDK was generated from 2026-05-25")
            .count(),
        1,
        "{logs}"
    );
    assert_eq!(
        logs.matches(
            "createBundle: `body/wants_advanced_warming` is not in the vendored contract 2026-05-25; sent as given"
        )
        .count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("tokportal attempt"), "attempts are traced: {logs}");
    assert!(
        logs.contains("operation=\"listCountries\""),
        "under the operationId: {logs}"
    );
    assert!(!logs.contains(KEY), "the key must never be logged");
}
