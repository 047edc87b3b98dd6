//! What a call tells `tracing`, seen through OpenTelemetry: one
//! `tokportal.call` span, an attempt span per try named after the method and
//! path template with the HTTP client conventions' attributes, and the wait
//! between attempts as an event.

mod common;

use common::{Reply, Scripted, UUID_A, json_reply};
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn has(span: &SpanData, key: &str, value: impl Into<OtelValue>) -> bool {
    attribute(span, key) == Some(&value.into())
}

#[tokio::test]
async fn a_call_that_met_a_503_is_one_call_span_with_two_attempts_and_a_wait() {
    let server = Scripted::start(vec![
        Reply::Http(
            503,
            vec![
                ("content-type", "application/json".into()),
                ("retry-after", "1".into()),
                ("x-tokportal-request-id", "req_first".into()),
            ],
            json!({"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}}).to_string(),
        ),
        json_reply(201, json!({"data": {"id": UUID_A, "status": "draft"}})),
    ])
    .await;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = common::client(&server.base_url);
    let mut args = tokportal::OperationArgs::new();
    args.path.insert("id".into(), json!(UUID_A));
    args.idempotency_key = Some("idem-otel-1".into());
    client.request_operation("publishBundle", args).await.unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "tokportal publishBundle").collect();
    assert_eq!(
        calls.len(),
        1,
        "one call span: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let call = calls[0];
    assert!(has(call, "tokportal.operation", "publishBundle"));
    assert!(has(call, "tokportal.idempotency_key", "idem-otel-1"));
    assert!(has(call, "tokportal.dry_run", false));
    let mut attempts: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.parent_span_id == call.span_context.span_id())
        .collect();
    attempts.sort_by_key(|s| s.start_time);
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        // The path template, never the filled path.
        assert_eq!(attempt.name, "POST /bundles/{id}/publish");
        assert!(has(attempt, "http.request.method", "POST"));
        assert!(has(attempt, "url.template", "/bundles/{id}/publish"));
        assert!(has(attempt, "server.address", "127.0.0.1"));
        assert!(attribute(attempt, "server.port").is_some());
        let url = attribute(attempt, "url.full").unwrap().as_str();
        assert!(url.ends_with(&format!("/bundles/{UUID_A}/publish")), "{url}");
        assert_eq!(attempt.span_kind, opentelemetry::trace::SpanKind::Client);
    }
    let (first, second) = (attempts[0], attempts[1]);
    assert!(has(first, "http.response.status_code", 503i64));
    assert!(has(first, "error.type", "503"));
    assert!(has(first, "tokportal.request_id", "req_first"));
    assert!(attribute(first, "http.request.resend_count").is_none());
    assert!(has(second, "http.response.status_code", 201i64));
    assert!(has(second, "http.request.resend_count", 1i64));
    assert!(attribute(second, "error.type").is_none());
    assert!(attribute(second, "http.response.body.size").is_some());
    assert!(!matches!(second.status, Status::Error { .. }));
    // The wait is an event of the call, with its length and reason.
    let wait = call
        .events
        .iter()
        .find(|e| e.name == "tokportal.retry")
        .expect("the wait is an event");
    let reason = wait.attributes.iter().find(|kv| kv.key.as_str() == "reason");
    assert_eq!(reason, Some(&KeyValue::new("reason", "Retry-After")));
    assert!(wait.attributes.iter().any(|kv| kv.key.as_str() == "wait_ms"));
    // Both attempts carried the same key.
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("idempotency-key") == Some("idem-otel-1")));
}
