//! Issue 12 on the SDK: what a newer API accepts is sent as given (unless the
//! client is strict), a 428 is a structured error, and dry runs send their
//! header and never an idempotency key.

mod common;

use common::{Reply, Scripted, UUID_A, client, client_without_retries, json_reply};
use serde_json::{Value, json};
use tokportal::uploads::{UploadOptions, UploadSource};
use tokportal::{Error, OperationArgs};

fn ok() -> Reply {
    json_reply(200, json!({"data": {"id": UUID_A}}))
}

fn body_of(r: &common::Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test]
async fn what_the_contract_does_not_know_is_sent_as_given() {
    let server = Scripted::start(vec![ok(), ok(), ok()]).await;
    let c = client(&server.base_url);
    let body = json!({"bundle_type": "account_only", "country": "USA", "platform": "snapchat",
                      "wants_advanced_warming": true, "advanced_warming_terms": {"days": 7}});
    c.request_operation("createBundle", OperationArgs::new().body(body.clone()))
        .await
        .unwrap();
    c.request_operation(
        "listBundles",
        OperationArgs::new()
            .query("per_page", 10)
            .query("colour", "red")
            .query("tag", vec!["a", "b"]),
    )
    .await
    .unwrap();
    // A body where the contract has none: the answer to a 428 acceptance preview.
    c.request_operation(
        "revealAccountCredentials",
        OperationArgs::new().path("id", UUID_A).body(json!({"accept": true})),
    )
    .await
    .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(body_of(&sent[0]), body);
    assert!(
        sent[1].target.ends_with("?per_page=10&colour=red&tag=a&tag=b"),
        "{}",
        sent[1].target
    );
    assert_eq!(body_of(&sent[2]), json!({"accept": true}));
}

