//! Every case of the shared webhook signature vectors (copied to tests/data/).

use std::time::Duration;

use serde_json::Value;
use tokportal::webhooks::{Verifier, WebhookError, WebhookEvent, sign};

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/webhook-signatures.json")).expect("vectors are JSON")
}

fn body_of(case: &Value) -> Vec<u8> {
    match (
        case.get("body").and_then(Value::as_str),
        case.get("body_hex").and_then(Value::as_str),
    ) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(h)) => hex::decode(h).expect("body_hex is hex"),
        _ => panic!("case without a body: {case}"),
    }
}

#[test]
fn signing_vectors() {
    let v = vectors();
    let cases = v["signing"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let header = sign(
            case["secret"].as_str().unwrap(),
            case["timestamp"].as_i64().unwrap(),
            &body_of(case),
        );
        assert_eq!(header, case["header"].as_str().unwrap());
    }
}

#[test]
fn verification_vectors() {
    let v = vectors();
    let cases = v["verification"].as_array().unwrap();
    assert_eq!(cases.len(), 23);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut verifier = Verifier::new(case["secret"].as_str().unwrap());
        verifier = match case["tolerance_seconds"].as_u64() {
            Some(t) => verifier.tolerance(Duration::from_secs(t)),
            None => verifier.without_age_check(),
        };
        let result = verifier.verify_at(
            &body_of(case),
            case["header"].as_str().unwrap(),
            case["now"].as_i64().unwrap(),
        );
        assert_eq!(result.is_ok(), case["valid"].as_bool().unwrap(), "{name}: {result:?}");
        // The reason matches the vector's note where it gives one.
        match (case.get("note").and_then(Value::as_str), &result) {
            (Some("timestamp outside tolerance"), Err(e)) => {
                assert!(matches!(e, WebhookError::TimestampOutOfTolerance { .. }), "{name}: {e}")
            }
            (Some("malformed header" | "ambiguous: reject"), Err(e)) => {
                assert!(matches!(e, WebhookError::MalformedHeader(_)), "{name}: {e}")
            }
            (Some("no signature"), Err(e)) => assert_eq!(e, &WebhookError::NoSignature, "{name}"),
            _ => {}
        }
    }
}

#[test]
fn construct_event_works_from_a_header_map_only_when_signed() {
    let body = br#"{"id":"evt_9","type":"video.published","api_version":"2026-05-25","created_at":"2026-06-01T12:00:00Z","data":{"video_id":"v","bundle_id":"b","position":2,"status":"published","platform_url":"https://tiktok.com/@x/video/1"}}"#;
    let verifier = Verifier::new("whsec_a").with_secret("whsec_b");
    let mut headers = http::HeaderMap::new();
    let now = 1_800_000_000;
    headers.insert("TokPortal-Signature", sign("whsec_b", now, body).parse().unwrap());
    let event = verifier
        .construct_event_at(&headers, body, now)
        .expect("signed with the second secret");
    assert_eq!(event.id, "evt_9");
    match event.payload {
        WebhookEvent::VideoPublished(v) => {
            assert_eq!(v.position, 2);
            assert_eq!(v.platform_url.as_deref(), Some("https://tiktok.com/@x/video/1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        verifier.construct_event_at(&http::HeaderMap::new(), body, now),
        Err(WebhookError::MissingHeader)
    );
    let tampered = String::from_utf8_lossy(body).replace("\"position\":2", "\"position\":3");
    assert_eq!(
        verifier.construct_event_at(&headers, tampered.as_bytes(), now),
        Err(WebhookError::NoMatchingSignature)
    );
    // Signed but not an event: a distinct, typed failure.
    let junk = b"not json";
    headers.insert("TokPortal-Signature", sign("whsec_a", now, junk).parse().unwrap());
    assert!(matches!(
        verifier.construct_event_at(&headers, junk, now),
        Err(WebhookError::InvalidPayload(_))
    ));
}

#[test]
fn typed_event_types_are_the_specs() {
    let spec: serde_json::Value = serde_norway::from_str(include_str!("../spec/openapi.yaml")).unwrap();
    let documented: Vec<&str> = spec
        .pointer("/components/schemas/WebhookEventsResponse/properties/data/properties/envelope/properties/type/enum")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(documented.len(), 13);
    let mut typed = tokportal::webhooks::EVENT_TYPES.to_vec();
    let mut documented = documented;
    typed.sort_unstable();
    documented.sort_unstable();
    assert_eq!(typed, documented);
}
