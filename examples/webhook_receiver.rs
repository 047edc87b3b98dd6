//! A webhook receiver with axum: verifies `TokPortal-Signature` on the raw
//! body, then dispatches on the typed event.
//!
//! ```text
//! TOKPORTAL_WEBHOOK_SECRET=whsec_... cargo run --example webhook_receiver -- 127.0.0.1:3000
//! ```
//!
//! Without a secret it uses `whsec_test`, signs one event with
//! `tokportal::webhooks::sign`, posts it to itself and exits: a self-test.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokportal::webhooks::{SIGNATURE_HEADER, Verifier, WebhookEvent};

async fn receive(State(verifier): State<Verifier>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // Verify the exact bytes received, before any JSON parsing.
    let event = match verifier.construct_event(&headers, &body) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("rejected delivery: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    match &event.payload {
        WebhookEvent::BundlePublished(b) => println!("bundle {} published ({})", b.bundle_id, event.id),
        WebhookEvent::VideoPublished(v) => println!("video {} of bundle {} is live", v.position, v.bundle_id),
        WebhookEvent::WebhookTest(t) => println!("test event: {}", t.message),
        WebhookEvent::Unknown { event_type, .. } => println!("not yet typed: {event_type}"),
        // Signed, so genuine: a newer payload shape. Take it (2xx), read `data` by hand.
        WebhookEvent::Drifted { event_type, reason, .. } => println!("{event_type} in a newer shape: {reason}"),
        other => println!("{}: {other:?}", event.event_type),
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("TOKPORTAL_WEBHOOK_SECRET").ok();
    let self_test = secret.is_none();
    let verifier = Verifier::new(secret.unwrap_or_else(|| "whsec_test".into()));
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/tokportal/webhook", post(receive))
        .with_state(verifier);
    println!("listening on http://{local}/tokportal/webhook");
    if !self_test {
        axum::serve(listener, app).await?;
        return Ok(());
    }
    tokio::spawn(async move { axum::serve(listener, app).await });
    let body = br#"{"id":"evt_1","type":"webhook.test","api_version":"2026-05-25","created_at":"2026-06-01T12:00:00Z","data":{"webhook_endpoint_id":"9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c","message":"hello from the self-test"}}"#;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let http = reqwest::Client::new();
    let url = format!("http://{local}/tokportal/webhook");
    let signed = http
        .post(&url)
        .header(SIGNATURE_HEADER, tokportal::webhooks::sign("whsec_test", now, body))
        .body(&body[..])
        .send()
        .await?;
    println!("signed delivery: HTTP {}", signed.status());
    let forged = http
        .post(&url)
        .header(SIGNATURE_HEADER, format!("t={now},v1=00"))
        .body(&body[..])
        .send()
        .await?;
    println!("forged delivery: HTTP {}", forged.status());
    Ok(())
}
