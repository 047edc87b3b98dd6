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

/// A signed event of a known type whose `data` has a newer shape is
/// delivered, raw, as `Drifted`: refusing it would make the sender retry a
/// genuine event until it gives up. The same body unsigned, or signed with
/// another secret, is still refused.
#[test]
fn a_drifted_signed_event_is_delivered_and_a_forged_one_refused() {
    let now = 1_780_000_000;
    let verifier = Verifier::new("whsec_a");
    // `bundle_id` became an object: BundlePayload cannot read it.
    let body = br#"{"id":"evt_d","type":"bundle.created","api_version":"2027-01-01","created_at":"2027-01-01T00:00:00Z","data":{"bundle_id":{"uuid":"b-1"},"status":"pending_setup"}}"#;
    let mut headers = http::HeaderMap::new();
    headers.insert("TokPortal-Signature", sign("whsec_a", now, body).parse().unwrap());
    let event = verifier
        .construct_event_at(&headers, body, now)
        .expect("a genuine event is delivered");
    assert_eq!(event.event_type, "bundle.created");
    match event.payload {
        WebhookEvent::Drifted {
            event_type,
            data,
            reason,
        } => {
            assert_eq!(event_type, "bundle.created");
            assert_eq!(data["bundle_id"]["uuid"], "b-1");
            assert!(reason.contains("bundle_id") || reason.contains("string"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The same drifted body, forged: signed with another secret.
    headers.insert("TokPortal-Signature", sign("whsec_evil", now, body).parse().unwrap());
    assert_eq!(
        verifier.construct_event_at(&headers, body, now),
        Err(WebhookError::NoMatchingSignature)
    );
    // Signed, but too old: still refused.
    headers.insert(
        "TokPortal-Signature",
        sign("whsec_a", now - 3600, body).parse().unwrap(),
    );
    assert!(matches!(
        verifier.construct_event_at(&headers, body, now),
        Err(WebhookError::TimestampOutOfTolerance { .. })
    ));
    // Signed JSON that is not an envelope (no `type`): refused as such.
    let not_envelope = br#"{"id":"evt_x","data":{}}"#;
    headers.insert(
        "TokPortal-Signature",
        sign("whsec_a", now, not_envelope).parse().unwrap(),
    );
    assert!(matches!(
        verifier.construct_event_at(&headers, not_envelope, now),
        Err(WebhookError::InvalidPayload(_))
    ));
    // A well-formed one of the same type is typed, not drifted.
    let good = br#"{"id":"evt_g","type":"bundle.created","api_version":"2026-05-25","created_at":"2027-01-01T00:00:00Z","data":{"bundle_id":"b-1"}}"#;
    headers.insert("TokPortal-Signature", sign("whsec_a", now, good).parse().unwrap());
    assert!(matches!(
        verifier.construct_event_at(&headers, good, now).map(|e| e.payload),
        Ok(WebhookEvent::BundleCreated(p)) if p.bundle_id == "b-1"
    ));
}