#[tokio::test]
async fn known_rules_still_refuse_before_sending() {
    let server = Scripted::start(vec![ok()]).await;
    let c = client(&server.base_url);
    for (op, args, field) in [
        (
            "createBundle",
            OperationArgs::new().body(json!({"bundle_type": "account_only", "videos_quantity": "five"})),
            "body",
        ),
        (
            "createBundle",
            OperationArgs::new().body(json!({"country": "USA"})),
            "body",
        ),
        ("listBundles", OperationArgs::new().query("per_page", 500), "per_page"),
        ("getBundle", OperationArgs::new().path("id", "not-a-uuid"), "id"),
    ] {
        match c.request_operation(op, args).await {
            Err(Error::InvalidArgument { field: Some(f), .. }) => assert_eq!(f, field, "{op}"),
            other => panic!("{op}: {other:?}"),
        }
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_strict_client_refuses_what_the_contract_does_not_know() {
    let server = Scripted::start(vec![ok()]).await;
    let c = common::strict_client(&server.base_url);
    let cases = [
        (
            "createBundle",
            OperationArgs::new().body(json!({"bundle_type": "account_only", "wants_advanced_warming": true})),
        ),
        (
            "createBundle",
            OperationArgs::new().body(json!({"bundle_type": "account_only", "platform": "snapchat"})),
        ),
        ("listBundles", OperationArgs::new().query("colour", "red")),
        (
            "revealAccountCredentials",
            OperationArgs::new().path("id", UUID_A).body(json!({"accept": true})),
        ),
    ];
    for (op, args) in cases {
        let err = c.request_operation(op, args).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{op}: {err:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.mp4");
    std::fs::write(&file, b"v").unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("bundle_id".into(), json!(UUID_A));
    fields.insert("caption".into(), json!("new field"));
    let err = c
        .request_upload(
            "uploadVideoDirect",
            fields,
            UploadSource::path(&file),
            UploadOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_428_is_structured_and_never_retried() {
    let server = Scripted::start(vec![
        json_reply(
            428,
            json!({"error": {"code": "ACCEPTANCE_REQUIRED", "message": "Accept the terms first.",
                             "details": {"acceptance": {"terms_version": "2026-10"}}}}),
        ),
        ok(),
    ])
    .await;
    let err = client(&server.base_url)
        .request_operation("revealAccountCredentials", OperationArgs::new().path("id", UUID_A))
        .await
        .unwrap_err();
    let api = err.api().expect("an API error");
    assert!(api.acceptance_required());
    assert!(!api.is_retryable() && !err.is_retryable());
    assert_eq!(api.code.as_deref(), Some("ACCEPTANCE_REQUIRED"));
    assert_eq!(api.details, Some(json!({"acceptance": {"terms_version": "2026-10"}})));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dry_runs_send_the_header_and_no_idempotency_key_on_every_sdk_path() {
    let preview = json!({"data": {"dry_run": true, "dry_run_notice": "Nothing was created.",
        "id": "00000000-0000-4000-8000-000000000000", "credits_would_charge": 12, "credits_charged": 0,
        "cost_breakdown": {"bundle": 10, "videos": 2}}});
    let server = Scripted::start(vec![
        json_reply(200, preview.clone()),
        json_reply(200, preview.clone()),
        json_reply(200, preview.clone()),
        ok(),
        ok(),
    ])
    .await;
    // Retries on: without a dry run, a key would be generated.
    let c = client(&server.base_url);
    let typed = c
        .create_bundle()
        .body(
            tokportal::types::CreateBundleRequest::builder()
                .bundle_type(tokportal::types::CreateBundleRequestBundleType::AccountOnly)
                .country(Some("USA".parse().unwrap())),
        )
        .idempotency_key("caller-key")
        .dry_run()
        .send()
        .await
        .unwrap();
    assert_eq!(
        tokportal::DryRunPreview::from_typed(&typed.into_inner()).and_then(|p| p.credits_would_charge),
        Some(12.0)
    );
    let dynamic = c
        .request_operation(
            "createBundle",
            OperationArgs::new()
                .body(json!({"bundle_type": "account_only", "country": "USA"}))
                .idempotency_key("caller-key")
                .dry_run(),
        )
        .await
        .unwrap();
    let p = dynamic.dry_run_preview().expect("a preview");
    assert_eq!(p.credits_would_charge, Some(12.0));
    assert_eq!(p.credits_charged, Some(0.0));
    assert_eq!(p.cost_breakdown, Some(json!({"bundle": 10, "videos": 2})));
    assert_eq!(p.notice.as_deref(), Some("Nothing was created."));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.mp4");
    std::fs::write(&file, vec![1u8; 1000]).unwrap();
    c.upload_video_direct(
        UUID_A.parse().unwrap(),
        UploadSource::path(&file),
        UploadOptions::new().idempotency_key("caller-key").dry_run(),
    )
    .await
    .unwrap();
    // And without a dry run: no header, and a key as usual.
    c.request_operation(
        "createBundle",
        OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"})),
    )
    .await
    .unwrap();
    c.upload_video_direct(UUID_A.parse().unwrap(), UploadSource::path(&file), UploadOptions::new())
        .await
        .unwrap();

    let sent = server.requests();
    assert_eq!(sent.len(), 5);
    for r in &sent[..3] {
        assert_eq!(r.header("x-tokportal-dry-run"), Some("true"), "{}", r.target);
        assert_eq!(r.header("idempotency-key"), None, "{}", r.target);
    }
    for r in &sent[3..] {
        assert_eq!(r.header("x-tokportal-dry-run"), None, "{}", r.target);
        assert!(r.header("idempotency-key").is_some(), "{}", r.target);
    }
}

#[tokio::test]
async fn a_dry_run_is_retried_like_a_call_that_changes_nothing() {
    let server = Scripted::start(vec![
        json_reply(503, json!({"error": {"code": "UNAVAILABLE", "message": "x"}})),
        ok(),
    ])
    .await;
    client(&server.base_url)
        .request_operation("publishBundle", OperationArgs::new().path("id", UUID_A).dry_run())
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("x-tokportal-dry-run") == Some("true")));
}

#[tokio::test]
async fn a_dry_run_of_a_read_only_operation_is_refused_before_sending() {
    let server = Scripted::start(vec![ok()]).await;
    let err = client_without_retries(&server.base_url)
        .request_operation("listBundles", OperationArgs::new().dry_run())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { field: Some(f), .. } if f == "dry_run"),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_newer_webhook_event_type_arrives_as_unknown() {
    let body = json!({"id": "evt_1", "type": "account.banned", "api_version": "2026-11-01",
                      "created_at": "2026-11-25T10:00:00Z",
                      "data": {"account_id": UUID_A, "reason": "policy"}})
    .to_string();
    let now = 1_780_000_000;
    let header = tokportal::webhooks::sign("whsec_test", now, body.as_bytes());
    let mut headers = http::HeaderMap::new();
    headers.insert(tokportal::webhooks::SIGNATURE_HEADER, header.parse().unwrap());
    let event = tokportal::webhooks::Verifier::new("whsec_test")
        .construct_event_at(&headers, body.as_bytes(), now)
        .unwrap();
    assert_eq!(event.event_type, "account.banned");
    match event.payload {
        tokportal::webhooks::WebhookEvent::Unknown { event_type, data } => {
            assert_eq!(event_type, "account.banned");
            assert_eq!(data["reason"], "policy");
        }
        other => panic!("{other:?}"),
    }
}
