//! Safe retries, against a scripted server on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, Scripted, UUID_A, json_reply};
use serde_json::json;
use tokportal::{Error, OperationArgs, RetryPolicy};

fn ok() -> Reply {
    json_reply(200, json!({"data": []}))
}

fn status(code: u16) -> Reply {
    json_reply(code, json!({"error": {"code": "E", "message": "m"}}))
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let server = Scripted::start(vec![
        Reply::Http(
            429,
            vec![("retry-after", "1".into()), ("content-type", "application/json".into())],
            "{}".into(),
        ),
        ok(),
    ])
    .await;
    let client = common::client(&server.base_url);
    let started = Instant::now();
    client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .expect("second attempt succeeds");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn three_503_then_200() {
    let server = Scripted::start(vec![status(503), status(503), status(503), ok()]).await;
    let client = tokportal::Client::builder()
        .api_key(common::KEY)
        .base_url(&server.base_url)
        .retry(
            RetryPolicy::default()
                .max_attempts(4)
                .initial_backoff(Duration::from_millis(5))
                .jitter(false),
        )
        .build()
        .unwrap();
    client.list_countries().send().await.expect("fourth attempt succeeds");
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn attempts_are_bounded() {
    let server = Scripted::start(vec![status(503), status(503), status(503), ok()]).await;
    let client = common::client(&server.base_url); // 3 attempts
    let err = client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_post_without_key_and_retries_off_is_sent_once() {
    let server = Scripted::start(vec![status(500), ok()]).await;
    let client = common::client_without_retries(&server.base_url);
    let err = client
        .request_operation(
            "createBundle",
            OperationArgs::new().body(json!({"bundle_type": "account_only"})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("idempotency-key"),
        None,
        "no key is invented when retries are off"
    );
}

#[tokio::test]
async fn a_retried_post_carries_the_same_generated_key() {
    let server = Scripted::start(vec![
        status(500),
        status(502),
        json_reply(201, json!({"data": {"id": UUID_A}})),
    ])
    .await;
    let client = common::client(&server.base_url);
    client
        .create_bundle()
        .body(
            tokportal::types::CreateBundleRequest::builder()
                .bundle_type(tokportal::types::CreateBundleRequestBundleType::AccountOnly),
        )
        .send()
        .await
        .expect("third attempt succeeds");
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    let key = sent[0]
        .header("idempotency-key")
        .expect("a key was generated")
        .to_string();
    assert!(uuid::Uuid::parse_str(&key).is_ok(), "{key}");
    assert!(sent.iter().all(|r| r.header("idempotency-key") == Some(key.as_str())));
    assert!(sent.iter().all(|r| r.body == sent[0].body));
}

#[tokio::test]
async fn the_callers_key_is_kept_on_retries() {
    let server = Scripted::start(vec![status(503), ok()]).await;
    let client = common::client(&server.base_url);
    client
        .request_operation(
            "addVideoSlots",
            OperationArgs::new()
                .path("id", UUID_A)
                .body(json!({"quantity": 1}))
                .idempotency_key("slots-1"),
        )
        .await
        .expect("retried");
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("idempotency-key") == Some("slots-1")));
}

#[tokio::test]
async fn secret_returning_operations_are_not_retried_after_sending() {
    let server = Scripted::start(vec![status(503), ok()]).await;
    let client = common::client(&server.base_url);
    let err = client
        .request_operation("revealAccountCredentials", OperationArgs::new().path("id", UUID_A))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header("idempotency-key"), None);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_a_get() {
    let server = Scripted::start(vec![Reply::Drop, ok()]).await;
    let client = common::client(&server.base_url);
    client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .expect("retried after the reset");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn the_deadline_cuts_a_slow_attempt() {
    let server = Scripted::start(vec![Reply::Slow(Duration::from_secs(5))]).await;
    let client = tokportal::Client::builder()
        .api_key(common::KEY)
        .base_url(&server.base_url)
        .retry(RetryPolicy::default().deadline(Duration::from_millis(300)))
        .build()
        .unwrap();
    let err = client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    // The deadline, not the server, ended the call: the server would have
    // answered 200 after 5 s, and the attempt's limit was what was left of
    // the 300 ms deadline (not the client's 30 s timeout).
    assert!(
        matches!(err, Error::Timeout { after: Some(after), .. }
            if after > Duration::ZERO && after <= Duration::from_millis(300)),
        "{err:?}"
    );
    // No further attempt was started past the deadline, though the policy
    // allows three.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_ends_the_retries() {
    let server = Scripted::start(vec![
        Reply::Http(429, vec![("retry-after", "3600".into())], String::new()),
        ok(),
    ])
    .await;
    let client = common::client(&server.base_url);
    let err = client
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert_eq!(err.api().and_then(|e| e.retry_after_seconds), Some(3600));
    assert_eq!(server.requests().len(), 1);
}
