//! The SDK's spans in OpenTelemetry: `tracing-opentelemetry` turns every
//! call into a `tokportal.call` span with one client span per attempt
//! (`POST /bundles`, with `http.response.status_code`, `error.type`,
//! `http.request.resend_count`, `tokportal.request_id`, ...), and the wait
//! before a retry into an event of the call.
//!
//! ```text
//! cargo run --example opentelemetry --features sandbox
//! ```
//!
//! It runs against the embedded sandbox, which is asked to fail the first
//! create with a 503, and prints the spans with the stdout exporter. In an
//! application, use an OTLP exporter instead (the `opentelemetry-otlp`
//! crate's `SpanExporter::builder().with_tonic().build()?`) and keep the rest:
//! the SDK itself depends on neither crate, only on `tracing`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    // The calls, attempts and waits (INFO); DEBUG would add each exchange's
    // headers as events, TRACE its bodies.
    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tokportal-example"))
            .with_filter(Targets::new().with_target("tokportal", tracing::Level::INFO)),
    );
    tracing::subscriber::set_global_default(subscriber)?;

    let sandbox = tokportal::sandbox::Sandbox::start().await?;
    // The sandbox fails the next createBundle once; the SDK sends it again
    // with the same Idempotency-Key.
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.url()))
        .json(&json!({"fault": "503", "times": 1, "operation": "createBundle"}))
        .send()
        .await?;
    let client = tokportal::Client::builder()
        .api_key("sk_test_opentelemetry")
        .base_url(sandbox.url())
        .build()?;
    let mut args = tokportal::OperationArgs::new();
    args.body = Some(json!({"bundle_type": "account_only", "country": "USA"}));
    let created = client.request_operation("createBundle", args).await?;
    println!("created, status {}", created.meta.status);

    provider.force_flush()?;
    provider.shutdown()?;
    Ok(())
}
